// LTP legacy CWS inference; see ltp_cws.h for what it computes and the contract.
#include "ltp_cws.h"

#include <algorithm>
#include <cfloat>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include "parallel.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ltp_cws.cc reads Avro doubles as little-endian host doubles"
#endif

namespace wwm {
namespace {

constexpr int kLabels = 4;  // S B M E, LTP's order
constexpr int kS = 0, kB = 1, kE = 3;
constexpr int kTransitions = kLabels * kLabels;
const double kZeroRow[20] = {0};

// Rust's char::is_whitespace (Unicode White_Space): what LTP skips.
inline bool IsLtpSpace(uint32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x85) return false;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Python's str.isspace: LTP's whitespace plus the separators U+001C..U+001F. No word of
// wwm_fast's WordSpans contains one.
inline bool IsPySpace(uint32_t c) { return IsLtpSpace(c) || (c >= 0x1C && c <= 0x1F); }

// LTP's CharacterType (near-char-type feature "d<a><b>"): 1 digit, 2 Latin letter, 3 hiragana,
// 4 katakana, 5 kanji, 6 other; full-width digits and letters count as digits and letters.
inline uint8_t CharType(uint32_t c) {
  if (c >= 0x4E00 && c <= 0x9FFF) return 5;
  if (c < 0x80) {
    if (c >= 0x30 && c <= 0x39) return 1;
    if ((c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)) return 2;
    return 6;
  }
  if (c >= 0xFF10 && c <= 0xFF19) return 1;
  if ((c >= 0xFF21 && c <= 0xFF3A) || (c >= 0xFF41 && c <= 0xFF5A)) return 2;
  if (c >= 0x3040 && c <= 0x3096) return 3;
  if ((c >= 0x30A0 && c <= 0x30FA) || (c >= 0x30FC && c <= 0x30FF) || (c >= 0xFF66 && c <= 0xFF9F))
    return 4;
  if ((c >= 0x3400 && c <= 0x4DBF) || (c >= 0xF900 && c <= 0xFAFF) ||
      (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
      (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
      (c >= 0x2F800 && c <= 0x2FA1F))
    return 5;
  return 6;
}

// Strict UTF-8 (as Python and Rust decode it): returns the sequence length, 0 if invalid.
inline int DecodeUtf8(const uint8_t* p, const uint8_t* end, uint32_t* cp) {
  const uint32_t b0 = p[0];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  const ptrdiff_t left = end - p;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (left < 2 || (p[1] & 0xC0) != 0x80) return 0;
    *cp = ((b0 & 0x1F) << 6) | (p[1] & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
    if (b0 == 0xE0 && p[1] < 0xA0) return 0;  // overlong
    if (b0 == 0xED && p[1] > 0x9F) return 0;  // surrogate
    *cp = ((b0 & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
      return 0;
    if (b0 == 0xF0 && p[1] < 0x90) return 0;  // overlong
    if (b0 == 0xF4 && p[1] > 0x8F) return 0;  // above U+10FFFF
    *cp = ((b0 & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    return 4;
  }
  return 0;
}

std::string Printable(const char* s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n && out.size() < 60; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Reads LTP's Avro record (Avro binary encoding); every length and count is checked against the
// bytes that are left.
class AvroDatumReader {
 public:
  AvroDatumReader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  size_t left() const { return static_cast<size_t>(end_ - p_); }

  int64_t Long(const char* what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p_ == end_) Fail(std::string("the data ends inside ") + what);
      const uint64_t b = *p_++;
      if (shift == 63 && b > 1) Fail(std::string("an integer too large in ") + what);
      v |= (b & 0x7F) << shift;
      if (!(b & 0x80)) return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
    }
    Fail(std::string("an integer too long in ") + what);
  }

  // The item count of the next block of a map or array (0 = end); a negative count is followed
  // by the block's size in bytes. `min_item_bytes` bounds the count by the bytes left.
  int64_t BlockCount(const char* what, size_t min_item_bytes) {
    int64_t count = Long(what);
    if (count < 0) {
      if (count == INT64_MIN) Fail(std::string("a bad block count in ") + what);
      count = -count;
      if (Long(what) < 0) Fail(std::string("a negative block size in ") + what);
    }
    if (static_cast<uint64_t>(count) > left() / min_item_bytes) {
      Fail(std::string("a block of ") + what + " with " + std::to_string(count) +
           " items in " + std::to_string(left()) + " bytes");
    }
    return count;
  }

  const uint8_t* Take(size_t n, const char* what) {
    if (n > left()) Fail(std::string("the data ends inside ") + what);
    const uint8_t* p = p_;
    p_ += n;
    return p;
  }

  [[noreturn]] static void Fail(const std::string& what) {
    throw std::invalid_argument("malformed LTP model record: " + what);
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

struct FeatureTable {
  std::string keys;
  std::vector<int64_t> offsets{0};
  std::vector<int64_t> indices;
  std::vector<double> params;
  void Clear() {
    keys.clear();
    offsets.assign(1, 0);
    indices.clear();
    params.clear();
  }
};

void ReadCwsDatum(AvroDatumReader* in, FeatureTable* t) {
  t->Clear();
  // field "definition": an empty record, no bytes
  // field "features": map<string, long>
  for (;;) {
    const int64_t count = in->BlockCount("the features map", 2);
    if (count == 0) break;
    t->indices.reserve(t->indices.size() + static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
      const int64_t len = in->Long("a feature name");
      if (len < 0) AvroDatumReader::Fail("a feature name with a negative length");
      const uint8_t* s = in->Take(static_cast<size_t>(len), "a feature name");
      t->keys.append(reinterpret_cast<const char*>(s), static_cast<size_t>(len));
      t->offsets.push_back(static_cast<int64_t>(t->keys.size()));
      t->indices.push_back(in->Long("a feature index"));
    }
  }
  // field "parameters": array<double>
  for (;;) {
    const int64_t count = in->BlockCount("the parameters array", 8);
    if (count == 0) break;
    const size_t n = static_cast<size_t>(count);
    const uint8_t* s = in->Take(n * 8, "the parameters array");
    const size_t old = t->params.size();
    t->params.resize(old + n);
    std::memcpy(t->params.data() + old, s, n * 8);
  }
}

uint64_t PairKey(uint32_t a, uint32_t b) { return (static_cast<uint64_t>(a) << 32) | b; }

inline size_t SlotOf(uint64_t key, int shift) {
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Loading

std::unique_ptr<LtpCwsModel> LtpCwsModel::FromAvroBlock(const uint8_t* data, size_t size,
                                                        int64_t count, bool build) {
  if (count < 1) throw std::invalid_argument("an Avro block of an LTP model holds no record");
  AvroDatumReader in(data, size);
  FeatureTable table;
  for (int64_t d = 0; d < count; ++d) ReadCwsDatum(&in, &table);
  if (in.left() != 0) {
    AvroDatumReader::Fail(std::to_string(in.left()) + " bytes left over after " +
                          std::to_string(count) + " record(s)");
  }
  if (!build) return nullptr;
  return FromArrays(table.keys.data(), static_cast<int64_t>(table.keys.size()),
                    table.offsets.data(), static_cast<int64_t>(table.indices.size()),
                    table.indices.data(), table.params.data(),
                    static_cast<int64_t>(table.params.size()));
}

std::unique_ptr<LtpCwsModel> LtpCwsModel::FromArrays(const char* keys, int64_t keys_size,
                                                     const int64_t* key_offsets,
                                                     int64_t n_features, const int64_t* indices,
                                                     const double* params, int64_t n_params) {
  if (n_features < 0 || keys_size < 0 || n_params < 0) {
    throw std::invalid_argument("negative model array size");
  }
  if (n_params < kTransitions) {
    throw std::invalid_argument("the model has " + std::to_string(n_params) +
                                " parameters, fewer than LTP's 16 transition weights");
  }
  if (n_params > INT32_MAX - 8) {
    throw std::invalid_argument("the model has " + std::to_string(n_params) +
                                " parameters, more than this kernel supports (2^31)");
  }
  std::unique_ptr<LtpCwsModel> m(new LtpCwsModel());
  m->num_features_ = n_features;
  m->num_params_ = n_params;
  std::copy(params, params + kTransitions, m->trans_);
  for (auto& row : m->type_has_) std::fill(row, row + 7, false);
  auto weights = [params](int32_t off) { return params + off; };

  // Pass 1: parse every key into (template, characters); unknown templates are skipped (LTP
  // never looks them up).
  struct Parsed {
    int32_t off;
    uint32_t a, b;  // characters
    int8_t tmpl;    // 0..8, or -1 (skipped; "c" and "d" handled in place)
  };
  std::vector<Parsed> parsed;
  parsed.reserve(static_cast<size_t>(n_features));
  std::vector<uint32_t> chars;
  const int64_t max_index = (n_params - kLabels) / kLabels;
  for (int64_t i = 0; i < n_features; ++i) {
    const int64_t a = key_offsets[i], b = key_offsets[i + 1];
    if (a < 0 || b < a || b > keys_size) {
      throw std::invalid_argument("feature " + std::to_string(i) + ": bad key offsets [" +
                                  std::to_string(a) + ", " + std::to_string(b) + ")");
    }
    const char* key = keys + a;
    const size_t len = static_cast<size_t>(b - a);
    const int64_t index = indices[i];
    if (index < 0 || index > max_index) {
      throw std::invalid_argument("feature '" + Printable(key, len) + "' has index " +
                                  std::to_string(index) + ", outside the model's " +
                                  std::to_string(n_params) + " parameters");
    }
    // Decode the whole key: LTP's keys are Rust strings, valid UTF-8.
    uint32_t cps[3] = {0, 0, 0};
    size_t n_cp = 0;
    const uint8_t* p = reinterpret_cast<const uint8_t*>(key);
    const uint8_t* end = p + len;
    while (p < end) {
      uint32_t c;
      const int k = DecodeUtf8(p, end, &c);
      if (k == 0) {
        throw std::invalid_argument("feature '" + Printable(key, len) + "' is not valid UTF-8");
      }
      if (n_cp < 3) cps[n_cp] = c;
      ++n_cp;
      p += k;
    }
    const int32_t off = static_cast<int32_t>(index * kLabels);
    Parsed rec{off, 0, 0, -1};
    if (n_cp >= 1) {
      const uint32_t t = cps[0];
      if (t >= '0' && t <= '4' && n_cp == 2) {
        rec = Parsed{off, cps[1], 0, static_cast<int8_t>(t - '0')};
        chars.push_back(cps[1]);
      } else if (t >= '5' && t <= '8' && n_cp == 3) {
        rec = Parsed{off, cps[1], cps[2], static_cast<int8_t>(t - '0')};
        chars.push_back(cps[1]);
        chars.push_back(cps[2]);
      } else if (t == 'c' && n_cp == 1) {
        std::copy(weights(off), weights(off) + kLabels, m->same_w_);  // a later key replaces
        m->has_same_ = true;                                          // an earlier one (LTP)
      } else if (t == 'd' && n_cp == 3 && cps[1] >= '1' && cps[1] <= '6' && cps[2] >= '1' &&
                 cps[2] <= '6') {
        std::copy(weights(off), weights(off) + kLabels, m->type_w_[cps[1] - '0'][cps[2] - '0']);
        m->type_has_[cps[1] - '0'][cps[2] - '0'] = true;
      }
    }
    if (rec.tmpl >= 0) parsed.push_back(rec);
  }

  // Character ids: 1..K over the model's distinct characters, 0 = unknown.
  std::sort(chars.begin(), chars.end());
  chars.erase(std::unique(chars.begin(), chars.end()), chars.end());
  m->bmp_ids_.assign(0x10000, 0);
  uint32_t next_id = 1;
  for (uint32_t c : chars) {
    if (c < 0x10000) {
      m->bmp_ids_[c] = next_id;
    } else {
      m->supp_cps_.push_back(c);  // sorted, as chars is
      m->supp_ids_.push_back(next_id);
    }
    ++next_id;
  }
  m->uni_w_.assign(static_cast<size_t>(next_id) * 20, 0.0);
  m->uni_mask_.assign(next_id, 0);

  // Pass 2: fill the rows in key order (a repeated key: the last one wins).
  size_t cap = 16;
  m->pairs_.assign(cap, PairSlot{0, 0, 0});
  m->pair_mask_ = cap - 1;
  m->pair_shift_ = 64 - 4;
  std::vector<double> rows;  // pair weights, 16 per pair
  for (const Parsed& r : parsed) {
    const uint32_t ia = m->CharId(r.a);
    if (r.tmpl <= 4) {
      std::copy(weights(r.off), weights(r.off) + kLabels,
                &m->uni_w_[static_cast<size_t>(ia) * 20 + static_cast<size_t>(r.tmpl) * 4]);
      m->uni_mask_[ia] |= static_cast<uint8_t>(1u << r.tmpl);
      continue;
    }
    const uint64_t key = PairKey(ia, m->CharId(r.b));
    size_t h = SlotOf(key, m->pair_shift_);
    while (m->pairs_[h].key != 0 && m->pairs_[h].key != key) h = (h + 1) & m->pair_mask_;
    if (m->pairs_[h].key == 0) {
      if (static_cast<size_t>(m->num_pairs_ + 1) * 2 > cap) {  // keep the load under 1/2
        std::vector<LtpCwsModel::PairSlot> old;
        old.swap(m->pairs_);
        cap *= 2;
        m->pairs_.assign(cap, LtpCwsModel::PairSlot{0, 0, 0});
        m->pair_mask_ = cap - 1;
        --m->pair_shift_;
        for (const auto& e : old) {
          if (e.key == 0) continue;
          size_t g = SlotOf(e.key, m->pair_shift_);
          while (m->pairs_[g].key != 0) g = (g + 1) & m->pair_mask_;
          m->pairs_[g] = e;
        }
        h = SlotOf(key, m->pair_shift_);
        while (m->pairs_[h].key != 0) h = (h + 1) & m->pair_mask_;
      }
      m->pairs_[h] = LtpCwsModel::PairSlot{key, static_cast<uint32_t>(m->num_pairs_), 0};
      ++m->num_pairs_;
      rows.resize(rows.size() + 16, 0.0);
    }
    const int t = r.tmpl - 5;
    std::copy(weights(r.off), weights(r.off) + kLabels,
              &rows[static_cast<size_t>(m->pairs_[h].row) * 16 + static_cast<size_t>(t) * 4]);
    m->pairs_[h].mask |= 1u << t;
  }
  // The pair rows, 64-byte aligned: a row is two cache lines.
  m->pair_storage_.assign(rows.size() + 8, 0.0);
  double* base = m->pair_storage_.data();
  const uintptr_t mis = reinterpret_cast<uintptr_t>(base) % 64;
  if (mis) base += (64 - mis) / sizeof(double);
  std::copy(rows.begin(), rows.end(), base);
  m->pair_w_ = base;
  return m;
}

uint32_t LtpCwsModel::SupplementaryId(uint32_t cp) const {
  auto it = std::lower_bound(supp_cps_.begin(), supp_cps_.end(), cp);
  if (it == supp_cps_.end() || *it != cp) return 0;
  return supp_ids_[static_cast<size_t>(it - supp_cps_.begin())];
}

const LtpCwsModel::PairSlot* LtpCwsModel::FindPairFrom(uint32_t a, uint32_t b, size_t h) const {
  static const PairSlot kAbsent{0, 0, 0};
  if (a == 0 || b == 0) return &kAbsent;
  const uint64_t key = PairKey(a, b);
  for (;;) {
    const PairSlot& e = pairs_[h];
    if (e.key == key) return &e;
    if (e.key == 0) return &kAbsent;
    h = (h + 1) & pair_mask_;
  }
}

size_t LtpCwsModel::memory_bytes() const {
  return bmp_ids_.size() * sizeof(uint32_t) + supp_cps_.size() * 2 * sizeof(uint32_t) +
         uni_w_.size() * sizeof(double) + uni_mask_.size() + pairs_.size() * sizeof(PairSlot) +
         pair_storage_.size() * sizeof(double) + sizeof(*this);
}

// ---------------------------------------------------------------------------------------------
// Segmentation

class LtpCwsModel::Worker {
 public:
  explicit Worker(const LtpCwsModel& m) : m_(m) {}

  // Segments one row (bytes [p, p + n)) and appends its words to `out`; returns their number.
  int64_t Row(const uint8_t* p, size_t n, int64_t row, CwsOutput output, PodVector<int32_t>* starts,
              PodVector<int32_t>* ends) {
    if (n >= static_cast<size_t>(INT32_MAX)) {  // offsets are int32 (WordSpans)
      throw std::invalid_argument("row " + std::to_string(row) + " has " + std::to_string(n) +
                                  " bytes, more than the 2^31 - 1 a row may have");
    }
    Grow(n);
    // 1. decode; keep every code point (for the spans) and the non-whitespace ones (LTP's input)
    int32_t n_all = 0, n_cp = 0;
    bool any_space = false;
    const uint8_t* const begin = p;
    const uint8_t* const end = p + n;
    while (p < end) {
      uint32_t c;
      const int k = DecodeUtf8(p, end, &c);
      if (k == 0) {
        throw std::invalid_argument("row " + std::to_string(row) + ": invalid UTF-8 at byte " +
                                    std::to_string(p - begin) + " of the row");
      }
      p += k;
      all_[n_all] = c;
      const bool py_space = IsPySpace(c);
      any_space |= py_space;
      if (!py_space || !IsLtpSpace(c)) {
        pos_[n_cp] = n_all;
        cp_[n_cp] = c;
        ++n_cp;
      }
      ++n_all;
    }
    if (n_cp > 0) Decode(n_cp);
    // 3. words. Without whitespace in the row, the spans are LTP's words.
    int64_t n_words = 0;
    if (output == CwsOutput::kLtpWords || !any_space) {
      for (int32_t j = 0; j < n_cp; ++j) {
        if (!StartsWord(j)) continue;
        if (n_words > 0) ends->push_back(pos_[j]);
        starts->push_back(pos_[j]);
        ++n_words;
      }
      if (n_words > 0) ends->push_back(n_all);
      return n_words;
    }
    // Spans: maximal runs of non-whitespace (str.isspace) characters, cut at every LTP word
    // start. Cuts at whitespace do nothing; the first character of a run starts a word anyway.
    int32_t next = 0;  // next non-whitespace (LTP) character
    bool open = false;
    int32_t run = 0;
    for (int32_t k = 0; k < n_all; ++k) {
      bool cut = false;
      if (next < n_cp && pos_[next] == k) {
        cut = StartsWord(next);
        ++next;
      }
      if (IsPySpace(all_[k])) {
        if (open) {
          starts->push_back(run);
          ends->push_back(k);
          ++n_words;
          open = false;
        }
      } else if (!open) {
        open = true;
        run = k;
      } else if (cut) {
        starts->push_back(run);
        ends->push_back(k);
        ++n_words;
        run = k;
      }
    }
    if (open) {
      starts->push_back(run);
      ends->push_back(n_all);
      ++n_words;
    }
    return n_words;
  }

 private:
  // LTP's chunking of S/B/M/E labels (get_entities with one entity type): a word starts at the
  // first character, at a B or S label, and after an S or E label.
  bool StartsWord(int32_t j) const {
    if (j == 0) return true;
    const uint8_t l = label_[j], prev = label_[j - 1];
    return l == kS || l == kB || prev == kS || prev == kE;
  }

  void Grow(size_t n) {
    if (all_.size() >= n + 1) return;
    const size_t cap = std::max(n + 1, all_.size() * 2);
    all_.resize(cap);
    pos_.resize(cap);
    cp_.resize(cap);
    ids_.resize(cap);
    types_.resize(cap);
    urow_.resize(cap);
    umask_.resize(cap);
    prow_.resize(cap);
    home_.resize(cap);
    pmask_.resize(cap);
    emit_.resize(cap * kLabels);
    back_.resize(cap * kLabels);
    label_.resize(cap);
  }

  // Labels of the n non-whitespace characters in cp_ (n >= 1): features, scores, Viterbi.
  void Decode(int32_t n) {
    const LtpCwsModel& m = m_;
    for (int32_t j = 0; j < n; ++j) {
      const uint32_t id = m.CharId(cp_[j]);
      ids_[j] = id;
      urow_[j] = &m.uni_w_[static_cast<size_t>(id) * 20];
      umask_[j] = m.uni_mask_[id];
      types_[j] = CharType(cp_[j]);
    }
    // The pair lookups are memory-bound (the slots and rows of a full model are tens of MB):
    // first prefetch every pair's home slot, then probe and prefetch the rows found, so that
    // the misses of a sentence overlap instead of queuing one after another.
    for (int32_t j = 0; j + 1 < n; ++j) {
      const uint64_t key = PairKey(ids_[j], ids_[j + 1]);
      const size_t h = SlotOf(key, m.pair_shift_);
      home_[j] = h;
      __builtin_prefetch(&m.pairs_[h]);
    }
    for (int32_t j = 0; j + 1 < n; ++j) {
      const PairSlot* e = m.FindPairFrom(ids_[j], ids_[j + 1], home_[j]);
      pmask_[j] = static_cast<uint8_t>(e->mask);
      if (e->mask) {
        const double* row = m.pair_w_ + static_cast<size_t>(e->row) * 16;
        __builtin_prefetch(row);
        __builtin_prefetch(row + 8);
        prow_[j] = row;
      } else {
        prow_[j] = kZeroRow;
      }
    }

    // Emission scores. The features of character j, in LTP's order (CWSDefinition::
    // parse_char_features_with_buffer, near-char-type build): ch[0]; if ch[-1]: ch[-1],
    // ch[-1]ch[0], TYPE(ch[-1])TYPE(ch[0]), and if ch[-2]: ch[-2], ch[-2]ch[-1]; then
    // "ch[-2] == ch[0]"; if ch[+1]: ch[+1], ch[0]ch[+1]; if ch[+2]: ch[+2], ch[+1]ch[+2].
    // LTP marks "no character" with U+0000, so a real U+0000 at -1 or -2 counts as absent,
    // and with no ch[-2], "ch[-2] == ch[0]" holds for ch[0] = U+0000. The sums run in this
    // order from 0.0, skipping the features the model lacks, as LTP's score_base does, so
    // every score is bit-identical to LTP's.
    for (int32_t j = 0; j < n; ++j) {
      double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
      auto add = [&](const double* v) {
        s0 += v[0];
        s1 += v[1];
        s2 += v[2];
        s3 += v[3];
      };
      const uint32_t cur = cp_[j];
      const uint32_t pre = j >= 1 ? cp_[j - 1] : 0;
      const uint32_t pre2 = j >= 2 ? cp_[j - 2] : 0;
      if (umask_[j] & 4) add(urow_[j] + 8);  // "2" ch[0]
      if (pre != 0) {
        if (umask_[j - 1] & 2) add(urow_[j - 1] + 4);  // "1" ch[-1]
        if (pmask_[j - 1] & 2) add(prow_[j - 1] + 4);  // "6" ch[-1]ch[0]
        const uint8_t ta = types_[j - 1], tb = types_[j];
        if (m.type_has_[ta][tb]) add(m.type_w_[ta][tb]);  // "d" TYPE(ch[-1])TYPE(ch[0])
        if (pre2 != 0) {
          if (umask_[j - 2] & 1) add(urow_[j - 2]);      // "0" ch[-2]
          if (pmask_[j - 2] & 1) add(prow_[j - 2]);      // "5" ch[-2]ch[-1]
        }
        if (pre2 == cur && m.has_same_) add(m.same_w_);  // "c"
      }
      if (j + 1 < n) {
        if (umask_[j + 1] & 8) add(urow_[j + 1] + 12);  // "3" ch[+1]
        if (pmask_[j] & 4) add(prow_[j] + 8);           // "7" ch[0]ch[+1]
      }
      if (j + 2 < n) {
        if (umask_[j + 2] & 16) add(urow_[j + 2] + 16);  // "4" ch[+2]
        if (pmask_[j + 1] & 8) add(prow_[j + 1] + 12);   // "8" ch[+1]ch[+2]
      }
      double* e = &emit_[static_cast<size_t>(j) * kLabels];
      e[0] = s0;
      e[1] = s1;
      e[2] = s2;
      e[3] = s3;
    }

    // Viterbi, exactly as LTP's Perceptron::viterbi_decode: score = (last + emission) +
    // transition, a strictly greater score replaces the best (ties keep the lower previous
    // label), and a label whose every score fails that test keeps back pointer 0 and the
    // stale score of its buffer (two buffers swapped per step, the second starting at 0).
    double buf_a[kLabels], buf_b[kLabels] = {0.0, 0.0, 0.0, 0.0};
    double* last = buf_a;
    double* now = buf_b;
    for (int l = 0; l < kLabels; ++l) {
      last[l] = emit_[l];
      back_[l] = static_cast<uint8_t>(l);
    }
    for (int32_t j = 1; j < n; ++j) {
      const double* e = &emit_[static_cast<size_t>(j) * kLabels];
      uint8_t* bk = &back_[static_cast<size_t>(j) * kLabels];
      for (int l = 0; l < kLabels; ++l) {
        double best = -DBL_MAX;
        double kept = now[l];
        uint8_t arg = 0;
        const double emission = e[l];
        for (int q = 0; q < kLabels; ++q) {  // branch-free: the argmax is data-dependent
          const double score = last[q] + emission + m.trans_[q * kLabels + l];
          const bool greater = score > best;
          best = greater ? score : best;
          kept = greater ? score : kept;
          arg = greater ? static_cast<uint8_t>(q) : arg;
        }
        now[l] = kept;
        bk[l] = arg;
      }
      std::swap(last, now);
    }
    // The best final label: Iterator::max_by semantics (a later label wins unless the kept one
    // is strictly greater; NaN compares as equal).
    int best = 0;
    for (int l = 1; l < kLabels; ++l) {
      if (!(last[best] > last[l])) best = l;
    }
    for (int32_t j = n - 1; j >= 0; --j) {
      label_[j] = static_cast<uint8_t>(best);
      best = back_[static_cast<size_t>(j) * kLabels + best];
    }
  }

  const LtpCwsModel& m_;
  std::vector<uint32_t> all_;   // code points of the row
  std::vector<int32_t> pos_;    // code point index of each non-whitespace character
  std::vector<uint32_t> cp_;    // the non-whitespace characters
  std::vector<uint32_t> ids_;   // their model char ids
  std::vector<uint8_t> types_;  // their CharType
  std::vector<const double*> urow_;  // their unigram weight rows
  std::vector<uint8_t> umask_;       // and which of the 5 exist
  std::vector<const double*> prow_;  // bigram weight rows of the pair (j, j + 1)
  std::vector<uint8_t> pmask_;       // and which of the 4 exist
  std::vector<size_t> home_;         // home slot of the pair (j, j + 1) in the pair hash
  std::vector<double> emit_;    // [n][4]
  std::vector<uint8_t> back_;   // [n][4] Viterbi back pointers
  std::vector<uint8_t> label_;  // [n]
};

CwsResult LtpCwsModel::Segment(const char* text, int64_t size, const int64_t* row_splits,
                               int64_t n_rows, bool splits_in_chars, CwsOutput output,
                               int num_threads) const {
  if (n_rows < 0 || size < 0) throw std::invalid_argument("negative text size or row count");
  const uint8_t* data = reinterpret_cast<const uint8_t*>(text);
  // Row offsets in bytes.
  std::vector<int64_t> splits(static_cast<size_t>(n_rows) + 1);
  if (row_splits[0] != 0) {
    throw std::invalid_argument("row_splits must start at 0, got " +
                                std::to_string(row_splits[0]));
  }
  for (int64_t i = 0; i < n_rows; ++i) {
    if (row_splits[i + 1] < row_splits[i]) {
      throw std::invalid_argument("row_splits must be non-decreasing (row " + std::to_string(i) +
                                  ")");
    }
  }
  if (!splits_in_chars) {
    if (row_splits[n_rows] != size) {
      throw std::invalid_argument("row_splits must end at the text size " + std::to_string(size) +
                                  ", got " + std::to_string(row_splits[n_rows]));
    }
    std::copy(row_splits, row_splits + n_rows + 1, splits.begin());
  } else {
    // Code points -> bytes: count UTF-8 lead bytes (each row is decoded strictly later, so
    // invalid UTF-8 cannot slip through a misplaced boundary).
    int64_t b = 0, chars = 0;
    splits[0] = 0;
    for (int64_t i = 0; i < n_rows; ++i) {
      const int64_t target = row_splits[i + 1];
      while (chars < target && b < size) {
        ++b;
        while (b < size && (data[b] & 0xC0) == 0x80) ++b;
        ++chars;
      }
      if (chars != target) {
        throw std::invalid_argument("row_splits end at " + std::to_string(row_splits[n_rows]) +
                                    " code points but the text has fewer");
      }
      splits[static_cast<size_t>(i) + 1] = b;
    }
    if (b != size) {
      throw std::invalid_argument("row_splits end at " + std::to_string(row_splits[n_rows]) +
                                  " code points but the text has more");
    }
  }

  // Byte-balanced contiguous row ranges, one per thread (the package's thread policy, then no
  // more threads than 64 KB pieces of text or rows).
  int threads = ResolveNumThreads(num_threads);
  const int64_t by_size = std::max<int64_t>(1, size / (64 << 10));
  threads = static_cast<int>(std::min<int64_t>({threads, by_size, std::max<int64_t>(n_rows, 1)}));
  std::vector<int64_t> first(static_cast<size_t>(threads) + 1);
  first[0] = 0;
  for (int t = 1; t < threads; ++t) {
    const int64_t target = size / threads * t;
    first[t] = std::lower_bound(splits.begin(), splits.end() - 1, target) - splits.begin();
    first[t] = std::max(first[t], first[t - 1]);
  }
  first[threads] = n_rows;

  std::vector<CwsResult> parts(static_cast<size_t>(threads));
  ParallelFor(threads, [&](int t) {
    Worker worker(*this);
    CwsResult& part = parts[static_cast<size_t>(t)];
    const int64_t r0 = first[t], r1 = first[t + 1];
    const int64_t bytes = splits[r1] - splits[r0];
    part.starts.reserve(static_cast<size_t>(bytes / 4 + 16));
    part.ends.reserve(static_cast<size_t>(bytes / 4 + 16));
    part.row_splits.reserve(static_cast<size_t>(r1 - r0 + 1));
    int64_t total = 0;
    for (int64_t r = r0; r < r1; ++r) {
      total += worker.Row(data + splits[r], static_cast<size_t>(splits[r + 1] - splits[r]), r,
                          output, &part.starts, &part.ends);
      part.row_splits.push_back(total);
    }
  });

  CwsResult out;
  if (threads == 1) {
    out.starts = std::move(parts[0].starts);
    out.ends = std::move(parts[0].ends);
    out.row_splits.reserve(static_cast<size_t>(n_rows) + 1);
    out.row_splits.push_back(0);
    for (size_t i = 0; i < parts[0].row_splits.size(); ++i) {
      out.row_splits.push_back(parts[0].row_splits[i]);
    }
    return out;
  }
  size_t n_words = 0;
  for (const CwsResult& p : parts) n_words += p.starts.size();
  out.starts.resize_uninitialized(n_words);
  out.ends.resize_uninitialized(n_words);
  out.row_splits.reserve(static_cast<size_t>(n_rows) + 1);
  out.row_splits.push_back(0);
  size_t at = 0;
  for (CwsResult& p : parts) {
    const size_t k = p.starts.size();
    if (k) {
      std::memcpy(out.starts.data() + at, p.starts.data(), k * sizeof(int32_t));
      std::memcpy(out.ends.data() + at, p.ends.data(), k * sizeof(int32_t));
    }
    for (size_t i = 0; i < p.row_splits.size(); ++i) {
      out.row_splits.push_back(static_cast<int64_t>(at) + p.row_splits[i]);
    }
    at += k;
  }
  return out;
}

}  // namespace wwm
