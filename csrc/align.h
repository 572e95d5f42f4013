// Whole-word alignment: which WordPiece tokens start a new whole word, given a word segmentation.
//
// Purpose: Chinese whole word masking needs word groups over WordPiece tokens. A token continues
//   the previous token's word when it is a WordPiece continuation ("##" piece), or when both lie
//   inside the same segmenter word (positional, by character offsets; BERT_DATA_SPEC §5.4).
// Example: line "鳜鱼很好", tokens [UNK] 鱼 很 好 (offsets [0,1) [1,2) [2,3) [3,4)), words
//   [0,2) [2,3) [3,4) -> word_start = 1 0 1 1 ([UNK] stays in its word).
// Alignment fails for a line when a token is not inside one word, or a WordPiece word ("６ ##℃")
//   spans two segmenter words ("６" / "℃"); that line falls back to "##"-only grouping
//   (word_start = !is_subword) and is flagged, as HFL did for the Chinese-BERT-wwm data.
// Args: all arrays are borrowed, flat and ragged by line: tokens [tok_splits[i], tok_splits[i+1])
//   of line i with code point offsets starts/ends (start inclusive, end exclusive), is_subword
//   (1 for a "##" piece); words [word_splits[i], word_splits[i+1]) with word_starts/word_ends,
//   sorted and non-overlapping. Outputs are caller-allocated: word_start[n_tokens],
//   fallback[n_lines].
// Complexity: O(tokens + words) per line, two pointers; lines split over threads.
// Equivalent to: flag[t] = not (sub[t] or (t > 0 and word_of(t) == word_of(t - 1))).
#ifndef WWM_FAST_CSRC_ALIGN_H_
#define WWM_FAST_CSRC_ALIGN_H_

#include <cstdint>

namespace wwm {

struct AlignInput {
  const int32_t* tok_starts;
  const int32_t* tok_ends;
  const uint8_t* is_subword;
  const int64_t* tok_splits;  // n_lines + 1
  const int32_t* word_starts;
  const int32_t* word_ends;
  const int64_t* word_splits;  // n_lines + 1
  int64_t n_lines;
};

// Checks what AlignWords trusts: both row splits run from 0 to n_tokens / n_words and never
// decrease. Throws std::invalid_argument naming the line.
void CheckAlignInput(const AlignInput& in, int64_t n_tokens, int64_t n_words);

// Fills word_start (one flag per token) and fallback (one flag per line) on
// ResolveNumThreads(num_threads) threads at most; returns the number of lines that fell back.
// The row splits must have passed CheckAlignInput (the binding calls it). Throws std::invalid_argument naming the line when words are unsorted or
// overlap.
int64_t AlignWords(const AlignInput& in, int num_threads, uint8_t* word_start, uint8_t* fallback);

}  // namespace wwm

#endif  // WWM_FAST_CSRC_ALIGN_H_
