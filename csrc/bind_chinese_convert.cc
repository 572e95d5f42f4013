// pybind11 module wwm_fast._chinese_convert: type conversion and error translation only.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "bind_util.h"
#include "chinese_convert.h"

namespace py = pybind11;
using wwm::CArray;

namespace {

template <typename T>
void Check1D(const CArray<T>& a, const std::string& name) {
  if (a.ndim() != 1) throw std::invalid_argument(name + " must be a 1-D array");
}

}  // namespace

PYBIND11_MODULE(_chinese_convert, m) {
  m.doc() = "Native OpenCC-compatible dictionary conversion. Private: use "
            "wwm_fast.segmentation.convert.";
  m.attr("LINE_CONVERTED") = static_cast<int>(wwm::kConverted);
  m.attr("LINE_FAILED") = static_cast<int>(wwm::kFailed);
  m.attr("LINE_REFERENCE") = static_cast<int>(wwm::kReference);
  py::class_<wwm::ChineseConverter>(m, "Converter")
      .def(py::init([](const std::vector<py::tuple>& dicts, CArray<int32_t> program) {
             // the arrays stay referenced by `dicts` while the constructor copies them
             std::vector<CArray<uint32_t>> keep_u;
             std::vector<CArray<int64_t>> keep_i;
             std::vector<wwm::ConvertDictInput> in;
             for (size_t i = 0; i < dicts.size(); ++i) {
               const py::tuple& t = dicts[i];
               const std::string name = "dictionary " + std::to_string(i);
               if (t.size() != 4) {
                 throw std::invalid_argument(name + " must be (keys, key_offsets, values, "
                                             "value_offsets)");
               }
               auto keys = t[0].cast<CArray<uint32_t>>();
               auto koff = t[1].cast<CArray<int64_t>>();
               auto vals = t[2].cast<CArray<uint32_t>>();
               auto voff = t[3].cast<CArray<int64_t>>();
               Check1D(keys, name + " keys");
               Check1D(koff, name + " key_offsets");
               Check1D(vals, name + " values");
               Check1D(voff, name + " value_offsets");
               if (koff.shape(0) < 1 || voff.shape(0) != koff.shape(0)) {
                 throw std::invalid_argument(name + ": key_offsets and value_offsets must have "
                                             "the same length n_keys + 1 >= 1");
               }
               in.push_back({keys.data(), koff.data(), koff.shape(0) - 1, keys.shape(0),
                             vals.data(), voff.data(), vals.shape(0)});
               keep_u.push_back(keys);
               keep_u.push_back(vals);
               keep_i.push_back(koff);
               keep_i.push_back(voff);
             }
             Check1D(program, "program");
             const int32_t* prog = program.data();
             const int64_t prog_len = program.shape(0);
             py::gil_scoped_release release;
             return std::make_unique<wwm::ChineseConverter>(in, prog, prog_len);
           }),
           py::arg("dicts"), py::arg("program").noconvert(),
           "Builds a converter from leaf dictionaries (keys, key_offsets, values, value_offsets: "
           "uint32 code points and int64 offsets) and an int32 program (see chinese_convert.h).")
      .def(
          "convert",
          [](const wwm::ChineseConverter& self, CArray<uint32_t> text,
             CArray<int64_t> line_offsets, int64_t separator) {
            Check1D(text, "text");
            Check1D(line_offsets, "line_offsets");
            if (separator > 0x10FFFF) throw std::invalid_argument("separator above U+10FFFF");
            if (line_offsets.shape(0) < 1) {
              throw std::invalid_argument("line_offsets must have n_lines + 1 >= 1 entries");
            }
            const int64_t n_lines = line_offsets.shape(0) - 1;
            const uint32_t* t = text.data();
            const int64_t* off = line_offsets.data();
            wwm::ConvertOutput out;
            {
              py::gil_scoped_release release;
              wwm::ChineseConverter::CheckInput(t, text.shape(0), off, n_lines);
              self.Convert(t, off, n_lines, separator < 0 ? -1 : separator, &out);
            }
            return py::make_tuple(wwm::VectorToArray(std::move(out.text)),
                                  wwm::VectorToArray(std::move(out.offsets)),
                                  wwm::VectorToArray(std::move(out.blocks)),
                                  wwm::VectorToArray(std::move(out.status)));
          },
          py::arg("text").noconvert(), py::arg("line_offsets").noconvert(),
          py::arg("separator") = -1,
          "Converts lines (uint32 code points, int64 line offsets; separator: a code point "
          "written between output lines, -1 for none). Returns (text, offsets, "
          "blocks, status): the converted lines, their ends (offsets[i + 1]), blocks as int64 rows of 5 "
          "(line, orig_start, orig_end, out_start, out_end) where the output does not follow "
          "the input character by character, and a uint8 status per line (LINE_CONVERTED; "
          "LINE_FAILED: a lone surrogate; LINE_REFERENCE: U+0000 under a config with "
          "segmentation; both left as they are for the caller).");
}
