// The flat arrays every instance stage reads, and the checks that make them safe to read.
//
// Purpose: documents (Corpus) and instances described as token ranges of them (InstanceView)
//   are borrowed views of arrays that come from outside the kernels (a caller may build them by
//   hand), so no kernel trusts them: the corpus is checked once per call (CheckCorpus,
//   O(sentences + documents)), an instance when a kernel uses it (CheckInstance, O(1)). The
//   range checks cannot overflow: a start near 2^63 never wraps past the bound.
// Example: ids of 10 tokens, sent_splits 0 4 10, doc_splits 0 2 -> one document of two
//   sentences; an instance a_start 2, a_len 5, b_len 0 is [CLS] ids[2..7) [SEP] (7 tokens).
// Args: every pointer is borrowed for the duration of a call; nothing is owned.
// Complexity: CheckCorpus O(sentences + documents); CheckInstance O(1).
#ifndef WWM_FAST_CSRC_CORPUS_H_
#define WWM_FAST_CSRC_CORPUS_H_

#include <cstdint>

namespace wwm {

// Longest instance any kernel accepts ([CLS] A [SEP] B [SEP]): 2^20 tokens, far beyond any BERT
// (512) or long-context model, and small enough that every length fits an int with room to spare.
constexpr int kMaxSeqLength = 1 << 20;
// Longest sentence in a corpus: sums of a few sentences stay below 2^31 (int32 lengths).
constexpr int64_t kMaxSentenceTokens = int64_t{1} << 29;

// Documents as flat arrays: sentence s = ids [sent_splits[s], sent_splits[s+1]), document d =
// sentences [doc_splits[d], doc_splits[d+1]). Every sentence and document is non-empty.
struct Corpus {
  const int32_t* ids;
  const uint8_t* word_start;  // n_ids entries; 1 = token starts a whole word
  int64_t n_ids;
  const int64_t* sent_splits;  // n_sentences + 1
  int64_t n_sentences;
  const int64_t* doc_splits;  // n_documents + 1
  int64_t n_documents;
};

// Read-only view of instances: A = ids[a_start, a_start + a_len), B = ids[b_start, b_start +
// b_len) (b_len 0: no B); predictions of instance i = entries [pred_splits[i], pred_splits[i+1])
// of the three pred_* arrays, which have n_pred entries each.
struct InstanceView {
  const int64_t* a_start;
  const int32_t* a_len;
  const int64_t* b_start;
  const int32_t* b_len;
  const uint8_t* next_label;
  const uint64_t* key;         // may be null when not needed
  const int64_t* pred_splits;  // n + 1, may be null before masking
  const int32_t* pred_positions;
  const int32_t* pred_input_ids;
  const int32_t* pred_labels;
  int64_t n;
  int64_t n_pred;
};

// [CLS] A [SEP] (B [SEP]): in int64, so that no pair of int32 lengths can wrap.
inline int64_t InstanceLength(int64_t a_len, int64_t b_len) {
  return a_len + b_len + (b_len > 0 ? 3 : 2);
}

// True when [start, start + len) lies inside [0, n) (n >= 0); no overflow for any start, len.
inline bool RangeInside(int64_t start, int64_t len, int64_t n) {
  return start >= 0 && len >= 0 && len <= n && start <= n - len;
}

// Asks for every cache line of [p, p + bytes) (a hint: never faults, whatever the address).
inline void PrefetchRange(const void* p, int64_t bytes) {
  if (bytes <= 0) return;
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  const uintptr_t last = reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(bytes) - 1;
  for (uintptr_t a = first; a <= last; a += 64) {
    __builtin_prefetch(reinterpret_cast<const void*>(a));
  }
}

// Throws std::invalid_argument naming the first bad split (not starting at 0, not ending at the
// number of ids / sentences, an empty or unsorted sentence or document, a sentence longer than
// kMaxSentenceTokens).
void CheckCorpus(const Corpus& c);

[[noreturn]] void ThrowBadInstance(const InstanceView& v, int64_t i, int64_t n_ids,
                                   int max_seq_length);

// Instance i must read inside ids[0, n_ids) and have at most max_seq_length tokens; throws
// std::out_of_range / std::invalid_argument with the values otherwise.
inline void CheckInstance(const InstanceView& v, int64_t i, int64_t n_ids, int max_seq_length) {
  if (!RangeInside(v.a_start[i], v.a_len[i], n_ids) ||
      !RangeInside(v.b_start[i], v.b_len[i], n_ids) ||
      InstanceLength(v.a_len[i], v.b_len[i]) > max_seq_length) {
    ThrowBadInstance(v, i, n_ids, max_seq_length);
  }
}

}  // namespace wwm

#endif  // WWM_FAST_CSRC_CORPUS_H_
