// pybind11 module wwm_fast._shard: fast mode's shard kernel (fast_shard.h) and the native vocab
// parser, without numpy: inputs are read through the buffer protocol and record chunks leave as
// buffer objects, so `wwm-fast create` on text never imports numpy.
#include <pybind11/pybind11.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include "fast_shard.h"
#include "parallel.h"
#include "wordpiece.h"

namespace py = pybind11;

namespace {

// True when a buffer format (struct module syntax) is one native integer of T's signedness;
// the caller checks the item size.
template <typename T>
bool IntegerFormat(const std::string& format) {
  std::string f = format;
  if (!f.empty() && (f[0] == '@' || f[0] == '=' || f[0] == '<')) f = f.substr(1);
  if (f.size() != 1) return false;
  const std::string kinds = std::is_signed<T>::value ? "bhilqn" : "BHILQN";
  return kinds.find(f[0]) != std::string::npos;
}

// A 1-D C-contiguous buffer of T (checked by format and itemsize); the info keeps the export
// (and so the object) alive.
template <typename T>
py::buffer_info BufferOf(const py::buffer& b, const char* name) {
  py::buffer_info info = b.request();
  if (info.ndim != 1 || info.itemsize != static_cast<py::ssize_t>(sizeof(T)) ||
      !IntegerFormat<T>(info.format) ||
      (info.shape[0] > 1 && info.strides[0] != static_cast<py::ssize_t>(sizeof(T)))) {
    throw py::type_error(std::string(name) + " must be a 1-D C-contiguous buffer of " +
                         (std::is_signed<T>::value ? "int" : "uint") +
                         std::to_string(8 * sizeof(T)) + ", got format '" + info.format +
                         "', itemsize " + std::to_string(info.itemsize) + ", " +
                         std::to_string(info.ndim) + " dimension(s)");
  }
  return info;
}

// Any contiguous bytes-like object (bytes, bytearray, memoryview, mmap).
py::buffer_info BytesOf(const py::buffer& b, const char* name) {
  py::buffer_info info = b.request();
  if (info.ndim != 1 || info.itemsize != 1 || (info.shape[0] > 1 && info.strides[0] != 1)) {
    throw py::type_error(std::string(name) + " must be a contiguous bytes-like buffer");
  }
  return info;
}

wwm::Utf8Errors ParseErrors(const std::string& errors) {
  if (errors == "strict") return wwm::Utf8Errors::kStrict;
  if (errors == "ignore") return wwm::Utf8Errors::kIgnore;
  throw std::invalid_argument("errors must be one of ['strict', 'ignore'], got '" + errors + "'");
}

// One chunk of framed records: a read-only buffer over one of the shard's rotating buffers (the
// chunk holds that buffer, so it never dangles; the shard reuses it two chunks later).
struct Chunk {
  std::shared_ptr<wwm::PodVector<uint8_t>> buffer;
  size_t size;
};

// One shard: its corpus (owned, or borrowed buffers kept alive here) and its record writer.
class Shard {
 public:
  // Builds the instances (GIL released). `corpus` points into `owned` or `borrowed`.
  // `rand_ids` is what cfg.rand_ids points into (held here: the kernel may go first).
  Shard(std::unique_ptr<wwm::OwnedCorpus> owned, std::vector<py::buffer_info> borrowed,
        std::shared_ptr<const std::vector<int32_t>> rand_ids, const wwm::Corpus& corpus,
        const wwm::BuildConfig& cfg, uint64_t seed, uint64_t index, int32_t unk_id,
        size_t chunk_bytes, int64_t lines)
      : owned_(std::move(owned)), borrowed_(std::move(borrowed)), rand_ids_(std::move(rand_ids)),
        lines_(lines) {
    {
      py::gil_scoped_release release;
      writer_ = std::make_unique<wwm::ShardWriter>(corpus, cfg, seed, index);
      corpus_figures_ = wwm::CountCorpus(corpus, unk_id);
    }
    chunk_bytes_ = std::max(chunk_bytes, writer_->max_record_bytes());
  }

  // One call at a time per shard (mu_: Python threads may share a shard).
  py::object NextChunk(int num_threads) {
    std::shared_ptr<wwm::PodVector<uint8_t>> buf;
    int64_t n_done = 0;
    size_t used = 0;
    bool finished = false;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mu_);
      finished = writer_->done();
      if (!finished) {
        std::shared_ptr<wwm::PodVector<uint8_t>>& slot = buffers_[turn_++ % 3];
        if (!slot) {
          slot = std::make_shared<wwm::PodVector<uint8_t>>();
          slot->resize_uninitialized(chunk_bytes_);
        }
        buf = slot;
        used = writer_->Next(buf->data(), buf->size(), num_threads, &n_done);
      }
    }
    if (finished) return py::none();
    if (n_done == 0) throw std::runtime_error("a record did not fit the chunk buffer");
    return py::cast(Chunk{buf, used});
  }

  py::dict Figures() const {
    std::lock_guard<std::mutex> lock(mu_);  // never held while waiting for the GIL
    const wwm::InstanceFigures& f = writer_->figures();
    py::dict d;
    d["lines"] = lines_;
    d["documents"] = corpus_figures_.documents;
    d["corpus_tokens"] = corpus_figures_.corpus_tokens;
    d["unk_tokens"] = corpus_figures_.unk_tokens;
    d["word_continuations"] = corpus_figures_.word_continuations;
    d["instances"] = f.instances;
    d["instance_tokens"] = f.instance_tokens;
    d["masked_tokens"] = f.masked_tokens;
    d["mask_replaced"] = f.mask_replaced;
    d["random_replaced"] = f.random_replaced;
    d["random_next"] = f.random_next;
    d["single_segment"] = f.single_segment;
    py::list hist;
    for (int h = 0; h < wwm::kWordSizeHistLen; ++h) hist.append(f.group_hist[h]);
    d["masked_group_hist"] = hist;
    return d;
  }

  int64_t n_instances() const { return writer_->n_instances(); }
  bool done() const { return writer_->done(); }

 private:
  std::unique_ptr<wwm::OwnedCorpus> owned_;
  std::vector<py::buffer_info> borrowed_;
  std::shared_ptr<const std::vector<int32_t>> rand_ids_;
  std::unique_ptr<wwm::ShardWriter> writer_;
  mutable std::mutex mu_;
  wwm::CorpusFigures corpus_figures_;
  int64_t lines_;
  size_t chunk_bytes_ = 0;
  std::shared_ptr<wwm::PodVector<uint8_t>> buffers_[3];
  uint64_t turn_ = 0;
};

constexpr size_t kMaxChunkBytes = size_t{1} << 30;

// A job's tokenizer and configuration, shared by its shards (immutable after construction).
class Kernel {
 public:
  Kernel(const wwm::ParsedVocab& vocab, const std::string& unk_token, bool do_lower_case,
         int max_input_chars_per_word, int max_seq_length, int max_predictions,
         double masked_lm_prob, double short_seq_prob, int dupe_factor, bool whole_word,
         bool next_sentence, uint64_t seed, size_t chunk_bytes)
      : seed_(seed), chunk_bytes_(chunk_bytes) {
    if (vocab.error_line >= 0) {
      throw std::invalid_argument("vocab line " + std::to_string(vocab.error_line + 1) +
                                  " is not valid UTF-8");
    }
    auto need = [&vocab](const std::string& token) {
      const int32_t id = vocab.Find(token);
      if (id < 0) throw std::invalid_argument("the vocab has no '" + token + "' entry");
      return id;
    };
    unk_id_ = need(unk_token);
    const int32_t cls = need("[CLS]"), sep = need("[SEP]"), mask = need("[MASK]");
    if (chunk_bytes > kMaxChunkBytes) {
      throw std::invalid_argument("chunk_bytes must be at most " +
                                  std::to_string(kMaxChunkBytes) + ", got " +
                                  std::to_string(chunk_bytes));
    }
    // Google's vocab_words order: the entries' ids in vocab order
    rand_ids_ = std::make_shared<const std::vector<int32_t>>(vocab.ids);
    int32_t max_id = 0;
    for (int32_t id : vocab.ids) max_id = std::max(max_id, id);
    suffix_.assign(static_cast<size_t>(max_id) + 1, 0);
    for (size_t i = 0; i < vocab.keys.size(); ++i) {
      const std::string& k = vocab.keys[i];
      if (k.size() >= 2 && k[0] == '#' && k[1] == '#') suffix_[vocab.ids[i]] = 1;
    }
    cfg_ = wwm::BuildConfig{max_seq_length, max_predictions, masked_lm_prob, short_seq_prob,
                            dupe_factor, whole_word, next_sentence, cls, sep, mask,
                            rand_ids_->data(), static_cast<int64_t>(rand_ids_->size())};
    wwm::ValidateConfig(cfg_, false);
    tokenizer_ = std::make_unique<wwm::FullTokenizer>(vocab.keys, vocab.ids, unk_id_,
                                                      do_lower_case, max_input_chars_per_word);
  }

  // Tokenizes a text shard (lines split on '\n', every '\r' removed) and builds its instances.
  // Returns (shard, None) or, for invalid UTF-8 under errors="strict", (None, (line, byte,
  // length, line_begin, line_end)): the line, the bad bytes within it (after '\r' removal) and
  // the line's byte range in data.
  py::tuple TextShard(const py::buffer& data, const std::string& errors, uint64_t index,
                      int num_threads) const {
    const wwm::Utf8Errors mode = ParseErrors(errors);
    const py::buffer_info info = BytesOf(data, "data");
    const char* ptr = static_cast<const char*>(info.ptr);
    const size_t size = static_cast<size_t>(info.size);
    auto corpus = std::make_unique<wwm::OwnedCorpus>();
    std::vector<int64_t> splits;
    wwm::EncodeError err;
    int64_t n_lines = 0;
    {
      py::gil_scoped_release release;
      splits = wwm::SplitLines(ptr, size);
      n_lines = static_cast<int64_t>(splits.size()) - 1;
      wwm::EncodeOutput out;
      out.offsets = false;
      wwm::PodVector<int64_t> row_splits;
      wwm::PodVector<uint8_t> blank;
      err = wwm::EncodeLines(*tokenizer_, ptr, splits.data(), n_lines, mode, true, num_threads,
                             &out, &row_splits, &blank);
      if (err.line < 0) {
        wwm::DocumentsFromLines(std::move(out.ids), row_splits, blank,
                                cfg_.whole_word ? suffix_.data() : nullptr,
                                static_cast<int64_t>(suffix_.size()), corpus.get());
      }
    }
    if (err.line >= 0) {
      return py::make_tuple(py::none(),
                            py::make_tuple(err.line, err.byte, err.length, splits[err.line],
                                           splits[err.line + 1]));
    }
    const wwm::Corpus view = corpus->View();
    auto shard = std::make_unique<Shard>(std::move(corpus), std::vector<py::buffer_info>(),
                                         rand_ids_, view, cfg_, seed_, index, unk_id_,
                                         chunk_bytes_, n_lines);
    return py::make_tuple(py::cast(std::move(shard)), py::none());
  }

  // A shard from documents made elsewhere (a segmentation cache, a segmenter): the four arrays
  // of wwm_fast.instances.Documents, borrowed (kept alive by the shard) and checked by the
  // writer (CheckCorpus). `lines` is only reported.
  std::unique_ptr<Shard> DocumentsShard(const py::buffer& ids, const py::buffer& word_start,
                                        const py::buffer& sent_splits,
                                        const py::buffer& doc_splits, uint64_t index,
                                        int64_t lines) const {
    std::vector<py::buffer_info> held;
    held.push_back(BufferOf<int32_t>(ids, "ids"));
    held.push_back(BufferOf<uint8_t>(word_start, "word_start"));
    held.push_back(BufferOf<int64_t>(sent_splits, "sent_splits"));
    held.push_back(BufferOf<int64_t>(doc_splits, "doc_splits"));
    const int64_t n_ids = held[0].shape[0];
    if (held[1].shape[0] != n_ids) {
      throw std::invalid_argument("word_start has " + std::to_string(held[1].shape[0]) +
                                  " entries, ids " + std::to_string(n_ids));
    }
    if (held[2].shape[0] < 1 || held[3].shape[0] < 1) {
      throw std::invalid_argument("sent_splits and doc_splits must not be empty");
    }
    const wwm::Corpus view{static_cast<const int32_t*>(held[0].ptr),
                           static_cast<const uint8_t*>(held[1].ptr), n_ids,
                           static_cast<const int64_t*>(held[2].ptr), held[2].shape[0] - 1,
                           static_cast<const int64_t*>(held[3].ptr), held[3].shape[0] - 1};
    return std::make_unique<Shard>(nullptr, std::move(held), rand_ids_, view, cfg_, seed_, index,
                                   unk_id_, chunk_bytes_, lines);
  }

  size_t max_record_bytes() const {
    return wwm::MaxRecordBytes(
        wwm::WriteConfig{cfg_.max_seq_length, cfg_.max_predictions, 0, 0, 0});
  }

 private:
  uint64_t seed_;
  size_t chunk_bytes_;
  int32_t unk_id_ = -1;
  std::shared_ptr<const std::vector<int32_t>> rand_ids_;
  std::vector<uint8_t> suffix_;
  wwm::BuildConfig cfg_{};
  std::unique_ptr<wwm::FullTokenizer> tokenizer_;
};

}  // namespace

PYBIND11_MODULE(_shard, m) {
  m.doc() = "Fast mode's native shard kernel and vocab parser. Private: used by wwm_fast.shard.";
  m.attr("MAX_THREADS") = wwm::kMaxThreads;
  m.attr("WORD_SIZE_HIST_LEN") = wwm::kWordSizeHistLen;

  py::class_<wwm::ParsedVocab>(m, "Vocab")
      .def(py::init([](const py::buffer& data) {
             const py::buffer_info info = BytesOf(data, "data");
             auto v = std::make_unique<wwm::ParsedVocab>();
             py::gil_scoped_release release;
             *v = wwm::ParseVocab(static_cast<const char*>(info.ptr),
                                  static_cast<size_t>(info.size));
             return v;
           }),
           py::arg("data"),
           "Google's load_vocab on a vocab file's bytes (see wwm_fast.vocab.load_vocab).")
      .def_readonly("error_line", &wwm::ParsedVocab::error_line,
                    "first line (0-based) that is not valid UTF-8, or -1")
      .def_readonly("n_lines", &wwm::ParsedVocab::n_lines)
      .def("__len__", [](const wwm::ParsedVocab& v) { return v.keys.size(); })
      .def("find", &wwm::ParsedVocab::Find, py::arg("token"), "the entry's id, or -1")
      .def(
          "items",
          [](const wwm::ParsedVocab& v) {
            py::list out;
            for (size_t i = 0; i < v.keys.size(); ++i) {
              out.append(py::make_tuple(py::str(v.keys[i]), v.ids[i]));
            }
            return out;
          },
          "[(entry, id)] in vocab order (what load_vocab's OrderedDict holds)");

  py::class_<Chunk>(m, "Chunk", py::buffer_protocol())
      .def_buffer([](Chunk& c) {
        return py::buffer_info(c.buffer->data(), 1, py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(c.size)}, {1}, /*readonly=*/true);
      })
      .def("__len__", [](const Chunk& c) { return c.size; });

  py::class_<Shard>(m, "Shard")
      .def("next_chunk", &Shard::NextChunk, py::arg("num_threads") = 1,
           "The next chunk of framed records (a bytes-like object), None when all are written. "
           "A chunk stays valid while the next two are made.")
      .def("figures", &Shard::Figures,
           "corpus and instance figures (the masking ones complete once every chunk is made)")
      .def_property_readonly("n_instances", &Shard::n_instances)
      .def_property_readonly("done", &Shard::done);

  py::class_<Kernel>(m, "Kernel")
      .def(py::init<const wwm::ParsedVocab&, const std::string&, bool, int, int, int, double,
                    double, int, bool, bool, uint64_t, size_t>(),
           py::arg("vocab"), py::arg("unk_token"), py::arg("do_lower_case"),
           py::arg("max_input_chars_per_word"), py::arg("max_seq_length"),
           py::arg("max_predictions"), py::arg("masked_lm_prob"), py::arg("short_seq_prob"),
           py::arg("dupe_factor"), py::arg("whole_word"), py::arg("next_sentence"),
           py::arg("seed"), py::arg("chunk_bytes") = size_t{4} << 20)
      .def("text_shard", &Kernel::TextShard, py::arg("data"), py::arg("errors"),
           py::arg("index"), py::arg("num_threads"))
      .def("documents_shard", &Kernel::DocumentsShard, py::arg("ids"), py::arg("word_start"),
           py::arg("sent_splits"), py::arg("doc_splits"), py::arg("index"), py::arg("lines"))
      .def_property_readonly("max_record_bytes", &Kernel::max_record_bytes);
}
