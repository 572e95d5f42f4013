// LTP legacy word segmentation (CWS) inference: LTP's averaged-perceptron model, run natively.
//
// Purpose: the same words as ltp-extension's CWSModel.batch_predict (LTP's Rust CWSDefinition +
//   Perceptron, ltp-extension 0.1.13, built with its default `near-char-type` feature), without
//   building a feature string per template and character. For every non-whitespace character
//   (whitespace = Rust's char::is_whitespace, Unicode White_Space) LTP scores the four labels
//   S B M E from up to 12 features: the characters at -2..+2, the bigrams (-2,-1) (-1,0) (0,1)
//   (1,2), the Unicode class pair (-1,0) (digit, Latin, hiragana, katakana, kanji, other) and
//   "ch[-2] == ch[0]"; Viterbi decoding with the 4x4 transition weights picks the labels, and a
//   word starts at a B or S label or after an S or E label.
//   Here each feature is found without strings: the model's feature table is parsed once, at
//   load, into one weight row per character (its five unigram features, 20 doubles), a flat
//   open-addressing hash over character pairs pointing at one 64-byte-aligned row per pair
//   (its four bigram features, 16 doubles) and two small tables; a sentence then costs one
//   pair lookup per character, the lookups of a sentence prefetched together. The weights are
//   summed in LTP's feature order, in double precision, so the scores -- and every tie -- are
//   LTP's.
// Example: "他叫汤姆去拿外衣。" -> 他 / 叫 / 汤姆 / 去 / 拿 / 外衣 / 。 (with a People's Daily model).
// Args: a model (LtpCwsModel, immutable, shared by every thread) built from the decoded Avro
//   record of an LTP model file (FromAvroBlock) or from flat arrays (FromArrays); both copy what
//   they need and validate everything (a bad model is std::invalid_argument, never a crash).
//   Segment() borrows `text` (UTF-8, all rows back to back) and `row_splits` (n_rows + 1
//   offsets, in bytes or in code points) for the duration of the call and returns owned arrays.
//   Offsets are code points into the row, start inclusive, end exclusive.
// Output: per row, the words as spans, either
//   * kSpans: wwm_fast's WordSpans contract: the maximal runs of non-whitespace characters
//     (Python's str.isspace) that cross no LTP word start -- what Segmenter.segment_batch
//     returns from LTP's words; or
//   * kLtpWords: LTP's own words: each from its first character to the next word's first
//     character (or the end of the row), so it carries the whitespace LTP glues onto it;
//     leading whitespace belongs to no word, as in LTP.
// Complexity: O(bytes) time per row (up to 12 weight vectors summed per character); memory
//   O(longest row) per thread; the model takes about 170 bytes per character pair and 160 per
//   character (31 MB for a model trained on People's Daily, 1.9 M parameters). Rows are split
//   over ResolveNumThreads(num_threads) threads at most (parallel.h: <= 0 = every core, capped
//   at kMaxThreads) in byte-balanced contiguous ranges; the output does not depend on the
//   number of threads.
// Equivalent to: [ltp_extension.perceptron.CWSModel.load(path).predict(row) for row in rows].
#ifndef WWM_FAST_CSRC_LTP_CWS_H_
#define WWM_FAST_CSRC_LTP_CWS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "pod_vector.h"

namespace wwm {

enum class CwsOutput { kSpans, kLtpWords };

struct CwsResult {
  PodVector<int32_t> starts;      // [n_words]
  PodVector<int32_t> ends;        // [n_words]
  PodVector<int64_t> row_splits;  // [n_rows + 1]
};

class LtpCwsModel {
 public:
  // The model from LTP's feature table: feature i is the UTF-8 string
  // keys[key_offsets[i], key_offsets[i + 1]) with index indices[i]; its weight for label l
  // (S B M E) is params[4 * indices[i] + l]; params[0..16) are the transition weights
  // (params[4 * previous + current]). A key repeated later replaces the earlier one (as LTP's
  // map does). Throws std::invalid_argument on an index outside params, a key that is not UTF-8,
  // fewer than 16 parameters, or a model too large for 32-bit offsets.
  static std::unique_ptr<LtpCwsModel> FromArrays(const char* keys, int64_t keys_size,
                                                 const int64_t* key_offsets, int64_t n_features,
                                                 const int64_t* indices, const double* params,
                                                 int64_t n_params);

  // The model from one Avro block of an LTP model file (already inflated): `count` datums of
  // LTP's "cws" record {definition: {}, features: map<long>, parameters: array<double>}
  // back to back, exactly filling `size` bytes; the last datum is the model (as LTP reads it).
  // Throws std::invalid_argument naming what is malformed. With build = false the records are
  // only decoded (an earlier block of the file: LTP decodes it and keeps the last) and the
  // result is null.
  static std::unique_ptr<LtpCwsModel> FromAvroBlock(const uint8_t* data, size_t size,
                                                    int64_t count, bool build = true);

  // Segments n_rows rows; row i is text[row_splits[i], row_splits[i + 1]) (bytes), or the
  // code points from row_splits[i] to row_splits[i + 1] when splits_in_chars. Throws
  // std::invalid_argument for bad splits and for invalid UTF-8 (naming the row and byte).
  CwsResult Segment(const char* text, int64_t size, const int64_t* row_splits, int64_t n_rows,
                    bool splits_in_chars, CwsOutput output, int num_threads) const;

  int64_t num_features() const { return num_features_; }
  int64_t num_parameters() const { return num_params_; }
  int64_t num_chars() const { return static_cast<int64_t>(uni_mask_.size()) - 1; }
  int64_t num_pairs() const { return num_pairs_; }
  size_t memory_bytes() const;

  LtpCwsModel(const LtpCwsModel&) = delete;  // pair_w_ points into pair_storage_
  LtpCwsModel& operator=(const LtpCwsModel&) = delete;

 private:
  LtpCwsModel() = default;
  class Worker;
  // A slot of the hash over character pairs.
  struct PairSlot {
    uint64_t key;   // (first char id << 32) | second char id; 0 = empty slot
    uint32_t row;   // its weights: pair_w_[16 * row, 16 * row + 16)
    uint32_t mask;  // bit t: template "5" + t is in the model
  };

  uint32_t CharId(uint32_t cp) const {
    if (cp < 0x10000) return bmp_ids_[cp];
    return SupplementaryId(cp);
  }
  uint32_t SupplementaryId(uint32_t cp) const;
  // The slot of the pair (a, b), probing from slot h (its home slot); an empty slot if absent.
  const PairSlot* FindPairFrom(uint32_t a, uint32_t b, size_t h) const;

  // The weights are copied out of LTP's parameter array into rows, so that one character (or
  // one pair) finds all its features' weights in one or two cache lines; a mask says which
  // features exist (an absent one adds nothing, as in LTP).
  double trans_[16];                      // params[4 * previous + current]
  std::vector<uint32_t> bmp_ids_;         // [65536] char id of each BMP code point, 0 = unknown
  std::vector<uint32_t> supp_cps_;        // sorted supplementary code points of the model
  std::vector<uint32_t> supp_ids_;        // their char ids
  std::vector<double> uni_w_;             // [num chars + 1][5 templates][4 labels]
  std::vector<uint8_t> uni_mask_;         // [num chars + 1]: bit t = template "0" + t; row 0: 0
  std::vector<PairSlot> pairs_;           // open addressing, power-of-two size, load <= 1/2
  std::vector<double> pair_storage_;      // [num pairs][4 templates][4 labels] + alignment
  const double* pair_w_ = nullptr;        // 64-byte aligned start inside pair_storage_
  uint64_t pair_mask_ = 0;
  int pair_shift_ = 64;
  int64_t num_pairs_ = 0;
  double type_w_[7][7][4];                // "d<a><b>": Unicode classes of ch[-1], ch[0]
  bool type_has_[7][7];
  double same_w_[4];                      // "c": ch[-2] == ch[0]
  bool has_same_ = false;
  int64_t num_features_ = 0;
  int64_t num_params_ = 0;
};

}  // namespace wwm

#endif  // WWM_FAST_CSRC_LTP_CWS_H_
