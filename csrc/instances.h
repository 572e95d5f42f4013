// Pre-training instances from documents: segment pairs, next-sentence labels, truncation.
//
// Purpose: turn documents (sentences of token ids) into BERT instances
//   [CLS] A [SEP] B [SEP], as Google's create_instances_from_document does, and describe each one
//   by token ranges of the corpus arrays instead of copying tokens (an instance is A = ids[a_start,
//   a_start + a_len) and B = ids[b_start, b_start + b_len); both are contiguous because A and B are
//   runs of consecutive sentences trimmed at either end).
// Two builders:
//   BuildCompat -- Google's create_training_instances bit for bit: one CPython MT19937 for
//     everything (shuffle documents, per document/pass the chunking, random next with up to 10
//     retries, truncation, masking through MaskInstance, and the final shuffle of instances).
//   BuildFast   -- the same distributions with a counter RNG keyed by (seed, shard, document,
//     pass): documents are not shuffled, a random next comes from another document of the shard,
//     instances are written in a shuffled order within the shard (ShuffledOrder). Masking is a
//     separate, vectorised stage (SampleMasks in masking.h) keyed by each instance's key. Output is independent of threads,
//     workers and machines. With next_sentence = false it builds single-segment instances
//     [CLS] A [SEP] from consecutive sentences (RoBERTa-style, no NSP; label 0).
// Example: a document of sentences of 40, 50 and 60 tokens at max_seq_length 128 gives one
//   instance with A = the first 1 or 2 sentences and B = the rest, or a random B from elsewhere.
// Args: every pointer is borrowed for the duration of the call; outputs are appended to
//   caller-owned PodVectors.
// Complexity: O(tokens * dupe_factor) plus O(instances) for the shuffles.
#ifndef WWM_FAST_CSRC_INSTANCES_H_
#define WWM_FAST_CSRC_INSTANCES_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "corpus.h"
#include "masking.h"
#include "pod_vector.h"

namespace wwm {

struct InstanceSet {
  PodVector<int64_t> a_start, b_start;
  PodVector<int32_t> a_len, b_len;
  PodVector<uint8_t> next_label;  // 1 = B is a random next, 0 = actual next (or no B)
  PodVector<uint64_t> key;        // fast mode: the instance's RNG key for the sampler
  PodVector<int64_t> pred_splits;  // compat mode fills the predictions directly
  Predictions preds;

  InstanceView View() const {
    return InstanceView{a_start.data(), a_len.data(), b_start.data(), b_len.data(),
                        next_label.data(), key.data(), pred_splits.data(),
                        preds.positions.data(), preds.input_ids.data(), preds.labels.data(),
                        static_cast<int64_t>(a_start.size()),
                        static_cast<int64_t>(preds.positions.size())};
  }
};

struct BuildConfig {
  int max_seq_length;
  int max_predictions;
  double masked_lm_prob;
  double short_seq_prob;
  int dupe_factor;
  bool whole_word;     // group tokens by word_start (else every token is its own group)
  bool next_sentence;  // false: single-segment instances (fast mode only)
  int32_t cls_id, sep_id, mask_id;
  const int32_t* rand_ids;
  int64_t rand_size;
};

// The tokens of one instance with their masking flags, in reusable buffers.
struct InstanceTokens {
  std::vector<int32_t> ids;
  std::vector<uint8_t> special;  // [CLS] / [SEP]
  std::vector<uint8_t> joins;    // joins the previous candidate group ("##" semantics)
};

// [CLS] A [SEP] (B [SEP]); joins[i] = whole_word && !word_start. segment_start_breaks clears
// joins at the first token of A and of B, so a word cut by truncation and B's first token never
// join across [SEP] (fast mode); compat mode keeps Google's behaviour.
inline void FillInstanceTokens(const Corpus& c, int64_t a_start, int32_t a_len, int64_t b_start,
                               int32_t b_len, const BuildConfig& cfg, bool segment_start_breaks,
                               InstanceTokens* t);

// Masks one instance in BuildCompat's place of MaskInstance, drawing from the builder's generator
// at the same point of the call order (Model Garden's masking, csrc/garden.h). Appends the
// instance's predictions (sorted by position) to preds.
using CompatMasker = std::function<void(const InstanceTokens& tokens, PyRandom& rng,
                                        Predictions* preds)>;

// Google's create_training_instances. seed_key = the 32-bit words of abs(random_seed). `masker`
// (optional) replaces Google's create_masked_lm_predictions; the rest of the call order is kept.
// Throws std::invalid_argument on an invalid configuration.
void BuildCompat(const Corpus& corpus, const BuildConfig& cfg,
                 const std::vector<uint32_t>& seed_key, InstanceSet* out,
                 const CompatMasker& masker = nullptr);

// Fast mode, one shard: instances in document order (pass by pass) with their RNG keys;
// predictions left empty. Write them in ShuffledOrder: masking in document order reads the corpus
// sequentially, which is several times faster than in shuffled order.
void BuildFast(const Corpus& corpus, const BuildConfig& cfg, uint64_t seed, uint64_t shard,
               InstanceSet* out);

// The order fast mode writes a shard's n instances in: a permutation keyed by (seed, shard).
void ShuffledOrder(int64_t n, uint64_t seed, uint64_t shard, PodVector<int64_t>* order);

// Checks shared by the builders; throws std::invalid_argument naming the bad value.
void ValidateConfig(const BuildConfig& cfg, bool compat);

inline MaskConfig MaskConfigOf(const BuildConfig& cfg) {
  return MaskConfig{cfg.max_predictions, cfg.masked_lm_prob, cfg.mask_id, cfg.rand_ids,
                    cfg.rand_size};
}

inline void FillInstanceTokens(const Corpus& c, int64_t a_start, int32_t a_len, int64_t b_start,
                               int32_t b_len, const BuildConfig& cfg, bool segment_start_breaks,
                               InstanceTokens* t) {
  const bool pair = b_len > 0;
  const size_t length = static_cast<size_t>(InstanceLength(a_len, b_len));
  t->ids.resize(length);
  t->special.assign(length, 0);
  t->joins.resize(length);
  size_t k = 0;
  auto put_segment = [&](int64_t start, int32_t len) {
    for (int32_t j = 0; j < len; ++j, ++k) {
      t->ids[k] = c.ids[start + j];
      t->joins[k] = cfg.whole_word && !c.word_start[start + j];
    }
  };
  t->ids[k] = cfg.cls_id;
  t->special[k] = 1;
  t->joins[k++] = 0;
  const size_t a_first = k;
  put_segment(a_start, a_len);
  t->ids[k] = cfg.sep_id;
  t->special[k] = 1;
  t->joins[k++] = 0;
  if (pair) {
    const size_t b_first = k;
    put_segment(b_start, b_len);
    t->ids[k] = cfg.sep_id;
    t->special[k] = 1;
    t->joins[k++] = 0;
    if (segment_start_breaks) t->joins[b_first] = 0;
  }
  if (segment_start_breaks && a_len > 0) t->joins[a_first] = 0;
}

}  // namespace wwm

#endif  // WWM_FAST_CSRC_INSTANCES_H_
