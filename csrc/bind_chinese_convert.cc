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

py::tuple Run(const wwm::ChineseConverter& self, const CArray<uint32_t>& text,
              const int64_t* starts, const int64_t* ends, int64_t n_lines, int64_t separator,
              const CArray<uint8_t>& ws_table, bool utf8 = false) {
  const uint32_t* t = text.data();
  const int64_t n_text = text.shape(0);
  wwm::ConvertOutput out;
  {
    py::gil_scoped_release release;
    wwm::ChineseConverter::CheckInput(t, n_text, starts, ends, n_lines);
    self.Convert(t, n_text, starts, ends, n_lines,
                 utf8 ? wwm::ChineseConverter::kUtf8 : separator < 0 ? -1 : separator,
                 ws_table.data(), ws_table.shape(0), &out);
  }
  if (utf8) {
    const size_t n = out.utf8.size();
    py::bytes data(reinterpret_cast<const char*>(out.utf8.data()), n);
    return py::make_tuple(data, wwm::VectorToArray(std::move(out.offsets)),
                          wwm::VectorToArray(std::move(out.byte_offsets)),
                          wwm::VectorToArray(std::move(out.blocks)),
                          wwm::VectorToArray(std::move(out.status)));
  }
  return py::make_tuple(wwm::VectorToArray(std::move(out.text)),
                        wwm::VectorToArray(std::move(out.offsets)),
                        wwm::VectorToArray(std::move(out.blocks)),
                        wwm::VectorToArray(std::move(out.status)));
}

// convert_utf8 / convert_joined: n_lines lines joined by the code point separator.
py::tuple RunJoined(const wwm::ChineseConverter& self, const CArray<uint32_t>& text,
                    int64_t n_lines, int64_t separator, const CArray<uint8_t>& ws_table,
                    bool utf8) {
  Check1D(text, "text");
  Check1D(ws_table, "ws_table");
  if (separator < 0 || separator > 0x10FFFF) {
    throw std::invalid_argument("separator must be a code point");
  }
  if (n_lines < 1) throw std::invalid_argument("n_lines must be >= 1");
  std::vector<int64_t> starts, ends;
  {
    py::gil_scoped_release release;
    wwm::ChineseConverter::SplitLines(text.data(), text.shape(0),
                                      static_cast<uint32_t>(separator), n_lines, &starts, &ends);
  }
  return Run(self, text, starts.data(), ends.data(), n_lines, separator, ws_table, utf8);
}

}  // namespace

PYBIND11_MODULE(_chinese_convert, m) {
  m.doc() = "Native OpenCC-compatible dictionary conversion. Private: use "
            "wwm_fast.segmentation.convert.";
  m.attr("LINE_CONVERTED") = static_cast<int>(wwm::kConverted);
  m.attr("LINE_FAILED") = static_cast<int>(wwm::kFailed);
  m.attr("LINE_REFERENCE") = static_cast<int>(wwm::kReference);
  m.attr("LINE_WHITESPACE") = static_cast<int>(wwm::kWhitespace);
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
             CArray<int64_t> line_offsets, int64_t separator, CArray<uint8_t> ws_table) {
            Check1D(text, "text");
            Check1D(line_offsets, "line_offsets");
            Check1D(ws_table, "ws_table");
            if (separator > 0x10FFFF) throw std::invalid_argument("separator above U+10FFFF");
            if (line_offsets.shape(0) < 1) {
              throw std::invalid_argument("line_offsets must have n_lines + 1 >= 1 entries");
            }
            const int64_t n_lines = line_offsets.shape(0) - 1;
            const int64_t* off = line_offsets.data();
            if (off[0] != 0 || off[n_lines] != text.shape(0)) {
              throw std::invalid_argument("line_offsets must run from 0 to len(text)");
            }
            return Run(self, text, off, off + 1, n_lines, separator, ws_table);
          },
          py::arg("text").noconvert(), py::arg("line_offsets").noconvert(),
          py::arg("separator") = -1, py::arg("ws_table") = CArray<uint8_t>(0),
          "Converts lines (uint32 code points; line i is text[line_offsets[i], "
          "line_offsets[i + 1])). separator: a code point written between output lines, -1 for "
          "none; ws_table: uint8 per code point, nonzero for whitespace (empty: no check). "
          "Returns (text, ends, blocks, status): the converted lines, ends[i + 1] the end of "
          "line i (line i > 0 starts after ends[i] and the separator), blocks as int64 rows of 5 "
          "(line, orig_start, orig_end, out_start, out_end) where the output does not follow "
          "the input character by character, and a uint8 status per line (LINE_CONVERTED; "
          "LINE_FAILED: a lone surrogate, left as it is; LINE_REFERENCE: U+0000 under a config "
          "with segmentation, left as it is; LINE_WHITESPACE: converted, whitespace moved).")
      .def(
          "convert_utf8",
          [](const wwm::ChineseConverter& self, CArray<uint32_t> text, int64_t n_lines,
             int64_t separator, CArray<uint8_t> ws_table) {
            return RunJoined(self, text, n_lines, separator, ws_table, true);
          },
          py::arg("text").noconvert(), py::arg("n_lines"), py::arg("separator"),
          py::arg("ws_table") = CArray<uint8_t>(0),
          "convert_joined() with UTF-8 output: returns (utf8, offsets, byte_offsets, blocks, "
          "status): the converted lines concatenated (no separator) as UTF-8 bytes, the code "
          "point and the byte offsets of the lines in it (n_lines + 1 each), blocks and status "
          "as convert().")
      .def(
          "convert_joined",
          [](const wwm::ChineseConverter& self, CArray<uint32_t> text, int64_t n_lines,
             int64_t separator, CArray<uint8_t> ws_table) {
            return RunJoined(self, text, n_lines, separator, ws_table, false);
          },
          py::arg("text").noconvert(), py::arg("n_lines"), py::arg("separator"),
          py::arg("ws_table") = CArray<uint8_t>(0),
          "convert() for n_lines lines joined by the code point separator (which no line may "
          "hold: the count must come out right); the output lines are joined by it too.");
}
