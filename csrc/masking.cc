// Fast mode's vectorised whole-word sampler (declared in instances.h): MaskInstance over every
// instance of a shard, each with the KeyedRng of its own key, split over threads.
#include <algorithm>
#include <thread>
#include <vector>

#include "instances.h"
#include "masking.h"
#include "random.h"

namespace wwm {

void SampleMasks(const Corpus& c, const BuildConfig& cfg, const InstanceView& set,
                 int num_threads, PodVector<int64_t>* pred_splits, Predictions* preds_out) {
  const int64_t n = set.n;
  const MaskConfig mask_cfg{cfg.max_predictions, cfg.masked_lm_prob, cfg.mask_id, cfg.rand_ids,
                            cfg.rand_size};
  int threads = std::max(1, num_threads);
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, n / 4096)));
  std::vector<Predictions> parts(threads);
  std::vector<PodVector<int64_t>> counts(threads);
  auto work = [&](int t) {
    const int64_t begin = n * t / threads, end = n * (t + 1) / threads;
    InstanceTokens tokens;
    MaskScratch scratch;
    Predictions& out = parts[t];
    out.group_hist.resize(kGroupHistSize, 0);
    out.positions.reserve(static_cast<size_t>(end - begin) * cfg.max_predictions);
    out.input_ids.reserve(static_cast<size_t>(end - begin) * cfg.max_predictions);
    out.labels.reserve(static_cast<size_t>(end - begin) * cfg.max_predictions);
    counts[t].reserve(static_cast<size_t>(end - begin));
    for (int64_t i = begin; i < end; ++i) {
      FillInstanceTokens(c, set.a_start[i], set.a_len[i], set.b_start[i], set.b_len[i], cfg, true,
                         &tokens);
      KeyedRng rng(set.key[i]);
      const int made = MaskInstance(tokens.ids.data(), tokens.special.data(), tokens.joins.data(),
                                    static_cast<int>(tokens.ids.size()), mask_cfg, rng, &scratch,
                                    &out);
      counts[t].push_back(made);
    }
  };
  if (threads == 1) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& th : pool) th.join();
  }
  Predictions& preds = *preds_out;
  pred_splits->clear();
  pred_splits->reserve(static_cast<size_t>(n) + 1);
  pred_splits->push_back(0);
  preds = std::move(parts[0]);
  for (int64_t c0 : counts[0]) pred_splits->push_back(pred_splits->back() + c0);
  for (int t = 1; t < threads; ++t) {
    for (int64_t ct : counts[t]) pred_splits->push_back(pred_splits->back() + ct);
    for (size_t k = 0; k < parts[t].positions.size(); ++k) {
      preds.positions.push_back(parts[t].positions[k]);
      preds.input_ids.push_back(parts[t].input_ids[k]);
      preds.labels.push_back(parts[t].labels[k]);
    }
    for (int h = 0; h < kGroupHistSize; ++h) preds.group_hist[h] += parts[t].group_hist[h];
  }
}

}  // namespace wwm
