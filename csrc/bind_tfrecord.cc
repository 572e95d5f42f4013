// pybind11 module wwm_fast._tfrecord: Example serialization and TFRecord framing.
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "bind_instances.h"
#include "parallel.h"
#include "tfrecord.h"

namespace py = pybind11;
using wwm::CArray;

namespace {

py::bytes ToBytes(wwm::PodVector<uint8_t>&& v) {
  return py::bytes(reinterpret_cast<const char*>(v.data()), v.size());
}

}  // namespace

PYBIND11_MODULE(_tfrecord, m) {
  m.doc() = "Native TFRecord writer. Private: use wwm_fast.tfrecord.";
  m.attr("MAX_THREADS") = wwm::kMaxThreads;
  m.def(
      "serialize_into",
      [](CArray<int32_t> ids, py::dict instances, CArray<int64_t> order, int max_seq_length,
         int max_predictions, int32_t cls_id, int32_t sep_id, CArray<uint8_t> out,
         int num_threads) {
        // The holder keeps the arrays alive until the GIL is back; ranges and pred_splits are
        // checked by the kernel, instance by instance.
        const wwm::InstanceArrays v(instances, false, true);
        if (ids.ndim() != 1 || order.ndim() != 1 || out.ndim() != 1) {
          throw std::invalid_argument("ids, order and out must be 1-D arrays");
        }
        const wwm::WriteConfig cfg{max_seq_length, max_predictions, cls_id, sep_id,
                                   ids.shape(0)};
        wwm::CheckWriteConfig(cfg);
        int64_t n_done = 0;
        size_t used;
        uint8_t* buf = out.mutable_data();
        const size_t capacity = static_cast<size_t>(out.shape(0));
        {
          py::gil_scoped_release release;
          used = wwm::SerializeInstancesParallel(ids.data(), v.view, order.data(), order.shape(0),
                                                 cfg, buf, capacity, num_threads, &n_done);
        }
        return py::make_tuple(used, n_done);
      },
      py::arg("ids").noconvert(), py::arg("instances"), py::arg("order").noconvert(),
      py::arg("max_seq_length"), py::arg("max_predictions"), py::arg("cls_id"),
      py::arg("sep_id"), py::arg("out").noconvert(), py::arg("num_threads") = 1,
      "Writes framed tf.train.Example records of instances[order[k]] into the preallocated uint8 "
      "array `out` until the next does not fit, on num_threads threads (same bytes); returns "
      "(bytes written, instances written).");
  m.def(
      "max_record_bytes",
      [](int max_seq_length, int max_predictions) {
        return wwm::MaxRecordBytes(wwm::WriteConfig{max_seq_length, max_predictions, 0, 0, 0});
      },
      py::arg("max_seq_length"), py::arg("max_predictions"),
      "Upper bound of one framed record's size.");
  m.def(
      "frame_records",
      [](py::list records) {
        wwm::PodVector<uint8_t> out;
        for (py::handle r : records) {
          std::string s = r.cast<std::string>();
          wwm::FrameRecord(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &out);
        }
        return ToBytes(std::move(out));
      },
      py::arg("records"), "TFRecord framing of already serialized records.");
  m.def(
      "crc32c",
      [](py::buffer data) {
        // any C-contiguous bytes-like object (bytes, memoryview, a numpy array), read in place:
        // a checkpoint reader checksums tensors of hundreds of MB without copying them
        py::buffer_info info = data.request();
        py::ssize_t expected = info.itemsize;
        for (py::ssize_t i = info.ndim - 1; i >= 0; --i) {
          if (info.shape[i] > 1 && info.strides[i] != expected) {
            throw std::invalid_argument("crc32c: data must be a C-contiguous buffer");
          }
          expected *= info.shape[i];
        }
        const auto* p = static_cast<const uint8_t*>(info.ptr);
        const size_t n = static_cast<size_t>(info.size) * static_cast<size_t>(info.itemsize);
        py::gil_scoped_release release;
        return wwm::Crc32c(p, n);
      },
      py::arg("data"), "CRC32C of a C-contiguous bytes-like object (no copy; the GIL is released).");
}
