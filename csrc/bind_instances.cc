// pybind11 module wwm_fast._instances: the instance builders (compat and fast).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bind_instances.h"
#include "instances.h"
#include "random.h"

namespace py = pybind11;
using wwm::CArray;

PYBIND11_MODULE(_instances, m) {
  m.doc() = "Native instance builders. Private: use wwm_fast.create_instances.";
  m.attr("WORD_SIZE_HIST_LEN") = wwm::kWordSizeHistLen;
  m.attr("MAX_SEQ_LENGTH") = wwm::kMaxSeqLength;
  m.def(
      "build_compat",
      [](py::dict corpus, std::vector<uint32_t> seed_key, int max_seq_length, int max_predictions,
         double masked_lm_prob, double short_seq_prob, int dupe_factor, bool whole_word,
         int32_t cls_id, int32_t sep_id, int32_t mask_id, CArray<int32_t> rand_ids) {
        const wwm::CorpusArrays c(corpus);  // holds the arrays until the GIL is back
        const wwm::BuildConfig cfg =
            wwm::MakeConfig(max_seq_length, max_predictions, masked_lm_prob, short_seq_prob,
                            dupe_factor, whole_word, true, cls_id, sep_id, mask_id, rand_ids);
        wwm::InstanceSet out;
        {
          py::gil_scoped_release release;
          wwm::BuildCompat(c.view, cfg, seed_key, &out);
        }
        return wwm::SetToDict(std::move(out));
      },
      py::arg("corpus"), py::arg("seed_key"), py::arg("max_seq_length"),
      py::arg("max_predictions"), py::arg("masked_lm_prob"), py::arg("short_seq_prob"),
      py::arg("dupe_factor"), py::arg("whole_word"), py::arg("cls_id"), py::arg("sep_id"),
      py::arg("mask_id"), py::arg("rand_ids").noconvert(),
      "Google's create_training_instances on the whole corpus: instances in final order with "
      "their predictions.");
  m.def(
      "build_fast",
      [](py::dict corpus, uint64_t seed, uint64_t shard, int max_seq_length, int max_predictions,
         double masked_lm_prob, double short_seq_prob, int dupe_factor, bool next_sentence,
         CArray<int32_t> rand_ids) {
        const wwm::CorpusArrays c(corpus);  // holds the arrays until the GIL is back
        const wwm::BuildConfig cfg =
            wwm::MakeConfig(max_seq_length, max_predictions, masked_lm_prob, short_seq_prob,
                            dupe_factor, false, next_sentence, 0, 0, 0, rand_ids);
        wwm::InstanceSet out;
        {
          py::gil_scoped_release release;
          wwm::BuildFast(c.view, cfg, seed, shard, &out);
        }
        return wwm::SetToDict(std::move(out));
      },
      py::arg("corpus"), py::arg("seed"), py::arg("shard"), py::arg("max_seq_length"),
      py::arg("max_predictions"), py::arg("masked_lm_prob"), py::arg("short_seq_prob"),
      py::arg("dupe_factor"), py::arg("next_sentence"), py::arg("rand_ids").noconvert(),
      "Fast-mode instances of one shard in document order, with per-instance RNG keys; no "
      "predictions.");
  // Test-only shims of the generators (STYLE 20): a script of operations -> their results.
  m.def(
      "_py_pyrandom",
      [](std::vector<uint32_t> seed_key, std::vector<std::pair<std::string, int64_t>> ops) {
        wwm::PyRandom rng(seed_key);
        py::list out;
        for (const auto& [op, arg] : ops) {
          if (op == "random") {
            out.append(rng.Random());
          } else if (op == "randint") {
            if (arg < 0) throw std::invalid_argument("randint needs arg >= 0, got " +
                                                     std::to_string(arg));
            out.append(rng.RandInt(0, arg));
          } else if (op == "getrandbits") {
            if (arg < 0 || arg > 64) throw std::invalid_argument("getrandbits needs arg in "
                                                                 "[0, 64], got " +
                                                                 std::to_string(arg));
            out.append(rng.GetRandBits(static_cast<int>(arg)));
          } else if (op == "shuffle") {
            wwm::CheckShimCount(arg, "shuffle's arg");
            std::vector<int64_t> v(static_cast<size_t>(arg));
            for (int64_t k = 0; k < arg; ++k) v[k] = k;
            wwm::Shuffle(rng, v.data(), v.size());
            out.append(py::cast(v));
          } else {
            throw std::invalid_argument("unknown op '" + op + "'");
          }
        }
        return out;
      },
      py::arg("seed_key"), py::arg("ops"));
  m.def(
      "_py_keyed_rng",
      [](uint64_t key, int64_t n, uint64_t below) {
        wwm::CheckShimCount(n, "n");
        wwm::KeyedRng rng(key);
        std::vector<uint64_t> out(static_cast<size_t>(n));
        for (auto& x : out) x = below ? rng.RandBelow(below) : rng.Next();
        return out;
      },
      py::arg("key"), py::arg("n"), py::arg("below"));
  m.def(
      "shuffled_order",
      [](int64_t n, uint64_t seed, uint64_t shard) {
        if (n < 0 || n > (int64_t{1} << 32)) {  // a shard's instance count (32 GB of order)
          throw std::invalid_argument("n must be in [0, 2^32], got " + std::to_string(n));
        }
        wwm::PodVector<int64_t> order;
        {
          py::gil_scoped_release release;
          wwm::ShuffledOrder(n, seed, shard, &order);
        }
        return wwm::VectorToArray(std::move(order));
      },
      py::arg("n"), py::arg("seed"), py::arg("shard"),
      "The permutation fast mode writes a shard's instances in.");
}
