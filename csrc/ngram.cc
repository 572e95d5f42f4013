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

// Appends the words of one segment (corpus tokens [start, start + len) at instance positions
// first_pos...) to s, and copies their ids to tokens[first_pos...].
inline void AppendWords(const Corpus& c, int64_t start, int32_t len, int first_pos,
                        bool whole_word, MaskScratch* s, int* n_members, int32_t* tokens) {
  int32_t* members = s->members.data();
  int32_t* group_start = s->group_start.data();
  const uint8_t* ws = c.word_start + start;
  if (len > 0) std::memcpy(tokens + first_pos, c.ids + start, sizeof(int32_t) * len);
  for (int32_t j = 0; j < len; ++j) {
    if (j == 0 || !whole_word || ws[j]) group_start[s->n_groups++] = *n_members;
    members[(*n_members)++] = first_pos + j;
  }
}

struct Part {
  Predictions preds;
  PodVector<int64_t> counts;
  int64_t masked[kNgramHistLen] = {};
  int64_t drawn[kNgramHistLen] = {};
};

// The selection of ngram.h for one instance whose words are in s (A's first: n_words_a of
// them); appends its predictions (sorted by position) and returns their number.
int SelectNgrams(int length, const MaskConfig& cfg, const NgramTable& table, int n_words_a,
                 KeyedRng& rng, MaskScratch* s, uint8_t* covered, const int32_t* tokens,
                 Part* part) {
  const int n_words = s->n_groups;
  int32_t* order = s->order.data();
  const int32_t* members = s->members.data();
  const int32_t* group_start = s->group_start.data();
  int32_t* shown = s->shown.data();
  uint8_t* chosen = s->chosen.data();
  Predictions& out = part->preds;
  for (int g = 0; g < n_words; ++g) {
    order[g] = g;
    covered[g] = 0;
  }
  const int budget = NumToPredict(length, cfg);
  int count = 0;
  for (int idx = 0; idx < n_words && count < budget; ++idx) {
    const int j = idx + static_cast<int>(rng.RandBelow(static_cast<uint64_t>(n_words - idx)));
    std::swap(order[idx], order[j]);
    const int w = order[idx];
    const int room = budget - count;
    if (covered[w] || group_start[w + 1] - group_start[w] > room) continue;
    const int drawn = table.Draw(rng.Random());
    // w's segment is words [first, limit)
    const int first = w < n_words_a ? 0 : n_words_a;
    const int limit = w < n_words_a ? n_words_a : n_words;
    int begin = w, end = w + 1;
    int n_tokens = group_start[w + 1] - group_start[w];
    while (end - begin < drawn && end < limit && !covered[end]) {
      const int size = group_start[end + 1] - group_start[end];
      if (n_tokens + size > room) break;
      n_tokens += size;
      ++end;
    }
    while (end - begin < drawn && begin > first && !covered[begin - 1]) {
      const int size = group_start[begin] - group_start[begin - 1];
      if (n_tokens + size > room) break;
      n_tokens += size;
      --begin;
    }
    for (int g = begin; g < end; ++g) {
      covered[g] = 1;
      const int b = group_start[g], e = group_start[g + 1];
      for (int k = b; k < e; ++k) {
        const int pos = members[k];
        int32_t id;
        if (rng.Random() < 0.8) {
          id = cfg.mask_id;
        } else if (rng.Random() < 0.5) {
          id = tokens[pos];
        } else {
          id = cfg.rand_ids[rng.RandBelow(static_cast<uint64_t>(cfg.rand_size))];
        }
        shown[pos] = id;
        chosen[pos] = 1;
      }
      ++out.group_hist[std::min(e - b, kWordSizeHistLen - 1)];
    }
    ++part->masked[end - begin];
    ++part->drawn[drawn];
    count += n_tokens;
  }
  for (int pos = 0; pos < length; ++pos) {
    if (!chosen[pos]) continue;  // (a flag: ids from the caller may be anything)
    out.positions.push_back(pos);
    out.input_ids.push_back(shown[pos]);
    out.labels.push_back(tokens[pos]);
    chosen[pos] = 0;
  }
  return count;
}

}  // namespace

NgramTable MakeNgramTable(const double* probs, int64_t n) {
  if (n < 1 || n > kMaxNgramSize) {
    throw std::invalid_argument("the n-gram probability table must have 1 to " +
                                std::to_string(kMaxNgramSize) + " entries, got " +
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
  CheckMaskConfig(mask_cfg);
  if (cfg.max_seq_length < 2 || cfg.max_seq_length > kMaxSeqLength) {
    throw std::invalid_argument("max_seq_length must be in [2, " + std::to_string(kMaxSeqLength) +
                                "], got " + std::to_string(cfg.max_seq_length));
  }
  CheckCorpus(c);
  const int64_t n = set.n;
  if (n > 0 && set.key == nullptr) throw std::invalid_argument("instances have no 'key' array");
  for (int64_t i = 0; i < n; ++i) CheckInstance(set, i, c.n_ids, cfg.max_seq_length);
  int threads = ResolveNumThreads(num_threads);
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, n / 4096)));
  std::vector<Part> parts(threads);
  auto work = [&](int t) {
    const int64_t begin = n * t / threads, end = n * (t + 1) / threads;
    MaskScratch scratch;
    scratch.Reserve(cfg.max_seq_length);
    std::vector<int32_t> tokens(static_cast<size_t>(cfg.max_seq_length) + 1);
    std::vector<uint8_t> covered(static_cast<size_t>(cfg.max_seq_length) + 1);
    Part& part = parts[t];
    Predictions& out = part.preds;
    out.group_hist.resize(kWordSizeHistLen, 0);
    const size_t guess = static_cast<size_t>(end - begin) *
                         std::min(mask_cfg.max_predictions, cfg.max_seq_length);
    out.positions.reserve(guess);
    out.input_ids.reserve(guess);
    out.labels.reserve(guess);
    part.counts.reserve(static_cast<size_t>(end - begin));
    for (int64_t i = begin; i < end; ++i) {
      const int32_t a_len = set.a_len[i], b_len = set.b_len[i];
      const int length = static_cast<int>(InstanceLength(a_len, b_len));  // checked above
      scratch.n_groups = 0;
      int n_members = 0;
      AppendWords(c, set.a_start[i], a_len, 1, cfg.whole_word, &scratch, &n_members,
                  tokens.data());
      const int n_words_a = scratch.n_groups;
      if (b_len > 0) {
        AppendWords(c, set.b_start[i], b_len, a_len + 2, cfg.whole_word, &scratch, &n_members,
                    tokens.data());
      }
      scratch.group_start[scratch.n_groups] = n_members;
      KeyedRng rng(set.key[i]);
      part.counts.push_back(SelectNgrams(length, mask_cfg, table, n_words_a, rng, &scratch,
                                         covered.data(), tokens.data(), &part));
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
  size_t total = 0;
  for (Part& p : parts) {
    for (int64_t k : p.counts) pred_splits->push_back(pred_splits->back() + k);
    PodVector<int64_t>().swap(p.counts);
    for (int h = 0; h < kNgramHistLen; ++h) {
      hist->masked[h] += p.masked[h];
      hist->drawn[h] += p.drawn[h];
    }
    for (int h = 0; h < kWordSizeHistLen; ++h) preds.group_hist[h] += p.preds.group_hist[h];
    total += p.preds.positions.size();
  }
  if (threads == 1) {
    preds.positions = std::move(parts[0].preds.positions);
    preds.input_ids = std::move(parts[0].preds.input_ids);
    preds.labels = std::move(parts[0].preds.labels);
    return;
  }
  // One array at a time, each part freed once copied (the peak is one array's total more).
  auto gather = [&](PodVector<int32_t> Predictions::*field) {
    PodVector<int32_t>& all = preds.*field;
    all.clear();
    all.resize_uninitialized(total);
    size_t at = 0;
    for (Part& p : parts) {
      PodVector<int32_t>& piece = p.preds.*field;
      if (piece.size()) std::memcpy(all.data() + at, piece.data(), piece.size() * sizeof(int32_t));
      at += piece.size();
      PodVector<int32_t>().swap(piece);
    }
  };
  gather(&Predictions::positions);
  gather(&Predictions::input_ids);
  gather(&Predictions::labels);
}

}  // namespace wwm
