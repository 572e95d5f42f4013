// libFuzzer harness: FullTokenizer + EncodeLines on arbitrary bytes (csrc/FUZZING.md).
// Byte 0 picks lower-casing, the UTF-8 error mode, \r stripping and 1 or 2 threads; the rest is
// the buffer, split into lines as GFile does. Checks: ids are vocab ids, row splits rise to the
// token count, every token's offsets are a non-empty range inside its line.
#include <memory>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "wordpiece.h"

namespace {

const std::vector<std::string> kKeys = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "ab", "##b", "##c", "##bc",
    "中", "国", "人", "##人", "中国", "，", "。", "!", "é", "##é", "σ", "ς", "ａ", "", "##"};

const wwm::FullTokenizer& Tokenizer(bool lower, int max_chars) {
  static std::unique_ptr<wwm::FullTokenizer> tok[2][2];
  auto& t = tok[lower][max_chars == 3];
  if (!t) {
    std::vector<int32_t> ids(kKeys.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    t = std::make_unique<wwm::FullTokenizer>(kKeys, ids, 1, lower, max_chars);
  }
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const char* text = reinterpret_cast<const char*>(data + 1);
  const size_t n = size - 1;
  const auto errors = (mode & 2) ? wwm::Utf8Errors::kStrict
                                 : (mode & 4) ? wwm::Utf8Errors::kSurrogatePass
                                              : wwm::Utf8Errors::kIgnore;
  const wwm::FullTokenizer& tok = Tokenizer(mode & 1, (mode & 8) ? 3 : 200);
  const std::vector<int64_t> splits = wwm::SplitLines(text, n);
  const int64_t n_lines = static_cast<int64_t>(splits.size()) - 1;
  wwm::EncodeOutput out;
  out.offsets = !(mode & 16);
  wwm::PodVector<int64_t> rows;
  wwm::PodVector<uint8_t> blank;
  const wwm::EncodeError err = wwm::EncodeLines(tok, text, splits.data(), n_lines, errors,
                                                mode & 32, (mode & 64) ? 2 : 1, &out, &rows,
                                                &blank);
  if (err.line >= 0) {
    FUZZ_CHECK(errors == wwm::Utf8Errors::kStrict && err.line < n_lines && err.length >= 1);
    return 0;
  }
  FUZZ_CHECK(static_cast<int64_t>(rows.size()) == n_lines + 1 && rows[0] == 0);
  FUZZ_CHECK(rows[n_lines] == static_cast<int64_t>(out.ids.size()));
  FUZZ_CHECK(static_cast<int64_t>(blank.size()) == n_lines);
  for (int32_t id : out.ids) FUZZ_CHECK(id >= 0 && id < static_cast<int32_t>(kKeys.size()));
  for (int64_t li = 0; li < n_lines; ++li) {
    FUZZ_CHECK(rows[li] <= rows[li + 1]);
    if (!out.offsets) continue;
    for (int64_t t = rows[li]; t < rows[li + 1]; ++t) {
      FUZZ_CHECK(0 <= out.starts[t] && out.starts[t] < out.ends[t]);
      FUZZ_CHECK(out.ends[t] <= splits[li + 1] - splits[li]);  // code points <= bytes
    }
  }
  return 0;
}
