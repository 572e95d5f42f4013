// pybind11 module wwm_fast._wordpiece: type conversion and error translation only.
#include <Python.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bind_util.h"
#include "parallel.h"
#include "unicode_props.h"
#include "wordpiece.h"

namespace py = pybind11;
using wwm::CArray;
using wwm::VectorToArray;

namespace {

wwm::Utf8Errors ParseErrors(const std::string& errors) {
  if (errors == "strict") return wwm::Utf8Errors::kStrict;
  if (errors == "ignore") return wwm::Utf8Errors::kIgnore;
  throw std::invalid_argument("errors must be one of ['strict', 'ignore'], got '" + errors + "'");
}

py::tuple Result(wwm::EncodeOutput&& out, wwm::PodVector<int64_t>&& row_splits,
                 wwm::PodVector<uint8_t>&& blank) {
  return py::make_tuple(VectorToArray(std::move(out.ids)), VectorToArray(std::move(row_splits)),
                        VectorToArray(std::move(out.starts)), VectorToArray(std::move(out.ends)),
                        VectorToArray(std::move(blank)));
}

}  // namespace

PYBIND11_MODULE(_wordpiece, m) {
  m.doc() = "Native WordPiece tokenizer (Google BERT semantics). Private: use wwm_fast.FullTokenizer.";
  m.attr("UNIDATA_VERSION") = wwm::UnidataVersion();
  m.attr("MAX_THREADS") = wwm::kMaxThreads;
  m.attr("MAX_LINE_BYTES") = wwm::kMaxLineBytes;

  py::class_<wwm::FullTokenizer>(m, "FullTokenizer")
      .def(py::init([](const std::vector<std::string>& keys, CArray<int32_t> ids, int32_t unk_id,
                       bool do_lower_case, int max_input_chars_per_word) {
             if (ids.ndim() != 1) throw std::invalid_argument("ids must be a 1-D array");
             std::vector<int32_t> idv(ids.data(), ids.data() + ids.size());
             return new wwm::FullTokenizer(keys, idv, unk_id, do_lower_case,
                                           max_input_chars_per_word);
           }),
           py::arg("keys"), py::arg("ids").noconvert(), py::arg("unk_id"),
           py::arg("do_lower_case"), py::arg("max_input_chars_per_word"))
      // lines: list of str. Each str is copied (as UTF-8, lone surrogates kept as CPython's
      // "surrogatepass" writes them) into one buffer under the GIL; the GIL is then released.
      .def(
          "encode_lines",
          [](const wwm::FullTokenizer& tok, py::list lines, int num_threads) {
            std::string buffer;
            std::vector<int64_t> splits;
            splits.reserve(lines.size() + 1);
            splits.push_back(0);
            for (py::handle item : lines) {
              if (!PyUnicode_Check(item.ptr())) {
                throw py::type_error("lines must be a list of str, got an item of type " +
                                     std::string(Py_TYPE(item.ptr())->tp_name));
              }
              Py_ssize_t size = 0;
              const char* utf8 = PyUnicode_AsUTF8AndSize(item.ptr(), &size);
              if (utf8 != nullptr) {
                buffer.append(utf8, static_cast<size_t>(size));
              } else {
                PyErr_Clear();
                py::object enc = py::reinterpret_steal<py::object>(
                    PyUnicode_AsEncodedString(item.ptr(), "utf-8", "surrogatepass"));
                if (!enc) throw py::error_already_set();
                buffer.append(PyBytes_AS_STRING(enc.ptr()),
                              static_cast<size_t>(PyBytes_GET_SIZE(enc.ptr())));
              }
              splits.push_back(static_cast<int64_t>(buffer.size()));
            }
            wwm::EncodeOutput out;
            wwm::PodVector<int64_t> row_splits;
            wwm::PodVector<uint8_t> blank;
            {
              py::gil_scoped_release release;
              wwm::EncodeLines(tok, buffer.data(), splits.data(),
                               static_cast<int64_t>(splits.size()) - 1,
                               wwm::Utf8Errors::kSurrogatePass, false, num_threads, &out,
                               &row_splits, &blank);
            }
            return Result(std::move(out), std::move(row_splits), std::move(blank));
          },
          py::arg("lines"), py::arg("num_threads"),
          "Returns (ids int32, row_splits int64, starts int32, ends int32, blank uint8).")
      // data: bytes-like, borrowed (the caller keeps it alive; the GIL is released while reading).
      // line_splits: int64 boundaries, or None to split on '\n' as GFile.readline does.
      // Returns the encode_lines tuple plus (line_splits, error_line, error_byte, error_length);
      // error_line is -1 when the data decoded.
      .def(
          "encode_buffer",
          [](const wwm::FullTokenizer& tok, py::buffer data, py::object line_splits,
             const std::string& errors, bool strip_cr, int num_threads, bool with_offsets) {
            const wwm::Utf8Errors mode = ParseErrors(errors);
            py::buffer_info info = data.request();
            if (info.ndim != 1 || info.itemsize != 1) {
              throw std::invalid_argument("data must be a 1-D bytes-like buffer");
            }
            const char* ptr = static_cast<const char*>(info.ptr);
            const size_t size = static_cast<size_t>(info.size);
            std::vector<int64_t> splits;
            if (line_splits.is_none()) {
              py::gil_scoped_release release;
              splits = wwm::SplitLines(ptr, size);
            } else {
              auto arr = line_splits.cast<CArray<int64_t>>();
              if (arr.ndim() != 1) throw std::invalid_argument("line_splits must be 1-D");
              splits.assign(arr.data(), arr.data() + arr.size());
              if (splits.empty() || splits.front() < 0 ||
                  splits.back() > static_cast<int64_t>(size)) {
                throw std::out_of_range("line_splits must start >= 0 and end <= len(data) = " +
                                        std::to_string(size));
              }
              for (size_t i = 1; i < splits.size(); ++i) {
                if (splits[i] < splits[i - 1]) {
                  throw std::invalid_argument("line_splits must be non-decreasing, got " +
                                              std::to_string(splits[i - 1]) + " then " +
                                              std::to_string(splits[i]) + " at index " +
                                              std::to_string(i));
                }
              }
            }
            wwm::EncodeOutput out;
            out.offsets = with_offsets;
            wwm::PodVector<int64_t> row_splits;
            wwm::PodVector<uint8_t> blank;
            wwm::EncodeError err;
            {
              py::gil_scoped_release release;
              err = wwm::EncodeLines(tok, ptr, splits.data(),
                                     static_cast<int64_t>(splits.size()) - 1, mode, strip_cr,
                                     num_threads, &out, &row_splits, &blank);
            }
            py::tuple r = Result(std::move(out), std::move(row_splits), std::move(blank));
            return py::make_tuple(r[0], r[1], r[2], r[3], r[4], VectorToArray(std::move(splits)),
                                  err.line, err.byte, err.length);
          },
          py::arg("data"), py::arg("line_splits"), py::arg("errors"), py::arg("strip_cr"),
          py::arg("num_threads"), py::arg("with_offsets") = true);
}
