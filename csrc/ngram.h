// Fast mode's n-gram whole-word masked-LM sampler (MacBERT-style n-grams of whole words).
//
// Purpose: like SampleMasks (masking.h), choose at most max_predictions tokens of each instance
//   to predict, but n consecutive whole words at a time, n drawn from a probability table
//   (MacBERT: 1..4 words with 40/30/20/10%). Words are the same groups as SampleMasks': a token
//   starts a word where corpus.word_start is 1 (whole_word) or always (!whole_word), and the
//   first token of each segment always starts one; an n-gram never crosses [SEP].
// Example: [CLS] 我们 喜欢 你 [SEP] 好 [SEP] (words 我们 喜欢 你 | 好), table {0, 0, 1} (always 3
//   words), budget 6: a draw at 喜欢 grows right to 你, meets [SEP], grows left to 我们 -- one
//   3-gram of 5 tokens; 好 (1 token) then still fits and is a 1-gram (its segment has one word).
// Algorithm, per instance (one KeyedRng stream keyed by instances.key[i]; the call order below
//   is the contract, the README states it for users):
//   words w = 0 .. W-1 in position order, A's words first (W_A of them), then B's;
//   budget = min(max_predictions, max(1, round_half_even(length * masked_lm_prob))) tokens
//   ([CLS]/[SEP] counted in length, as Google's create_masked_lm_predictions);
//   count = 0; for idx = 0 .. W-1 (a lazy Fisher-Yates shuffle of the words):
//     stop if count >= budget;
//     j = idx + RandBelow(W - idx); swap(order[idx], order[j]); w = order[idx];
//     skip w if it is already masked, or if its tokens alone exceed budget - count;
//     n = the size drawn from the table with one Random() (smallest k with u < cumulative[k]);
//     the n-gram grows from w to the right (w+1, w+2, ...) while it has fewer than n words and
//       the next word is in w's segment, not masked yet, and its tokens still fit budget - count;
//       then, still short of n words, to the left (w-1, w-2, ...) under the same three
//       conditions. So a segment end or a masked neighbour on the right moves the n-gram left,
//       and a drawn size is shortened only where neither side has room (or budget) left;
//     every token of the n-gram, in position order: Random() < 0.8 -> [MASK], else
//       Random() < 0.5 -> itself, else rand_ids[RandBelow(rand_size)] (per token, as BERT);
//     drawn_hist[n] += 1, masked_hist[words in the n-gram] += 1, group_hist[tokens of each
//       word] += 1, count += tokens of the n-gram.
//   Predictions come out sorted by position.
// Every masked n-gram comes from exactly one draw and the decision to draw never depends on the
//   size drawn, so drawn_hist follows the table exactly (Wald): the test checks it within
//   binomial bounds. masked_hist shows what the shortening did.
// Args: corpus, instances and probs are borrowed for the call; outputs are filled (owned by the
//   caller).
// Complexity: O(length) per instance.
// Equivalent to: sample_instance of tests/ngram_reference.py (pure Python, the test's oracle).
#ifndef WWM_FAST_CSRC_NGRAM_H_
#define WWM_FAST_CSRC_NGRAM_H_

#include <cstdint>

#include "corpus.h"
#include "masking.h"
#include "pod_vector.h"

namespace wwm {

// Longest n-gram a table may ask for (SpanBERT's longest span; MacBERT uses 4).
constexpr int kMaxNgramSize = 10;
// Length of the n-gram histograms: index k in 1..kMaxNgramSize counts n-grams of k words.
constexpr int kNgramHistLen = kMaxNgramSize + 1;
// How far the table's sum may be from 1 (then it is normalised): "0.4,0.3,0.2,0.1" sums to
// 0.9999999999999999 in doubles, and a user writing thirds writes 0.333333.
constexpr double kNgramSumTolerance = 1e-5;

// The size table: cum[k - 1] = P(size <= k), normalised; the last size of positive probability
// has cum 2.0, so every u in [0, 1) gets a size whatever the rounding.
struct NgramTable {
  int n_sizes = 0;
  double cum[kMaxNgramSize] = {};

  int Draw(double u) const {
    for (int k = 0; k < n_sizes; ++k) {
      if (u < cum[k]) return k + 1;
    }
    return n_sizes;  // unreachable: the last positive entry's cum is 2.0
  }
};

// Throws std::invalid_argument naming the bad value: n not in [1, kMaxNgramSize], a null table,
// an entry negative, NaN or infinite, a sum not within kNgramSumTolerance of 1.
NgramTable MakeNgramTable(const double* probs, int64_t n);

// The n-gram histograms of a sampling run, kNgramHistLen entries each (index 0 unused).
struct NgramHist {
  PodVector<int64_t> masked;  // n-grams masked, by their size in words
  PodVector<int64_t> drawn;   // the size drawn from the table for each masked n-gram
};

// Predictions of every instance with n-gram masking (the algorithm above), keyed by
// instances.key (the output does not depend on num_threads), split over
// ResolveNumThreads(num_threads) threads. pred_splits gets n + 1 entries; preds->group_hist
// counts the masked whole words by size as SampleMasks does. Checks the table, the
// configuration, the corpus and every instance first (std::invalid_argument /
// std::out_of_range naming the value).
void SampleNgramMasks(const Corpus& corpus, const SampleConfig& cfg, const double* probs,
                      int64_t n_probs, const InstanceView& instances, int num_threads,
                      PodVector<int64_t>* pred_splits, Predictions* preds, NgramHist* hist);

}  // namespace wwm

#endif  // WWM_FAST_CSRC_NGRAM_H_
