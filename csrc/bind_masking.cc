// pybind11 module wwm_fast._masking: the vectorised whole-word sampler of fast mode.
#include <pybind11/pybind11.h>

#include "bind_instances.h"
#include "instances.h"

namespace py = pybind11;
using wwm::CArray;

PYBIND11_MODULE(_masking, m) {
  m.doc() = "Native whole-word mask sampler. Private: use wwm_fast.sample_masks.";
  m.attr("GROUP_HIST_SIZE") = wwm::kGroupHistSize;
  m.def(
      "sample_masks",
      [](py::dict corpus, py::dict instances, int max_seq_length, int max_predictions,
         double masked_lm_prob, bool whole_word, int32_t cls_id, int32_t sep_id, int32_t mask_id,
         CArray<int32_t> rand_ids, int num_threads) {
        const wwm::Corpus c = wwm::CorpusFromDict(corpus);
        const wwm::InstanceView v = wwm::ViewFromDict(instances, true, false);
        const wwm::BuildConfig cfg =
            wwm::MakeConfig(max_seq_length, max_predictions, masked_lm_prob, 0.0, 1, whole_word,
                            true, cls_id, sep_id, mask_id, rand_ids);
        wwm::ValidateConfig(cfg, false);
        for (int64_t i = 0; i < v.n; ++i) {
          const int64_t n_tok = c.sent_splits[c.n_sentences];
          if (v.a_start[i] < 0 || v.a_len[i] < 0 || v.a_start[i] + v.a_len[i] > n_tok ||
              v.b_start[i] < 0 || v.b_len[i] < 0 || v.b_start[i] + v.b_len[i] > n_tok) {
            throw std::out_of_range("instance " + std::to_string(i) + " points outside the corpus");
          }
        }
        wwm::PodVector<int64_t> splits;
        wwm::Predictions preds;
        {
          py::gil_scoped_release release;
          wwm::SampleMasks(c, cfg, v, num_threads, &splits, &preds);
        }
        return wwm::PredictionsToDict(std::move(splits), std::move(preds), py::dict());
      },
      py::arg("corpus"), py::arg("instances"), py::arg("max_seq_length"),
      py::arg("max_predictions"), py::arg("masked_lm_prob"), py::arg("whole_word"),
      py::arg("cls_id"), py::arg("sep_id"), py::arg("mask_id"), py::arg("rand_ids").noconvert(),
      py::arg("num_threads"),
      "Predictions of every instance, keyed by instances['key']: dict with pred_splits, "
      "pred_positions, pred_input_ids, pred_labels, group_hist.");
}
