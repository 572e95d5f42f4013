// Fast mode's n-gram whole-word sampler (SampleNgramMasks, declared and specified in ngram.h):
// every instance with the KeyedRng of its own key, split over threads as SampleMasks does.
// Words are read straight from the corpus ranges of A and B; an n-gram never crosses [SEP].
#include "ngram.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "corpus.h"
#include "masking.h"
#include "parallel.h"
#include "random.h"

namespace wwm {
namespace {

struct Part {
  Predictions preds;
  PodVector<int64_t> counts;
  int64_t masked[kNgramHistLen] = {};
  int64_t drawn[kNgramHistLen] = {};
};

}  // namespace

NgramTable MakeNgramTable(const double* probs, int64_t n) {
  if (n < 1 || n > kMaxNgramTableSize) {
    throw std::invalid_argument("the n-gram probability table must have 1 to " +
                                std::to_string(kMaxNgramTableSize) + " entries, got " +
                                std::to_string(n));
  }
  if (probs == nullptr) throw std::invalid_argument("the n-gram probability table is missing");
  double sum = 0.0;
  for (int64_t k = 0; k < n; ++k) {
    if (!std::isfinite(probs[k]) || probs[k] < 0.0) {
      throw std::invalid_argument("n-gram probability of size " + std::to_string(k + 1) +
                                  " must be a finite number >= 0, got " +
                                  std::to_string(probs[k]));
    }
    sum += probs[k];
  }
  if (!(std::fabs(sum - 1.0) <= kNgramSumTolerance)) {
    throw std::invalid_argument("n-gram probabilities must sum to 1, got " + std::to_string(sum));
  }
  NgramTable t;
  t.n_sizes = static_cast<int>(n);
  int last = 0;
  double acc = 0.0;
  for (int k = 0; k < t.n_sizes; ++k) {
    acc += probs[k];
    t.cum[k] = acc / sum;
    if (probs[k] > 0.0) last = k;
  }
  for (int k = last; k < t.n_sizes; ++k) t.cum[k] = 2.0;
  return t;
}

void SampleNgramMasks(const Corpus& c, const SampleConfig& cfg, const double* probs,
                      int64_t n_probs, const InstanceView& set, int num_threads,
                      PodVector<int64_t>* pred_splits, Predictions* preds_out, NgramHist* hist) {
  const NgramTable table = MakeNgramTable(probs, n_probs);
  const MaskConfig& mask_cfg = cfg.mask;
  CheckSampleInput(c, cfg, set);  // before any thread starts: the loop below trusts what passed
  const int64_t n = set.n;
  int threads = ResolveNumThreads(num_threads);
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, n / 4096)));
  std::vector<Part> parts(threads);
  auto work = [&](int t) {
    const int64_t begin = n * t / threads, end = n * (t + 1) / threads;
    NgramScratch scratch;
    scratch.Reserve(cfg.max_seq_length);
    std::vector<int32_t> tokens(static_cast<size_t>(cfg.max_seq_length) + 1);
    Part& part = parts[t];
    Predictions& out = part.preds;
    out.group_hist.resize(kWordSizeHistLen, 0);
    const size_t guess = static_cast<size_t>(end - begin) *
                         std::min(mask_cfg.max_predictions, cfg.max_seq_length);
    out.positions.reserve(guess);
    out.input_ids.reserve(guess);
    out.labels.reserve(guess);
    part.counts.reserve(static_cast<size_t>(end - begin));
    auto emit = [&out](int pos, int32_t shown, int32_t original) {
      out.positions.push_back(pos);
      out.input_ids.push_back(shown);
      out.labels.push_back(original);
    };
    for (int64_t i = begin; i < end; ++i) {
      const int32_t a_len = set.a_len[i], b_len = set.b_len[i];
      const int length = static_cast<int>(InstanceLength(a_len, b_len));  // checked above
      if (a_len > 0) {
        std::memcpy(tokens.data() + 1, c.ids + set.a_start[i], sizeof(int32_t) * a_len);
      }
      if (b_len > 0) {
        std::memcpy(tokens.data() + a_len + 2, c.ids + set.b_start[i], sizeof(int32_t) * b_len);
      }
      part.counts.push_back(MaskNgramInstance(
          c.word_start + set.a_start[i], a_len, c.word_start + set.b_start[i], b_len,
          tokens.data(), length, cfg.whole_word, mask_cfg, table, set.key[i], &scratch,
          out.group_hist.data(), part.masked, part.drawn, emit));
    }
  };
  ParallelFor(threads, work);

  hist->masked.clear();
  hist->masked.resize(kNgramHistLen, 0);
  hist->drawn.clear();
  hist->drawn.resize(kNgramHistLen, 0);
  Predictions& preds = *preds_out;
  preds.group_hist.clear();
  preds.group_hist.resize(kWordSizeHistLen, 0);
  pred_splits->clear();
  pred_splits->reserve(static_cast<size_t>(n) + 1);
  pred_splits->push_back(0);
  for (Part& p : parts) {
    for (int64_t k : p.counts) pred_splits->push_back(pred_splits->back() + k);
    PodVector<int64_t>().swap(p.counts);
    for (int h = 0; h < kNgramHistLen; ++h) {
      hist->masked[h] += p.masked[h];
      hist->drawn[h] += p.drawn[h];
    }
    for (int h = 0; h < kWordSizeHistLen; ++h) preds.group_hist[h] += p.preds.group_hist[h];
  }
  if (threads == 1) {
    preds.positions = std::move(parts[0].preds.positions);
    preds.input_ids = std::move(parts[0].preds.input_ids);
    preds.labels = std::move(parts[0].preds.labels);
    return;
  }
  std::vector<Predictions*> pointers;
  for (Part& p : parts) pointers.push_back(&p.preds);
  ConcatPredictionArrays(pointers, &preds);
}

}  // namespace wwm
