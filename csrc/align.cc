#include "align.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.h"

namespace wwm {
namespace {

// Returns false when the line cannot be aligned (caller falls back), throws on malformed words.
bool AlignLine(const AlignInput& in, int64_t line, uint8_t* word_start) {
  const int64_t t0 = in.tok_splits[line], t1 = in.tok_splits[line + 1];
  const int64_t w0 = in.word_splits[line], w1 = in.word_splits[line + 1];
  for (int64_t w = w0; w < w1; ++w) {
    if (in.word_starts[w] >= in.word_ends[w] || (w > w0 && in.word_starts[w] < in.word_ends[w - 1])) {
      throw std::invalid_argument(
          "word spans of line " + std::to_string(line) + " must be non-empty, sorted and "
          "non-overlapping; word " + std::to_string(w - w0) + " is [" +
          std::to_string(in.word_starts[w]) + ", " + std::to_string(in.word_ends[w]) + ")");
    }
  }
  int64_t w = w0;
  int64_t prev_word = -1;
  for (int64_t t = t0; t < t1; ++t) {
    const int32_t s = in.tok_starts[t], e = in.tok_ends[t];
    while (w < w1 && in.word_ends[w] <= s) ++w;
    // Tokens of one NFD-expanded character share offsets, so w never needs to move back.
    if (w == w1 || in.word_starts[w] > s || in.word_ends[w] < e) return false;
    if (in.is_subword[t]) {
      if (w != prev_word) return false;  // a WordPiece word split by the segmenter
      word_start[t] = 0;
    } else {
      word_start[t] = w == prev_word ? 0 : 1;
    }
    prev_word = w;
  }
  return true;
}

void AlignRange(const AlignInput& in, int64_t begin, int64_t end, uint8_t* word_start,
                uint8_t* fallback, int64_t* n_fallback) {
  int64_t count = 0;
  for (int64_t line = begin; line < end; ++line) {
    const bool ok = AlignLine(in, line, word_start);
    fallback[line] = ok ? 0 : 1;
    if (!ok) {
      ++count;
      for (int64_t t = in.tok_splits[line]; t < in.tok_splits[line + 1]; ++t) {
        word_start[t] = in.is_subword[t] ? 0 : 1;
      }
    }
  }
  *n_fallback = count;
}

}  // namespace

void CheckAlignInput(const AlignInput& in, int64_t n_tokens, int64_t n_words) {
  const int64_t* ts = in.tok_splits;
  const int64_t* ws = in.word_splits;
  if (in.n_lines < 0) throw std::invalid_argument("tok_splits must not be empty");
  if (ts[0] != 0 || ts[in.n_lines] != n_tokens || ws[0] != 0 || ws[in.n_lines] != n_words) {
    throw std::invalid_argument("row splits must run from 0 to the number of tokens (" +
                                std::to_string(n_tokens) + ") / words (" +
                                std::to_string(n_words) + ")");
  }
  for (int64_t i = 0; i < in.n_lines; ++i) {
    if (ts[i + 1] < ts[i] || ws[i + 1] < ws[i]) {
      throw std::invalid_argument("row splits must be non-decreasing (line " + std::to_string(i) +
                                  ")");
    }
  }
}

int64_t AlignWords(const AlignInput& in, int num_threads, uint8_t* word_start,
                   uint8_t* fallback) {
  const int64_t n_tokens = in.n_lines > 0 ? in.tok_splits[in.n_lines] - in.tok_splits[0] : 0;
  int threads = ResolveNumThreads(num_threads);
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, n_tokens >> 16)));
  if (threads == 1) {
    int64_t n = 0;
    AlignRange(in, 0, in.n_lines, word_start, fallback, &n);
    return n;
  }
  std::vector<int64_t> counts(threads, 0);
  ParallelFor(threads, [&](int t) {
    const int64_t b = in.n_lines * t / threads, e = in.n_lines * (t + 1) / threads;
    AlignRange(in, b, e, word_start, fallback, &counts[t]);
  });
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  return total;
}

}  // namespace wwm
