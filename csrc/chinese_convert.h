// Dictionary conversion of Chinese text with OpenCC's semantics (`segment --convert t2s`).
//
// Purpose: the `segment` stage's converted view (wwm_fast/segmentation/convert.py). Gives exactly
//   what OpenCC (the C++ library of the PyPI package `opencc`) gives for one of its configs, on
//   code points, and per line the places where a dictionary match changed the length (so word
//   boundaries map back without guessing). The dictionaries are OpenCC's own (.ocd2 files of the
//   installed package), decoded in Python and handed over as flat code point arrays.
// A config, as this kernel runs it (what OpenCC 1.4.2 does with a config JSON):
//   1. normalization: zero or more conversions over the whole line;
//   2. segmentation (optional, "mmseg"): the line is cut by greedy longest match on a dictionary
//      tree: each matched key is a segment, each run of unmatched characters is one segment;
//   3. the conversion chain: each conversion over each segment separately, in order (the
//      segments of one conversion's output are those of its input).
//   A conversion walks left to right: at each position the dictionary tree gives a match (key
//   length, value), which is replaced by the value; else one character is copied, or a whole
//   ideographic description sequence (U+2FF0..U+2FFF with its operands, at most 16 levels and 64
//   code points) when one starts there and is complete within the text being converted.
//   Dictionary trees: a leaf dictionary gives its longest key that prefixes the text; a group
//   "short_circuit" gives the match of its first child that has one; a group "union" gives the
//   longest match of its children (the first child on equal lengths). A key's value is its
//   first value in the .ocd2 file (Python picks it).
// Not handled here (the caller converts such lines with OpenCC itself): a line with a lone
//   surrogate (OpenCC cannot take it: status kFailed) and a line with U+0000 under a config with
//   segmentation (OpenCC truncates each segment at its first NUL: status kReference).
// Example: t2s, line "說話了" -> "说话了", no blocks; tw2sp, "記憶體" -> "内存", one block
//   (0, 3) -> (0, 2).
// Complexity: per position one table look-up (BMP) or hash probe, plus one hash probe per further
//   character of the longest key prefix present; no allocation per line once buffers have grown.
#ifndef WWM_FAST_CSRC_CHINESE_CONVERT_H_
#define WWM_FAST_CSRC_CHINESE_CONVERT_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "pod_vector.h"

namespace wwm {

// One leaf dictionary: key k is keys[key_offsets[k] .. key_offsets[k+1]) (code points),
// its value values[value_offsets[k] .. value_offsets[k+1]). Borrowed while building.
struct ConvertDictInput {
  const uint32_t* keys;
  const int64_t* key_offsets;  // n_keys + 1
  int64_t n_keys;
  int64_t n_key_cps;  // length of keys
  const uint32_t* values;
  const int64_t* value_offsets;  // n_keys + 1
  int64_t n_value_cps;  // length of values
};

// The program of a config: int32 words. Header: n_normalization, has_segmentation, n_chain;
// then the dictionary trees in that order (normalization..., segmentation?, chain...), each in
// prefix form: leaf = {0, dict_index}; group = {1 (short_circuit) or 2 (union), n_children,
// child trees...}.
enum ConvertLineStatus : uint8_t {
  kConverted = 0,   // converted here
  kFailed = 1,      // a lone surrogate: OpenCC cannot take it; output = input
  kReference = 2,   // U+0000 under a config with segmentation: output = input, convert with OpenCC
  kWhitespace = 3,  // converted, but whitespace moved (see Convert)
};

struct ConvertOutput {
  PodVector<uint32_t> text;       // the converted lines, concatenated
  PodVector<int64_t> offsets;     // n_lines + 1: line i ends at offsets[i+1] and starts at
                                  // offsets[i] (+ 1 after a separator, for i > 0)
  PodVector<int64_t> blocks;      // 5 per block: line, orig_start, orig_end, out_start, out_end
  PodVector<uint8_t> status;      // per line, ConvertLineStatus
  // with separator == kUtf8 instead of text: the converted lines in UTF-8, concatenated, and
  // byte_offsets (n_lines + 1); offsets are then the code point offsets of the lines in it
  PodVector<uint8_t> utf8;
  PodVector<int64_t> byte_offsets;
};

class ChineseConverter {
 public:
  static constexpr int64_t kUtf8 = -2;  // Convert's separator: write UTF-8

  // Validates everything (code points, offsets, the program) and throws std::invalid_argument
  // naming the problem.
  ChineseConverter(const std::vector<ConvertDictInput>& dicts, const int32_t* program,
                   int64_t program_len);
  ~ChineseConverter();
  ChineseConverter(const ChineseConverter&) = delete;
  ChineseConverter& operator=(const ChineseConverter&) = delete;

  // Converts lines: line i is text[starts[i], ends[i]) (checked by CheckInput; code points
  // above U+10FFFF throw std::invalid_argument; surrogates mark a line kFailed). Blocks are the maximal places where the output does not follow the
  // input character by character: outside them, original position i maps to i + shift; their
  // positions are relative to the line's start (in the input and in the output). With
  // separator >= 0 (a code point), it is written between two output lines; with kUtf8 the
  // output is UTF-8 (ConvertOutput::utf8), the lines concatenated. With ws_len > 0, a
  // line without blocks where a character turns into whitespace or out of it (ws_table[c] != 0
  // for c < ws_len) gets status kWhitespace (its output is still the conversion).
  void Convert(const uint32_t* text, int64_t n_text, const int64_t* starts, const int64_t* ends,
               int64_t n_lines, int64_t separator, const uint8_t* ws_table, int64_t ws_len,
               ConvertOutput* out) const;

  // Checks the lines: each within the text, after the previous one.
  static void CheckInput(const uint32_t* text, int64_t n_text, const int64_t* starts,
                         const int64_t* ends, int64_t n_lines);

  // The lines of text cut at every separator; throws unless there are n_lines of them.
  static void SplitLines(const uint32_t* text, int64_t n_text, uint32_t separator,
                         int64_t n_lines, std::vector<int64_t>* starts,
                         std::vector<int64_t>* ends);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace wwm

#endif  // WWM_FAST_CSRC_CHINESE_CONVERT_H_
