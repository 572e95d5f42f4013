// libFuzzer harness: CheckAlignInput + AlignWords on arbitrary token and word spans and row
// splits (csrc/FUZZING.md). Checks: flags are 0/1 and the fallback count matches.
#include <stdexcept>
#include <vector>

#include "align.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wwm::FuzzInput in{data, size};
  const int n_tok = static_cast<int>(in.Int(0, 24)) & 63, n_word = static_cast<int>(in.Int(0, 16)) & 63;
  const int n_lines = static_cast<int>(in.Int(0, 4)) & 7;
  std::vector<int32_t> ts(n_tok), te(n_tok), ws(n_word), we(n_word);
  std::vector<uint8_t> sub(n_tok), word_start(n_tok), fallback(n_lines);
  for (int i = 0; i < n_tok; ++i) {
    ts[i] = static_cast<int32_t>(in.Int(-2, 30));
    te[i] = static_cast<int32_t>(in.Int(-2, 30));
    sub[i] = in.Take<uint8_t>() & 1;
  }
  for (int i = 0; i < n_word; ++i) {
    ws[i] = static_cast<int32_t>(in.Int(-2, 30));
    we[i] = static_cast<int32_t>(in.Int(-2, 30));
  }
  std::vector<int64_t> tsp(n_lines + 1), wsp(n_lines + 1);
  for (int i = 0; i <= n_lines; ++i) {
    tsp[i] = in.Int(-1, n_tok + 1);
    wsp[i] = in.Int(-1, n_word + 1);
  }
  if (in.Take<uint8_t>() & 1) {  // mostly well-formed splits, so the kernel itself is reached
    tsp.front() = wsp.front() = 0;
    tsp.back() = n_tok;
    wsp.back() = n_word;
    for (int i = 1; i <= n_lines; ++i) {
      if (tsp[i] < tsp[i - 1] || tsp[i] > n_tok) tsp[i] = tsp[i - 1];
      if (wsp[i] < wsp[i - 1] || wsp[i] > n_word) wsp[i] = wsp[i - 1];
    }
    tsp.back() = n_tok;
    wsp.back() = n_word;
  }
  const wwm::AlignInput a{ts.data(), te.data(), sub.data(), tsp.data(),
                          ws.data(), we.data(), wsp.data(), n_lines};
  try {
    wwm::CheckAlignInput(a, n_tok, n_word);
    const int64_t n = wwm::AlignWords(a, (in.Take<uint8_t>() & 1) + 1, word_start.data(),
                                      fallback.data());
    int64_t count = 0;
    for (uint8_t f : fallback) {
      FUZZ_CHECK(f <= 1);
      count += f;
    }
    FUZZ_CHECK(count == n);
    for (uint8_t f : word_start) FUZZ_CHECK(f <= 1);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
