// libFuzzer harness: Model Garden compat (csrc/garden.h) on arbitrary input (csrc/FUZZING.md).
// Byte 0 picks the path (mod 4):
//   0: a corpus (sometimes with a corrupted split), a configuration, generator keys of 0-3 words
//      and a max_ngram_size (small, or an edge value) go through BuildGarden;
//   1: one hostile instance (any ids, [CLS]/[SEP] and ## flags anywhere) goes through
//      CheckGardenConfig, then GardenMaskInstance 1-3 times with the same generators (the
//      binding's test shim does the same);
//   2: the rest of the input, cut into 0-3 payloads that are framed with valid CRCs (so the
//      Example parser is reached), goes through RenameFeatures with one of several renamings;
//   3: the rest of the input as a raw TFRecord file through RenameFeatures.
// Accepted outcomes: std::invalid_argument, or output that meets the kernel's invariants
// (instances inside the corpus; predictions sorted, unique, off [CLS]/[SEP], labelled with their
// token, whole units, at most max_predictions; records that frame with valid CRCs, one per input
// record, and renaming again with no renames is a fixed point).
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "corpus.h"
#include "fuzz_input.h"
#include "garden.h"
#include "instances.h"
#include "masking.h"
#include "random.h"
#include "tfrecord.h"

namespace {

// Inputs that reached each kernel, printed at exit (csrc/FUZZING.md reports them).
struct Reached {
  int64_t build = 0, build_ok = 0, mask = 0, mask_ok = 0, rename = 0, rename_ok = 0;
  ~Reached() {
    std::fprintf(stderr, "reached: BuildGarden %lld (%lld built), GardenMaskInstance %lld (%lld "
                 "masked), RenameFeatures %lld (%lld renamed)\n",
                 static_cast<long long>(build), static_cast<long long>(build_ok),
                 static_cast<long long>(mask), static_cast<long long>(mask_ok),
                 static_cast<long long>(rename), static_cast<long long>(rename_ok));
  }
} reached;

std::vector<int32_t> RandIds() {
  std::vector<int32_t> r(25);
  for (int i = 0; i < 25; ++i) r[i] = i;
  return r;
}

std::vector<uint32_t> Key(wwm::FuzzInput& in) {
  std::vector<uint32_t> k(in.Take<uint8_t>() % 4);
  for (auto& w : k) w = in.Take<uint32_t>();
  return k;
}

int NgramSize(wwm::FuzzInput& in) {
  const uint8_t sel = in.Take<uint8_t>();
  if (sel >= 240) {
    static const int edge[] = {0, -1, INT32_MIN, INT32_MAX, wwm::kMaxSeqLength,
                               wwm::kMaxSeqLength + 1, 1 << 16, 1 << 12};
    return edge[sel % 8];
  }
  return 1 + sel % 6;
}

// One instance's predictions [from, to) of p: the invariants of GardenMaskInstance.
void CheckPredictions(const int32_t* tokens, const uint8_t* special, const uint8_t* joins,
                      int length, bool whole_word, const wwm::Predictions& p, size_t from,
                      size_t to, int max_predictions, const std::vector<int32_t>& rand_ids,
                      int32_t mask_id) {
  FUZZ_CHECK(from <= to && to <= p.positions.size());
  FUZZ_CHECK(p.input_ids.size() == p.positions.size() && p.labels.size() == p.positions.size());
  FUZZ_CHECK(static_cast<int64_t>(to - from) <= max_predictions);
  std::vector<uint8_t> chosen(static_cast<size_t>(length), 0);
  for (size_t k = from; k < to; ++k) {
    const int32_t pos = p.positions[k];
    FUZZ_CHECK(pos >= 0 && pos < length && !special[pos]);
    FUZZ_CHECK(k == from || p.positions[k - 1] < pos);
    FUZZ_CHECK(p.labels[k] == tokens[pos]);
    const int32_t shown = p.input_ids[k];
    bool allowed = shown == mask_id || shown == tokens[pos];
    for (int32_t r : rand_ids) allowed = allowed || shown == r;
    FUZZ_CHECK(allowed);
    chosen[pos] = 1;
  }
  // units: a token and (with whole words) the ## tokens after it; [CLS]/[SEP] end a unit
  int unit_start = -1;
  for (int i = 0; i <= length; ++i) {
    const bool continues = i < length && whole_word && unit_start >= 0 && joins[i] && !special[i];
    if (continues) {
      FUZZ_CHECK(chosen[i] == chosen[unit_start]);
      continue;
    }
    unit_start = (i < length && !special[i]) ? i : -1;
  }
}

void FuzzBuild(wwm::FuzzInput& in, const std::vector<int32_t>& rand_ids) {
  std::vector<int64_t> sent{0}, doc{0};
  const int n_sent = in.Take<uint8_t>() % 10;
  for (int s = 0; s < n_sent; ++s) sent.push_back(sent.back() + 1 + in.Take<uint8_t>() % 12);
  for (int s = 1; s < n_sent; ++s) {
    if (in.Take<uint8_t>() & 1) doc.push_back(s);
  }
  if (n_sent > 0) doc.push_back(n_sent);
  std::vector<int32_t> ids(static_cast<size_t>(sent.back()));
  std::vector<uint8_t> word_start(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = 5 + in.Take<uint8_t>() % 20;
    word_start[i] = in.Take<uint8_t>() & 1;
  }
  const uint8_t corrupt = in.Take<uint8_t>();
  if (corrupt >= 240) sent[corrupt % sent.size()] = in.Int(-3, 60);
  if (corrupt >= 224 && corrupt < 240) doc[corrupt % doc.size()] = in.Int(-3, 12);
  const wwm::Corpus corpus{ids.data(), word_start.data(), static_cast<int64_t>(ids.size()),
                           sent.data(), static_cast<int64_t>(sent.size()) - 1, doc.data(),
                           static_cast<int64_t>(doc.size()) - 1};
  // mostly valid (an all-zero input too), so that the masking is reached; Int's edge values
  // (-1, 0, INT32_MAX after the cast) and 2-4 cover the invalid ones
  const int seq = static_cast<int>(in.Int(2, 48));
  const int pred = static_cast<int>(in.Int(1, 8));
  const double probs[] = {0.15, 0.5, 0.999, 0.3, 0.0, 1.0, 0.15, 0.5};
  const double prob = probs[in.Take<uint8_t>() % 8];
  const bool whole_word = in.Take<uint8_t>() & 1;
  const wwm::BuildConfig cfg{seq, pred, prob, (in.Take<uint8_t>() % 3) / 2.0,
                             1 + in.Take<uint8_t>() % 3, whole_word, true, 2, 3, 4,
                             rand_ids.data(), static_cast<int64_t>(rand_ids.size())};
  const std::vector<uint32_t> key = Key(in), global_key = Key(in);
  const int ngram = NgramSize(in);
  wwm::InstanceSet set;
  ++reached.build;
  wwm::BuildGarden(corpus, cfg, key, global_key, ngram, &set);
  ++reached.build_ok;
  FUZZ_CHECK(ngram >= 1 && ngram <= seq - 3 && (whole_word || ngram == 1));
  const wwm::InstanceView v = set.View();
  FUZZ_CHECK(static_cast<int64_t>(set.pred_splits.size()) == v.n + 1);
  FUZZ_CHECK(set.pred_splits[0] == 0 && set.pred_splits[v.n] == v.n_pred);
  wwm::InstanceTokens t;
  for (int64_t i = 0; i < v.n; ++i) {
    FUZZ_CHECK(wwm::RangeInside(v.a_start[i], v.a_len[i], corpus.n_ids));
    FUZZ_CHECK(wwm::RangeInside(v.b_start[i], v.b_len[i], corpus.n_ids));
    FUZZ_CHECK(wwm::InstanceLength(v.a_len[i], v.b_len[i]) <= seq);
    // the instance's tokens as the builder masked them: [CLS] A [SEP] B [SEP]
    t.ids.assign(1, 2);
    t.special.assign(1, 1);
    t.joins.assign(1, 0);
    auto segment = [&](int64_t start, int32_t len) {
      for (int64_t k = start; k < start + len; ++k) {
        t.ids.push_back(ids[k]);
        t.special.push_back(0);
        t.joins.push_back(whole_word && !word_start[k]);
      }
      t.ids.push_back(3);
      t.special.push_back(1);
      t.joins.push_back(0);
    };
    segment(v.a_start[i], v.a_len[i]);
    if (v.b_len[i] > 0) segment(v.b_start[i], v.b_len[i]);
    CheckPredictions(t.ids.data(), t.special.data(), t.joins.data(),
                     static_cast<int>(t.ids.size()), whole_word, set.preds,
                     static_cast<size_t>(set.pred_splits[i]),
                     static_cast<size_t>(set.pred_splits[i + 1]), pred, rand_ids, 4);
  }
}

void FuzzMask(wwm::FuzzInput& in, const std::vector<int32_t>& rand_ids) {
  const int length = in.Take<uint8_t>() % 64;
  std::vector<int32_t> tokens(length);
  std::vector<uint8_t> special(length), joins(length);
  for (int i = 0; i < length; ++i) {
    const uint8_t flags = in.Take<uint8_t>();
    tokens[i] = (flags & 0x80) ? in.Take<int32_t>() : 5 + flags % 20;  // any id, sometimes
    special[i] = (flags & 3) == 0;
    joins[i] = (flags >> 2) & 1;
  }
  const bool whole_word = in.Take<uint8_t>() & 1;
  const int pred = static_cast<int>(in.Int(1, 40));
  const double probs[] = {0.15, 0.5, 0.999, 0.3, 0.0, 1.0, -0.5, 0.15};
  const double prob = probs[in.Take<uint8_t>() % 8];
  const int32_t mask_id = (in.Take<uint8_t>() & 1) ? 4 : in.Take<int32_t>();
  const size_t n_rand = in.Take<uint8_t>() % 4 == 3 ? 0 : rand_ids.size();
  const wwm::GardenMaskConfig cfg{
      wwm::MaskConfig{pred, prob, mask_id, n_rand ? rand_ids.data() : nullptr,
                      static_cast<int64_t>(n_rand)},
      NgramSize(in)};
  const std::vector<uint32_t> key = Key(in), global_key = Key(in);
  const int repeats = 1 + in.Take<uint8_t>() % 3;
  ++reached.mask;
  wwm::CheckGardenConfig(cfg, length);
  wwm::PyRandom rng(key), global_rng(global_key);
  wwm::GardenScratch scratch;
  wwm::Predictions p;
  for (int r = 0; r < repeats; ++r) {
    const size_t from = p.positions.size();
    const int count = wwm::GardenMaskInstance(tokens.data(), special.data(), joins.data(), length,
                                              whole_word, cfg, rng, global_rng, &scratch, &p);
    FUZZ_CHECK(count >= 0 && static_cast<size_t>(count) == p.positions.size() - from);
    CheckPredictions(tokens.data(), special.data(), joins.data(), length, whole_word, p, from,
                     p.positions.size(), pred, rand_ids, mask_id);
  }
  ++reached.mask_ok;
}

// The records of a framed file: their payload [begin, end), or false when one does not frame
// with valid CRCs.
bool Frames(const uint8_t* d, size_t n, std::vector<std::pair<size_t, size_t>>* records) {
  size_t pos = 0;
  while (pos < n) {
    if (n - pos < 16) return false;
    uint64_t len;
    uint32_t len_crc, data_crc;
    std::memcpy(&len, d + pos, 8);
    std::memcpy(&len_crc, d + pos + 8, 4);
    if (wwm::MaskCrc(wwm::Crc32c(d + pos, 8)) != len_crc || len > n - pos - 16) return false;
    std::memcpy(&data_crc, d + pos + 12 + len, 4);
    if (wwm::MaskCrc(wwm::Crc32c(d + pos + 12, len)) != data_crc) return false;
    records->emplace_back(pos + 12, pos + 12 + len);
    pos += 16 + len;
  }
  return true;
}

void FuzzRename(wwm::FuzzInput& in, bool frame) {
  using Renames = std::vector<std::pair<std::string, std::string>>;
  static const Renames kRenames[] = {
      {{"input_ids", "input_word_ids"}, {"segment_ids", "input_type_ids"}},
      {},
      {{"input_word_ids", "input_ids"}, {"input_type_ids", "segment_ids"}},
      {{"a", "b"}, {"b", "a"}},
      {{"a", "b"}, {"c", "b"}},
      {{"", "x"}},
      {{"a", std::string(300, 'k')}},
      {{"a", "x"}, {"a", "y"}},
  };
  const Renames& renames = kRenames[in.Take<uint8_t>() % 8];
  wwm::PodVector<uint8_t> file;
  size_t n_in = 0;
  if (frame) {  // payloads cut at the given sizes, each framed with valid CRCs
    const int k = in.Take<uint8_t>() % 4;
    for (int r = 0; r < k; ++r) {
      const size_t want = r + 1 < k ? in.Take<uint8_t>() : in.n;
      const size_t len = want < in.n ? want : in.n;
      wwm::FrameRecord(in.p, len, &file);
      in.p += len;
      in.n -= len;
      ++n_in;
    }
  } else {
    file.resize_uninitialized(in.n);
    if (in.n) std::memcpy(file.data(), in.p, in.n);
  }
  ++reached.rename;
  wwm::PodVector<uint8_t> out;
  wwm::RenameFeatures(file.data(), file.size(), renames, &out);
  ++reached.rename_ok;
  std::vector<std::pair<size_t, size_t>> before, after;
  FUZZ_CHECK(Frames(file.data(), file.size(), &before));  // accepted input frames
  FUZZ_CHECK(Frames(out.data(), out.size(), &after));
  FUZZ_CHECK(before.size() == after.size());
  FUZZ_CHECK(!frame || before.size() == n_in);
  // no renames: a fixed point after one pass (the first pass may shorten non-minimal varints)
  wwm::PodVector<uint8_t> again, twice;
  wwm::RenameFeatures(out.data(), out.size(), {}, &again);
  wwm::RenameFeatures(again.data(), again.size(), {}, &twice);
  FUZZ_CHECK(again.size() == twice.size() &&
             (again.empty() || std::memcmp(again.data(), twice.data(), again.size()) == 0));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<int32_t> rand_ids = RandIds();
  wwm::FuzzInput in{data, size};
  const uint8_t path = in.Take<uint8_t>() % 4;
  try {
    switch (path) {
      case 0:
        FuzzBuild(in, rand_ids);
        break;
      case 1:
        FuzzMask(in, rand_ids);
        break;
      default:
        FuzzRename(in, path == 2);
    }
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
