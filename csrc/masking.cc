// Fast mode's vectorised whole-word sampler (SampleMasks, declared in masking.h): every instance
// of a shard with the KeyedRng of its own key (MaskFastInstance), split over threads. Groups are
// read straight from the corpus ranges of A and B; a group never crosses [SEP] and the first
// token of a segment always starts one (a word cut by truncation is a group of its own).
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "corpus.h"
#include "masking.h"
#include "parallel.h"
#include "random.h"

namespace wwm {

void CheckMaskConfig(const MaskConfig& cfg) {
  if (cfg.max_predictions < 1 || cfg.max_predictions > kMaxSeqLength) {
    throw std::invalid_argument("max_predictions_per_seq must be in [1, " +
                                std::to_string(kMaxSeqLength) + "], got " +
                                std::to_string(cfg.max_predictions));
  }
  if (!(cfg.masked_lm_prob > 0.0 && cfg.masked_lm_prob < 1.0)) {
    throw std::invalid_argument("masked_lm_prob must be in (0, 1), got " +
                                std::to_string(cfg.masked_lm_prob));
  }
  if (cfg.rand_size < 1 || cfg.rand_ids == nullptr) {
    throw std::invalid_argument("rand_ids (the vocab's ids) must not be empty");
  }
}

void CheckSampleInput(const Corpus& c, const SampleConfig& cfg, const InstanceView& set) {
  CheckMaskConfig(cfg.mask);
  if (cfg.max_seq_length < 2 || cfg.max_seq_length > kMaxSeqLength) {
    throw std::invalid_argument("max_seq_length must be in [2, " + std::to_string(kMaxSeqLength) +
                                "], got " + std::to_string(cfg.max_seq_length));
  }
  CheckCorpus(c);
  if (set.n > 0 && set.key == nullptr) {
    throw std::invalid_argument("instances have no 'key' array");
  }
  for (int64_t i = 0; i < set.n; ++i) CheckInstance(set, i, c.n_ids, cfg.max_seq_length);
}

void ConcatPredictionArrays(const std::vector<Predictions*>& parts, Predictions* out) {
  size_t total = 0;
  for (const Predictions* p : parts) total += p->positions.size();
  for (PodVector<int32_t> Predictions::*field :
       {&Predictions::positions, &Predictions::input_ids, &Predictions::labels}) {
    PodVector<int32_t>& all = out->*field;
    all.clear();
    all.resize_uninitialized(total);
    size_t at = 0;
    for (Predictions* p : parts) {
      PodVector<int32_t>& piece = p->*field;
      if (piece.size()) std::memcpy(all.data() + at, piece.data(), piece.size() * sizeof(int32_t));
      at += piece.size();
      PodVector<int32_t>().swap(piece);
    }
  }
}

void SampleMasks(const Corpus& c, const SampleConfig& cfg, const InstanceView& set,
                 int num_threads, PodVector<int64_t>* pred_splits, Predictions* preds_out) {
  const MaskConfig& mask_cfg = cfg.mask;
  CheckSampleInput(c, cfg, set);  // before any thread starts: the loop below trusts what passed
  const int64_t n = set.n;
  int threads = ResolveNumThreads(num_threads);
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, n / 4096)));
  std::vector<Predictions> parts(threads);
  std::vector<PodVector<int64_t>> counts(threads);
  auto work = [&](int t) {
    const int64_t begin = n * t / threads, end = n * (t + 1) / threads;
    FastMaskScratch scratch;
    scratch.Reserve(cfg.max_seq_length);
    std::vector<int32_t> tokens(static_cast<size_t>(cfg.max_seq_length) + 1);
    Predictions& out = parts[t];
    out.group_hist.resize(kWordSizeHistLen, 0);
    // at most min(max_predictions, max_seq_length) per instance
    const size_t guess = static_cast<size_t>(end - begin) *
                         std::min(mask_cfg.max_predictions, cfg.max_seq_length);
    out.positions.reserve(guess);
    out.input_ids.reserve(guess);
    out.labels.reserve(guess);
    counts[t].reserve(static_cast<size_t>(end - begin));
    constexpr int64_t kAhead = 4;  // a random next's B lies anywhere in the shard: fetch early
    auto prefetch = [&](int64_t j) {
      if (j >= end) return;
      PrefetchRange(c.ids + set.b_start[j], int64_t{4} * set.b_len[j]);
      PrefetchRange(c.word_start + set.b_start[j], set.b_len[j]);
    };
    for (int64_t j = begin; j < begin + kAhead; ++j) prefetch(j);
    int32_t* tok = tokens.data();
    for (int64_t i = begin; i < end; ++i) {
      prefetch(i + kAhead);
      const int64_t a_start = set.a_start[i], b_start = set.b_start[i];
      const int32_t a_len = set.a_len[i], b_len = set.b_len[i];
      // <= max_seq_length <= kMaxSeqLength (checked above), so an int from here on
      const int length = static_cast<int>(InstanceLength(a_len, b_len));
      if (a_len > 0) std::memcpy(tok + 1, c.ids + a_start, sizeof(int32_t) * a_len);
      if (b_len > 0) std::memcpy(tok + a_len + 2, c.ids + b_start, sizeof(int32_t) * b_len);
      const int made = MaskFastInstance(
          c.word_start + a_start, a_len, c.word_start + b_start, b_len, tok, length,
          cfg.whole_word, mask_cfg, set.key[i], &scratch, out.group_hist.data(),
          [&out](int pos, int32_t shown, int32_t original) {
            out.positions.push_back(pos);
            out.input_ids.push_back(shown);
            out.labels.push_back(original);
          });
      counts[t].push_back(made);
    }
  };
  ParallelFor(threads, work);
  Predictions& preds = *preds_out;
  pred_splits->clear();
  pred_splits->reserve(static_cast<size_t>(n) + 1);
  pred_splits->push_back(0);
  for (int t = 0; t < threads; ++t) {
    for (int64_t k : counts[t]) pred_splits->push_back(pred_splits->back() + k);
    PodVector<int64_t>().swap(counts[t]);
  }
  if (threads == 1) {
    preds = std::move(parts[0]);
    return;
  }
  std::vector<Predictions*> pointers;
  for (Predictions& p : parts) pointers.push_back(&p);
  ConcatPredictionArrays(pointers, &preds);
  preds.group_hist.clear();
  preds.group_hist.resize(kWordSizeHistLen, 0);
  for (const Predictions& p : parts) {
    for (int h = 0; h < kWordSizeHistLen; ++h) preds.group_hist[h] += p.group_hist[h];
  }
}

}  // namespace wwm
