#include "wordpiece.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "parallel.h"
#include "unicode_props.h"

namespace wwm {
namespace {

inline uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

inline uint64_t HashBytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (static_cast<uint64_t>(n) * 0xbf58476d1ce4e5b9ULL);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    h = (h ^ v) * 0x94d049bb133111ebULL;
  }
  return Mix(h);
}

size_t CountChars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

constexpr uint32_t kSigma = 0x03A3, kSmallSigma = 0x03C3, kFinalSigma = 0x03C2;
constexpr uint32_t kSingleTableSize = 0x30000;  // BMP + SIP: every CJK char of the Chinese vocab

}  // namespace

void VocabHash::Build(const std::vector<std::string>& keys, const std::vector<int32_t>& ids) {
  size_t total = 0;  // slots address the arena with 32-bit offsets
  for (const std::string& k : keys) total += k.size();
  if (total > 0xFFFFFFFFULL) {
    throw std::invalid_argument("the vocab's keys hold " + std::to_string(total) +
                                " bytes; at most 2^32 - 1 are supported");
  }
  size_t cap = 16;
  while (cap < keys.size() * 2 + 1) cap <<= 1;
  slots_.assign(cap, Slot{0, 0, 0, -1});
  mask_ = cap - 1;
  arena_.clear();
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string& k = keys[i];
    const uint64_t h = HashBytes(k.data(), k.size());
    uint64_t idx = h & mask_;
    while (slots_[idx].id != -1) {
      const Slot& s = slots_[idx];
      if (s.hash == h && s.size == k.size() && arena_.compare(s.offset, s.size, k) == 0) break;
      idx = (idx + 1) & mask_;
    }
    Slot& s = slots_[idx];
    if (s.id == -1) {
      s.hash = h;
      s.offset = static_cast<uint32_t>(arena_.size());
      s.size = static_cast<uint32_t>(k.size());
      arena_ += k;
    }
    s.id = ids[i];  // a later duplicate wins, as a Python dict assignment would
  }
}

int32_t VocabHash::Find(const char* data, size_t size) const {
  const uint64_t h = HashBytes(data, size);
  uint64_t idx = h & mask_;
  while (true) {
    const Slot& s = slots_[idx];
    if (s.id == -1) return -1;
    if (s.hash == h && s.size == size && std::memcmp(arena_.data() + s.offset, data, size) == 0) {
      return s.id;
    }
    idx = (idx + 1) & mask_;
  }
}

struct FullTokenizer::Scratch {
  std::vector<Char> word;   // one whitespace token of the cleaned line
  std::vector<Char> norm;   // the same after lower + NFD + Mn removal
  std::string utf8;         // one piece, encoded for hash lookups
  std::vector<size_t> char_bytes;
  std::vector<int32_t> pending;  // (id, start, end) triples of the piece being matched
};

std::unique_ptr<FullTokenizer::Scratch> FullTokenizer::NewScratch() {
  return std::make_unique<Scratch>();
}

FullTokenizer::FullTokenizer(const std::vector<std::string>& keys,
                             const std::vector<int32_t>& ids, int32_t unk_id, bool do_lower_case,
                             int max_input_chars_per_word)
    : unk_id_(unk_id),
      do_lower_case_(do_lower_case),
      max_input_chars_per_word_(max_input_chars_per_word) {
  if (keys.size() != ids.size()) {
    throw std::invalid_argument("keys and ids differ in length: " + std::to_string(keys.size()) +
                                " != " + std::to_string(ids.size()));
  }
  if (max_input_chars_per_word < 1) {
    throw std::invalid_argument("max_input_chars_per_word must be >= 1, got " +
                                std::to_string(max_input_chars_per_word));
  }
  bool unk_found = false;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0) {  // -1 marks an empty hash slot, and ids index arrays downstream
      throw std::invalid_argument("ids must be >= 0, got " + std::to_string(ids[i]) +
                                  " at index " + std::to_string(i));
    }
    unk_found |= ids[i] == unk_id;
  }
  if (!unk_found) {
    throw std::out_of_range("unk_id " + std::to_string(unk_id) + " is not one of the " +
                            std::to_string(ids.size()) + " vocab ids");
  }
  init_.Build(keys, ids);
  std::vector<std::string> cont_keys;
  std::vector<int32_t> cont_ids;
  single_init_.assign(kSingleTableSize, -1);
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string& k = keys[i];
    max_init_chars_ = std::max(max_init_chars_, static_cast<int>(CountChars(k)));
    if (k.size() > 2 && k[0] == '#' && k[1] == '#') {
      cont_keys.push_back(k.substr(2));
      cont_ids.push_back(ids[i]);
      max_cont_chars_ = std::max(max_cont_chars_, static_cast<int>(CountChars(cont_keys.back())));
    }
  }
  cont_.Build(cont_keys, cont_ids);
  // Direct table for one-character initial pieces; resolved through the hash so that duplicate
  // handling is the hash's.
  for (const std::string& k : keys) {
    if (k.empty()) continue;
    uint32_t cp;
    const int r = DecodeUtf8(reinterpret_cast<const uint8_t*>(k.data()), k.size(), &cp, true);
    if (r > 0 && static_cast<size_t>(r) == k.size() && cp < kSingleTableSize) {
      single_init_[cp] = init_.Find(k.data(), k.size());
    }
  }
}

int32_t FullTokenizer::LookupSingle(uint32_t cp) const {
  if (cp < kSingleTableSize) return single_init_[cp];
  char buf[4];
  const int n = EncodeUtf8(cp, buf);
  return init_.Find(buf, n);
}

void FullTokenizer::EmitPiece(const Char* piece, size_t n, Scratch* s, EncodeOutput* out) const {
  if (n == 0) return;
  if (n > static_cast<size_t>(max_input_chars_per_word_)) {
    int32_t lo = piece[0].pos, hi = piece[0].pos;
    for (size_t j = 1; j < n; ++j) {
      lo = std::min(lo, piece[j].pos);
      hi = std::max(hi, piece[j].pos);
    }
    out->Emit(unk_id_, lo, hi + 1);
    return;
  }
  if (n == 1) {
    const int32_t id = LookupSingle(piece[0].cp);
    out->Emit(id >= 0 ? id : unk_id_, piece[0].pos, piece[0].pos + 1);
    return;
  }
  std::string& buf = s->utf8;
  std::vector<size_t>& cb = s->char_bytes;
  buf.resize(n * 4);
  cb.resize(n + 1);
  size_t b = 0;
  for (size_t j = 0; j < n; ++j) {
    cb[j] = b;
    b += EncodeUtf8(piece[j].cp, &buf[b]);
  }
  cb[n] = b;
  std::vector<int32_t>& pending = s->pending;
  pending.clear();
  size_t start = 0;
  while (start < n) {
    const VocabHash& table = start == 0 ? init_ : cont_;
    const size_t limit = static_cast<size_t>(start == 0 ? max_init_chars_ : max_cont_chars_);
    size_t end = std::min(n, start + limit);
    int32_t found = -1;
    for (; end > start; --end) {
      found = table.Find(buf.data() + cb[start], cb[end] - cb[start]);
      if (found >= 0) break;
    }
    if (found < 0) {  // Google: the whole word becomes one [UNK]
      int32_t lo = piece[0].pos, hi = piece[0].pos;
      for (size_t j = 1; j < n; ++j) {
        lo = std::min(lo, piece[j].pos);
        hi = std::max(hi, piece[j].pos);
      }
      out->Emit(unk_id_, lo, hi + 1);
      return;
    }
    int32_t lo = piece[start].pos, hi = piece[start].pos;
    for (size_t j = start + 1; j < end; ++j) {  // positions only disagree after NFD reordering
      lo = std::min(lo, piece[j].pos);
      hi = std::max(hi, piece[j].pos);
    }
    pending.push_back(found);
    pending.push_back(lo);
    pending.push_back(hi + 1);
    start = end;
  }
  for (size_t j = 0; j < pending.size(); j += 3) {
    out->Emit(pending[j], pending[j + 1], pending[j + 2]);
  }
}

void FullTokenizer::FlushWord(Scratch* s, EncodeOutput* out) const {
  std::vector<Char>& word = s->word;
  if (word.empty()) return;
  const Char* src = word.data();
  size_t n = word.size();
  if (do_lower_case_) {
    std::vector<Char>& norm = s->norm;
    norm.clear();
    bool reorder = false;
    for (size_t j = 0; j < n; ++j) {
      const uint32_t cp = word[j].cp;
      const int32_t pos = word[j].pos;
      const CharProps& p = Props(cp);
      if (cp == kSigma) {
        // Python's final-sigma rule (handle_capital_sigma in Objects/unicodeobject.c), with the
        // original, not yet lowered, whitespace token as context.
        size_t i = j;
        while (i > 0 && (Props(word[i - 1].cp).flags & kCaseIgnorable)) --i;
        bool final_sigma = i > 0 && (Props(word[i - 1].cp).flags & kCased);
        if (final_sigma) {
          size_t k = j + 1;
          while (k < n && (Props(word[k].cp).flags & kCaseIgnorable)) ++k;
          final_sigma = k == n || !(Props(word[k].cp).flags & kCased);
        }
        norm.push_back({final_sigma ? kFinalSigma : kSmallSigma, pos});
      } else if (p.flags & kHangul) {
        const uint32_t si = cp - 0xAC00;
        norm.push_back({0x1100 + si / 588, pos});
        norm.push_back({0x1161 + (si % 588) / 28, pos});
        if (si % 28) norm.push_back({0x11A7 + si % 28, pos});
      } else if (p.map_len) {
        const uint32_t* m = MappedChars(p);
        for (uint32_t k = 0; k < p.map_len; ++k) {
          norm.push_back({m[k], pos});
          reorder |= (Props(m[k]).flags & kReorder) != 0;
        }
      } else {
        norm.push_back({cp, pos});
        reorder |= (p.flags & kReorder) != 0;
      }
    }
    if (reorder) {
      // Canonical ordering (stable sort of each run of non-starters by combining class), as
      // unicodedata.normalize does; it matters only when a non-Mn mark survives stripping.
      for (size_t j = 1; j < norm.size(); ++j) {
        const uint8_t c = Props(norm[j].cp).ccc;
        if (c == 0) continue;
        size_t k = j;
        while (k > 0) {
          const uint8_t pc = Props(norm[k - 1].cp).ccc;
          if (pc == 0 || pc <= c) break;
          std::swap(norm[k - 1], norm[k]);
          --k;
        }
      }
    }
    size_t w = 0;
    for (size_t j = 0; j < norm.size(); ++j) {
      if (!(Props(norm[j].cp).flags & kMn)) norm[w++] = norm[j];
    }
    norm.resize(w);
    src = norm.data();
    n = norm.size();
  }
  size_t piece_start = 0;
  for (size_t j = 0; j < n; ++j) {
    const uint16_t f = Props(src[j].cp).flags;
    if (f & kSpace) {
      EmitPiece(src + piece_start, j - piece_start, s, out);
      piece_start = j + 1;
    } else if (f & kPunct) {
      EmitPiece(src + piece_start, j - piece_start, s, out);
      EmitPiece(src + j, 1, s, out);
      piece_start = j + 1;
    }
  }
  EmitPiece(src + piece_start, n - piece_start, s, out);
  word.clear();
}

bool FullTokenizer::EncodeLine(const char* data, size_t size, Utf8Errors errors, Scratch* s,
                               EncodeOutput* out, bool* blank, EncodeError* err) const {
  s->word.clear();
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data);
  size_t i = 0;
  int32_t k = 0;  // code point index in the decoded line
  bool any_nonspace = false;
  const bool surrogates = errors == Utf8Errors::kSurrogatePass;
  while (i < size) {
    uint32_t cp;
    if (p[i] < 0x80) {
      cp = p[i++];
    } else {
      const int r = DecodeUtf8(p + i, size - i, &cp, surrogates);
      if (r < 0) {
        if (errors == Utf8Errors::kStrict) {
          err->byte = static_cast<int64_t>(i);
          err->length = -r;
          s->word.clear();
          return false;
        }
        i += static_cast<size_t>(-r);  // bytes.decode(..., "ignore"): the char never existed
        continue;
      }
      i += static_cast<size_t>(r);
    }
    const CharProps& pr = Props(cp);
    const uint16_t f = pr.flags;
    if (!(f & kSpace)) any_nonspace = true;
    if (f & kDrop) {
      ++k;
      continue;
    }
    if (f & (kWhitespace | kSpace)) {
      if (!s->word.empty()) FlushWord(s, out);
      ++k;
      continue;
    }
    if ((f & kPunct) && s->word.empty() && (!do_lower_case_ || pr.map_len == 0)) {
      // A punctuation char is always its own piece. At the start of a whitespace token it cannot
      // change the final-sigma context of what follows (punctuation is never cased), nor be
      // reordered (ccc 0), so it can be emitted before the rest of the token is seen.
      const int32_t id = LookupSingle(cp);
      out->Emit(id >= 0 ? id : unk_id_, k, k + 1);
      ++k;
      continue;
    }
    if (f & kCjk) {
      if (!s->word.empty()) FlushWord(s, out);
      if (!do_lower_case_ || pr.map_len == 0) {
        const int32_t id = LookupSingle(cp);
        out->Emit(id >= 0 ? id : unk_id_, k, k + 1);
      } else {
        s->word.push_back({cp, k});
        FlushWord(s, out);
      }
      ++k;
      continue;
    }
    s->word.push_back({cp, k});
    ++k;
  }
  FlushWord(s, out);
  *blank = !any_nonspace;
  return true;
}

ParsedVocab ParseVocab(const char* data, size_t size) {
  ParsedVocab v;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data);
  std::string line;
  size_t i = 0;
  int64_t index = 0;
  while (i < size) {
    // One line without its '\r' bytes (removed everywhere before the split, as load_vocab does).
    line.clear();
    size_t j = i;
    while (j < size && p[j] != '\n') {
      if (p[j] != '\r') line.push_back(static_cast<char>(p[j]));
      ++j;
    }
    if (j == size && line.empty() && j > i) {
      // only '\r' bytes after the last '\n': an empty last line, which load_vocab drops
      break;
    }
    if (index > 0x7FFFFFFE) {
      throw std::invalid_argument("the vocab has more than 2^31 - 1 lines");
    }
    // Decode strictly, remembering where the non-space characters start and end.
    const uint8_t* s = reinterpret_cast<const uint8_t*>(line.data());
    const size_t n = line.size();
    size_t first = n, last = 0;  // byte range [first, last) after strip()
    for (size_t k = 0; k < n;) {
      uint32_t cp;
      const int r = DecodeUtf8(s + k, n - k, &cp, false);
      if (r <= 0) {
        v.error_line = index;
        v.n_lines = index + 1;
        return v;
      }
      if (!(Props(cp).flags & kSpace)) {
        if (first == n) first = k;
        last = k + static_cast<size_t>(r);
      }
      k += static_cast<size_t>(r);
    }
    std::string key = first < last ? line.substr(first, last - first) : std::string();
    const auto found = v.position.find(key);
    if (found == v.position.end()) {
      v.position.emplace(key, v.keys.size());
      v.keys.push_back(std::move(key));
      v.ids.push_back(static_cast<int32_t>(index));
    } else {
      v.ids[found->second] = static_cast<int32_t>(index);
    }
    ++index;
    i = j + 1;  // past the '\n' (or the end)
  }
  v.n_lines = index;
  return v;
}

std::vector<int64_t> SplitLines(const char* data, size_t size) {
  std::vector<int64_t> b;
  b.reserve(size / 32 + 2);
  b.push_back(0);
  const char* p = data;
  const char* end = data + size;
  while (p < end) {
    const void* nl = std::memchr(p, '\n', static_cast<size_t>(end - p));
    if (nl == nullptr) {
      b.push_back(static_cast<int64_t>(size));
      break;
    }
    p = static_cast<const char*>(nl) + 1;
    b.push_back(static_cast<int64_t>(p - data));
  }
  return b;
}

namespace {

struct Chunk {
  int64_t begin, end;  // lines
  EncodeOutput out;
  PodVector<int64_t> lengths;
  PodVector<uint8_t> blank;
  EncodeError err;
};

void EncodeChunk(const FullTokenizer& tok, const char* data, const int64_t* splits,
                 Utf8Errors errors, bool strip_cr, size_t reserve_tokens, Chunk* c) {
  std::string no_cr;
  std::unique_ptr<FullTokenizer::Scratch> scratch = FullTokenizer::NewScratch();
  const size_t n_lines = static_cast<size_t>(c->end - c->begin);
  c->lengths.reserve(n_lines);
  c->blank.reserve(n_lines);
  c->out.ids.reserve(reserve_tokens);
  if (c->out.offsets) {
    c->out.starts.reserve(reserve_tokens);
    c->out.ends.reserve(reserve_tokens);
  }
  for (int64_t li = c->begin; li < c->end; ++li) {
    const char* line = data + splits[li];
    size_t len = static_cast<size_t>(splits[li + 1] - splits[li]);
    if (strip_cr && std::memchr(line, '\r', len) != nullptr) {
      no_cr.clear();
      for (size_t j = 0; j < len; ++j) {
        if (line[j] != '\r') no_cr.push_back(line[j]);
      }
      line = no_cr.data();
      len = no_cr.size();
    }
    const size_t before = c->out.ids.size();
    bool blank = false;
    if (!tok.EncodeLine(line, len, errors, scratch.get(), &c->out, &blank, &c->err)) {
      c->err.line = li;
      return;
    }
    c->lengths.push_back(static_cast<int64_t>(c->out.ids.size() - before));
    c->blank.push_back(blank ? 1 : 0);
  }
}

}  // namespace

EncodeError EncodeLines(const FullTokenizer& tok, const char* data, const int64_t* line_splits,
                        int64_t n_lines, Utf8Errors errors, bool strip_cr, int num_threads,
                        EncodeOutput* out, PodVector<int64_t>* row_splits,
                        PodVector<uint8_t>* blank) {
  const int64_t total_bytes = n_lines > 0 ? line_splits[n_lines] - line_splits[0] : 0;
  for (int64_t i = 0; i < n_lines; ++i) {  // code point offsets are int32
    if (line_splits[i + 1] - line_splits[i] > kMaxLineBytes) {
      throw std::invalid_argument("line " + std::to_string(i + 1) + " is " +
                                  std::to_string(line_splits[i + 1] - line_splits[i]) +
                                  " bytes long; lines of at most " +
                                  std::to_string(kMaxLineBytes) + " bytes are supported");
    }
  }
  int threads = ResolveNumThreads(num_threads);
  // Below ~256 KB per thread, starting threads costs more than it saves.
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, total_bytes >> 18)));
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, n_lines)));
  std::vector<Chunk> chunks(static_cast<size_t>(threads));
  for (Chunk& c : chunks) c.out.offsets = out->offsets;
  // Balance chunks by bytes; boundaries depend only on the input, never on timing.
  int64_t li = 0;
  for (int t = 0; t < threads; ++t) {
    chunks[t].begin = li;
    if (t == threads - 1) {
      li = n_lines;
    } else {
      const int64_t target = line_splits[0] + total_bytes * (t + 1) / threads;
      const int64_t* it = std::lower_bound(line_splits + li, line_splits + n_lines, target);
      li = std::max(li, static_cast<int64_t>(it - line_splits));
    }
    chunks[t].end = li;
  }
  // Chinese text gives one token per 3.0 bytes (zh_all: 13.04 MB, 4.34 M tokens). Chunk 0
  // becomes the output and reserves room for every chunk (the others are copied behind it); the
  // guess is 1 token per 2.7 bytes, ~10% over Chinese: a 4 GB shard reserves 1.5 G tokens (6 GB
  // of ids, 18 GB with offsets), not twice its real output. Denser text (ASCII punctuation can
  // give a token per byte) grows the arrays as it goes.
  const auto guess = [](int64_t bytes) { return static_cast<size_t>(bytes) / 8 * 3 + 16; };
  const auto chunk_bytes = [&](const Chunk& c) {
    return line_splits[c.end] - line_splits[c.begin];
  };
  ParallelFor(threads, [&](int t) {
    const size_t reserve = t == 0 ? guess(total_bytes) : guess(chunk_bytes(chunks[t]));
    EncodeChunk(tok, data, line_splits, errors, strip_cr, reserve, &chunks[t]);
  });
  for (const Chunk& c : chunks) {
    if (c.err.line >= 0) return c.err;
  }
  row_splits->clear();
  row_splits->reserve(static_cast<size_t>(n_lines) + 1);
  row_splits->push_back(0);
  for (const Chunk& c : chunks) {
    for (int64_t len : c.lengths) row_splits->push_back(row_splits->back() + len);
  }
  std::vector<size_t> token_offset(chunks.size() + 1, 0), line_offset(chunks.size() + 1, 0);
  for (size_t t = 0; t < chunks.size(); ++t) {
    token_offset[t + 1] = token_offset[t] + chunks[t].out.ids.size();
    line_offset[t + 1] = line_offset[t] + chunks[t].blank.size();
  }
  *out = std::move(chunks[0].out);
  *blank = std::move(chunks[0].blank);
  if (chunks.size() == 1) return EncodeError{};
  const bool offsets = out->offsets;
  out->ids.resize_uninitialized(token_offset.back());
  if (offsets) {
    out->starts.resize_uninitialized(token_offset.back());
    out->ends.resize_uninitialized(token_offset.back());
  }
  blank->resize_uninitialized(line_offset.back());
  // Copy chunks 1.. behind chunk 0, every thread a slice of the tokens to copy (the copy is the
  // only serial part left, so it is split evenly whatever the chunk sizes).
  const size_t to_copy = token_offset.back() - token_offset[1];
  auto copy_slice = [&](int part) {
    const size_t lo = token_offset[1] + to_copy * part / threads;
    const size_t hi = token_offset[1] + to_copy * (part + 1) / threads;
    for (size_t t = 1; t < chunks.size(); ++t) {
      const size_t b = std::max(lo, token_offset[t]), e = std::min(hi, token_offset[t + 1]);
      if (b >= e) continue;
      const EncodeOutput& c = chunks[t].out;
      const size_t from = b - token_offset[t];
      std::copy(c.ids.begin() + from, c.ids.begin() + from + (e - b), out->ids.begin() + b);
      if (!offsets) continue;
      std::copy(c.starts.begin() + from, c.starts.begin() + from + (e - b),
                out->starts.begin() + b);
      std::copy(c.ends.begin() + from, c.ends.begin() + from + (e - b), out->ends.begin() + b);
    }
  };
  ParallelFor(threads, copy_slice);
  for (size_t t = 1; t < chunks.size(); ++t) {
    std::copy(chunks[t].blank.begin(), chunks[t].blank.end(), blank->begin() + line_offset[t]);
  }
  return EncodeError{};
}

}  // namespace wwm
