// pybind11 module wwm_fast._align: type conversion and error translation only.
#include <pybind11/pybind11.h>

#include <string>

#include "align.h"
#include "bind_util.h"
#include "parallel.h"

namespace py = pybind11;
using wwm::CArray;

namespace {

template <typename T>
void CheckLen(const CArray<T>& a, int64_t n, const char* name) {
  if (a.ndim() != 1 || a.shape(0) != n) {
    throw std::invalid_argument(std::string(name) + " must have length " + std::to_string(n) +
                                ", got " + std::to_string(a.ndim() == 1 ? a.shape(0) : -1));
  }
}

}  // namespace

PYBIND11_MODULE(_align, m) {
  m.doc() = "Native whole-word aligner. Private: use wwm_fast.align_words.";
  m.attr("MAX_THREADS") = wwm::kMaxThreads;
  m.def(
      "align_words",
      [](CArray<int32_t> tok_starts, CArray<int32_t> tok_ends, CArray<uint8_t> is_subword,
         CArray<int64_t> tok_splits, CArray<int32_t> word_starts, CArray<int32_t> word_ends,
         CArray<int64_t> word_splits, CArray<uint8_t> word_start, CArray<uint8_t> fallback,
         int num_threads) {
        const int64_t n_lines = tok_splits.shape(0) - 1;
        if (n_lines < 0) throw std::invalid_argument("tok_splits must not be empty");
        if (tok_starts.ndim() != 1 || word_starts.ndim() != 1) {
          throw std::invalid_argument("tok_starts and word_starts must be 1-D arrays");
        }
        const int64_t n_tok = tok_starts.shape(0), n_word = word_starts.shape(0);
        CheckLen(tok_ends, n_tok, "tok_ends");
        CheckLen(is_subword, n_tok, "is_subword");
        CheckLen(word_start, n_tok, "word_start");
        CheckLen(word_ends, n_word, "word_ends");
        CheckLen(tok_splits, n_lines + 1, "tok_splits");
        CheckLen(word_splits, n_lines + 1, "word_splits");
        CheckLen(fallback, n_lines, "fallback");
        wwm::AlignInput in{tok_starts.data(), tok_ends.data(), is_subword.data(),
                           tok_splits.data(), word_starts.data(), word_ends.data(),
                           word_splits.data(), n_lines};
        wwm::CheckAlignInput(in, n_tok, n_word);
        uint8_t* out = word_start.mutable_data();
        uint8_t* fb = fallback.mutable_data();
        py::gil_scoped_release release;
        return wwm::AlignWords(in, num_threads, out, fb);
      },
      py::arg("tok_starts").noconvert(), py::arg("tok_ends").noconvert(),
      py::arg("is_subword").noconvert(), py::arg("tok_splits").noconvert(),
      py::arg("word_starts").noconvert(), py::arg("word_ends").noconvert(),
      py::arg("word_splits").noconvert(), py::arg("word_start").noconvert(),
      py::arg("fallback").noconvert(), py::arg("num_threads"),
      "Fills word_start (uint8 per token) and fallback (uint8 per line) in place; returns the "
      "number of lines that fell back to ##-only grouping.");
}
