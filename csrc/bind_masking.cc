// pybind11 module wwm_fast._masking: the vectorised whole-word sampler of fast mode.
#include <pybind11/pybind11.h>

#include "bind_instances.h"
#include "masking.h"
#include "ngram.h"
#include "parallel.h"

namespace py = pybind11;
using wwm::CArray;

namespace {

// The configuration both samplers take (the kernels check its values; this, rand_ids' shape).
wwm::SampleConfig SampleConfigOf(int max_seq_length, int max_predictions, double masked_lm_prob,
                                 bool whole_word, int32_t mask_id,
                                 const CArray<int32_t>& rand_ids) {
  if (rand_ids.ndim() != 1) throw std::invalid_argument("rand_ids must be 1-D");
  return wwm::SampleConfig{max_seq_length, whole_word,
                           wwm::MaskConfig{max_predictions, masked_lm_prob, mask_id,
                                           rand_ids.data(), static_cast<int64_t>(rand_ids.size())}};
}

}  // namespace

PYBIND11_MODULE(_masking, m) {
  m.doc() = "Native whole-word mask sampler. Private: use wwm_fast.sample_masks.";
  m.attr("WORD_SIZE_HIST_LEN") = wwm::kWordSizeHistLen;
  m.attr("MAX_THREADS") = wwm::kMaxThreads;
  m.def(
      "sample_masks",
      [](py::dict corpus, py::dict instances, int max_seq_length, int max_predictions,
         double masked_lm_prob, bool whole_word, int32_t mask_id, CArray<int32_t> rand_ids,
         int num_threads) {
        // The holders keep every array alive until the GIL is back; the kernel checks the
        // configuration, the corpus splits and every instance's ranges.
        const wwm::CorpusArrays c(corpus);
        const wwm::InstanceArrays v(instances, true, false);
        const wwm::SampleConfig cfg = SampleConfigOf(max_seq_length, max_predictions,
                                                     masked_lm_prob, whole_word, mask_id, rand_ids);
        wwm::PodVector<int64_t> splits;
        wwm::Predictions preds;
        {
          py::gil_scoped_release release;
          wwm::SampleMasks(c.view, cfg, v.view, num_threads, &splits, &preds);
        }
        return wwm::PredictionsToDict(std::move(splits), std::move(preds), py::dict());
      },
      py::arg("corpus"), py::arg("instances"), py::arg("max_seq_length"),
      py::arg("max_predictions"), py::arg("masked_lm_prob"), py::arg("whole_word"),
      py::arg("mask_id"), py::arg("rand_ids").noconvert(), py::arg("num_threads"),
      "Predictions of every instance, keyed by instances['key']: dict with pred_splits, "
      "pred_positions, pred_input_ids, pred_labels, group_hist.");

  // n-gram whole-word masking (csrc/ngram.h), fast mode's --ngram_masking
  m.attr("MAX_NGRAM_TABLE_SIZE") = wwm::kMaxNgramTableSize;
  m.def(
      "sample_ngram_masks",
      [](py::dict corpus, py::dict instances, int max_seq_length, int max_predictions,
         double masked_lm_prob, bool whole_word, CArray<double> ngram_probs, int32_t mask_id,
         CArray<int32_t> rand_ids, int num_threads) {
        const wwm::CorpusArrays c(corpus);
        const wwm::InstanceArrays v(instances, true, false);
        const wwm::SampleConfig cfg = SampleConfigOf(max_seq_length, max_predictions,
                                                     masked_lm_prob, whole_word, mask_id, rand_ids);
        if (ngram_probs.ndim() != 1) throw std::invalid_argument("ngram_probs must be 1-D");
        wwm::PodVector<int64_t> splits;
        wwm::Predictions preds;
        wwm::NgramHist hist;
        {
          py::gil_scoped_release release;
          wwm::SampleNgramMasks(c.view, cfg, ngram_probs.data(),
                                static_cast<int64_t>(ngram_probs.size()), v.view, num_threads,
                                &splits, &preds, &hist);
        }
        py::dict d;
        d["ngram_hist"] = wwm::VectorToArray(std::move(hist.masked));
        d["ngram_drawn_hist"] = wwm::VectorToArray(std::move(hist.drawn));
        return wwm::PredictionsToDict(std::move(splits), std::move(preds), d);
      },
      py::arg("corpus"), py::arg("instances"), py::arg("max_seq_length"),
      py::arg("max_predictions"), py::arg("masked_lm_prob"), py::arg("whole_word"),
      py::arg("ngram_probs").noconvert(), py::arg("mask_id"), py::arg("rand_ids").noconvert(),
      py::arg("num_threads"),
      "Predictions of every instance with n-gram whole-word masking, keyed by "
      "instances['key']: dict with pred_splits, pred_positions, pred_input_ids, pred_labels, "
      "group_hist, ngram_hist (masked n-grams by size in words), ngram_drawn_hist (the sizes "
      "drawn from ngram_probs).");
}
