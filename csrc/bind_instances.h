// Conversions shared by the bindings of the instance stages (_instances, _masking, _tfrecord):
// the Corpus and InstanceView structs from dicts of numpy arrays, the InstanceSet to a dict.
#ifndef WWM_FAST_CSRC_BIND_INSTANCES_H_
#define WWM_FAST_CSRC_BIND_INSTANCES_H_

#include <pybind11/pybind11.h>

#include <string>

#include "bind_util.h"
#include "instances.h"

namespace wwm {

template <typename T>
CArray<T> Field(const py::dict& d, const char* name, int64_t length) {
  if (!d.contains(name)) throw std::invalid_argument(std::string("missing array '") + name + "'");
  py::object obj = d[name];
  if (!py::isinstance<py::array>(obj) || !py::isinstance<CArray<T>>(obj) ||
      !py::array(obj).dtype().is(py::dtype::of<T>())) {
    throw py::type_error(std::string("array '") + name + "' must be a C-contiguous " +
                         py::str(py::dtype::of<T>()).cast<std::string>() + " numpy array, got " +
                         py::str(py::type::handle_of(obj)).cast<std::string>() +
                         (py::isinstance<py::array>(obj)
                              ? " of dtype " + py::str(py::array(obj).dtype()).cast<std::string>()
                              : ""));
  }
  CArray<T> a = obj.cast<CArray<T>>();
  if (length >= 0 && (a.ndim() != 1 || a.shape(0) != length)) {
    throw std::invalid_argument(std::string("array '") + name + "' must have length " +
                                std::to_string(length) + ", got " + std::to_string(a.shape(0)));
  }
  return a;
}

// corpus: dict with ids int32, word_start uint8, sent_splits int64, doc_splits int64. The arrays
// must outlive the returned struct (the caller keeps the dict alive).
inline Corpus CorpusFromDict(const py::dict& d) {
  auto ids = Field<int32_t>(d, "ids", -1);
  auto word_start = Field<uint8_t>(d, "word_start", ids.shape(0));
  auto sent = Field<int64_t>(d, "sent_splits", -1);
  auto doc = Field<int64_t>(d, "doc_splits", -1);
  const int64_t n_sent = sent.shape(0) - 1, n_doc = doc.shape(0) - 1;
  if (n_sent < 0 || n_doc < 0) throw std::invalid_argument("splits must not be empty");
  const int64_t* s = sent.data();
  const int64_t* dd = doc.data();
  if (s[0] != 0 || s[n_sent] != ids.shape(0)) {
    throw std::invalid_argument("sent_splits must run from 0 to len(ids)");
  }
  if (dd[0] != 0 || dd[n_doc] != n_sent) {
    throw std::invalid_argument("doc_splits must run from 0 to the number of sentences");
  }
  for (int64_t i = 0; i < n_sent; ++i) {
    if (s[i + 1] <= s[i]) {
      throw std::invalid_argument("sentence " + std::to_string(i) + " is empty or unsorted");
    }
  }
  for (int64_t i = 0; i < n_doc; ++i) {
    if (dd[i + 1] <= dd[i]) {
      throw std::invalid_argument("document " + std::to_string(i) + " is empty or unsorted");
    }
  }
  return Corpus{ids.data(), word_start.data(), s, n_sent, dd, n_doc};
}

// instances: dict with a_start/b_start int64, a_len/b_len int32, next_label uint8 and optionally
// key uint64, pred_splits int64, pred_positions/pred_input_ids/pred_labels int32.
inline InstanceView ViewFromDict(const py::dict& d, bool need_key, bool need_preds) {
  auto a_start = Field<int64_t>(d, "a_start", -1);
  const int64_t n = a_start.shape(0);
  InstanceView v{};
  v.n = n;
  v.a_start = a_start.data();
  v.a_len = Field<int32_t>(d, "a_len", n).data();
  v.b_start = Field<int64_t>(d, "b_start", n).data();
  v.b_len = Field<int32_t>(d, "b_len", n).data();
  v.next_label = Field<uint8_t>(d, "next_label", n).data();
  if (need_key) v.key = Field<uint64_t>(d, "key", n).data();
  if (need_preds) {
    auto splits = Field<int64_t>(d, "pred_splits", n + 1);
    const int64_t n_pred = splits.data()[n];
    v.pred_splits = splits.data();
    v.pred_positions = Field<int32_t>(d, "pred_positions", n_pred).data();
    v.pred_input_ids = Field<int32_t>(d, "pred_input_ids", n_pred).data();
    v.pred_labels = Field<int32_t>(d, "pred_labels", n_pred).data();
  }
  return v;
}

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

// BuildConfig from keyword values; rand_ids must outlive the config.
inline BuildConfig MakeConfig(int max_seq_length, int max_predictions, double masked_lm_prob,
                              double short_seq_prob, int dupe_factor, bool whole_word,
                              bool next_sentence, int32_t cls_id, int32_t sep_id, int32_t mask_id,
                              const CArray<int32_t>& rand_ids) {
  return BuildConfig{max_seq_length, max_predictions, masked_lm_prob, short_seq_prob, dupe_factor,
                     whole_word, next_sentence, cls_id, sep_id, mask_id, rand_ids.data(),
                     static_cast<int64_t>(rand_ids.size())};
}

}  // namespace wwm

#endif  // WWM_FAST_CSRC_BIND_INSTANCES_H_
