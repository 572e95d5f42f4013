// libFuzzer harness: the instance stages on arbitrary input (csrc/FUZZING.md).
// Byte 0 picks the path:
//   even: a corpus (sometimes with a corrupted split or a negative id) and a configuration go
//     through BuildFast or BuildCompat; the fast instances then go through SampleMasks or (bit 3)
//     SampleNgramMasks with a fuzzed size table, and either set through
//     SerializeInstancesParallel in ShuffledOrder;
//   odd: hostile instance views (starts near 2^63, lengths near 2^31, pred_splits that are not
//     ranges, orders outside the set) go straight to SampleMasks or SampleNgramMasks (bit 3) and
//     SerializeInstances.
// Accepted outcomes: std::invalid_argument / std::out_of_range, or output whose ranges lie inside
// the corpus and whose records frame correctly.
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <vector>

#include "corpus.h"
#include "fuzz_input.h"
#include "instances.h"
#include "masking.h"
#include "ngram.h"
#include "tfrecord.h"

namespace {

struct CorpusData {
  std::vector<int32_t> ids;
  std::vector<uint8_t> word_start;
  std::vector<int64_t> sent, doc;
  wwm::Corpus View() const {
    return wwm::Corpus{ids.data(), word_start.data(), static_cast<int64_t>(ids.size()),
                       sent.data(), static_cast<int64_t>(sent.size()) - 1, doc.data(),
                       static_cast<int64_t>(doc.size()) - 1};
  }
};

// Inputs that reached each kernel, printed at exit (csrc/FUZZING.md reports them).
struct Reached {
  int64_t compat = 0, fast = 0, sample = 0, ngram = 0, serialize = 0;
  ~Reached() {
    std::fprintf(stderr, "reached: BuildCompat %lld, BuildFast %lld, SampleMasks %lld, "
                 "SampleNgramMasks %lld, SerializeInstances %lld\n",
                 static_cast<long long>(compat), static_cast<long long>(fast),
                 static_cast<long long>(sample), static_cast<long long>(ngram),
                 static_cast<long long>(serialize));
  }
} reached;

CorpusData MakeCorpus(wwm::FuzzInput& in) {
  CorpusData c;
  const int n_sent = static_cast<int>(in.Take<uint8_t>() % 10);
  c.sent.push_back(0);
  for (int s = 0; s < n_sent; ++s) c.sent.push_back(c.sent.back() + 1 + in.Take<uint8_t>() % 12);
  c.doc.push_back(0);
  for (int s = 1; s < n_sent; ++s) {
    if (in.Take<uint8_t>() & 1) c.doc.push_back(s);
  }
  if (n_sent > 0) c.doc.push_back(n_sent);
  c.ids.resize(static_cast<size_t>(c.sent.back()));
  c.word_start.resize(c.ids.size());
  for (size_t i = 0; i < c.ids.size(); ++i) {
    c.ids[i] = 5 + in.Take<uint8_t>() % 20;
    c.word_start[i] = in.Take<uint8_t>() & 1;
  }
  const uint8_t corrupt = in.Take<uint8_t>();
  if (corrupt >= 240 && !c.sent.empty()) c.sent[corrupt % c.sent.size()] = in.Int(-3, 60);
  if (corrupt >= 224 && corrupt < 240 && !c.doc.empty()) c.doc[corrupt % c.doc.size()] = in.Int(-3, 12);
  if (corrupt >= 216 && corrupt < 224 && !c.ids.empty()) {  // ids are not checked: kept as given
    c.ids[corrupt % c.ids.size()] = static_cast<int32_t>(in.Int(-3, 40));
  }
  return c;
}

void CheckSet(const wwm::InstanceView& v, int64_t n_ids, int seq) {
  for (int64_t i = 0; i < v.n; ++i) {
    FUZZ_CHECK(wwm::RangeInside(v.a_start[i], v.a_len[i], n_ids));
    FUZZ_CHECK(wwm::RangeInside(v.b_start[i], v.b_len[i], n_ids));
    FUZZ_CHECK(wwm::InstanceLength(v.a_len[i], v.b_len[i]) <= seq);
  }
}

void Serialize(const CorpusData& c, const wwm::InstanceView& v, const wwm::WriteConfig& cfg,
               const std::vector<int64_t>& order, int threads, size_t capacity) {
  std::vector<uint8_t> out(capacity + 1);
  int64_t done = 0;
  ++reached.serialize;
  const size_t used = wwm::SerializeInstancesParallel(c.ids.data(), v, order.data(),
                                                      static_cast<int64_t>(order.size()), cfg,
                                                      out.data(), capacity, threads, &done);
  FUZZ_CHECK(used <= capacity && done >= 0 && done <= static_cast<int64_t>(order.size()));
  size_t pos = 0;  // the records frame: lengths add up to what was written
  for (int64_t k = 0; k < done; ++k) {
    FUZZ_CHECK(pos + 12 <= used);
    uint64_t len;
    std::memcpy(&len, out.data() + pos, 8);
    FUZZ_CHECK(len <= used - pos - 16);
    pos += 16 + len;
  }
  FUZZ_CHECK(pos == used);
}

// An n-gram size table: mostly valid (normalised), sometimes empty, longer than kMaxNgramTableSize,
// with a negative, NaN or infinite entry, or not summing to 1.
std::vector<double> NgramTable(wwm::FuzzInput& in) {
  std::vector<double> p(in.Take<uint8_t>() % (wwm::kMaxNgramTableSize + 2));
  double sum = 0.0;
  for (double& x : p) sum += (x = in.Take<uint8_t>());
  const uint8_t bad = in.Take<uint8_t>();
  if (sum > 0.0 && bad < 224) {
    for (double& x : p) x /= sum;
  }
  if (bad >= 240 && !p.empty()) {
    const double special[] = {std::numeric_limits<double>::quiet_NaN(), -0.5,
                              std::numeric_limits<double>::infinity(), -0.0};
    p[bad % p.size()] = special[bad % 4];
  }
  return p;
}

// Either sampler; the n-gram one checks its histograms against the predictions.
void Sample(wwm::FuzzInput& in, bool ngram, const wwm::Corpus& corpus,
            const wwm::SampleConfig& scfg, const wwm::InstanceView& v, int threads,
            wwm::PodVector<int64_t>* splits, wwm::Predictions* preds) {
  if (!ngram) {
    ++reached.sample;
    wwm::SampleMasks(corpus, scfg, v, threads, splits, preds);
  } else {
    const std::vector<double> table = NgramTable(in);
    ++reached.ngram;
    wwm::NgramHist hist;
    wwm::SampleNgramMasks(corpus, scfg, table.data(), static_cast<int64_t>(table.size()), v,
                          threads, splits, preds, &hist);
    int64_t masked = 0, drawn = 0, words = 0, groups = 0;
    for (int k = 0; k < wwm::kNgramHistLen; ++k) {
      masked += hist.masked[k];
      drawn += hist.drawn[k];
      words += k * hist.masked[k];
    }
    for (int64_t g : preds->group_hist) groups += g;
    FUZZ_CHECK(hist.masked[0] == 0 && hist.drawn[0] == 0 && masked == drawn && words == groups);
  }
  FUZZ_CHECK(static_cast<int64_t>(splits->size()) == v.n + 1);
  FUZZ_CHECK((*splits)[v.n] == static_cast<int64_t>(preds->positions.size()));
  FUZZ_CHECK(preds->positions.size() == preds->input_ids.size() &&
             preds->positions.size() == preds->labels.size());
}

std::vector<int32_t> RandIds() {
  std::vector<int32_t> r(25);
  for (int i = 0; i < 25; ++i) r[i] = i;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<int32_t> rand_ids = RandIds();
  wwm::FuzzInput in{data, size};
  const uint8_t path = in.Take<uint8_t>();
  const CorpusData c = MakeCorpus(in);
  const wwm::Corpus corpus = c.View();
  const int seq = static_cast<int>(in.Int(-1, 48));
  const int pred = static_cast<int>(in.Int(0, 8));
  const double probs[] = {0.15, 0.5, 0.999, 0.0, 1.0};
  const double prob = probs[in.Take<uint8_t>() % 5];
  const bool whole_word = in.Take<uint8_t>() & 1;
  const int threads = 1 + in.Take<uint8_t>() % 3;
  const size_t capacity = in.Take<uint16_t>() % 4096;
  try {
    if (!(path & 1)) {
      wwm::BuildConfig cfg{seq, pred, prob, (in.Take<uint8_t>() % 3) / 2.0,
                           1 + in.Take<uint8_t>() % 3, whole_word, !(path & 2), 2, 3, 4,
                           rand_ids.data(), static_cast<int64_t>(rand_ids.size())};
      wwm::InstanceSet set;
      const bool compat = path & 4;
      if (compat) {
        ++reached.compat;
        wwm::BuildCompat(corpus, cfg, {in.Take<uint32_t>()}, &set);
      } else {
        ++reached.fast;
        wwm::BuildFast(corpus, cfg, in.Take<uint64_t>(), in.Take<uint8_t>(), &set);
        const wwm::SampleConfig scfg{seq, whole_word, wwm::MaskConfigOf(cfg)};
        Sample(in, path & 8, corpus, scfg, set.View(), threads, &set.pred_splits, &set.preds);
      }
      const wwm::InstanceView v = set.View();
      CheckSet(v, corpus.n_ids, seq);
      FUZZ_CHECK(static_cast<int64_t>(set.pred_splits.size()) == v.n + 1);
      FUZZ_CHECK(set.pred_splits[v.n] == v.n_pred);
      wwm::PodVector<int64_t> order;
      wwm::ShuffledOrder(v.n, 7, 1, &order);
      std::vector<int64_t> ord(order.begin(), order.end());
      Serialize(c, v, wwm::WriteConfig{seq, pred, 2, 3, corpus.n_ids}, ord, threads,
                capacity + wwm::MaxRecordBytes(wwm::WriteConfig{seq, pred, 2, 3, 0}));
    } else {
      const int n = in.Take<uint8_t>() % 8;
      std::vector<int64_t> a_start(n), b_start(n), splits(n + 1);
      std::vector<int32_t> a_len(n), b_len(n);
      std::vector<uint8_t> next(n);
      std::vector<uint64_t> key(n);
      std::vector<int32_t> pos, ids, labels;
      for (int i = 0; i < n; ++i) {
        a_start[i] = in.Int(-2, 40);
        b_start[i] = in.Int(-2, 40);
        a_len[i] = static_cast<int32_t>(in.Int(-2, 20));
        b_len[i] = static_cast<int32_t>(in.Int(-2, 20));
        next[i] = in.Take<uint8_t>();
        key[i] = in.Take<uint64_t>();
        const int k = in.Take<uint8_t>() % 4;
        for (int j = 0; j < k; ++j) {
          pos.push_back(static_cast<int32_t>(in.Int(-2, 40)));
          ids.push_back(in.Take<int32_t>());
          labels.push_back(in.Take<int32_t>());
        }
        splits[i + 1] = static_cast<int64_t>(pos.size());
      }
      if (n > 0 && (in.Take<uint8_t>() & 1)) splits[in.Take<uint8_t>() % (n + 1)] = in.Int(-5, 10);
      const wwm::InstanceView v{a_start.data(), a_len.data(), b_start.data(), b_len.data(),
                                next.data(), key.data(), splits.data(), pos.data(), ids.data(),
                                labels.data(), n, static_cast<int64_t>(pos.size())};
      std::vector<int64_t> order(in.Take<uint8_t>() % 10);
      for (auto& o : order) o = in.Int(-1, 8);
      if (path & 2) {
        wwm::PodVector<int64_t> ps;
        wwm::Predictions preds;
        const wwm::SampleConfig scfg{seq, whole_word,
                                     wwm::MaskConfig{pred, prob, 4, rand_ids.data(), 25}};
        Sample(in, path & 8, corpus, scfg, v, threads, &ps, &preds);
        CheckSet(v, corpus.n_ids, seq);
      } else {
        Serialize(c, v, wwm::WriteConfig{seq, pred, 2, 3, corpus.n_ids}, order, threads,
                  capacity);
      }
    }
  } catch (const std::invalid_argument&) {
  } catch (const std::out_of_range&) {
  }
  return 0;
}
