// libFuzzer harness: fast mode's shard kernel (fast_shard.h) and the vocab parser on arbitrary
// input (csrc/FUZZING.md). Byte 0 picks the path (its value mod 4; with WWM_FUZZ_PATHS, among
// those paths only: fuzz_input.h's TakePath):
//   0 text shard: what bind_shard.cc's Kernel::TextShard does -- SplitLines, EncodeLines (strict
//     or ignore) with a fixed vocab parsed by ParseVocab, DocumentsFromLines (with or without the
//     `##` table), then a ShardWriter on a fuzzed configuration;
//   1 documents shard: a fuzzed corpus (sometimes with corrupted splits, ids anywhere in int32,
//     sometimes 64 times longer so that Next splits its run over threads) straight into a
//     ShardWriter, as Kernel::DocumentsShard passes it (the writer checks it);
//   2 DocumentsFromLines on hostile row_splits / blank flags / `##` tables;
//   3 ParseVocab on the rest, then a FullTokenizer on what it parsed encoding the same bytes.
// A ShardWriter's records are drained with Next at fuzzed capacities (some too small for one
// record) and 1-2 threads. Checks: the records frame and number n_instances; the figures add up;
// the bytes equal BuildFast + SampleMasks + ShuffledOrder + SerializeInstances (the header's
// contract) and do not depend on capacity or threads; a parsed vocab's entries find their ids.
// Accepted errors: std::invalid_argument (bad corpus, configuration or splits); anything else
// -- another exception, a crash, a sanitizer report -- is a finding.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "corpus.h"
#include "fast_shard.h"
#include "fuzz_input.h"
#include "instances.h"
#include "masking.h"
#include "tfrecord.h"
#include "wordpiece.h"

namespace {

// Inputs that reached each entry point, printed at exit (csrc/FUZZING.md reports them).
struct Reached {
  int64_t text = 0, documents = 0, writer_built = 0, from_lines = 0, vocab = 0;
  ~Reached() {
    std::fprintf(stderr,
                 "reached: text shard %lld, documents shard %lld, ShardWriter built %lld, "
                 "DocumentsFromLines %lld, ParseVocab %lld\n",
                 static_cast<long long>(text), static_cast<long long>(documents),
                 static_cast<long long>(writer_built), static_cast<long long>(from_lines),
                 static_cast<long long>(vocab));
  }
} reached;

// A small vocab file (with a duplicate, a blank line, \r and padding that load_vocab strips).
const char kVocabFile[] =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\nab\n##b\n##c\n##bc\n\xe4\xb8\xad\n"
    "\xe5\x9b\xbd\n\xe4\xba\xba\n##\xe4\xba\xba\n\xe4\xb8\xad\xe5\x9b\xbd\n\xef\xbc\x8c\n"
    "\xe3\x80\x82\n!\n  b  \r\n\n##\n";

struct Vocab {
  wwm::ParsedVocab parsed;
  std::unique_ptr<wwm::FullTokenizer> tok[2];  // cased, lower-cased
  std::vector<uint8_t> suffix;                 // per id: the entry starts with "##"
  std::vector<int32_t> rand_ids;               // Google's vocab_words order
  int32_t unk = -1, cls = -1, sep = -1, mask = -1;
};

const Vocab& TheVocab() {
  static const Vocab* v = [] {
    auto* r = new Vocab;
    r->parsed = wwm::ParseVocab(kVocabFile, sizeof(kVocabFile) - 1);
    const wwm::ParsedVocab& p = r->parsed;
    r->unk = p.Find("[UNK]");
    r->cls = p.Find("[CLS]");
    r->sep = p.Find("[SEP]");
    r->mask = p.Find("[MASK]");
    FUZZ_CHECK(p.error_line < 0 && r->unk >= 0 && r->cls >= 0 && r->sep >= 0 && r->mask >= 0);
    r->rand_ids = p.ids;
    int32_t max_id = 0;
    for (int32_t id : p.ids) max_id = std::max(max_id, id);
    r->suffix.assign(static_cast<size_t>(max_id) + 1, 0);
    for (size_t i = 0; i < p.keys.size(); ++i) {
      if (p.keys[i].size() >= 2 && p.keys[i][0] == '#' && p.keys[i][1] == '#') {
        r->suffix[p.ids[i]] = 1;
      }
    }
    for (int lower = 0; lower < 2; ++lower) {
      r->tok[lower] = std::make_unique<wwm::FullTokenizer>(p.keys, p.ids, r->unk, lower != 0, 20);
    }
    return r;
  }();
  return *v;
}

// A corpus the kernel made must pass CheckCorpus: its refusal is a finding, not an error.
void MustAccept(const wwm::Corpus& c) {
  try {
    wwm::CheckCorpus(c);
  } catch (const std::exception&) {
    FUZZ_CHECK(false);
  }
}

wwm::BuildConfig MakeConfig(wwm::FuzzInput& in, const Vocab& v) {
  const double probs[] = {0.15, 0.5, 0.999, 1.0, 0.0, -0.5};
  const double shorts[] = {0.1, 0.0, 1.0, 0.5, 2.0};
  wwm::BuildConfig cfg{};
  if (in.Take<uint8_t>() < 224) {  // mostly a configuration the binding would pass on
    cfg.max_seq_length = 5 + in.Take<uint8_t>() % 36;
    cfg.max_predictions = 1 + in.Take<uint8_t>() % std::min(cfg.max_seq_length, 10);
    cfg.masked_lm_prob = probs[in.Take<uint8_t>() % 4];
    cfg.short_seq_prob = shorts[in.Take<uint8_t>() % 4];
    cfg.dupe_factor = 1 + in.Take<uint8_t>() % 3;
  } else {  // anything, edges included
    cfg.max_seq_length = static_cast<int>(in.Int(-1, 40));
    cfg.max_predictions = static_cast<int>(in.Int(-1, 10));
    cfg.masked_lm_prob = probs[in.Take<uint8_t>() % 6];
    cfg.short_seq_prob = shorts[in.Take<uint8_t>() % 5];
    // at most 8: a dupe_factor near 2^31 is valid but costs 2^31 passes (a timeout, not a bug)
    cfg.dupe_factor = static_cast<int>(std::min<int64_t>(in.Int(0, 3), 8));
  }
  const uint8_t flags = in.Take<uint8_t>();
  cfg.whole_word = flags & 1;
  cfg.next_sentence = !(flags & 2);
  cfg.cls_id = v.cls;
  cfg.sep_id = v.sep;
  cfg.mask_id = v.mask;
  cfg.rand_ids = v.rand_ids.data();
  // sometimes no rand_ids at all (the writer must refuse it, not read past them)
  cfg.rand_size = (flags & 0xF0) == 0xF0 ? 0 : static_cast<int64_t>(v.rand_ids.size());
  return cfg;
}

// Checks that `bytes` is `n` framed records and nothing else.
void CheckFraming(const std::vector<uint8_t>& bytes, int64_t n) {
  size_t pos = 0;
  for (int64_t k = 0; k < n; ++k) {
    FUZZ_CHECK(pos + 16 <= bytes.size());
    uint64_t len;
    std::memcpy(&len, bytes.data() + pos, 8);
    FUZZ_CHECK(len <= bytes.size() - pos - 16);
    pos += 16 + len;
  }
  FUZZ_CHECK(pos == bytes.size());
}

// Drains a writer with Next at capacities from `in` (some below one record) and 1-2 threads.
std::vector<uint8_t> Drain(wwm::ShardWriter* w, wwm::FuzzInput& in) {
  std::vector<uint8_t> all;
  const size_t bound = w->max_record_bytes();
  FUZZ_CHECK(bound > 16);
  int64_t written = 0;
  int stalls = 0;
  while (!w->done()) {
    const uint8_t sel = in.Take<uint8_t>();
    size_t capacity;
    if (sel < 16) {
      capacity = sel % 2 ? bound - 1 : 0;  // too small for one record
    } else {
      capacity = bound * (1 + sel % 5) + in.Take<uint8_t>() % 64;
      if (sel >= 240) capacity = bound * 4096;  // room for a threaded run
    }
    std::vector<uint8_t> out(capacity + 1);
    int64_t done = -1;
    const size_t used = w->Next(out.data(), capacity, 1 + (sel >> 7), &done);
    FUZZ_CHECK(used <= capacity && done >= 0);
    if (capacity < bound) {
      FUZZ_CHECK(done == 0 && used == 0);
      FUZZ_CHECK(++stalls < 1000);  // the input ran out of bytes: sel 0 forever
      if (in.Empty()) break;
      continue;
    }
    FUZZ_CHECK(done >= 1);
    written += done;
    all.insert(all.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(used));
  }
  if (!w->done()) {  // finish with a capacity that always fits
    std::vector<uint8_t> out(bound * 8);
    while (!w->done()) {
      int64_t done = 0;
      const size_t used = w->Next(out.data(), out.size(), 1, &done);
      FUZZ_CHECK(done >= 1);
      written += done;
      all.insert(all.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(used));
    }
  }
  FUZZ_CHECK(written == w->n_instances());
  CheckFraming(all, written);
  return all;
}

// The staged pipeline the writer must equal: BuildFast, SampleMasks, ShuffledOrder and
// SerializeInstances.
std::vector<uint8_t> Staged(const wwm::Corpus& corpus, const wwm::BuildConfig& cfg,
                            uint64_t seed, uint64_t shard) {
  wwm::InstanceSet set;
  wwm::BuildFast(corpus, cfg, seed, shard, &set);
  const wwm::SampleConfig scfg{cfg.max_seq_length, cfg.whole_word, wwm::MaskConfigOf(cfg)};
  wwm::SampleMasks(corpus, scfg, set.View(), 1, &set.pred_splits, &set.preds);
  const wwm::InstanceView v = set.View();
  wwm::PodVector<int64_t> order;
  wwm::ShuffledOrder(v.n, seed, shard, &order);
  const wwm::WriteConfig wcfg{cfg.max_seq_length, cfg.max_predictions, cfg.cls_id, cfg.sep_id,
                              corpus.n_ids};
  const size_t capacity = static_cast<size_t>(v.n) * wwm::MaxRecordBytes(wcfg);
  std::vector<uint8_t> out(capacity + 1);
  int64_t done = 0;
  const size_t used = wwm::SerializeInstancesParallel(corpus.ids, v, order.data(), v.n, wcfg,
                                                      out.data(), capacity, 1, &done);
  FUZZ_CHECK(done == v.n);
  out.resize(used);
  return out;
}

// A ShardWriter on `corpus` (cfg, seed, shard from `in`); checks it as described at the top.
void RunWriter(const wwm::Corpus& corpus, wwm::FuzzInput& in, const Vocab& v) {
  const wwm::BuildConfig cfg = MakeConfig(in, v);
  const uint64_t seed = in.Take<uint8_t>() >= 250 ? in.Take<uint64_t>() : in.Take<uint8_t>();
  const uint64_t shard = in.Take<uint8_t>();
  const uint8_t checks = in.Take<uint8_t>();
  wwm::ShardWriter w(corpus, cfg, seed, shard);  // throws invalid_argument: bad corpus / cfg
  ++reached.writer_built;
  const wwm::InstanceFigures& f = w.figures();
  FUZZ_CHECK(f.instances == w.n_instances() && f.instances >= 0);
  FUZZ_CHECK(f.single_segment <= f.instances && f.random_next <= f.instances);
  FUZZ_CHECK(f.instance_tokens <= f.instances * cfg.max_seq_length);
  const std::vector<uint8_t> bytes = Drain(&w, in);
  FUZZ_CHECK(f.masked_tokens <= f.instances * cfg.max_predictions);
  FUZZ_CHECK(f.mask_replaced + f.random_replaced <= f.masked_tokens);
  if (checks & 1) {  // the same bytes at other capacities and thread counts
    wwm::ShardWriter again(corpus, cfg, seed, shard);
    FUZZ_CHECK(Drain(&again, in) == bytes);
  }
  if (checks & 2) FUZZ_CHECK(Staged(corpus, cfg, seed, shard) == bytes);
}

void TextShard(wwm::FuzzInput& in, const Vocab& v) {
  ++reached.text;
  const uint8_t mode = in.Take<uint8_t>();
  const uint16_t text_len = in.Take<uint16_t>() % 2048;
  const size_t n = std::min<size_t>(text_len, in.n);
  const std::string text(reinterpret_cast<const char*>(in.p), n);
  in.p += n;
  in.n -= n;
  const std::vector<int64_t> splits = wwm::SplitLines(text.data(), text.size());
  const int64_t n_lines = static_cast<int64_t>(splits.size()) - 1;
  wwm::EncodeOutput out;
  out.offsets = false;
  wwm::PodVector<int64_t> row_splits;
  wwm::PodVector<uint8_t> blank;
  const wwm::Utf8Errors errors = (mode & 1) ? wwm::Utf8Errors::kStrict : wwm::Utf8Errors::kIgnore;
  const wwm::EncodeError err =
      wwm::EncodeLines(*v.tok[(mode >> 1) & 1], text.data(), splits.data(), n_lines, errors, true,
                       1 + ((mode >> 2) & 1), &out, &row_splits, &blank);
  if (err.line >= 0) {
    FUZZ_CHECK(errors == wwm::Utf8Errors::kStrict && err.line < n_lines && err.length >= 1);
    return;
  }
  const int64_t n_ids = static_cast<int64_t>(out.ids.size());
  wwm::OwnedCorpus corpus;
  const bool whole_word = mode & 8;
  wwm::DocumentsFromLines(std::move(out.ids), row_splits, blank,
                          whole_word ? v.suffix.data() : nullptr,
                          static_cast<int64_t>(v.suffix.size()), &corpus);
  const wwm::Corpus view = corpus.View();
  MustAccept(view);  // a corpus made from lines is always valid
  FUZZ_CHECK(view.n_ids == n_ids);
  const wwm::CorpusFigures cf = wwm::CountCorpus(view, v.unk);
  FUZZ_CHECK(cf.documents == view.n_documents && cf.corpus_tokens == n_ids);
  FUZZ_CHECK(cf.unk_tokens <= n_ids && cf.word_continuations <= n_ids);
  if (!whole_word) FUZZ_CHECK(cf.word_continuations == 0);
  RunWriter(view, in, v);
}

void DocumentsShard(wwm::FuzzInput& in, const Vocab& v) {
  ++reached.documents;
  std::vector<int32_t> ids;
  std::vector<uint8_t> word_start;
  std::vector<int64_t> sent{0}, doc{0};
  const int n_sent = in.Take<uint8_t>() % 12;
  const uint8_t id_mode = in.Take<uint8_t>();
  for (int s = 0; s < n_sent; ++s) sent.push_back(sent.back() + 1 + in.Take<uint8_t>() % 14);
  for (int s = 1; s < n_sent; ++s) {
    if (in.Take<uint8_t>() & 1) doc.push_back(s);
  }
  if (n_sent > 0) doc.push_back(n_sent);
  ids.resize(static_cast<size_t>(sent.back()));
  word_start.resize(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    // ids are whatever the caller's buffer holds: usually vocab ids, sometimes any int32
    ids[i] = id_mode >= 200 ? in.Take<int32_t>() : in.Take<uint8_t>() % 26;
    word_start[i] = in.Take<uint8_t>() % 3;  // not only 0/1
  }
  const uint8_t corrupt = in.Take<uint8_t>();
  if (corrupt >= 240) sent[corrupt % sent.size()] = in.Int(-3, 80);
  if (corrupt >= 224 && corrupt < 240) doc[corrupt % doc.size()] = in.Int(-3, 14);
  if (corrupt >= 216 && corrupt < 224 && !doc.empty()) doc.pop_back();
  if (corrupt == 214 && n_sent > 0) {      // a long shard: Next splits its run over threads
    std::vector<int32_t> ids2;
    std::vector<uint8_t> ws2;
    std::vector<int64_t> sent2{0}, doc2{0};
    for (int r = 0; r < 64; ++r) {
      ids2.insert(ids2.end(), ids.begin(), ids.end());
      ws2.insert(ws2.end(), word_start.begin(), word_start.end());
      for (int s = 1; s <= n_sent; ++s) sent2.push_back(sent2.back() + sent[s] - sent[s - 1]);
      doc2.push_back(static_cast<int64_t>(sent2.size()) - 1);
    }
    ids.swap(ids2);
    word_start.swap(ws2);
    sent.swap(sent2);
    doc.swap(doc2);
  }
  const wwm::Corpus view{ids.data(), word_start.data(), static_cast<int64_t>(ids.size()),
                         sent.data(), static_cast<int64_t>(sent.size()) - 1, doc.data(),
                         static_cast<int64_t>(doc.size()) - 1};
  const wwm::CorpusFigures cf = wwm::CountCorpus(view, v.unk);
  FUZZ_CHECK(cf.corpus_tokens == view.n_ids && cf.unk_tokens <= view.n_ids);
  RunWriter(view, in, v);
}

void FromLines(wwm::FuzzInput& in) {
  ++reached.from_lines;
  const int n_lines = in.Take<uint8_t>() % 10;
  wwm::PodVector<int64_t> row_splits;
  wwm::PodVector<uint8_t> blank;
  row_splits.push_back(0);
  for (int i = 0; i < n_lines; ++i) {
    row_splits.push_back(row_splits.back() + in.Take<uint8_t>() % 5);
    blank.push_back(in.Take<uint8_t>() % 3 == 0);
  }
  const uint8_t corrupt = in.Take<uint8_t>();
  if (corrupt >= 240) row_splits[corrupt % row_splits.size()] = in.Int(-3, 40);
  if (corrupt >= 230 && corrupt < 240) row_splits.clear();
  if (corrupt >= 220 && corrupt < 230 && !blank.empty()) {
    blank.resize_uninitialized(blank.size() - 1);
  }
  if (corrupt >= 210 && corrupt < 220) blank.push_back(1);
  int64_t n_ids = row_splits.empty() ? 0 : row_splits.back();
  if (corrupt >= 200 && corrupt < 210) n_ids += corrupt % 3 - 1;
  if (n_ids < 0 || n_ids > 64) n_ids = 64;  // splits near 2^63 describe no ids of ours
  wwm::PodVector<int32_t> ids;
  for (int64_t i = 0; i < n_ids; ++i) {
    const uint8_t b = in.Take<uint8_t>();
    ids.push_back(b >= 250 ? (b == 255 ? INT32_MIN : INT32_MAX - (b - 250)) : b % 12 - 2);
  }
  std::vector<uint8_t> suffix(in.Take<uint8_t>() % 12);
  for (auto& s : suffix) s = in.Take<uint8_t>() % 3;
  const bool use_suffix = corrupt & 1;
  wwm::OwnedCorpus out;
  try {
    wwm::DocumentsFromLines(std::move(ids), row_splits, blank,
                            use_suffix ? suffix.data() : nullptr,
                            static_cast<int64_t>(suffix.size()), &out);
  } catch (const std::invalid_argument&) {
    return;
  }
  // accepted: the splits described the ids, so the result is a valid corpus
  const wwm::Corpus view = out.View();
  MustAccept(view);
  FUZZ_CHECK(view.n_ids == n_ids);
  for (int64_t i = 0; i < view.n_ids; ++i) FUZZ_CHECK(view.word_start[i] <= 1);
  if (!use_suffix) {
    for (int64_t i = 0; i < view.n_ids; ++i) FUZZ_CHECK(view.word_start[i] == 1);
  }
}

void VocabThenTokenize(wwm::FuzzInput& in) {
  ++reached.vocab;
  const uint8_t mode = in.Take<uint8_t>();
  const char* data = reinterpret_cast<const char*>(in.p);
  const wwm::ParsedVocab p = wwm::ParseVocab(data, in.n);
  FUZZ_CHECK(p.keys.size() == p.ids.size() && p.position.size() == p.keys.size());
  FUZZ_CHECK(p.error_line >= -1 && p.error_line < std::max<int64_t>(p.n_lines, 1));
  FUZZ_CHECK(p.n_lines <= static_cast<int64_t>(in.n) + 1);
  for (size_t i = 0; i < p.keys.size(); ++i) {
    FUZZ_CHECK(p.ids[i] >= 0 && p.ids[i] < p.n_lines);
    FUZZ_CHECK(p.Find(p.keys[i]) == p.ids[i]);
  }
  if (p.error_line >= 0 || p.keys.empty()) return;
  // a tokenizer on the parsed vocab (the Kernel constructor's path), encoding the same bytes
  const int32_t unk = p.Find("[UNK]") >= 0 ? p.Find("[UNK]") : p.ids[0];
  const wwm::FullTokenizer tok(p.keys, p.ids, unk, mode & 1, (mode & 2) ? 3 : 100);
  const std::vector<int64_t> splits = wwm::SplitLines(data, in.n);
  const int64_t n_lines = static_cast<int64_t>(splits.size()) - 1;
  wwm::EncodeOutput out;
  out.offsets = false;
  wwm::PodVector<int64_t> rows;
  wwm::PodVector<uint8_t> blank;
  const wwm::EncodeError err = wwm::EncodeLines(tok, data, splits.data(), n_lines,
                                                wwm::Utf8Errors::kIgnore, true, 1, &out, &rows,
                                                &blank);
  FUZZ_CHECK(err.line < 0);
  int32_t max_id = 0;
  for (int32_t id : p.ids) max_id = std::max(max_id, id);
  for (int32_t id : out.ids) FUZZ_CHECK(id >= 0 && id <= max_id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Vocab& v = TheVocab();
  wwm::FuzzInput in{data, size};
  const int path = wwm::TakePath(in);  // WWM_FUZZ_PATHS selects
  if (path == 2) {
    FromLines(in);  // catches the errors it accepts itself
  } else if (path == 3) {
    VocabThenTokenize(in);  // no error is accepted
  } else {
    try {
      if (path == 0) {
        TextShard(in, v);
      } else {
        DocumentsShard(in, v);
      }
    } catch (const std::invalid_argument&) {
    }
  }
  return 0;
}
