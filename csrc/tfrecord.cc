#include "tfrecord.h"

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

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
__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(const uint8_t* p, size_t n,
                                                          uint32_t crc) {
  uint64_t c = ~crc;
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

void SerializeInstances(const int32_t* ids, const InstanceView& set, const int64_t* order,
                        int64_t n_order, const WriteConfig& cfg, PodVector<uint8_t>* out) {
  const int S = cfg.max_seq_length, P = cfg.max_predictions;
  const int64_t n_set = set.n;
  std::vector<uint64_t> input_ids(S), input_mask(S), segment_ids(S);
  std::vector<uint64_t> positions(P), labels(P);
  std::vector<float> weights(P);
  // Worst case per record: 10-byte varints everywhere plus headers.
  const size_t max_record = static_cast<size_t>(S) * 3 * 10 + static_cast<size_t>(P) * 24 + 512;
  std::vector<uint8_t> buf(max_record);
  for (int64_t k = 0; k < n_order; ++k) {
    const int64_t i = order[k];
    if (i < 0 || i >= n_set) {
      throw std::out_of_range("instance index " + std::to_string(i) + " out of range [0, " +
                              std::to_string(n_set) + ")");
    }
    const int32_t a_len = set.a_len[i], b_len = set.b_len[i];
    const bool pair = b_len > 0;
    const int length = a_len + b_len + (pair ? 3 : 2);
    if (length > S) {
      throw std::invalid_argument("instance " + std::to_string(i) + " has " +
                                  std::to_string(length) + " tokens > max_seq_length " +
                                  std::to_string(S));
    }
    const int64_t p0 = set.pred_splits[i], p1 = set.pred_splits[i + 1];
    if (p1 - p0 > P) {
      throw std::invalid_argument("instance " + std::to_string(i) + " has " +
                                  std::to_string(p1 - p0) + " predictions > max_predictions " +
                                  std::to_string(P));
    }
    // input_ids / input_mask / segment_ids
    int t = 0;
    input_ids[t] = static_cast<uint64_t>(cfg.cls_id);
    segment_ids[t++] = 0;
    for (int32_t j = 0; j < a_len; ++j, ++t) {
      input_ids[t] = static_cast<uint64_t>(ids[set.a_start[i] + j]);
      segment_ids[t] = 0;
    }
    input_ids[t] = static_cast<uint64_t>(cfg.sep_id);
    segment_ids[t++] = 0;
    if (pair) {
      for (int32_t j = 0; j < b_len; ++j, ++t) {
        input_ids[t] = static_cast<uint64_t>(ids[set.b_start[i] + j]);
        segment_ids[t] = 1;
      }
      input_ids[t] = static_cast<uint64_t>(cfg.sep_id);
      segment_ids[t++] = 1;
    }
    for (int j = 0; j < S; ++j) input_mask[j] = j < length ? 1 : 0;
    for (int j = length; j < S; ++j) input_ids[j] = segment_ids[j] = 0;
    const int n_pred = static_cast<int>(p1 - p0);
    for (int j = 0; j < P; ++j) {
      if (j < n_pred) {
        const int32_t pos = set.pred_positions[p0 + j];
        if (pos <= 0 || pos >= length) {
          throw std::out_of_range("instance " + std::to_string(i) + ": prediction position " +
                                  std::to_string(pos) + " outside the tokens [1, " +
                                  std::to_string(length) + ")");
        }
        input_ids[pos] = static_cast<uint64_t>(set.pred_input_ids[p0 + j]);
        positions[j] = static_cast<uint64_t>(pos);
        labels[j] = static_cast<uint64_t>(set.pred_labels[p0 + j]);
        weights[j] = 1.0f;
      } else {
        positions[j] = labels[j] = 0;
        weights[j] = 0.0f;
      }
    }
    const uint64_t nsp = set.next_label[i];

    auto payload = [](const std::vector<uint64_t>& v) {
      size_t s = 0;
      for (uint64_t x : v) s += VarintSize(x);
      return s;
    };
    const size_t pay[7] = {payload(input_ids), static_cast<size_t>(S), static_cast<size_t>(S),
                           payload(positions), payload(labels), static_cast<size_t>(P) * 4,
                           static_cast<size_t>(VarintSize(nsp))};
    // input_mask and segment_ids are 0/1: one byte each.
    size_t features = 0;
    for (int f = 0; f < 7; ++f) {
      const size_t entry = EntrySize(kKeys[f].size, pay[f]);
      features += 1 + VarintSize(entry) + entry;
    }
    const size_t example = 1 + VarintSize(features) + features;
    if (example > buf.size()) buf.resize(example);
    uint8_t* p = buf.data();
    *p++ = 0x0A;  // Example.features
    p = PutVarint(p, features);
    const std::vector<uint64_t>* lists[7] = {&input_ids, &input_mask, &segment_ids, &positions,
                                             &labels, nullptr, nullptr};
    for (int f = 0; f < 7; ++f) {
      p = PutEntryHeader(p, kKeys[f], pay[f], f == 5);
      if (f == 5) {
        std::memcpy(p, weights.data(), static_cast<size_t>(P) * 4);
        p += static_cast<size_t>(P) * 4;
      } else if (f == 6) {
        p = PutVarint(p, nsp);
      } else {
        for (uint64_t x : *lists[f]) p = PutVarint(p, x);
      }
    }
    FrameRecord(buf.data(), static_cast<size_t>(p - buf.data()), out);
  }
}

}  // namespace wwm
