// Model Garden compat: the masked-LM sampling of TF Model Garden's create_pretraining_data.py
// (tensorflow/models, official/nlp/data), and v2 feature names for its records.
//
// Purpose: compat mode with reference "garden". Model Garden builds instances exactly as Google's
//   script does (documents, chunking, random next, truncation, one random.Random for all of it,
//   the final shuffle): BuildGarden runs BuildCompat for that and replaces only the masking:
//   * units ("grams") are whole words -- a token joins the previous one when it continues a word
//     ("##" pieces, or HFL-marked characters of a segmenter word) -- or single tokens without
//     whole word masking. A gram never crosses [CLS]/[SEP]: a continuation right after [SEP]
//     starts a gram of its own (Google's grouping lets it join the last word of segment A).
//   * candidates: every run of n = 1..max_ngram_size contiguous grams inside one segment, one
//     list per n, each list shuffled with the instance generator (n = 1, 2, ... in turn).
//   * until num_to_predict tokens are chosen or no candidate is left: a size n is drawn with
//     weights 1/n by random.choices of Python's *global* random module (a second MT19937,
//     `global_rng` here; Model Garden never seeds it). A size that would overflow
//     num_to_predict loses all its candidates; otherwise the last candidate of that size is
//     popped and kept unless it overflows or overlaps an earlier choice.
//   * the 80/10/10 replacement is decided once per chosen n-gram with the instance generator
//     ([MASK] for all its tokens; keep all; or a random vocab entry drawn per token).
// Example: [CLS] 中 ##国 人 [SEP] 好 [SEP] with whole words and max_ngram_size 2: grams {1,2} {3}
//   {5}; 1-gram candidates {1,2} {3} {5}, 2-gram candidates {1,2,3} ({3} and {5} are separated
//   by [SEP]); 15% of 7 -> 1 prediction, so only a 1-token gram ({3} or {5}) can be chosen.
// Args: token arrays are borrowed; predictions are appended to caller-owned Predictions; the
//   scratch is reused across instances.
// Complexity: O(max_ngram_size * L) per instance of L tokens.
// Equivalent to: create_masked_lm_predictions(tokens, masked_lm_prob, max_predictions_per_seq,
//   vocab_words, rng, do_whole_word_mask, max_ngram_size) of Model Garden, with the global
//   random module seeded by random.seed(global_seed).
#ifndef WWM_FAST_CSRC_GARDEN_H_
#define WWM_FAST_CSRC_GARDEN_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "instances.h"
#include "masking.h"
#include "pod_vector.h"
#include "random.h"

namespace wwm {

struct GardenMaskConfig {
  MaskConfig mask;      // max_predictions, masked_lm_prob, [MASK] id, random-replacement table
  int max_ngram_size;   // >= 1
};

// Most n-gram candidates one instance may have (max_ngram_size x instance length): Model Garden
// lists and shuffles every candidate of every size, so this bounds the memory (8 bytes each)
// and the generator draws of one instance. Every max_ngram_size up to max_seq_length - 3 passes
// for max_seq_length <= 4096; at 2^20 tokens, up to 16.
constexpr int64_t kMaxNgramWork = int64_t{1} << 24;

// Throws std::invalid_argument naming the bad value: the masking configuration (CheckMaskConfig),
// max_ngram_size outside [1, kMaxSeqLength], or max_ngram_size * max_length > kMaxNgramWork
// (max_length: the longest instance it will mask, in [0, kMaxSeqLength]).
void CheckGardenConfig(const GardenMaskConfig& cfg, int64_t max_length);

// Per-instance working memory, reused (no allocation once it has grown to the longest instance).
struct GardenScratch {
  std::vector<int32_t> gram_begin, gram_end;  // the 1-grams, [begin, end) token positions
  // candidates of size n: ngram_begin/end[n - 1], in Model Garden's list order (popped at the back)
  std::vector<std::vector<int32_t>> ngram_begin, ngram_end;
  std::vector<double> cum_weights;  // itertools.accumulate(1/n for n in 1..N)
  std::vector<uint8_t> masked;      // per position: already chosen
  std::vector<int32_t> chosen_begin, chosen_end;  // chosen n-grams in the order they were drawn
  std::vector<int32_t> shown;       // per position: the id shown (where `masked`)
};

// Model Garden's create_masked_lm_predictions on one instance. joins[i] = 1 when token i
// continues the word of token i - 1 (only read with whole words; ignored on [CLS]/[SEP]);
// special[i] = 1 on [CLS]/[SEP]. rng is the instance generator (random.Random(random_seed)),
// global_rng the global random module's. Any int32 ids pass through. Appends the predictions
// sorted by position; returns their number.
// Preconditions (the callers check them once, not per instance): length in [0, kMaxSeqLength] and
// CheckGardenConfig(cfg, L) passed for some L >= length.
int GardenMaskInstance(const int32_t* tokens, const uint8_t* special, const uint8_t* joins,
                       int length, bool whole_word, const GardenMaskConfig& cfg, PyRandom& rng,
                       PyRandom& global_rng, GardenScratch* s, Predictions* out);

// Model Garden's create_training_instances: Google's instances (BuildCompat) with Model Garden's
// masking. seed_key / global_seed_key: the 32-bit words of abs(random_seed) and of the global
// random module's seed. Throws std::invalid_argument on an invalid configuration (ValidateConfig,
// CheckGardenConfig, max_ngram_size > max_seq_length - 3, n-grams without whole words) or corpus
// (CheckCorpus), before any work.
void BuildGarden(const Corpus& corpus, const BuildConfig& cfg,
                 const std::vector<uint32_t>& seed_key,
                 const std::vector<uint32_t>& global_seed_key, int max_ngram_size,
                 InstanceSet* out);

// Framed TFRecords of tf.train.Example with some feature names replaced (e.g. input_ids ->
// input_word_ids): every record of in[0, n) is re-encoded with the new keys and framed again with
// fresh CRCs; everything else is copied byte for byte. Nothing in the input is trusted: both CRCs
// of every record are checked, every length is checked against the bytes left in its enclosing
// field before it is used, and a varint longer than 10 bytes is an error. Throws
// std::invalid_argument naming the record on a truncated or corrupt record, a malformed Example,
// or a record where renaming would merge two different features into one name (it has both
// input_ids and input_word_ids, say: protobuf would silently keep only the last).
// Complexity: O(n + total length of the renamed keys).
void RenameFeatures(const uint8_t* in, size_t n,
                    const std::vector<std::pair<std::string, std::string>>& renames,
                    PodVector<uint8_t>* out);

}  // namespace wwm

#endif  // WWM_FAST_CSRC_GARDEN_H_
