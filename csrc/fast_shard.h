// Fast mode's shard kernel: documents to framed TFRecords in one native pass (create's hot path).
//
// Purpose: what wwm_fast/shard.py's run_shard does between reading a shard and writing its file,
//   without the staged API's intermediate arrays:
//   * DocumentsFromLines -- Google's documents from tokenized lines (documents_from_encoding);
//   * ShardWriter -- BuildFast, the shard's write order (ShuffledOrder), then per instance *in
//     write order* its masks (MaskFastInstance, keyed by the instance: the predictions SampleMasks
//     gives) and its framed tf.train.Example (WriteRecord). The predictions are never stored:
//     an instance's masks are drawn when its record is written, one random access into the
//     corpus per instance instead of two.
//   The bytes equal build_instances + sample_masks + shuffled_order + serialize_instances, the
//   figures equal stats.count_corpus / count_instances (tests/test_fast_shard.py).
// Example: ShardWriter w(corpus, cfg, seed, shard);
//          while (!w.done()) fwrite(buf, 1, w.Next(buf, capacity, threads, &n), f);
// Args: the corpus and cfg.rand_ids are borrowed for the writer's lifetime. The writer builds its
//   instances itself from a corpus it checks (CheckCorpus), and checks each one again when it
//   orders them (CheckInstance); the records are then written from those checked ranges.
// Equivalent to: b"".join(serialize_instances(docs, sample_masks(docs, build_instances(docs,
//   ...)), shuffled_order(n, seed, shard), ...)), docs = documents_from_encoding(encoding).
// Complexity: O(tokens * dupe_factor) to build; O(max_seq_length + max_predictions) per record;
//   memory: the corpus, 40 bytes per instance, and per thread O(max_seq_length) of scratch.
#ifndef WWM_FAST_CSRC_FAST_SHARD_H_
#define WWM_FAST_CSRC_FAST_SHARD_H_

#include <cstddef>
#include <cstdint>

#include "corpus.h"
#include "instances.h"
#include "masking.h"
#include "pod_vector.h"
#include "tfrecord.h"

namespace wwm {

// Documents as owned flat arrays (the Corpus layout).
struct OwnedCorpus {
  PodVector<int32_t> ids;
  PodVector<uint8_t> word_start;
  PodVector<int64_t> sent_splits, doc_splits;

  Corpus View() const {
    return Corpus{ids.data(), word_start.data(), static_cast<int64_t>(ids.size()),
                  sent_splits.data(), static_cast<int64_t>(sent_splits.size()) - 1,
                  doc_splits.data(), static_cast<int64_t>(doc_splits.size()) - 1};
  }
};

// Google's documents from tokenized lines (wwm_fast.instances.documents_from_encoding): a blank
// line ends a document, a line without tokens is skipped without ending one, empty documents
// disappear. Takes the token ids (moved: the corpus ids are the lines' ids, in order);
// row_splits has n_lines + 1 non-decreasing entries ending at ids.size(), blank one flag per
// line. word_start: 1 for every token, or with `suffix` (a flag per id: the piece starts with
// "##"; n_suffix entries) 0 for a suffix piece (ids outside the table start a word).
// Throws std::invalid_argument when row_splits do not describe ids.
void DocumentsFromLines(PodVector<int32_t>&& ids, const PodVector<int64_t>& row_splits,
                        const PodVector<uint8_t>& blank, const uint8_t* suffix, int64_t n_suffix,
                        OwnedCorpus* out);

// What stats.count_corpus reports (lines and alignment fallbacks come from the caller).
struct CorpusFigures {
  int64_t documents = 0, corpus_tokens = 0, unk_tokens = 0, word_continuations = 0;
};
CorpusFigures CountCorpus(const Corpus& c, int32_t unk_id);

// What stats.count_instances reports.
struct InstanceFigures {
  int64_t instances = 0, instance_tokens = 0, random_next = 0, single_segment = 0;
  int64_t masked_tokens = 0, mask_replaced = 0, random_replaced = 0;
  int64_t group_hist[kWordSizeHistLen] = {};
};

class ShardWriter {
 public:
  // Builds the instances of one shard (BuildFast: throws std::invalid_argument on a bad corpus
  // or configuration) and puts them in write order. The instance figures are complete here; the
  // masking figures grow as records are written and are complete once done().
  ShardWriter(const Corpus& corpus, const BuildConfig& cfg, uint64_t seed, uint64_t shard);

  int64_t n_instances() const { return static_cast<int64_t>(records_.size()); }
  bool done() const { return next_ >= n_instances(); }
  const InstanceFigures& figures() const { return figures_; }
  // Upper bound of one framed record (+ the encoder's 4 bytes of slack): Next needs at least
  // this much room to make progress.
  size_t max_record_bytes() const { return bound_; }

  // Writes the records of the next instances into out[0, capacity) and returns the bytes
  // written; *n_done = how many (0 only when capacity < max_record_bytes()). Up to num_threads
  // threads (ResolveNumThreads) each write a contiguous run of records into their own region;
  // the bytes do not depend on the thread count or the capacity.
  size_t Next(uint8_t* out, size_t capacity, int num_threads, int64_t* n_done);

 private:
  struct Record {  // one instance, in write order
    int64_t a_start, b_start;
    uint64_t key;
    int32_t a_len, b_len;
    uint8_t next_label;
  };
  struct Scratch;
  // Records [begin, end) into out, which has room for (end - begin) * bound_ bytes.
  size_t WriteRange(int64_t begin, int64_t end, uint8_t* out, Scratch* s, InstanceFigures* f) const;

  Corpus corpus_;
  BuildConfig cfg_;
  WriteConfig write_cfg_;
  MaskConfig mask_cfg_;
  size_t bound_;
  PodVector<Record> records_;
  int64_t next_ = 0;
  InstanceFigures figures_;
};

}  // namespace wwm

#endif  // WWM_FAST_CSRC_FAST_SHARD_H_
