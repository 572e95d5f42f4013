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

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "corpus.h"
#include "masking.h"
#include "pod_vector.h"
#include "random.h"

namespace wwm {

// Longest n-gram a table may ask for (SpanBERT's longest span; MacBERT uses 4).
constexpr int kMaxNgramTableSize = 10;
// Length of the n-gram histograms: index k in 1..kMaxNgramTableSize counts n-grams of k words.
constexpr int kNgramHistLen = kMaxNgramTableSize + 1;
// How far the table's sum may be from 1 (then it is normalised): "0.4,0.3,0.2,0.1" sums to
// 0.9999999999999999 in doubles, and a user writing thirds writes 0.333333.
constexpr double kNgramSumTolerance = 1e-5;

// The size table: cum[k - 1] = P(size <= k), normalised; the last size of positive probability
// has cum 2.0, so every u in [0, 1) gets a size whatever the rounding.
struct NgramTable {
  int n_sizes = 0;
  double cum[kMaxNgramTableSize] = {};

  // The smallest k with u < cum[k - 1]. cum is non-decreasing, so that k is 1 + the number of
  // entries u is not below: counted without a branch on u (the size is random, so a loop that
  // stops at it mispredicts about once per draw), over n_sizes - 1 entries (the last is 2.0).
  // Always in [1, n_sizes], whatever the table.
  int Draw(double u) const {
    int k = 1;
    for (int i = 0; i + 1 < n_sizes; ++i) k += u >= cum[i];
    return k;
  }
};

// Throws std::invalid_argument naming the bad value: n not in [1, kMaxNgramTableSize], a null
// table, an entry negative, NaN or infinite, a sum not within kNgramSumTolerance of 1.
NgramTable MakeNgramTable(const double* probs, int64_t n);

// The n-gram histograms of a sampling run, kNgramHistLen entries each (index 0 unused).
struct NgramHist {
  PodVector<int64_t> masked;  // n-grams masked, by their size in words
  PodVector<int64_t> drawn;   // the size drawn from the table for each masked n-gram
};

// Per-thread working memory of MaskNgramInstance; Reserve(max_seq_length) once.
struct NgramScratch {
  std::vector<FastGroup> words;  // the instance's words, in position order
  std::vector<int32_t> order;    // the lazy shuffle of word indices
  std::vector<int32_t> identity;  // 0, 1, 2, ...: order's start, copied in one memcpy
  // bitmap over positions; a word is in an n-gram already exactly when its first position is set
  std::vector<uint64_t> chosen;
  std::vector<int32_t> shown;    // per chosen position: the id shown there

  void Reserve(int length) {
    if (words.size() < static_cast<size_t>(length) + 1) {
      words.resize(static_cast<size_t>(length) + 1);
      order.resize(static_cast<size_t>(length) + 1);
      identity.resize(static_cast<size_t>(length) + 1);
      for (size_t k = 0; k < identity.size(); ++k) identity[k] = static_cast<int32_t>(k);
      chosen.assign(static_cast<size_t>(length) / 64 + 1, 0);
      shown.resize(static_cast<size_t>(length) + 1);
    }
  }
};

// Sets bits [begin, end) of a bitmap (begin < end), a word at a time.
inline void SetBitRange(uint64_t* bits, int begin, int end) {
  const int first = begin >> 6, last = (end - 1) >> 6;
  const uint64_t low = ~uint64_t{0} << (begin & 63);        // bits >= begin in word `first`
  const uint64_t high = ~uint64_t{0} >> (63 - ((end - 1) & 63));  // bits < end in word `last`
  if (first == last) {
    bits[first] |= low & high;
    return;
  }
  bits[first] |= low;
  for (int k = first + 1; k < last; ++k) bits[k] = ~uint64_t{0};
  bits[last] |= high;
}

// The n-gram predictions of one instance of `length` tokens ([CLS] A [SEP] (B [SEP])): A's
// tokens at positions 1.., B's at a_len + 2..; `tokens` holds the instance's ids (the originals)
// at those positions. The algorithm above, drawing from KeyedRng(key): what SampleNgramMasks
// gives the instance of that key. Calls emit(position, shown_id, original_id) in position order;
// counts each masked word's size in group_hist (kWordSizeHistLen entries), each n-gram's size in
// words in masked_hist and its drawn size in drawn_hist (kNgramHistLen entries each); returns the
// number of predictions. Trusts its arguments (the callers check the table and the instances).
template <typename Emit>
int MaskNgramInstance(const uint8_t* a_word_start, int32_t a_len, const uint8_t* b_word_start,
                      int32_t b_len, const int32_t* tokens, int length, bool whole_word,
                      const MaskConfig& cfg, const NgramTable& table, uint64_t key,
                      NgramScratch* s, int64_t* group_hist, int64_t* masked_hist,
                      int64_t* drawn_hist, Emit emit) {
  FastGroup* words = s->words.data();
  const int n_words_a = AppendFastGroups(a_word_start, a_len, 1, whole_word, words, 0);
  const int n_words =
      AppendFastGroups(b_word_start, b_len, a_len + 2, whole_word, words, n_words_a);
  int32_t* order = s->order.data();
  uint64_t* chosen = s->chosen.data();
  int32_t* shown = s->shown.data();
  std::memcpy(order, s->identity.data(), sizeof(int32_t) * static_cast<size_t>(n_words));
  // word g is in an n-gram already: its first position is chosen (no per-word flags to clear)
  auto covered = [words, chosen](int g) {
    const int pos = words[g].start;
    return (chosen[pos >> 6] >> (pos & 63)) & 1;
  };
  KeyedRng rng(key);
  const int budget = NumToPredict(length, cfg);
  int count = 0;
  for (int idx = 0; idx < n_words && count < budget; ++idx) {
    const int j = idx + static_cast<int>(rng.RandBelow(static_cast<uint64_t>(n_words - idx)));
    std::swap(order[idx], order[j]);
    const int w = order[idx];
    const int room = budget - count;
    if (words[w].size > room || covered(w)) continue;
    const int drawn = table.Draw(rng.Random());
    // w's segment is words [first, limit) (without a branch: w's side is random)
    const int in_b = -static_cast<int>(w >= n_words_a);  // all ones for B
    const int first = n_words_a & in_b;
    const int limit = n_words_a + ((n_words - n_words_a) & in_b);
    int begin = w, end = w + 1;
    int n_tokens = words[w].size;
    ++group_hist[std::min(words[w].size, kWordSizeHistLen - 1)];
    // right while short of `drawn` words (end - begin < drawn), then left
    const int right_cap = std::min(limit, w + drawn);
    while (end < right_cap && !covered(end) && n_tokens + words[end].size <= room) {
      n_tokens += words[end].size;
      ++group_hist[std::min(words[end].size, kWordSizeHistLen - 1)];
      ++end;
    }
    const int left_cap = std::max(first, end - drawn);
    while (begin > left_cap && !covered(begin - 1) && n_tokens + words[begin - 1].size <= room) {
      --begin;
      n_tokens += words[begin].size;
      ++group_hist[std::min(words[begin].size, kWordSizeHistLen - 1)];
    }
    // the n-gram's tokens are positions [words[begin].start, that + n_tokens), in order
    const int first_pos = words[begin].start, end_pos = first_pos + n_tokens;
    for (int pos = first_pos; pos < end_pos; ++pos) {
      shown[pos] = DrawShownId(rng, cfg, [tokens, pos] { return tokens[pos]; });
    }
    SetBitRange(chosen, first_pos, end_pos);
    ++masked_hist[end - begin];
    ++drawn_hist[drawn];
    count += n_tokens;
  }
  // Position order: the set bits of the bitmap (cleared for the next instance).
  const int n_bits = (length >> 6) + 1;
  for (int b = 0; b < n_bits; ++b) {
    uint64_t bits = chosen[b];
    chosen[b] = 0;
    while (bits) {
      const int pos = (b << 6) + __builtin_ctzll(bits);
      bits &= bits - 1;
      emit(pos, shown[pos], tokens[pos]);
    }
  }
  return count;
}

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
