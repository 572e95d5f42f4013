// pybind11 module wwm_fast._ltp_cws: type conversion and error translation only.
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "bind_util.h"
#include "ltp_cws.h"
#include "parallel.h"

namespace py = pybind11;
using wwm::CArray;
using wwm::LtpCwsModel;

namespace {

template <typename T>
void Check1D(const CArray<T>& a, const char* name) {
  if (a.ndim() != 1) {
    throw std::invalid_argument(std::string(name) + " must be 1-D, got " +
                                std::to_string(a.ndim()) + " dimensions");
  }
}

std::pair<const char*, py::ssize_t> BytesView(const py::bytes& b) {
  char* p = nullptr;
  py::ssize_t n = 0;
  if (PyBytes_AsStringAndSize(b.ptr(), &p, &n) != 0) throw py::error_already_set();
  return {p, n};
}

}  // namespace

PYBIND11_MODULE(_ltp_cws, m) {
  m.doc() = "Native LTP legacy word segmentation (csrc/ltp_cws.h). Private: use "
            "wwm_fast.segmentation.get_segmenter('ltp:PATH').";
  m.attr("MAX_THREADS") = wwm::kMaxThreads;
  py::class_<LtpCwsModel>(m, "Model")
      .def_static(
          "from_avro_block",
          [](py::bytes data, int64_t count) {
            auto view = BytesView(data);
            py::gil_scoped_release release;
            return LtpCwsModel::FromAvroBlock(reinterpret_cast<const uint8_t*>(view.first),
                                              static_cast<size_t>(view.second), count);
          },
          py::arg("data"), py::arg("count"),
          "The model from one inflated Avro block holding `count` cws records (the last wins).")
      .def_static(
          "check_avro_block",
          [](py::bytes data, int64_t count) {
            auto view = BytesView(data);
            py::gil_scoped_release release;
            LtpCwsModel::FromAvroBlock(reinterpret_cast<const uint8_t*>(view.first),
                                       static_cast<size_t>(view.second), count, false);
          },
          py::arg("data"), py::arg("count"),
          "Decodes the `count` cws records of one inflated Avro block; raises if malformed.")
      .def_static(
          "from_arrays",
          [](py::bytes keys, CArray<int64_t> key_offsets, CArray<int64_t> indices,
             CArray<double> params) {
            Check1D(key_offsets, "key_offsets");
            Check1D(indices, "indices");
            Check1D(params, "params");
            const int64_t n = indices.shape(0);
            if (key_offsets.shape(0) != n + 1) {
              throw std::invalid_argument("key_offsets must have len(indices) + 1 = " +
                                          std::to_string(n + 1) + " entries, got " +
                                          std::to_string(key_offsets.shape(0)));
            }
            auto view = BytesView(keys);
            const int64_t* ko = key_offsets.data();
            const int64_t* ix = indices.data();
            const double* pa = params.data();
            const int64_t n_params = params.shape(0);
            py::gil_scoped_release release;
            return LtpCwsModel::FromArrays(view.first, view.second, ko, n, ix, pa, n_params);
          },
          py::arg("keys"), py::arg("key_offsets").noconvert(), py::arg("indices").noconvert(),
          py::arg("params").noconvert(),
          "The model from LTP's feature table: UTF-8 keys back to back with int64 offsets, "
          "int64 feature indices, float64 parameters.")
      .def(
          "segment",
          [](const LtpCwsModel& self, py::bytes text, CArray<int64_t> row_splits,
             bool splits_in_chars, bool ltp_words, int num_threads) {
            Check1D(row_splits, "row_splits");
            if (row_splits.shape(0) < 1) {
              throw std::invalid_argument("row_splits must have at least one entry");
            }
            auto view = BytesView(text);
            const int64_t* rs = row_splits.data();
            const int64_t n_rows = row_splits.shape(0) - 1;
            wwm::CwsResult r;
            {
              py::gil_scoped_release release;
              r = self.Segment(view.first, view.second, rs, n_rows, splits_in_chars,
                               ltp_words ? wwm::CwsOutput::kLtpWords : wwm::CwsOutput::kSpans,
                               num_threads);
            }
            return py::make_tuple(wwm::VectorToArray(std::move(r.starts)),
                                  wwm::VectorToArray(std::move(r.ends)),
                                  wwm::VectorToArray(std::move(r.row_splits)));
          },
          py::arg("text"), py::arg("row_splits").noconvert(), py::arg("splits_in_chars"),
          py::arg("ltp_words"), py::arg("num_threads"),
          "Segments the rows of `text` (UTF-8): (starts int32, ends int32, row_splits int64), "
          "code point offsets per row; ltp_words=True gives LTP's own words (whitespace glued "
          "on), else wwm_fast's WordSpans. num_threads <= 0: every core; capped at MAX_THREADS.")
      .def_property_readonly("num_features", &LtpCwsModel::num_features)
      .def_property_readonly("num_parameters", &LtpCwsModel::num_parameters)
      .def_property_readonly("num_chars", &LtpCwsModel::num_chars)
      .def_property_readonly("num_pairs", &LtpCwsModel::num_pairs)
      .def_property_readonly("memory_bytes", &LtpCwsModel::memory_bytes);
}
