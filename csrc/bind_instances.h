// Conversions shared by the bindings of the instance stages (_instances, _masking, _tfrecord):
// the Corpus and InstanceView structs from dicts of numpy arrays, the InstanceSet to a dict.
//
// Ownership: a view holds a reference to every array it points into (CorpusArrays /
// InstanceArrays keep the py::array handles), so the kernel can run without the GIL even if
// another thread replaces the dict's entries meanwhile; the holder is destroyed after the GIL is
// taken back. Dtypes are compared by equivalence, not identity (an unpickled array's dtype is
// an equal but distinct object).
#ifndef WWM_FAST_CSRC_BIND_INSTANCES_H_
#define WWM_FAST_CSRC_BIND_INSTANCES_H_

#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "bind_util.h"
#include "corpus.h"
#include "instances.h"

namespace wwm {

// Bounds of the test shims' counts (they allocate or loop as often as they are asked to).
inline void CheckShimCount(int64_t n, const char* what) {
  if (n < 0 || n > (int64_t{1} << 24)) {
    throw std::invalid_argument(std::string(what) + " must be in [0, 2^24], got " +
                                std::to_string(n));
  }
}

// d[name] as a 1-D C-contiguous array of T (exactly T: no conversion), of `length` entries when
// length >= 0. TypeError / ValueError name the array, the expected and the actual value.
template <typename T>
CArray<T> Field(const py::dict& d, const char* name, int64_t length) {
  if (!d.contains(name)) throw std::invalid_argument(std::string("missing array '") + name + "'");
  py::object obj = d[name];
  const py::dtype want = py::dtype::of<T>();
  if (!py::isinstance<py::array>(obj) || !py::isinstance<CArray<T>>(obj) ||
      !py::array(obj).dtype().equal(want)) {
    throw py::type_error(std::string("array '") + name + "' must be a C-contiguous " +
                         py::str(want).cast<std::string>() + " numpy array, got " +
                         py::str(py::type::handle_of(obj)).cast<std::string>() +
                         (py::isinstance<py::array>(obj)
                              ? " of dtype " + py::str(py::array(obj).dtype()).cast<std::string>()
                              : ""));
  }
  CArray<T> a = py::reinterpret_borrow<CArray<T>>(obj);  // the same object: no copy
  if (a.ndim() != 1) {
    throw std::invalid_argument(std::string("array '") + name + "' must be 1-D, got " +
                                std::to_string(a.ndim()) + " dimensions");
  }
  if (length >= 0 && a.shape(0) != length) {
    throw std::invalid_argument(std::string("array '") + name + "' must have length " +
                                std::to_string(length) + ", got " + std::to_string(a.shape(0)));
  }
  return a;
}

// corpus: dict with ids int32, word_start uint8 (same length), sent_splits int64, doc_splits
// int64. The splits are checked by the kernels (CheckCorpus).
struct CorpusArrays {
  CArray<int32_t> ids;
  CArray<uint8_t> word_start;
  CArray<int64_t> sent, doc;
  Corpus view;

  explicit CorpusArrays(const py::dict& d)
      : ids(Field<int32_t>(d, "ids", -1)),
        word_start(Field<uint8_t>(d, "word_start", ids.shape(0))),
        sent(Field<int64_t>(d, "sent_splits", -1)),
        doc(Field<int64_t>(d, "doc_splits", -1)) {
    if (sent.shape(0) < 1 || doc.shape(0) < 1) {
      throw std::invalid_argument("sent_splits and doc_splits must not be empty (they start "
                                  "with 0)");
    }
    view = Corpus{ids.data(), word_start.data(), ids.shape(0), sent.data(), sent.shape(0) - 1,
                  doc.data(), doc.shape(0) - 1};
  }
};

// instances: dict with a_start/b_start int64, a_len/b_len int32, next_label uint8, all of one
// length n; key uint64 [n] when need_key; with need_preds pred_splits int64 [n + 1] from 0 to
// n_pred and pred_positions/pred_input_ids/pred_labels int32 [n_pred]. Per-instance ranges are
// checked by the kernels (CheckInstance; the serializer also checks each instance's
// pred_splits pair).
struct InstanceArrays {
  CArray<int64_t> a_start, b_start, pred_splits;
  CArray<int32_t> a_len, b_len, pred_positions, pred_input_ids, pred_labels;
  CArray<uint8_t> next_label;
  CArray<uint64_t> key;
  InstanceView view{};

  InstanceArrays(const py::dict& d, bool need_key, bool need_preds)
      : a_start(Field<int64_t>(d, "a_start", -1)) {
    const int64_t n = a_start.shape(0);
    a_len = Field<int32_t>(d, "a_len", n);
    b_start = Field<int64_t>(d, "b_start", n);
    b_len = Field<int32_t>(d, "b_len", n);
    next_label = Field<uint8_t>(d, "next_label", n);
    view.n = n;
    view.a_start = a_start.data();
    view.a_len = a_len.data();
    view.b_start = b_start.data();
    view.b_len = b_len.data();
    view.next_label = next_label.data();
    if (need_key) {
      key = Field<uint64_t>(d, "key", n);
      view.key = key.data();
    }
    if (need_preds) {
      pred_splits = Field<int64_t>(d, "pred_splits", n + 1);
      pred_positions = Field<int32_t>(d, "pred_positions", -1);
      const int64_t n_pred = pred_positions.shape(0);
      pred_input_ids = Field<int32_t>(d, "pred_input_ids", n_pred);
      pred_labels = Field<int32_t>(d, "pred_labels", n_pred);
      const int64_t* s = pred_splits.data();
      if (s[0] != 0 || s[n] != n_pred) {
        throw std::invalid_argument("pred_splits must run from 0 to len(pred_positions) = " +
                                    std::to_string(n_pred) + ", got " + std::to_string(s[0]) +
                                    " ... " + std::to_string(s[n]));
      }
      view.pred_splits = s;
      view.pred_positions = pred_positions.data();
      view.pred_input_ids = pred_input_ids.data();
      view.pred_labels = pred_labels.data();
      view.n_pred = n_pred;
    }
  }
};

inline py::dict PredictionsToDict(PodVector<int64_t>&& splits, Predictions&& p, py::dict d) {
  d["pred_splits"] = VectorToArray(std::move(splits));
  d["pred_positions"] = VectorToArray(std::move(p.positions));
  d["pred_input_ids"] = VectorToArray(std::move(p.input_ids));
  d["pred_labels"] = VectorToArray(std::move(p.labels));
  d["group_hist"] = VectorToArray(std::move(p.group_hist));
  return d;
}

inline py::dict SetToDict(InstanceSet&& s) {
  py::dict d;
  d["a_start"] = VectorToArray(std::move(s.a_start));
  d["a_len"] = VectorToArray(std::move(s.a_len));
  d["b_start"] = VectorToArray(std::move(s.b_start));
  d["b_len"] = VectorToArray(std::move(s.b_len));
  d["next_label"] = VectorToArray(std::move(s.next_label));
  d["key"] = VectorToArray(std::move(s.key));
  if (!s.pred_splits.empty()) {
    PredictionsToDict(std::move(s.pred_splits), std::move(s.preds), d);
  }
  return d;
}

// BuildConfig from keyword values; rand_ids (a call argument, alive for the call) is borrowed.
inline BuildConfig MakeConfig(int max_seq_length, int max_predictions, double masked_lm_prob,
                              double short_seq_prob, int dupe_factor, bool whole_word,
                              bool next_sentence, int32_t cls_id, int32_t sep_id, int32_t mask_id,
                              const CArray<int32_t>& rand_ids) {
  if (rand_ids.ndim() != 1) {
    throw std::invalid_argument("rand_ids must be 1-D, got " + std::to_string(rand_ids.ndim()) +
                                " dimensions");
  }
  return BuildConfig{max_seq_length, max_predictions, masked_lm_prob, short_seq_prob, dupe_factor,
                     whole_word, next_sentence, cls_id, sep_id, mask_id, rand_ids.data(),
                     static_cast<int64_t>(rand_ids.size())};
}

}  // namespace wwm

#endif  // WWM_FAST_CSRC_BIND_INSTANCES_H_
