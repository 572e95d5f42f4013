// libFuzzer harness: ChineseConverter (csrc/chinese_convert.h) built from arbitrary dictionaries
// and programs, then converting arbitrary lines (csrc/FUZZING.md). Checks: the output offsets
// and blocks lie inside the input and output, blocks are ordered, outside them the lengths
// agree, statuses are known.
#include <stdexcept>
#include <vector>

#include "chinese_convert.h"
#include "fuzz_input.h"

namespace {

// Mostly a small alphabet (so that keys match), sometimes any value.
uint32_t CodePoint(wwm::FuzzInput* in) {
  static const uint32_t kAlphabet[] = {'a', 'b', 'x', 0x2FF0, 0x2FF1, 0x2FF2, 0x2FFE,
                                       0x20000, ' ', 0, 0xD800, '\n', 0xFFFF, 0x4E2D};
  const uint8_t sel = in->Take<uint8_t>();
  if (sel < 240) return kAlphabet[sel % 14];
  return in->Take<uint32_t>() % 0x110002;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wwm::FuzzInput in{data, size};
  const int n_dicts = static_cast<int>(in.Int(0, 3)) & 3;
  std::vector<std::vector<uint32_t>> keys(n_dicts), values(n_dicts);
  std::vector<std::vector<int64_t>> koff(n_dicts), voff(n_dicts);
  std::vector<wwm::ConvertDictInput> dicts;
  for (int d = 0; d < n_dicts; ++d) {
    const int n_keys = static_cast<int>(in.Int(0, 6)) & 7;
    koff[d].push_back(0);
    voff[d].push_back(0);
    for (int k = 0; k < n_keys; ++k) {
      const int kl = static_cast<int>(in.Int(0, 3)) & 3, vl = static_cast<int>(in.Int(0, 3)) & 3;
      for (int i = 0; i < kl; ++i) keys[d].push_back(CodePoint(&in));
      for (int i = 0; i < vl; ++i) values[d].push_back(CodePoint(&in));
      koff[d].push_back(static_cast<int64_t>(keys[d].size()));
      voff[d].push_back(static_cast<int64_t>(values[d].size()));
    }
    if (in.Take<uint8_t>() == 255 && n_keys > 0) koff[d][1] = in.Int(-2, 40);  // a bad offset
    dicts.push_back({keys[d].data(), koff[d].data(), n_keys,
                     static_cast<int64_t>(keys[d].size()), values[d].data(), voff[d].data(),
                     static_cast<int64_t>(values[d].size())});
  }
  std::vector<int32_t> program;
  const int n_prog = static_cast<int>(in.Int(0, 24)) & 31;
  for (int i = 0; i < n_prog; ++i) program.push_back(static_cast<int32_t>(in.Int(-1, 3)));
  std::vector<uint32_t> text;
  std::vector<int64_t> starts, ends;
  const int n_lines = static_cast<int>(in.Int(0, 6)) & 7;
  for (int l = 0; l < n_lines; ++l) {
    starts.push_back(static_cast<int64_t>(text.size()));
    const int len = static_cast<int>(in.Int(0, 12)) & 15;
    for (int i = 0; i < len; ++i) text.push_back(CodePoint(&in));
    ends.push_back(static_cast<int64_t>(text.size()));
  }
  std::vector<uint8_t> ws(64, 0);
  ws[' '] = ws['\n'] = 1;
  try {
    wwm::ChineseConverter conv(dicts, program.data(), static_cast<int64_t>(program.size()));
    wwm::ChineseConverter::CheckInput(text.data(), static_cast<int64_t>(text.size()),
                                      starts.data(), ends.data(), n_lines);
    wwm::ConvertOutput out;
    conv.Convert(text.data(), static_cast<int64_t>(text.size()), starts.data(), ends.data(),
                 n_lines, in.Take<uint8_t>() & 1 ? 10 : -1, ws.data(), 64, &out);
    FUZZ_CHECK(static_cast<int>(out.offsets.size()) == n_lines + 1);
    FUZZ_CHECK(static_cast<int>(out.status.size()) == n_lines);
    for (uint8_t s : out.status) FUZZ_CHECK(s <= 3);
    for (size_t b = 0; b + 5 <= out.blocks.size(); b += 5) {
      const int64_t* r = &out.blocks[b];
      FUZZ_CHECK(r[0] >= 0 && r[0] < n_lines && r[1] < r[2] && r[3] <= r[4]);
      FUZZ_CHECK(r[2] <= ends[r[0]] - starts[r[0]]);
    }
    FUZZ_CHECK(out.blocks.size() % 5 == 0);
    for (uint32_t c : out.text) FUZZ_CHECK(c <= 0x10FFFF);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
