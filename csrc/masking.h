// Whole-word masked-LM sampling (Google's create_masked_lm_predictions, generalised).
//
// Purpose: choose at most max_predictions tokens of one instance to predict, whole words at a
//   time, and replace each chosen token by [MASK] (80%), itself (10%) or a random vocab entry
//   (10%), decided per token. Words come from a "joins the previous group" flag per token, so the
//   same code serves Google's "##" grouping, the HFL/LTP whole-word grouping and per-token masking.
// Example: tokens [CLS] 我 喜 欢 你 [SEP] with joins 0 0 0 1 0 0 and 15% of 6 -> 1 prediction:
//   the candidate groups are {1} {2,3} {4}; a 2-token group never fits, so one of 我/你 is chosen.
// Algorithm (exactly Google's, in the generator's call order): groups in position order skipping
//   [CLS]/[SEP] (a joining token extends the last group even across [SEP] -- Google's quirk; callers
//   that do not want it clear `joins` at segment starts); shuffle(groups); n = min(max_predictions,
//   max(1, round_half_even(len * masked_lm_prob))); take groups in shuffled order, stop at n, skip a
//   group that would overflow; per chosen token: random() < 0.8 -> [MASK], else random() < 0.5 ->
//   keep, else rand_ids[randbelow(vocab_size)]. Predictions come out sorted by position.
// Args: tokens/special/joins are borrowed arrays of length L; outputs are appended.
// SampleMasks (fast mode, below) applies the same selection to every instance of a shard, reading
//   the groups straight from the corpus ranges of A and B.
// Complexity: O(L) per instance.
// Equivalent to: create_masked_lm_predictions(tokens, ...) of google-research/bert (master).
#ifndef WWM_FAST_CSRC_MASKING_H_
#define WWM_FAST_CSRC_MASKING_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "corpus.h"
#include "pod_vector.h"
#include "random.h"

namespace wwm {

struct MaskConfig {
  int max_predictions;
  double masked_lm_prob;
  int32_t mask_id;
  const int32_t* rand_ids;  // index drawn uniformly -> id ("vocab_words" in Google's order)
  int64_t rand_size;
};

struct Predictions {
  PodVector<int32_t> positions;  // position in the instance
  PodVector<int32_t> input_ids;  // what the model sees there
  PodVector<int32_t> labels;     // the original id
  PodVector<int64_t> group_hist;  // [size] -> number of chosen groups of that size (last = more)
};

// Candidate groups of one instance: group g = members[group_start[g] .. group_start[g + 1]).
struct MaskScratch {
  std::vector<int32_t> members;      // positions, grouped
  std::vector<int32_t> group_start;  // n_groups + 1 entries used
  std::vector<int32_t> order;
  std::vector<int32_t> shown;        // per position: the id shown where chosen
  // per position: 1 while chosen. A flag, not a sentinel id in `shown`: the ids come from the
  // caller (mask_id, rand_ids, the corpus), and a negative one must not drop a prediction that
  // the count (pred_splits) already has.
  std::vector<uint8_t> chosen;
  int n_groups = 0;

  void Reserve(int length) {
    if (members.size() < static_cast<size_t>(length) + 1) {
      members.resize(length + 1);
      group_start.resize(length + 1);
      order.resize(length + 1);
      shown.resize(length + 1);
      chosen.assign(length + 1, 0);
    }
  }
};

// Length of the histogram of masked whole words by size (Predictions::group_hist): sizes 1..15
// exactly, 16 = 16 or more, index 0 unused. Exported to Python as WORD_SIZE_HIST_LEN.
constexpr int kWordSizeHistLen = 17;

// Throws std::invalid_argument naming the bad value (max_predictions not in [1, kMaxSeqLength],
// masked_lm_prob not in (0, 1), an empty or missing rand_ids table). Ids (mask_id, rand_ids, the
// corpus) are not indices here: any int32 passes through (MaskScratch::chosen).
void CheckMaskConfig(const MaskConfig& cfg);

// Fast mode's vectorised sampler.
struct SampleConfig {
  int max_seq_length;  // every instance must fit (CheckInstance)
  bool whole_word;     // group tokens by corpus.word_start (else every token is its own group)
  MaskConfig mask;
};

// The checks every sampler makes before any thread starts (the loops and their prefetches trust
// what passed): the mask configuration, max_seq_length in [2, kMaxSeqLength], the corpus, the
// key array and every instance. Throws std::invalid_argument / std::out_of_range naming the value.
void CheckSampleInput(const Corpus& corpus, const SampleConfig& cfg, const InstanceView& instances);

// Concatenates the position, input id and label arrays of per-thread parts into `out`, in the
// order of `parts`, one array at a time and freeing each part's array once copied (the peak is
// one array's total on top of the parts, not every output twice). group_hist is not touched.
void ConcatPredictionArrays(const std::vector<Predictions*>& parts, Predictions* out);

// Predictions of every instance (keyed by instances.key: the output does not depend on
// num_threads), split over ResolveNumThreads(num_threads) threads. pred_splits gets n + 1
// entries. Checks the configuration, the corpus and every instance first (throws
// std::invalid_argument / std::out_of_range naming the value).
void SampleMasks(const Corpus& corpus, const SampleConfig& cfg, const InstanceView& instances,
                 int num_threads, PodVector<int64_t>* pred_splits, Predictions* preds);

// Python: min(max_predictions, max(1, int(round(length * masked_lm_prob)))), round half to even
// on the double product.
inline int NumToPredict(int length, const MaskConfig& cfg) {
  const double product = static_cast<double>(length) * cfg.masked_lm_prob;
  const int rounded = static_cast<int>(std::nearbyint(product));
  return std::min(cfg.max_predictions, std::max(1, rounded));
}

// The id shown at a chosen position (BERT's choice, per token): Random() < 0.8 -> [MASK], else
// Random() < 0.5 (RandomBelowHalf: the same draw) -> original() (read only then: the samplers'
// token loops stay as lean as when each wrote this out), else rand_ids[RandBelow(rand_size)].
// One to three draws, in that order: the samplers' contract.
template <typename Rng, typename Original>
inline int32_t DrawShownId(Rng& rng, const MaskConfig& cfg, Original original) {
  if (rng.Random() < 0.8) return cfg.mask_id;
  if (rng.RandomBelowHalf()) return original();
  return cfg.rand_ids[rng.RandBelow(static_cast<uint64_t>(cfg.rand_size))];
}

// Chooses groups of s (filled by the caller) and appends the predictions. original(pos) gives
// the id at a position. full_shuffle = true shuffles every group first (Google's call order,
// compat mode); false draws groups one at a time (a lazy Fisher-Yates: the same uniformly random
// order, with only as many draws as groups visited). Returns the number of predictions.
template <typename Rng, typename Original>
int SelectAndMask(int length, const MaskConfig& cfg, bool full_shuffle, Rng& rng, MaskScratch* s,
                  Original original, Predictions* out) {
  const int n_groups = s->n_groups;
  int32_t* order = s->order.data();
  const int32_t* members = s->members.data();
  const int32_t* group_start = s->group_start.data();
  int32_t* shown = s->shown.data();
  uint8_t* chosen = s->chosen.data();
  for (int g = 0; g < n_groups; ++g) order[g] = g;
  if (full_shuffle) Shuffle(rng, order, static_cast<size_t>(n_groups));
  const int n_predict = NumToPredict(length, cfg);
  int count = 0;
  for (int idx = 0; idx < n_groups; ++idx) {
    if (count >= n_predict) break;
    if (!full_shuffle) {
      const int j = idx + static_cast<int>(rng.RandBelow(static_cast<uint64_t>(n_groups - idx)));
      std::swap(order[idx], order[j]);
    }
    const int g = order[idx];
    const int b = group_start[g], e = group_start[g + 1];
    if (count + (e - b) > n_predict) continue;
    for (int k = b; k < e; ++k) {
      const int pos = members[k];
      shown[pos] = DrawShownId(rng, cfg, [&original, pos] { return original(pos); });
      chosen[pos] = 1;
      ++count;
    }
    if (!out->group_hist.empty()) ++out->group_hist[std::min(e - b, kWordSizeHistLen - 1)];
  }
  // Sorted by position: scan the positions (O(length), cheaper than sorting ~20 pairs).
  for (int pos = 0; pos < length; ++pos) {
    if (!chosen[pos]) continue;
    out->positions.push_back(pos);
    out->input_ids.push_back(shown[pos]);
    out->labels.push_back(original(pos));
    chosen[pos] = 0;
  }
  return count;
}

// Fast mode, one instance. Every candidate group is a run of consecutive positions: groups come
// from the corpus' word starts, never cross [SEP], and the first token of A and of B starts one.
struct FastGroup {
  int32_t start;  // first position in the instance
  int32_t size;
};

// Per-thread working memory of MaskFastInstance; Reserve(max_seq_length) once.
struct FastMaskScratch {
  std::vector<FastGroup> groups;
  std::vector<uint64_t> chosen;  // bitmap over positions
  std::vector<int32_t> shown;    // per chosen position: the id shown there

  void Reserve(int length) {
    if (groups.size() < static_cast<size_t>(length) + 1) {
      groups.resize(static_cast<size_t>(length) + 1);
      chosen.assign(static_cast<size_t>(length) / 64 + 1, 0);
      shown.resize(static_cast<size_t>(length) + 1);
    }
  }
};

// Appends the groups of a segment whose first token is at position `first` (word_start: the
// corpus flags of its tokens; null or !whole_word: one group per token).
inline int AppendFastGroups(const uint8_t* word_start, int32_t len, int first, bool whole_word,
                            FastGroup* groups, int n_groups) {
  if (len <= 0) return n_groups;
  if (!whole_word) {
    for (int32_t j = 0; j < len; ++j) groups[n_groups + j] = FastGroup{first + j, 1};
    return n_groups + len;
  }
  groups[n_groups++] = FastGroup{first, 1};
  for (int32_t j = 1; j < len; ++j) {
    if (word_start[j]) {
      groups[n_groups++] = FastGroup{first + j, 1};
    } else {
      ++groups[n_groups - 1].size;
    }
  }
  return n_groups;
}

// The predictions of one fast-mode instance of `length` tokens ([CLS] A [SEP] (B [SEP])): A's
// tokens at positions 1.., B's at a_len + 2..; `tokens` holds the instance's ids (the originals).
// Draws from KeyedRng(key) exactly as SelectAndMask(full_shuffle = false) over the same groups:
// a lazy Fisher-Yates over the groups in position order, skip a group that would overflow, stop
// at NumToPredict, 80/10/10 per token. Calls emit(position, shown_id, original_id) in position
// order and counts each chosen group's size in group_hist (kWordSizeHistLen entries, may be
// null); returns the number of predictions. Trusts its arguments (the callers check instances).
template <typename Emit>
int MaskFastInstance(const uint8_t* a_word_start, int32_t a_len, const uint8_t* b_word_start,
                     int32_t b_len, const int32_t* tokens, int length, bool whole_word,
                     const MaskConfig& cfg, uint64_t key, FastMaskScratch* s,
                     int64_t* group_hist, Emit emit) {
  FastGroup* groups = s->groups.data();
  int n_groups = AppendFastGroups(a_word_start, a_len, 1, whole_word, groups, 0);
  n_groups = AppendFastGroups(b_word_start, b_len, a_len + 2, whole_word, groups, n_groups);
  uint64_t* chosen = s->chosen.data();
  int32_t* shown = s->shown.data();
  KeyedRng rng(key);
  const int n_predict = NumToPredict(length, cfg);
  int count = 0;
  for (int idx = 0; idx < n_groups && count < n_predict; ++idx) {
    const int j = idx + static_cast<int>(rng.RandBelow(static_cast<uint64_t>(n_groups - idx)));
    std::swap(groups[idx], groups[j]);
    const FastGroup g = groups[idx];
    if (count + g.size > n_predict) continue;
    for (int pos = g.start; pos < g.start + g.size; ++pos) {
      shown[pos] = DrawShownId(rng, cfg, [tokens, pos] { return tokens[pos]; });
      chosen[pos >> 6] |= uint64_t{1} << (pos & 63);
    }
    count += g.size;
    if (group_hist != nullptr) ++group_hist[std::min(g.size, kWordSizeHistLen - 1)];
  }
  // Position order: the set bits of the bitmap (cleared for the next instance).
  const int words = (length >> 6) + 1;
  for (int w = 0; w < words; ++w) {
    uint64_t bits = chosen[w];
    chosen[w] = 0;
    while (bits) {
      const int pos = (w << 6) + __builtin_ctzll(bits);
      bits &= bits - 1;
      emit(pos, shown[pos], tokens[pos]);
    }
  }
  return count;
}

// Google's grouping over explicit instance tokens (compat mode).
template <typename Rng>
int MaskInstance(const int32_t* tokens, const uint8_t* special, const uint8_t* joins, int length,
                 const MaskConfig& cfg, Rng& rng, MaskScratch* s, Predictions* out,
                 bool full_shuffle = true) {
  s->Reserve(length);
  int32_t* members = s->members.data();
  int32_t* group_start = s->group_start.data();
  int n_members = 0, n_groups = 0;
  for (int i = 0; i < length; ++i) {
    if (special[i]) continue;
    if (!(joins[i] && n_groups > 0)) group_start[n_groups++] = n_members;
    members[n_members++] = i;
  }
  group_start[n_groups] = n_members;
  s->n_groups = n_groups;
  return SelectAndMask(length, cfg, full_shuffle, rng, s,
                       [tokens](int pos) { return tokens[pos]; }, out);
}

}  // namespace wwm

#endif  // WWM_FAST_CSRC_MASKING_H_
