// Random number generators of the instance builders.
//
// Purpose:
//   PyRandom  -- CPython's random.Random, bit for bit (MT19937 seeded by init_by_array, random(),
//                getrandbits, _randbelow, shuffle), so compat mode replays Google's
//                create_pretraining_data.py exactly (BERT_DATA_SPEC §2.4).
//   KeyedRng  -- a counter-based stream: output n of stream `key` is SplitMix64's finaliser of
//                key + n * golden_gamma. Streams are keyed by (seed, shard, document, pass, ...),
//                so any instance's randomness is independent of which worker computes it.
// Example: PyRandom r({12345}); r.Random() == random.Random(12345).random().
// Both expose the same interface (Random(), RandBelow(n), RandInt(a, b)), so the sampler and the
//   builder are written once as templates over the generator.
// Complexity: O(1) per draw (MT19937 regenerates its 624-word state every 624 draws).
#ifndef WWM_FAST_CSRC_RANDOM_H_
#define WWM_FAST_CSRC_RANDOM_H_

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace wwm {

class PyRandom {
 public:
  // key: the 32-bit little-endian words of abs(seed), at least one word (CPython random_seed).
  explicit PyRandom(const std::vector<uint32_t>& key) {
    InitGenrand(19650218U);
    uint32_t i = 1, j = 0;
    const uint32_t key_length = static_cast<uint32_t>(key.empty() ? 1 : key.size());
    for (uint32_t k = (kN > key_length ? kN : key_length); k; --k) {
      const uint32_t kj = key.empty() ? 0 : key[j];
      mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + kj + j;
      ++i;
      ++j;
      if (i >= kN) {
        mt_[0] = mt_[kN - 1];
        i = 1;
      }
      if (j >= key_length) j = 0;
    }
    for (uint32_t k = kN - 1; k; --k) {
      mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - i;
      ++i;
      if (i >= kN) {
        mt_[0] = mt_[kN - 1];
        i = 1;
      }
    }
    mt_[0] = 0x80000000U;
  }

  uint32_t Genrand() {
    if (mti_ >= kN) Regenerate();
    uint32_t y = mt_[mti_++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= (y >> 18);
    return y;
  }

  // random.random(): 53-bit float from two 32-bit outputs.
  double Random() {
    const uint32_t a = Genrand() >> 5, b = Genrand() >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
  }

  // Random() < 0.5, drawing exactly what Random() draws: the 53-bit value is below 2^52 exactly
  // when the first word's top bit is clear.
  bool RandomBelowHalf() {
    const uint32_t a = Genrand();
    Genrand();
    return (a >> 31) == 0;
  }

  // random.getrandbits(k) for 0 <= k <= 64.
  uint64_t GetRandBits(int k) {
    if (k <= 0) return 0;
    if (k <= 32) return Genrand() >> (32 - k);
    const uint64_t lo = Genrand();
    const uint64_t hi = Genrand() >> (64 - k);
    return lo | (hi << 32);
  }

  // random._randbelow(n) (n > 0): rejection sampling on bit_length(n) bits.
  uint64_t RandBelow(uint64_t n) {
    int k = 0;
    for (uint64_t v = n; v; v >>= 1) ++k;
    uint64_t r = GetRandBits(k);
    while (r >= n) r = GetRandBits(k);
    return r;
  }

  // random.randint(a, b), inclusive.
  int64_t RandInt(int64_t a, int64_t b) {
    return a + static_cast<int64_t>(RandBelow(static_cast<uint64_t>(b - a + 1)));
  }

 private:
  static constexpr uint32_t kN = 624, kM = 397;

  void InitGenrand(uint32_t s) {
    mt_[0] = s;
    for (uint32_t i = 1; i < kN; ++i) {
      mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + i;
    }
    mti_ = kN;
  }

  void Regenerate() {
    static const uint32_t mag01[2] = {0x0U, 0x9908b0dfU};
    uint32_t kk = 0, y;
    for (; kk < kN - kM; ++kk) {
      y = (mt_[kk] & 0x80000000U) | (mt_[kk + 1] & 0x7fffffffU);
      mt_[kk] = mt_[kk + kM] ^ (y >> 1) ^ mag01[y & 0x1U];
    }
    for (; kk < kN - 1; ++kk) {
      y = (mt_[kk] & 0x80000000U) | (mt_[kk + 1] & 0x7fffffffU);
      mt_[kk] = mt_[kk + (kM - kN)] ^ (y >> 1) ^ mag01[y & 0x1U];
    }
    y = (mt_[kN - 1] & 0x80000000U) | (mt_[0] & 0x7fffffffU);
    mt_[kN - 1] = mt_[kM - 1] ^ (y >> 1) ^ mag01[y & 0x1U];
    mti_ = 0;
  }

  uint32_t mt_[kN];
  uint32_t mti_ = kN + 1;
};

inline uint64_t SplitMix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Key of a stream from a parent key and one more coordinate (order matters).
inline uint64_t DeriveKey(uint64_t parent, uint64_t coordinate) {
  return SplitMix64(parent ^ SplitMix64(coordinate + 0x9E3779B97F4A7C15ULL));
}

class KeyedRng {
 public:
  explicit KeyedRng(uint64_t key) : key_(key) {}

  uint64_t Next() { return SplitMix64(key_ + (++counter_) * 0x9E3779B97F4A7C15ULL); }

  // Uniform in [0, 1) with 53 random bits.
  double Random() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }

  // Random() < 0.5 from the same draw: (x >> 11) < 2^52 exactly when x < 2^63.
  bool RandomBelowHalf() { return (Next() >> 63) == 0; }

  // Uniform in [0, n), unbiased (Lemire's multiply-shift with rejection), n > 0.
  uint64_t RandBelow(uint64_t n) {
    uint64_t x = Next();
    __uint128_t m = static_cast<__uint128_t>(x) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = -n % n;
      while (low < threshold) {
        x = Next();
        m = static_cast<__uint128_t>(x) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  int64_t RandInt(int64_t a, int64_t b) {
    return a + static_cast<int64_t>(RandBelow(static_cast<uint64_t>(b - a + 1)));
  }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

// Python's random.shuffle on any random-access sequence with the given generator.
template <typename Rng, typename T>
void Shuffle(Rng& rng, T* data, size_t n) {
  for (size_t i = n; i-- > 1;) {
    const size_t j = static_cast<size_t>(rng.RandBelow(i + 1));
    T tmp = data[i];
    data[i] = data[j];
    data[j] = tmp;
  }
}

}  // namespace wwm

#endif  // WWM_FAST_CSRC_RANDOM_H_
