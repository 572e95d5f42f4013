// pybind11 module wwm_fast._garden: Model Garden compat (the instance builder with Model Garden's
// masking, v2 feature names). Private: use wwm_fast.create_instances(mode="compat",
// reference="garden").
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <utility>
#include <vector>

#include "bind_instances.h"
#include "garden.h"
#include "instances.h"
#include "random.h"

namespace py = pybind11;
using wwm::CArray;

PYBIND11_MODULE(_garden, m) {
  m.doc() = "Native Model Garden compat builder. Private: use wwm_fast.create_instances.";
  m.attr("MAX_NGRAM_WORK") = wwm::kMaxNgramWork;
  m.def(
      "build_garden",
      [](py::dict corpus, std::vector<uint32_t> seed_key, std::vector<uint32_t> global_seed_key,
         int max_seq_length, int max_predictions, double masked_lm_prob, double short_seq_prob,
         int dupe_factor, bool whole_word, int max_ngram_size, int32_t cls_id, int32_t sep_id,
         int32_t mask_id, CArray<int32_t> rand_ids) {
        const wwm::CorpusArrays c(corpus);  // holds the arrays until the GIL is back
        const wwm::BuildConfig cfg =
            wwm::MakeConfig(max_seq_length, max_predictions, masked_lm_prob, short_seq_prob,
                            dupe_factor, whole_word, true, cls_id, sep_id, mask_id, rand_ids);
        wwm::InstanceSet out;
        {
          py::gil_scoped_release release;
          wwm::BuildGarden(c.view, cfg, seed_key, global_seed_key, max_ngram_size, &out);
        }
        return wwm::SetToDict(std::move(out));
      },
      py::arg("corpus"), py::arg("seed_key"), py::arg("global_seed_key"),
      py::arg("max_seq_length"), py::arg("max_predictions"), py::arg("masked_lm_prob"),
      py::arg("short_seq_prob"), py::arg("dupe_factor"), py::arg("whole_word"),
      py::arg("max_ngram_size"), py::arg("cls_id"), py::arg("sep_id"), py::arg("mask_id"),
      py::arg("rand_ids").noconvert(),
      "Model Garden's create_training_instances on the whole corpus: instances in final order "
      "with their predictions.");
  m.def(
      "rename_features",
      [](CArray<uint8_t> records, std::vector<std::pair<std::string, std::string>> renames) {
        if (records.ndim() != 1) throw std::invalid_argument("records must be a 1-D uint8 array");
        wwm::PodVector<uint8_t> out;
        {
          py::gil_scoped_release release;
          wwm::RenameFeatures(records.data(), static_cast<size_t>(records.shape(0)), renames,
                              &out);
        }
        return wwm::VectorToArray(std::move(out));
      },
      py::arg("records").noconvert(), py::arg("renames"),
      "Framed TFRecords with the feature names in `renames` [(old, new), ...] replaced.");
  // Test-only shim (STYLE 20): Model Garden's masking of one instance, `repeats` times in a row
  // with the same two generators; returns [(positions, input_ids, labels), ...] and the next
  // random() of each generator (to check that both consumed exactly what Model Garden's did).
  m.def(
      "_py_mask_garden",
      [](std::vector<int32_t> tokens, std::vector<uint8_t> special, std::vector<uint8_t> joins,
         bool whole_word, std::vector<uint32_t> seed_key, std::vector<uint32_t> global_seed_key,
         int max_predictions, double masked_lm_prob, int32_t mask_id,
         CArray<int32_t> rand_ids, int max_ngram_size, int64_t repeats) {
        const size_t n = tokens.size();
        if (special.size() != n || joins.size() != n) {
          throw std::invalid_argument("tokens, special and joins must have the same length, got " +
                                      std::to_string(n) + ", " + std::to_string(special.size()) +
                                      ", " + std::to_string(joins.size()));
        }
        if (rand_ids.ndim() != 1) throw std::invalid_argument("rand_ids must be 1-D");
        wwm::CheckShimCount(repeats, "repeats");
        const wwm::GardenMaskConfig cfg{
            wwm::MaskConfig{max_predictions, masked_lm_prob, mask_id, rand_ids.data(),
                            static_cast<int64_t>(rand_ids.size())},
            max_ngram_size};
        // also bounds the instance length (kMaxSeqLength: it fits the kernel's int)
        wwm::CheckGardenConfig(cfg, static_cast<int64_t>(n));
        wwm::PyRandom rng(seed_key), global_rng(global_seed_key);
        wwm::GardenScratch scratch;
        py::list calls;
        for (int64_t r = 0; r < repeats; ++r) {
          wwm::Predictions p;
          wwm::GardenMaskInstance(tokens.data(), special.data(), joins.data(),
                                  static_cast<int>(n), whole_word, cfg, rng, global_rng,
                                  &scratch, &p);
          calls.append(py::make_tuple(
              std::vector<int32_t>(p.positions.data(), p.positions.data() + p.positions.size()),
              std::vector<int32_t>(p.input_ids.data(), p.input_ids.data() + p.input_ids.size()),
              std::vector<int32_t>(p.labels.data(), p.labels.data() + p.labels.size())));
        }
        return py::make_tuple(calls, rng.Random(), global_rng.Random());
      },
      py::arg("tokens"), py::arg("special"), py::arg("joins"), py::arg("whole_word"),
      py::arg("seed_key"), py::arg("global_seed_key"), py::arg("max_predictions"),
      py::arg("masked_lm_prob"), py::arg("mask_id"), py::arg("rand_ids").noconvert(),
      py::arg("max_ngram_size"), py::arg("repeats"));
}
