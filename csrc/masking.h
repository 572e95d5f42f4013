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
// Complexity: O(L log L) per instance (the sort of at most max_predictions positions).
// Equivalent to: create_masked_lm_predictions(tokens, ...) of google-research/bert (master).
#ifndef WWM_FAST_CSRC_MASKING_H_
#define WWM_FAST_CSRC_MASKING_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

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

struct MaskScratch {
  std::vector<int32_t> members;      // positions, grouped
  std::vector<int32_t> group_start;  // into members, plus a sentinel
  std::vector<int32_t> order;
  std::vector<std::pair<int32_t, std::pair<int32_t, int32_t>>> chosen;  // (pos, (input, label))
};

constexpr int kGroupHistSize = 17;  // sizes 1..15 exactly, 16 = 16 or more (index 0 unused)

// Appends the predictions of one instance; returns how many were made.
template <typename Rng>
int MaskInstance(const int32_t* tokens, const uint8_t* special, const uint8_t* joins, int length,
                 const MaskConfig& cfg, Rng& rng, MaskScratch* s, Predictions* out) {
  s->members.clear();
  s->group_start.clear();
  for (int i = 0; i < length; ++i) {
    if (special[i]) continue;
    if (!(joins[i] && !s->group_start.empty())) {
      s->group_start.push_back(static_cast<int32_t>(s->members.size()));
    }
    s->members.push_back(i);
  }
  const int n_groups = static_cast<int>(s->group_start.size());
  s->group_start.push_back(static_cast<int32_t>(s->members.size()));
  s->order.resize(n_groups);
  for (int g = 0; g < n_groups; ++g) s->order[g] = g;
  Shuffle(rng, s->order.data(), s->order.size());

  // Python: int(round(len(tokens) * masked_lm_prob)), round half to even on the double product.
  const double product = static_cast<double>(length) * cfg.masked_lm_prob;
  const int rounded = static_cast<int>(std::nearbyint(product));
  const int n_predict = std::min(cfg.max_predictions, std::max(1, rounded));

  s->chosen.clear();
  int count = 0;
  for (int g : s->order) {
    if (count >= n_predict) break;
    const int b = s->group_start[g], e = s->group_start[g + 1];
    if (count + (e - b) > n_predict) continue;
    for (int k = b; k < e; ++k) {
      const int pos = s->members[k];
      const int32_t original = tokens[pos];
      int32_t shown;
      if (rng.Random() < 0.8) {
        shown = cfg.mask_id;
      } else if (rng.Random() < 0.5) {
        shown = original;
      } else {
        shown = cfg.rand_ids[rng.RandBelow(static_cast<uint64_t>(cfg.rand_size))];
      }
      s->chosen.push_back({pos, {shown, original}});
      ++count;
    }
    if (!out->group_hist.empty()) {
      ++out->group_hist[std::min(e - b, kGroupHistSize - 1)];
    }
  }
  std::sort(s->chosen.begin(), s->chosen.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  for (const auto& c : s->chosen) {
    out->positions.push_back(c.first);
    out->input_ids.push_back(c.second.first);
    out->labels.push_back(c.second.second);
  }
  return count;
}

}  // namespace wwm

#endif  // WWM_FAST_CSRC_MASKING_H_
