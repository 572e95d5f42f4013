#include "tfrecord.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "corpus.h"
#include "parallel.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace wwm {
namespace {

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8 tables.
struct Crc32cTables {
  uint32_t t[8][256];
  Crc32cTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78U & (0U - (c & 1U)));
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
  }
};

uint32_t Crc32cSoftware(const uint8_t* p, size_t n, uint32_t crc) {
  static const Crc32cTables tables;
  const auto& t = tables.t;
  crc = ~crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    v ^= crc;
    crc = t[7][v & 0xFF] ^ t[6][(v >> 8) & 0xFF] ^ t[5][(v >> 16) & 0xFF] ^
          t[4][(v >> 24) & 0xFF] ^ t[3][(v >> 32) & 0xFF] ^ t[2][(v >> 40) & 0xFF] ^
          t[1][(v >> 48) & 0xFF] ^ t[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
  return ~crc;
}

#if defined(__x86_64__)
// Hardware CRC32C (SSE4.2 crc32). The instruction's latency is 3 cycles and its throughput one
// per cycle, so long inputs run three independent streams over consecutive blocks of kBlock
// bytes and join them: crc(A B C) = shift(shift(crc(A), |B|) ^ crc0(B), |C|) ^ crc0(C), where
// crc0 starts from a zero state and shift(c, n) is the state after n zero bytes, a linear map
// of c applied with four 256-entry tables (built once from the byte-at-a-time definition).
constexpr size_t kBlock = 256;

struct Crc32cShift {
  uint32_t t[4][256];
  Crc32cShift() {
    uint32_t basis[32];  // the image of each single bit of the state (the map is linear)
    for (int bit = 0; bit < 32; ++bit) {
      uint32_t c = 1U << bit;
      for (size_t i = 0; i < 8 * kBlock; ++i) c = (c >> 1) ^ (0x82F63B78U & (0U - (c & 1U)));
      basis[bit] = c;
    }
    for (int k = 0; k < 4; ++k) {
      for (uint32_t b = 0; b < 256; ++b) {
        uint32_t c = 0;
        for (int bit = 0; bit < 8; ++bit) {
          if ((b >> bit) & 1U) c ^= basis[8 * k + bit];
        }
        t[k][b] = c;
      }
    }
  }
  uint32_t operator()(uint32_t c) const {
    return t[0][c & 0xFF] ^ t[1][(c >> 8) & 0xFF] ^ t[2][(c >> 16) & 0xFF] ^ t[3][c >> 24];
  }
};

__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(const uint8_t* p, size_t n,
                                                          uint32_t crc) {
  uint64_t c = ~crc & 0xFFFFFFFFU;
  if (n >= 3 * kBlock) {
    static const Crc32cShift shift;
    while (n >= 3 * kBlock) {
      uint64_t c1 = 0, c2 = 0;
      for (size_t i = 0; i < kBlock; i += 8) {
        uint64_t v0, v1, v2;
        std::memcpy(&v0, p + i, 8);
        std::memcpy(&v1, p + kBlock + i, 8);
        std::memcpy(&v2, p + 2 * kBlock + i, 8);
        c = _mm_crc32_u64(c, v0);
        c1 = _mm_crc32_u64(c1, v1);
        c2 = _mm_crc32_u64(c2, v2);
      }
      c = shift(shift(static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c1)) ^
          static_cast<uint32_t>(c2);
      p += 3 * kBlock;
      n -= 3 * kBlock;
    }
  }
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}

bool HasSse42() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

inline int VarintSize(uint64_t v) {
  int n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Branch-free varint of a value < 2^21 (every vocab id, position and label here): one unaligned
// 4-byte store; the caller's buffer always has 3 bytes of slack after a record.
inline uint8_t* PutSmallVarint(uint8_t* p, uint32_t v) {
  const uint32_t len = 1 + (v >= 0x80) + (v >= 0x4000);
  const uint32_t b0 = (v & 0x7F) | ((len > 1) << 7);
  const uint32_t b1 = ((v >> 7) & 0x7F) | ((len > 2) << 7);
  const uint32_t b2 = v >> 14;
  const uint32_t packed = b0 | (b1 << 8) | (b2 << 16);
  std::memcpy(p, &packed, 4);
  return p + len;
}

inline uint8_t* PutVarint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}

struct FeatureKey {
  const char* name;
  size_t size;
};
constexpr FeatureKey kKeys[7] = {
    {"input_ids", 9},           {"input_mask", 10},      {"segment_ids", 11},
    {"masked_lm_positions", 19}, {"masked_lm_ids", 13},  {"masked_lm_weights", 17},
    {"next_sentence_labels", 20},
};

// Size of a map entry (key + Feature) whose Feature holds a packed list of `payload` bytes.
inline size_t EntrySize(size_t key_size, size_t payload) {
  const size_t list = 1 + VarintSize(payload) + payload;  // Int64List / FloatList
  const size_t feature = 1 + VarintSize(list) + list;     // Feature (oneof field 2 or 3)
  return 1 + VarintSize(key_size) + key_size + 1 + VarintSize(feature) + feature;
}

// Writes "feature { key: name value { int64_list|float_list { value: [...] } } }" (the map entry
// framed as Features.feature = field 1).
inline uint8_t* PutEntryHeader(uint8_t* p, const FeatureKey& key, size_t payload, bool is_float) {
  const size_t list = 1 + VarintSize(payload) + payload;
  const size_t feature = 1 + VarintSize(list) + list;
  const size_t entry = 1 + VarintSize(key.size) + key.size + 1 + VarintSize(feature) + feature;
  *p++ = 0x0A;  // Features.feature (map entry), length-delimited
  p = PutVarint(p, entry);
  *p++ = 0x0A;  // entry.key
  p = PutVarint(p, key.size);
  std::memcpy(p, key.name, key.size);
  p += key.size;
  *p++ = 0x12;  // entry.value (Feature)
  p = PutVarint(p, feature);
  *p++ = is_float ? 0x12 : 0x1A;  // Feature.float_list = 2 / Feature.int64_list = 3
  p = PutVarint(p, list);
  *p++ = 0x0A;  // List.value, packed
  p = PutVarint(p, payload);
  return p;
}

}  // namespace

uint32_t Crc32c(const uint8_t* data, size_t n, uint32_t crc) {
#if defined(__x86_64__)
  if (HasSse42()) return Crc32cHardware(data, n, crc);
#endif
  return Crc32cSoftware(data, n, crc);
}

void FrameRecord(const uint8_t* data, size_t n, PodVector<uint8_t>* out) {
  const size_t at = out->size();
  out->resize_uninitialized(at + 8 + 4 + n + 4);
  uint8_t* p = out->data() + at;
  const uint64_t len = n;
  std::memcpy(p, &len, 8);  // little-endian hosts only (x86-64, aarch64)
  const uint32_t len_crc = MaskCrc(Crc32c(p, 8));
  std::memcpy(p + 8, &len_crc, 4);
  std::memcpy(p + 12, data, n);
  const uint32_t data_crc = MaskCrc(Crc32c(data, n));
  std::memcpy(p + 12 + n, &data_crc, 4);
}

void CheckWriteConfig(const WriteConfig& cfg) {
  if (cfg.max_seq_length < 2 || cfg.max_seq_length > kMaxSeqLength) {
    throw std::invalid_argument("max_seq_length must be in [2, " + std::to_string(kMaxSeqLength) +
                                "], got " + std::to_string(cfg.max_seq_length));
  }
  if (cfg.max_predictions < 1 || cfg.max_predictions > kMaxSeqLength) {
    throw std::invalid_argument("max_predictions_per_seq must be in [1, " +
                                std::to_string(kMaxSeqLength) + "], got " +
                                std::to_string(cfg.max_predictions));
  }
  if (cfg.n_ids < 0) throw std::invalid_argument("n_ids must be >= 0");
}

namespace {

// Sum of the varint sizes of v[0, n) and the OR of the values (for the "all < 2^21" test).
inline size_t VarintBytes(const uint32_t* v, int n, uint32_t* max_or) {
  size_t s = static_cast<size_t>(n);
  uint32_t m = 0;
  for (int j = 0; j < n; ++j) {
    s += (v[j] >= 0x80) + (v[j] >= 0x4000) + (v[j] >= 0x200000) + (v[j] >= 0x10000000);
    m |= v[j];
  }
  *max_or |= m;
  return s;
}

inline uint8_t* PutValues(uint8_t* p, const uint32_t* v, int n, bool small) {
  if (small) {
    for (int j = 0; j < n; ++j) p = PutSmallVarint(p, v[j]);
  } else {
    for (int j = 0; j < n; ++j) p = PutVarint(p, v[j]);
  }
  return p;
}

}  // namespace

void MeasureRecord(const RecordFields& r, const WriteConfig& cfg, RecordLayout* out) {
  const int S = cfg.max_seq_length, P = cfg.max_predictions;
  uint32_t max_or = 0;
  size_t* pay = out->payload;
  pay[0] = VarintBytes(r.input_ids, S, &max_or);
  pay[1] = static_cast<size_t>(S);  // input_mask and segment_ids are 0/1: one byte each
  pay[2] = static_cast<size_t>(S);
  pay[3] = VarintBytes(r.positions, r.n_pred, &max_or) + static_cast<size_t>(P - r.n_pred);
  pay[4] = VarintBytes(r.labels, r.n_pred, &max_or) + static_cast<size_t>(P - r.n_pred);
  pay[5] = static_cast<size_t>(P) * 4;
  pay[6] = static_cast<size_t>(VarintSize(r.next_label));
  out->small = max_or < 0x200000;  // (an OR bound: all values < 2^21)
  size_t features = 0;
  for (int f = 0; f < 7; ++f) {
    const size_t entry = EntrySize(kKeys[f].size, pay[f]);
    features += 1 + VarintSize(entry) + entry;
  }
  out->features = features;
  out->example = 1 + VarintSize(features) + features;
}

uint8_t* WriteRecord(const RecordFields& r, const WriteConfig& cfg, const RecordLayout& layout,
                     uint8_t* out) {
  const int S = cfg.max_seq_length, P = cfg.max_predictions;
  const size_t* pay = layout.payload;
  const bool small = layout.small;
  const uint64_t len = layout.example;
  std::memcpy(out, &len, 8);  // little-endian hosts only (x86-64, aarch64)
  const uint32_t len_crc = MaskCrc(Crc32c(out, 8));
  std::memcpy(out + 8, &len_crc, 4);
  uint8_t* const data = out + 12;
  uint8_t* p = data;
  *p++ = 0x0A;  // Example.features
  p = PutVarint(p, layout.features);
  p = PutEntryHeader(p, kKeys[0], pay[0], false);
  p = PutValues(p, r.input_ids, S, small);
  p = PutEntryHeader(p, kKeys[1], pay[1], false);  // input_mask
  std::memset(p, 1, r.length);
  std::memset(p + r.length, 0, S - r.length);
  p += S;
  p = PutEntryHeader(p, kKeys[2], pay[2], false);  // segment_ids
  std::memset(p, 0, r.b_first);
  std::memset(p + r.b_first, 1, r.length - r.b_first);
  std::memset(p + r.length, 0, S - r.length);
  p += S;
  const size_t pad = static_cast<size_t>(P - r.n_pred);
  p = PutEntryHeader(p, kKeys[3], pay[3], false);  // masked_lm_positions
  p = PutValues(p, r.positions, r.n_pred, small);
  std::memset(p, 0, pad);
  p += pad;
  p = PutEntryHeader(p, kKeys[4], pay[4], false);  // masked_lm_ids
  p = PutValues(p, r.labels, r.n_pred, small);
  std::memset(p, 0, pad);
  p += pad;
  p = PutEntryHeader(p, kKeys[5], pay[5], true);  // masked_lm_weights: 1.0 per prediction
  const float one = 1.0f;
  for (int j = 0; j < r.n_pred; ++j) std::memcpy(p + 4 * j, &one, 4);
  std::memset(p + 4 * r.n_pred, 0, 4 * pad);
  p += static_cast<size_t>(P) * 4;
  p = PutEntryHeader(p, kKeys[6], pay[6], false);
  p = PutVarint(p, r.next_label);
  const uint32_t data_crc = MaskCrc(Crc32c(data, layout.example));
  std::memcpy(p, &data_crc, 4);
  return p + 4;
}

size_t SerializeInstances(const int32_t* ids, const InstanceView& set, const int64_t* order,
                          int64_t n_order, const WriteConfig& cfg, uint8_t* out, size_t capacity,
                          int64_t* n_done) {
  CheckWriteConfig(cfg);
  if (set.n > 0 && set.pred_splits == nullptr) {
    throw std::invalid_argument("instances have no predictions (pred_splits)");
  }
  const int S = cfg.max_seq_length, P = cfg.max_predictions;
  const int64_t n_set = set.n;
  std::vector<uint32_t> input_ids(S);  // vocab ids are non-negative int32
  std::vector<uint32_t> positions(P), labels(P);
  size_t used = 0;
  int64_t k = 0;
  // Instances come in shuffled order: fetch the corpus ranges a few instances ahead, or every
  // instance starts with cache misses.
  // Two stages: the descriptors of instance k + 2*kAhead first (their loads must not stall the
  // second stage), then the token and prediction ranges of instance k + kAhead. Prefetching
  // never faults, but only addresses inside the arrays are formed (the instance is checked
  // when its turn comes).
  constexpr int64_t kAhead = 6;
  auto prefetch_descriptor = [&](int64_t kk) {
    if (kk >= n_order) return;
    const int64_t j = order[kk];
    if (j < 0 || j >= n_set) return;
    __builtin_prefetch(set.a_start + j);
    __builtin_prefetch(set.a_len + j);
    __builtin_prefetch(set.b_start + j);
    __builtin_prefetch(set.b_len + j);
    __builtin_prefetch(set.pred_splits + j);
    __builtin_prefetch(set.next_label + j);
  };
  auto prefetch_data = [&](int64_t kk) {
    if (kk >= n_order) return;
    const int64_t j = order[kk];
    if (j < 0 || j >= n_set) return;
    if (RangeInside(set.a_start[j], set.a_len[j], cfg.n_ids)) {
      PrefetchRange(ids + set.a_start[j], int64_t{4} * set.a_len[j]);
    }
    if (RangeInside(set.b_start[j], set.b_len[j], cfg.n_ids)) {
      PrefetchRange(ids + set.b_start[j], int64_t{4} * set.b_len[j]);
    }
    const int64_t p = set.pred_splits[j];
    if (p >= 0 && p < set.n_pred) {
      __builtin_prefetch(set.pred_positions + p);
      __builtin_prefetch(set.pred_input_ids + p);
      __builtin_prefetch(set.pred_labels + p);
    }
  };
  for (int64_t kk = 0; kk < 2 * kAhead; ++kk) prefetch_descriptor(kk);
  for (int64_t kk = 0; kk < kAhead; ++kk) prefetch_data(kk);
  for (; k < n_order; ++k) {
    prefetch_descriptor(k + 2 * kAhead);
    prefetch_data(k + kAhead);
    const int64_t i = order[k];
    if (i < 0 || i >= n_set) {
      throw std::out_of_range("instance index " + std::to_string(i) + " out of range [0, " +
                              std::to_string(n_set) + ")");
    }
    CheckInstance(set, i, cfg.n_ids, S);  // ranges inside ids, length <= S
    const int32_t a_len = set.a_len[i], b_len = set.b_len[i];
    const bool pair = b_len > 0;
    const int length = static_cast<int>(InstanceLength(a_len, b_len));  // <= S
    const int64_t p0 = set.pred_splits[i], p1 = set.pred_splits[i + 1];
    if (p0 < 0 || p1 < p0 || p1 > set.n_pred) {
      throw std::out_of_range("instance " + std::to_string(i) + ": pred_splits[" +
                              std::to_string(i) + ":" + std::to_string(i + 2) + "] = " +
                              std::to_string(p0) + ", " + std::to_string(p1) +
                              " is not a range of the " + std::to_string(set.n_pred) +
                              " predictions (pred_splits must be non-decreasing)");
    }
    if (p1 - p0 > P) {
      throw std::invalid_argument("instance " + std::to_string(i) + " has " +
                                  std::to_string(p1 - p0) + " predictions > max_predictions " +
                                  std::to_string(P));
    }
    const int n_pred = static_cast<int>(p1 - p0);
    // input_ids: [CLS] A [SEP] (B [SEP]) then zeros, masked positions replaced.
    uint32_t* in = input_ids.data();
    int t = 0;
    in[t++] = static_cast<uint32_t>(cfg.cls_id);
    if (a_len > 0) std::memcpy(in + t, ids + set.a_start[i], sizeof(int32_t) * a_len);
    t += a_len;
    in[t++] = static_cast<uint32_t>(cfg.sep_id);
    const int b_first = t;
    if (pair) {
      std::memcpy(in + t, ids + set.b_start[i], sizeof(int32_t) * b_len);
      t += b_len;
      in[t++] = static_cast<uint32_t>(cfg.sep_id);
    }
    std::memset(in + length, 0, sizeof(uint32_t) * (S - length));
    for (int j = 0; j < n_pred; ++j) {
      const int32_t pos = set.pred_positions[p0 + j];
      if (pos <= 0 || pos >= length) {
        throw std::out_of_range("instance " + std::to_string(i) + ": prediction position " +
                                std::to_string(pos) + " outside the tokens [1, " +
                                std::to_string(length) + ")");
      }
      in[pos] = static_cast<uint32_t>(set.pred_input_ids[p0 + j]);
      positions[j] = static_cast<uint32_t>(pos);
      labels[j] = static_cast<uint32_t>(set.pred_labels[p0 + j]);
    }
    const RecordFields r{in, length, pair ? b_first : length, positions.data(), labels.data(),
                         n_pred, set.next_label[i]};
    RecordLayout layout;
    MeasureRecord(r, cfg, &layout);
    if (used + layout.framed() + 4 > capacity) break;  // the caller writes this chunk, comes back
    used = static_cast<size_t>(WriteRecord(r, cfg, layout, out + used) - out);
  }
  *n_done = k;
  return used;
}

size_t MaxRecordBytes(const WriteConfig& cfg) {
  CheckWriteConfig(cfg);
  // every value a 5-byte varint (ids are non-negative int32), the NSP label a 10-byte one
  const size_t S = static_cast<size_t>(cfg.max_seq_length);
  const size_t P = static_cast<size_t>(cfg.max_predictions);
  const size_t pay[7] = {5 * S, S, S, 5 * P, 5 * P, 4 * P, 10};
  size_t features = 0;
  for (int f = 0; f < 7; ++f) {
    const size_t entry = EntrySize(kKeys[f].size, pay[f]);
    features += 1 + VarintSize(entry) + entry;
  }
  return 1 + VarintSize(features) + features + 16 + 4;
}

size_t SerializeInstancesParallel(const int32_t* ids, const InstanceView& set,
                                  const int64_t* order, int64_t n_order, const WriteConfig& cfg,
                                  uint8_t* out, size_t capacity, int num_threads,
                                  int64_t* n_done) {
  const size_t bound = MaxRecordBytes(cfg);
  const int64_t n_fit = std::min<int64_t>(n_order, static_cast<int64_t>(capacity / bound));
  constexpr int64_t kMinPerThread = 256;  // below this a thread costs more than it saves
  const int threads = static_cast<int>(
      std::min<int64_t>(ResolveNumThreads(num_threads), n_fit / kMinPerThread));
  if (threads <= 1) return SerializeInstances(ids, set, order, n_order, cfg, out, capacity, n_done);
  // Thread t writes order[begin_t, end_t) into its own region, sized by the record bound so that
  // the whole piece always fits; the regions are then closed up in order.
  std::vector<size_t> used(threads);
  std::vector<int64_t> done(threads);
  ParallelFor(threads, [&](int t) {
    const int64_t begin = n_fit * t / threads, end = n_fit * (t + 1) / threads;
    used[t] = SerializeInstances(ids, set, order + begin, end - begin, cfg,
                                 out + static_cast<size_t>(begin) * bound,
                                 static_cast<size_t>(end - begin) * bound, &done[t]);
  });
  size_t total = 0;
  int64_t n = 0;
  for (int t = 0; t < threads; ++t) {
    const int64_t begin = n_fit * t / threads, end = n_fit * (t + 1) / threads;
    if (t > 0) std::memmove(out + total, out + static_cast<size_t>(begin) * bound, used[t]);
    total += used[t];
    n += done[t];
    if (done[t] != end - begin) break;  // cannot happen with a true bound; keep the prefix
  }
  *n_done = n;
  return total;
}

}  // namespace wwm
