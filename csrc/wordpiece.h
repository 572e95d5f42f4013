// BERT FullTokenizer (BasicTokenizer + WordpieceTokenizer) with Google's exact semantics.
//
// Purpose: turn UTF-8 lines into WordPiece ids plus character offsets, identical to
//   bert/tokenization.py FullTokenizer.tokenize + convert_tokens_to_ids on every input:
//   _clean_text (drop NUL, U+FFFD, Cc/Cf except \t\n\r; Zs and \t\n\r -> " "), CJK isolation
//   (8 ranges), str.split() on Unicode whitespace, str.lower() (with the final-sigma rule) then
//   NFD and removal of Mn marks (only when do_lower_case), punctuation split, and greedy
//   longest-match-first WordPiece with a whole-word [UNK] and max_input_chars_per_word.
// Example: "unaffable 中国" -> un ##aff ##able 中 国 (ids from the vocab), starts 0 2 5 10 11,
//   ends 2 5 9 11 12.
// Args / ownership: the tokenizer copies the vocab keys at construction and is immutable after
//   it, so one instance may be shared by any number of threads. Input bytes are borrowed for the
//   duration of a call; outputs are appended to caller-owned vectors.
// Offsets: start inclusive, end exclusive, in code points of the decoded line (what Python's
//   str indexing uses), so line[start:end] is the text a token came from. A token produced from
//   part of a character that NFD expanded (e.g. one jamo of a Hangul syllable) maps to the whole
//   character.
// Complexity: O(bytes) for the basic tokenizer; WordPiece is O(n * L) lookups for a word of n
//   chars where L is the longest vocab entry (in chars); single chars use a direct table.
// Equivalent to: [tok.convert_tokens_to_ids(tok.tokenize(line)) for line in lines].
#ifndef WWM_FAST_CSRC_WORDPIECE_H_
#define WWM_FAST_CSRC_WORDPIECE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "pod_vector.h"

namespace wwm {

// Open-addressing hash map from UTF-8 byte strings to ids. Keys live in one arena.
class VocabHash {
 public:
  void Build(const std::vector<std::string>& keys, const std::vector<int32_t>& ids);
  int32_t Find(const char* data, size_t size) const;  // -1 when absent

 private:
  struct Slot {
    uint64_t hash;
    uint32_t offset;
    uint32_t size;
    int32_t id;  // -1: empty slot
  };
  std::vector<Slot> slots_;
  std::string arena_;
  uint64_t mask_ = 0;
};

// How to treat bytes that are not valid UTF-8.
enum class Utf8Errors { kIgnore, kStrict, kSurrogatePass };

struct EncodeOutput {
  PodVector<int32_t> ids;
  PodVector<int32_t> starts;
  PodVector<int32_t> ends;
  bool offsets = true;  // false: ids only (starts/ends stay empty)
  void Emit(int32_t id, int32_t start, int32_t end) {
    ids.push_back(id);
    if (offsets) {
      starts.push_back(start);
      ends.push_back(end);
    }
  }
};

struct EncodeError {
  int64_t line = -1;  // -1: no error
  int64_t byte = 0;   // offset of the first invalid byte inside the line (after \r removal)
  int64_t length = 0; // bytes in CPython's error range
};

class FullTokenizer {
 public:
  // keys[i] -> ids[i]; keys are the vocab entries after Google's load_vocab (.strip()); a later
  // duplicate key wins. Throws std::out_of_range when unk_id is not one of ids, and
  // std::invalid_argument for a negative id, keys and ids of different lengths, or
  // max_input_chars_per_word < 1.
  FullTokenizer(const std::vector<std::string>& keys, const std::vector<int32_t>& ids,
                int32_t unk_id, bool do_lower_case, int max_input_chars_per_word);

  // Per-thread working memory for EncodeLine; reuse one per thread across lines.
  struct Scratch;
  static std::unique_ptr<Scratch> NewScratch();

  // Tokenizes one line. Appends to out; returns false (and fills err.byte/length) on invalid
  // UTF-8 under Utf8Errors::kStrict. *blank is set when the line is empty after str.strip().
  bool EncodeLine(const char* data, size_t size, Utf8Errors errors, Scratch* scratch,
                  EncodeOutput* out, bool* blank, EncodeError* err) const;

  bool do_lower_case() const { return do_lower_case_; }
  int32_t unk_id() const { return unk_id_; }

 private:
  struct Char {
    uint32_t cp;
    int32_t pos;  // code point index in the line
  };
  void FlushWord(Scratch* s, EncodeOutput* out) const;
  void EmitPiece(const Char* piece, size_t n, Scratch* s, EncodeOutput* out) const;
  int32_t LookupSingle(uint32_t cp) const;

  VocabHash init_;   // word-initial pieces
  VocabHash cont_;   // continuation pieces, stored without the "##" prefix
  std::vector<int32_t> single_init_;  // code point -> id for one-char initial pieces
  int max_init_chars_ = 0;
  int max_cont_chars_ = 0;
  int32_t unk_id_;
  bool do_lower_case_;
  int max_input_chars_per_word_;
};

// Tokenizes many lines, in parallel when num_threads > 1 (ResolveNumThreads: <= 0 = every core);
// output identical for any thread count.
// lines are given as one byte buffer plus line boundaries (line_splits[i]..line_splits[i+1]),
// which the caller has checked (non-decreasing, inside the buffer). A line longer than
// kMaxLineBytes throws std::invalid_argument naming it.
// strip_cr removes every '\r' byte first (TensorFlow GFile's readline does).
// row_splits gets n_lines + 1 entries; blank gets one flag per line. Returns the first error in
// line order (err.line == -1 when none).
// out->offsets selects whether starts/ends are produced.
EncodeError EncodeLines(const FullTokenizer& tok, const char* data, const int64_t* line_splits,
                        int64_t n_lines, Utf8Errors errors, bool strip_cr, int num_threads,
                        EncodeOutput* out, PodVector<int64_t>* row_splits,
                        PodVector<uint8_t>* blank);

// Splits a whole file's bytes into lines the way GFile.readline does: on '\n' only; a final line
// without '\n' is a line. Returns n_lines + 1 boundaries; line i is data[b[i] .. b[i+1]) and keeps
// its '\n', which the tokenizer treats as the whitespace it is (no token, no offset change).
std::vector<int64_t> SplitLines(const char* data, size_t size);

// Google's load_vocab on a vocab file's bytes (wwm_fast/vocab.py load_vocab is the reference):
// every '\r' removed, lines split on '\n' (no line after a final '\n'), each decoded as strict
// UTF-8 and stripped of str.isspace() characters at both ends; entry -> 0-based line number, a
// later duplicate taking the later number but keeping the first one's place in the order.
struct ParsedVocab {
  std::vector<std::string> keys;  // distinct entries (UTF-8), in order of first appearance
  std::vector<int32_t> ids;       // their line numbers (the last appearance)
  int64_t error_line = -1;        // first line (0-based) that is not valid UTF-8; -1: none
  int64_t n_lines = 0;
  std::unordered_map<std::string, size_t> position;  // entry -> its index in keys

  int32_t Find(const std::string& key) const {  // the entry's id, -1 when absent
    const auto it = position.find(key);
    return it == position.end() ? -1 : ids[it->second];
  }
};
// Throws std::invalid_argument for a file of 2^31 lines or more (ids are int32).
ParsedVocab ParseVocab(const char* data, size_t size);

// Longest line EncodeLines accepts, in bytes: offsets are int32 code point indices.
constexpr int64_t kMaxLineBytes = 0x7FFFFFFE;

}  // namespace wwm

#endif  // WWM_FAST_CSRC_WORDPIECE_H_
