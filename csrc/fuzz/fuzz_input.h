// Reads typed values off a libFuzzer input (shared by the harnesses; never built by setup.py).
#ifndef WWM_FAST_CSRC_FUZZ_FUZZ_INPUT_H_
#define WWM_FAST_CSRC_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace wwm {

struct FuzzInput {
  const uint8_t* p;
  size_t n;

  template <typename T>
  T Take() {  // zero once the input is used up
    T v{};
    const size_t k = n < sizeof(T) ? n : sizeof(T);
    std::memcpy(&v, p, k);
    p += k;
    n -= k;
    return v;
  }
  // Small values most of the time, the edge values of int64 sometimes.
  int64_t Int(int64_t lo, int64_t hi) {
    const uint8_t sel = Take<uint8_t>();
    if (sel >= 250) {
      static const int64_t edge[] = {INT64_MAX, INT64_MIN, int64_t{1} << 62, INT32_MAX, -1, 0};
      return edge[sel - 250];
    }
    const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int64_t>(Take<uint16_t>() % span);
  }
  bool Empty() const { return n == 0; }
};

// Takes byte 0's path (0-3) for a harness with four paths: its value mod 4, or, with
// WWM_FUZZ_PATHS set (e.g. "3" or "12"), one of those paths only, so that a run can drive one
// entry point alone (csrc/FUZZING.md). The default keeps a corpus's meaning in either kind of run.
inline int TakePath(FuzzInput& in) {
  static const std::string paths = [] {
    const char* env = std::getenv("WWM_FUZZ_PATHS");
    std::string p;
    for (const char* c = env ? env : ""; *c; ++c) {
      if (*c >= '0' && *c <= '3') p.push_back(*c);
    }
    return p.empty() ? std::string("0123") : p;
  }();
  return paths[in.Take<uint8_t>() % paths.size()] - '0';
}

// An invariant of a kernel's output failed: crash so that libFuzzer records the input.
#define FUZZ_CHECK(cond)    \
  do {                      \
    if (!(cond)) std::abort(); \
  } while (0)

}  // namespace wwm

#endif  // WWM_FAST_CSRC_FUZZ_FUZZ_INPUT_H_
