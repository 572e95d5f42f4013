#include "garden.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "tfrecord.h"

namespace wwm {
namespace {

// bisect.bisect_right(a, x, 0, hi): the index random.choices picks with cum_weights.
int BisectRight(const std::vector<double>& a, double x, int hi) {
  int lo = 0;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (x < a[mid]) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

}  // namespace

void CheckGardenConfig(const GardenMaskConfig& cfg, int64_t max_length) {
  CheckMaskConfig(cfg.mask);
  if (cfg.max_ngram_size < 1 || cfg.max_ngram_size > kMaxSeqLength) {
    throw std::invalid_argument("max_ngram_size must be in [1, " + std::to_string(kMaxSeqLength) +
                                "], got " + std::to_string(cfg.max_ngram_size));
  }
  if (max_length < 0 || max_length > kMaxSeqLength) {
    throw std::invalid_argument("instances must have at most " + std::to_string(kMaxSeqLength) +
                                " tokens, got " + std::to_string(max_length));
  }
  // both factors are at most 2^20: the product fits an int64
  if (static_cast<int64_t>(cfg.max_ngram_size) * max_length > kMaxNgramWork) {
    throw std::invalid_argument(
        "max_ngram_size * max_seq_length must be at most " + std::to_string(kMaxNgramWork) +
        " (Model Garden lists every n-gram of every size up to max_ngram_size), got " +
        std::to_string(cfg.max_ngram_size) + " * " + std::to_string(max_length));
  }
}

int GardenMaskInstance(const int32_t* tokens, const uint8_t* special, const uint8_t* joins,
                       int length, bool whole_word, const GardenMaskConfig& cfg, PyRandom& rng,
                       PyRandom& global_rng, GardenScratch* s, Predictions* out) {
  const int max_n = cfg.max_ngram_size;
  // _tokens_to_grams (whole words) or one gram per token; [CLS]/[SEP] belong to no gram and end
  // the open one (even if the caller set their joins flag: a special token never joins).
  s->gram_begin.clear();
  s->gram_end.clear();
  int open = -1;
  for (int i = 0; i < length; ++i) {
    if (whole_word && open >= 0 && joins[i] && !special[i]) continue;
    if (open >= 0) {
      s->gram_begin.push_back(open);
      s->gram_end.push_back(i);
    }
    open = special[i] ? -1 : i;
  }
  if (open >= 0) {
    s->gram_begin.push_back(open);
    s->gram_end.push_back(length);
  }
  const int n_grams = static_cast<int>(s->gram_begin.size());
  const int n_predict = NumToPredict(length, cfg.mask);
  if (n_grams == 0) return 0;  // Model Garden fails here; BuildCompat never gives such instances

  // n-gram candidates: windows of n grams whose neighbours touch (no special token between).
  if (static_cast<int>(s->ngram_begin.size()) < max_n) {
    s->ngram_begin.resize(max_n);
    s->ngram_end.resize(max_n);
  }
  int64_t remaining = 0;
  for (int n = 1; n <= max_n; ++n) {
    std::vector<int32_t>& nb = s->ngram_begin[n - 1];
    std::vector<int32_t>& ne = s->ngram_end[n - 1];
    nb.clear();
    ne.clear();
    // run = number of grams ending at g that are pairwise contiguous (a sliding count)
    int run = 0;
    for (int g = 0; g < n_grams; ++g) {
      run = (g > 0 && s->gram_end[g - 1] == s->gram_begin[g]) ? run + 1 : 1;
      if (g + 1 >= n && run >= n) {
        nb.push_back(s->gram_begin[g - n + 1]);
        ne.push_back(s->gram_end[g]);
      }
    }
    // rng.shuffle(list) on the (begin, end) pairs: one permutation applied to both arrays.
    for (size_t i = nb.size(); i-- > 1;) {
      const size_t j = static_cast<size_t>(rng.RandBelow(i + 1));
      std::swap(nb[i], nb[j]);
      std::swap(ne[i], ne[j]);
    }
    remaining += static_cast<int64_t>(nb.size());
  }
  std::vector<double>& cum = s->cum_weights;
  if (static_cast<int>(cum.size()) != max_n) {
    cum.resize(max_n);
    double acc = 0.0;
    for (int n = 1; n <= max_n; ++n) {
      acc = (n == 1) ? 1.0 / n : acc + 1.0 / n;  // itertools.accumulate: left-to-right sums
      cum[n - 1] = acc;
    }
  }
  const double total = cum[max_n - 1] + 0.0;

  s->masked.assign(static_cast<size_t>(length), 0);
  s->chosen_begin.clear();
  s->chosen_end.clear();
  int count = 0;
  while (count < n_predict && remaining > 0) {
    // random.choices(range(1, N + 1), cum_weights=...)[0]: one global random() per draw. With
    // N = 1 the draw cannot change anything, so the global generator is not advanced.
    const int size = max_n == 1 ? 1 : 1 + BisectRight(cum, global_rng.Random() * total, max_n - 1);
    std::vector<int32_t>& nb = s->ngram_begin[size - 1];
    std::vector<int32_t>& ne = s->ngram_end[size - 1];
    if (count + size > n_predict) {  // every n-gram of this size has at least `size` tokens
      remaining -= static_cast<int64_t>(nb.size());
      nb.clear();
      ne.clear();
      continue;
    }
    if (nb.empty()) continue;
    const int b = nb.back(), e = ne.back();
    nb.pop_back();
    ne.pop_back();
    --remaining;
    if (count + (e - b) > n_predict) continue;
    bool overlaps = false;
    for (int k = b; k < e && !overlaps; ++k) overlaps = s->masked[k] != 0;
    if (overlaps) continue;
    for (int k = b; k < e; ++k) s->masked[k] = 1;
    count += e - b;
    s->chosen_begin.push_back(b);
    s->chosen_end.push_back(e);
  }

  // Replacement, decided once per n-gram, n-grams in the order they were chosen. s->masked
  // marks the chosen positions (not a sentinel in `shown`: any int32 id is passed through).
  if (s->shown.size() < static_cast<size_t>(length)) s->shown.resize(length);
  int32_t* shown = s->shown.data();
  const MaskConfig& m = cfg.mask;
  for (size_t g = 0; g < s->chosen_begin.size(); ++g) {
    const int b = s->chosen_begin[g], e = s->chosen_end[g];
    int action;  // 0 = [MASK], 1 = keep, 2 = random token per position
    if (rng.Random() < 0.8) {
      action = 0;
    } else if (rng.Random() < 0.5) {
      action = 1;
    } else {
      action = 2;
    }
    for (int k = b; k < e; ++k) {
      if (action == 0) {
        shown[k] = m.mask_id;
      } else if (action == 1) {
        shown[k] = tokens[k];
      } else {
        shown[k] = m.rand_ids[rng.RandBelow(static_cast<uint64_t>(m.rand_size))];  // rng.choice
      }
    }
    if (!out->group_hist.empty()) ++out->group_hist[std::min(e - b, kWordSizeHistLen - 1)];
  }
  for (int pos = 0; pos < length; ++pos) {
    if (!s->masked[pos]) continue;
    out->positions.push_back(pos);
    out->input_ids.push_back(shown[pos]);
    out->labels.push_back(tokens[pos]);
  }
  return count;
}

void BuildGarden(const Corpus& corpus, const BuildConfig& cfg,
                 const std::vector<uint32_t>& seed_key,
                 const std::vector<uint32_t>& global_seed_key, int max_ngram_size,
                 InstanceSet* out) {
  ValidateConfig(cfg, true);  // first: max_seq_length is in [5, kMaxSeqLength] below
  if (max_ngram_size < 1 || max_ngram_size > cfg.max_seq_length - 3) {
    throw std::invalid_argument("max_ngram_size must be in [1, max_seq_length - 3 = " +
                                std::to_string(cfg.max_seq_length - 3) + "], got " +
                                std::to_string(max_ngram_size));
  }
  const GardenMaskConfig mask_cfg{MaskConfigOf(cfg), max_ngram_size};
  CheckGardenConfig(mask_cfg, cfg.max_seq_length);  // the n-gram work bound
  if (max_ngram_size > 1 && !cfg.whole_word) {
    throw std::invalid_argument("max_ngram_size > 1 masks n-grams of whole words: it needs "
                                "whole word masking");
  }
  PyRandom global_rng(global_seed_key);
  GardenScratch scratch;
  const bool whole_word = cfg.whole_word;
  const CompatMasker masker = [&](const InstanceTokens& t, PyRandom& rng, Predictions* preds) {
    GardenMaskInstance(t.ids.data(), t.special.data(), t.joins.data(),
                       static_cast<int>(t.ids.size()), whole_word, mask_cfg, rng, global_rng,
                       &scratch, preds);
  };
  BuildCompat(corpus, cfg, seed_key, out, masker);  // checks the corpus (CheckCorpus)
}

// -- feature renaming -----------------------------------------------------------------------------

namespace {

// A protobuf varint at p[*pos], inside [0, end); throws on truncation or more than 10 bytes.
uint64_t ReadVarint(const uint8_t* p, size_t end, size_t* pos, const char* what) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (*pos >= end) throw std::invalid_argument(std::string("truncated varint in ") + what);
    const uint8_t b = p[(*pos)++];
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
  }
  throw std::invalid_argument(std::string("varint longer than 10 bytes in ") + what);
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// A length-delimited payload at p[*pos] (after its tag): returns its [begin, end), checked to
// lie inside [*pos, end) before the position moves.
std::pair<size_t, size_t> ReadBytesField(const uint8_t* p, size_t end, size_t* pos,
                                         const char* what) {
  const uint64_t len = ReadVarint(p, end, pos, what);
  if (len > end - *pos) throw std::invalid_argument(std::string("truncated ") + what);
  const size_t b = *pos;
  *pos += static_cast<size_t>(len);
  return {b, *pos};
}

// Skips the value of a field of wire type `wire` at p[*pos]; throws when it runs past end.
void SkipValue(const uint8_t* p, size_t end, size_t* pos, uint64_t wire, const char* what) {
  switch (wire) {
    case 0:
      ReadVarint(p, end, pos, what);
      return;
    case 1:
    case 5: {
      const size_t width = wire == 1 ? 8 : 4;
      if (end - *pos < width) throw std::invalid_argument(std::string("truncated ") + what);
      *pos += width;
      return;
    }
    case 2:
      ReadBytesField(p, end, pos, what);
      return;
    default:
      throw std::invalid_argument(std::string("unsupported wire type ") + std::to_string(wire) +
                                  " in " + what);
  }
}

// The name a key has after renaming; *involved = whether renaming can make it collide (it is
// renamed, or it is the new name of another key).
const std::string& RenamedKey(const std::string& key,
                              const std::vector<std::pair<std::string, std::string>>& renames,
                              bool* involved) {
  const std::string* name = &key;
  *involved = false;
  for (const auto& [from, to] : renames) {
    if (key == from && name == &key) {
      name = &to;
      *involved = true;
    }
    if (key == to) *involved = true;
  }
  return *name;
}

// Re-encodes one map entry (key, Feature) with its key renamed; *key gets the entry's key as
// protobuf reads it (the last key field; "" without one).
void RenameEntry(const uint8_t* p, size_t b, size_t e,
                 const std::vector<std::pair<std::string, std::string>>& renames,
                 std::string* out, std::string* key) {
  key->clear();
  size_t pos = b;
  while (pos < e) {
    const size_t field_start = pos;
    const uint64_t tag = ReadVarint(p, e, &pos, "feature map entry");
    if (tag == 0x0A) {  // key (field 1, length-delimited)
      const auto [kb, ke] = ReadBytesField(p, e, &pos, "feature name");
      key->assign(reinterpret_cast<const char*>(p + kb), ke - kb);
      bool involved;
      const std::string& name = RenamedKey(*key, renames, &involved);
      out->push_back(0x0A);
      PutVarint(name.size(), out);
      out->append(name);
    } else {
      SkipValue(p, e, &pos, tag & 7, "feature map entry");
      out->append(reinterpret_cast<const char*>(p + field_start), pos - field_start);
    }
  }
}

// Scratch of RenameFeatures, reused record after record.
struct RenameScratch {
  std::string features, entry, key;
  // new name -> the original name of the record's first feature given that name (only names
  // that renaming involves): a second original name for the same new name is a collision
  std::unordered_map<std::string, std::string> named;
};

// One serialized Example p[0, size) re-encoded into *example with its feature names renamed.
void RenameExample(const uint8_t* p, size_t size,
                   const std::vector<std::pair<std::string, std::string>>& renames,
                   RenameScratch* s, std::string* example) {
  // Example { Features features = 1 { map<string, Feature> feature = 1 } }
  example->clear();
  s->named.clear();
  size_t q = 0;
  while (q < size) {
    const size_t field_start = q;
    const uint64_t tag = ReadVarint(p, size, &q, "Example");
    if (tag != 0x0A) {
      SkipValue(p, size, &q, tag & 7, "Example");
      example->append(reinterpret_cast<const char*>(p + field_start), q - field_start);
      continue;
    }
    const auto [fb, fe] = ReadBytesField(p, size, &q, "Features");
    std::string& features = s->features;
    features.clear();
    size_t r = fb;
    while (r < fe) {
      const size_t entry_start = r;
      const uint64_t ftag = ReadVarint(p, fe, &r, "Features");
      if (ftag != 0x0A) {
        SkipValue(p, fe, &r, ftag & 7, "Features");
        features.append(reinterpret_cast<const char*>(p + entry_start), r - entry_start);
        continue;
      }
      const auto [eb, ee] = ReadBytesField(p, fe, &r, "feature map entry");
      s->entry.clear();
      RenameEntry(p, eb, ee, renames, &s->entry, &s->key);
      bool involved;  // a renamed key or a new name: both strings of `renames`, valid UTF-8
      const std::string& name = RenamedKey(s->key, renames, &involved);
      if (involved) {
        const auto [it, fresh] = s->named.emplace(name, s->key);
        if (!fresh && it->second != s->key) {
          throw std::invalid_argument("features '" + it->second + "' and '" + s->key +
                                      "' would both be named '" + name + "'");
        }
      }
      features.push_back(0x0A);
      PutVarint(s->entry.size(), &features);
      features.append(s->entry);
    }
    example->push_back(0x0A);
    PutVarint(features.size(), example);
    example->append(features);
  }
}

}  // namespace

void RenameFeatures(const uint8_t* in, size_t n,
                    const std::vector<std::pair<std::string, std::string>>& renames,
                    PodVector<uint8_t>* out) {
  RenameScratch scratch;
  std::string example;
  size_t pos = 0;
  int64_t record = 0;
  while (pos < n) {
    const std::string where = "record " + std::to_string(record) + " at byte " +
                              std::to_string(pos);
    if (n - pos < 12) throw std::invalid_argument(where + ": truncated length header");
    uint64_t len;
    uint32_t len_crc, data_crc;
    std::memcpy(&len, in + pos, 8);
    std::memcpy(&len_crc, in + pos + 8, 4);
    if (MaskCrc(Crc32c(in + pos, 8)) != len_crc) {
      throw std::invalid_argument(where + ": length CRC mismatch");
    }
    // n - (pos + 12) bytes are left; the length is compared with them, never added to pos first
    if (len > n - pos - 12 || n - pos - 12 - len < 4) {
      throw std::invalid_argument(where + ": truncated (length " + std::to_string(len) + ", " +
                                  std::to_string(n - pos - 12) + " bytes left)");
    }
    const uint8_t* p = in + pos + 12;
    const size_t size = static_cast<size_t>(len);
    std::memcpy(&data_crc, p + size, 4);
    if (MaskCrc(Crc32c(p, size)) != data_crc) {
      throw std::invalid_argument(where + ": data CRC mismatch");
    }
    try {
      RenameExample(p, size, renames, &scratch, &example);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + ": " + e.what());
    }
    FrameRecord(reinterpret_cast<const uint8_t*>(example.data()), example.size(), out);
    pos += 12 + size + 4;
    ++record;
  }
}

}  // namespace wwm
