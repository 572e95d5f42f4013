// TFRecord writer: tf.train.Example serialization of BERT pre-training instances + framing.
//
// Purpose: the bytes run_pretraining.py reads, without TensorFlow or protobuf. Each instance is
//   one tf.train.Example with the seven features of Google's create_pretraining_data.py, always in
//   this order (so the bytes are deterministic): input_ids, input_mask, segment_ids [max_seq_length]
//   int64; masked_lm_positions, masked_lm_ids [max_predictions] int64; masked_lm_weights
//   [max_predictions] float; next_sentence_labels [1] int64. Lists are zero-padded.
//   Framing: uint64 length, uint32 masked CRC32C of the length, data, uint32 masked CRC32C of the
//   data (little endian; mask = ((crc >> 15) | (crc << 17)) + 0xa282ead8).
// Example: an instance [CLS] 中 [MASK] [SEP] 国 [SEP] with one prediction at position 2 ->
//   input_ids 101 704 103 102 1744 102 0 ..., masked_lm_positions 2 0 ..., masked_lm_weights 1 0 ...
// Args: the corpus ids and the instance set are borrowed; `order` lists the instances to write
//   (indices into the set); the caller owns the output buffer and reuses it chunk after chunk.
// Complexity: O(max_seq_length + max_predictions) per instance; CRC32C uses SSE4.2 when the CPU
//   has it (checked at run time), a slicing table otherwise.
#ifndef WWM_FAST_CSRC_TFRECORD_H_
#define WWM_FAST_CSRC_TFRECORD_H_

#include <cstddef>
#include <cstdint>

#include "corpus.h"
#include "pod_vector.h"

namespace wwm {

uint32_t Crc32c(const uint8_t* data, size_t n, uint32_t crc = 0);
inline uint32_t MaskCrc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8U; }

struct WriteConfig {
  int max_seq_length;   // in [2, kMaxSeqLength]
  int max_predictions;  // in [1, kMaxSeqLength]
  int32_t cls_id, sep_id;
  int64_t n_ids;  // length of the corpus ids (instances must lie inside)
};

// Throws std::invalid_argument naming the bad value.
void CheckWriteConfig(const WriteConfig& cfg);

// One example as WriteRecord encodes it.
struct RecordFields {
  const uint32_t* input_ids;  // max_seq_length values: the instance (masked ids shown), then 0s
  int length;                 // tokens of the instance: input_mask is 1 on [0, length)
  int b_first;                // segment_ids is 1 on [b_first, length); length when there is no B
  const uint32_t* positions;  // n_pred prediction positions, ascending
  const uint32_t* labels;     // n_pred original ids
  int n_pred;                 // <= max_predictions (the lists are zero-padded, weights 1 then 0)
  uint64_t next_label;
};

// Sizes of one record's parts (MeasureRecord).
struct RecordLayout {
  size_t payload[7];  // packed list bytes of each feature, in FEATURES order
  size_t features;    // length of Example.features
  size_t example;     // the serialized tf.train.Example
  bool small;         // every value < 2^21: varints are written four bytes at a time
  size_t framed() const { return example + 16; }  // with the length, the data and their CRCs
};

// Measures a record. Its fields must be consistent (0 <= b_first <= length <= max_seq_length,
// 0 <= n_pred <= max_predictions); the callers check their instances first.
void MeasureRecord(const RecordFields& r, const WriteConfig& cfg, RecordLayout* layout);

// Writes the framed record at out and returns the end (out + layout.framed()); needs
// layout.framed() + 4 bytes of room (small varints are stored four bytes at a time).
uint8_t* WriteRecord(const RecordFields& r, const WriteConfig& cfg, const RecordLayout& layout,
                     uint8_t* out);

// Writes framed records of instances order[0], order[1], ... into out[0, capacity) until the next
// one does not fit. Returns the bytes written; *n_done = how many instances were written (0 only
// when the first record alone needs more than `capacity`: the caller grows its buffer).
// Nothing in `set` or `order` is trusted: each instance written is checked first (an index
// outside the set, a range outside ids, more than max_seq_length tokens, a pred_splits pair that
// is not a range of the predictions, more than max_predictions: std::out_of_range /
// std::invalid_argument naming the instance and the values).
size_t SerializeInstances(const int32_t* ids, const InstanceView& set, const int64_t* order,
                          int64_t n_order, const WriteConfig& cfg, uint8_t* out, size_t capacity,
                          int64_t* n_done);

// Upper bound of one framed record's size for `cfg` (every varint at its widest).
size_t MaxRecordBytes(const WriteConfig& cfg);

// SerializeInstances split over `num_threads` threads (each writes a contiguous piece of `order`
// into its own region of `out`, sized by MaxRecordBytes; the regions are then closed up). Same
// bytes as the serial call for the instances written; may write fewer per call (a chunk holds at
// most capacity / MaxRecordBytes instances when threaded).
size_t SerializeInstancesParallel(const int32_t* ids, const InstanceView& set,
                                  const int64_t* order, int64_t n_order, const WriteConfig& cfg,
                                  uint8_t* out, size_t capacity, int num_threads,
                                  int64_t* n_done);

// Appends one framed record holding `data` (for callers that serialize elsewhere).
void FrameRecord(const uint8_t* data, size_t n, PodVector<uint8_t>* out);

}  // namespace wwm

#endif  // WWM_FAST_CSRC_TFRECORD_H_
