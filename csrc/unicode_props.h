// Per-code-point Unicode properties, exactly as Python's unicodedata / str methods see them.
//
// Purpose: the reference tokenizer (Google bert/tokenization.py) decides everything from
//   unicodedata.category, str.isspace, str.lower and unicodedata.normalize("NFD"). The tables in
//   unicode_tables.inc are generated at build time by csrc/gen_unicode_tables.py from the
//   interpreter that builds the package, so both sides read one source.
// Example: Props(0x4E2D).flags & kCjk != 0 ("中"), Props(0x3000).flags & kWhitespace != 0.
// Lookup: two-stage table, O(1), no allocation, thread-safe (read-only static data).
// Also here: a UTF-8 decoder with CPython's error ranges (bytes.decode("utf-8", "ignore") drops
//   exactly the bytes CPython reports as invalid: the maximal invalid subpart).
#ifndef WWM_FAST_CSRC_UNICODE_PROPS_H_
#define WWM_FAST_CSRC_UNICODE_PROPS_H_

#include <cstddef>
#include <cstdint>

namespace wwm {

struct CharProps {
  uint16_t flags;
  uint8_t ccc;      // canonical combining class
  uint8_t map_len;  // length of NFD(lower(c)) in kMapData, 0 when it is c itself
  uint32_t map_off;
};

enum CharFlag : uint16_t {
  kDrop = 1 << 0,           // removed by _clean_text: NUL, U+FFFD, Cc/Cf except \t \n \r
  kWhitespace = 1 << 1,     // becomes " " in _clean_text: " " \t \n \r and Zs
  kSpace = 1 << 2,          // str.isspace(): separator for str.split() / str.strip()
  kCjk = 1 << 3,            // _is_chinese_char (8 ranges)
  kPunct = 1 << 4,          // _is_punctuation
  kMn = 1 << 5,             // category Mn: dropped by _run_strip_accents
  kCased = 1 << 6,          // cased and not case-ignorable (final-sigma rule)
  kCaseIgnorable = 1 << 7,  // case-ignorable (final-sigma rule)
  kReorder = 1 << 8,        // ccc != 0 and not Mn: survives accent stripping, may be reordered
  kHangul = 1 << 9,         // precomposed Hangul syllable, NFD is algorithmic
};

namespace tables {
// Defined in unicode_props.cc from the generated unicode_tables.inc.
extern const uint16_t kStage1[];
extern const uint16_t kStage2[];
extern const CharProps kRecords[];
extern const uint32_t kMapData[];
}  // namespace tables

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

// Properties of one code point (cp <= kMaxCodePoint; the decoder never produces more).
inline const CharProps& Props(uint32_t cp) {
  return tables::kRecords[tables::kStage2[static_cast<uint32_t>(tables::kStage1[cp >> 8]) * 256 +
                                          (cp & 0xFF)]];
}
// Code points of NFD(c.lower()) for a character whose props.map_len > 0.
inline const uint32_t* MappedChars(const CharProps& p) { return tables::kMapData + p.map_off; }
// The Unicode database version the tables were generated from (e.g. "14.0.0").
const char* UnidataVersion();

// Decodes one code point starting at s[0] (n > 0 bytes available).
// Returns the number of bytes consumed and sets *cp on success. On an invalid sequence returns
// the negated length of CPython's error range (the maximal invalid subpart, >= 1 byte).
// allow_surrogates accepts ED A0..BF xx, the "surrogatepass" encoding of lone surrogates, so that
// any Python str round-trips.
inline int DecodeUtf8(const uint8_t* s, size_t n, uint32_t* cp, bool allow_surrogates) {
  const uint8_t b0 = s[0];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  int len;
  uint8_t lo = 0x80, hi = 0xBF;  // valid range of the second byte
  uint32_t c;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    c = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    c = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED && !allow_surrogates) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    c = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return -1;  // invalid start byte
  }
  for (int k = 1; k < len; ++k) {
    if (static_cast<size_t>(k) >= n) return -k;  // truncated at the end of the data
    const uint8_t b = s[k];
    const uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return -k;  // invalid continuation: error covers the prefix read
    c = (c << 6) | (b & 0x3F);
  }
  *cp = c;
  return len;
}

// Appends the UTF-8 encoding of cp (surrogates encoded as CPython's surrogatepass does).
inline int EncodeUtf8(uint32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

}  // namespace wwm

#endif  // WWM_FAST_CSRC_UNICODE_PROPS_H_
