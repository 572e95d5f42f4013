#include "fast_shard.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.h"

namespace wwm {

void DocumentsFromLines(PodVector<int32_t>&& ids, const PodVector<int64_t>& row_splits,
                        const PodVector<uint8_t>& blank, const uint8_t* suffix, int64_t n_suffix,
                        OwnedCorpus* out) {
  const int64_t n_lines = static_cast<int64_t>(row_splits.size()) - 1;
  const int64_t n_ids = static_cast<int64_t>(ids.size());
  if (n_lines < 0 || static_cast<int64_t>(blank.size()) != n_lines || row_splits[0] != 0 ||
      row_splits[n_lines] != n_ids) {
    throw std::invalid_argument("row_splits / blank do not describe the " +
                                std::to_string(n_ids) + " token ids");
  }
  out->sent_splits.clear();
  out->doc_splits.clear();
  out->sent_splits.push_back(0);
  out->doc_splits.push_back(0);
  int64_t doc = 0, prev_doc = -1, n_sent = 0;
  for (int64_t line = 0; line < n_lines; ++line) {
    doc += blank[line];  // a blank line starts a new document id (numpy's cumsum of blank)
    // compared before any subtraction: splits near +-2^63 must not overflow
    if (row_splits[line + 1] < row_splits[line]) {
      throw std::invalid_argument("row_splits must be non-decreasing");
    }
    if (row_splits[line + 1] == row_splits[line]) continue;
    if (prev_doc >= 0 && doc != prev_doc) out->doc_splits.push_back(n_sent);
    out->sent_splits.push_back(row_splits[line + 1]);
    ++n_sent;
    prev_doc = doc;
  }
  if (n_sent > 0) out->doc_splits.push_back(n_sent);
  out->word_start.resize_uninitialized(static_cast<size_t>(n_ids));
  uint8_t* ws = out->word_start.data();
  if (suffix == nullptr) {
    if (n_ids > 0) std::memset(ws, 1, static_cast<size_t>(n_ids));
  } else {
    const int32_t* p = ids.data();
    for (int64_t i = 0; i < n_ids; ++i) {
      ws[i] = !(p[i] >= 0 && p[i] < n_suffix && suffix[p[i]]);
    }
  }
  out->ids = std::move(ids);
}

CorpusFigures CountCorpus(const Corpus& c, int32_t unk_id) {
  CorpusFigures f;
  f.documents = c.n_documents;
  f.corpus_tokens = c.n_ids;
  int64_t unk = 0, starts = 0;
  for (int64_t i = 0; i < c.n_ids; ++i) {
    unk += c.ids[i] == unk_id;
    starts += c.word_start[i] != 0;
  }
  f.unk_tokens = unk;
  f.word_continuations = c.n_ids - starts;
  return f;
}

// Per-thread working memory of WriteRange.
struct ShardWriter::Scratch {
  FastMaskScratch mask;
  NgramScratch ngram;
  std::vector<int32_t> input_ids;  // max_seq_length + 1: the instance, masked, then zeros
  std::vector<uint32_t> positions, labels;
  int last_length = 0;  // input_ids[last_length, max_seq_length) are zero

  Scratch(int max_seq_length, int max_predictions)
      : input_ids(static_cast<size_t>(max_seq_length) + 1, 0),
        positions(static_cast<size_t>(max_predictions)),
        labels(static_cast<size_t>(max_predictions)) {
    mask.Reserve(max_seq_length);
  }
  void ReserveNgram(int max_seq_length) { ngram.Reserve(max_seq_length); }
};

ShardWriter::ShardWriter(const Corpus& corpus, const BuildConfig& cfg, uint64_t seed,
                         uint64_t shard, const NgramTable* ngram)
    : corpus_(corpus),
      cfg_(cfg),
      write_cfg_{cfg.max_seq_length, cfg.max_predictions, cfg.cls_id, cfg.sep_id, corpus.n_ids},
      mask_cfg_(MaskConfigOf(cfg)),
      ngram_(ngram != nullptr),
      bound_(0) {
  if (ngram != nullptr) {
    // (a table not from MakeNgramTable: its sizes index the histograms)
    if (ngram->n_sizes < 1 || ngram->n_sizes > kMaxNgramTableSize) {
      throw std::invalid_argument("the n-gram table must have 1 to " +
                                  std::to_string(kMaxNgramTableSize) + " sizes, got " +
                                  std::to_string(ngram->n_sizes));
    }
    table_ = *ngram;
  }
  InstanceSet set;
  BuildFast(corpus, cfg, seed, shard, &set);  // validates cfg and the corpus
  bound_ = MaxRecordBytes(write_cfg_);
  const InstanceView view = set.View();
  const int64_t n = view.n;
  PodVector<int64_t> order;
  ShuffledOrder(n, seed, shard, &order);
  records_.resize_uninitialized(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = order[k];
    CheckInstance(view, i, corpus.n_ids, cfg.max_seq_length);
    records_[k] = Record{view.a_start[i], view.b_start[i], view.key[i], view.a_len[i],
                         view.b_len[i], view.next_label[i]};
    figures_.instance_tokens += InstanceLength(view.a_len[i], view.b_len[i]);
    figures_.random_next += view.next_label[i];
    figures_.single_segment += view.b_len[i] == 0;
  }
  figures_.instances = n;
}

size_t ShardWriter::WriteRange(int64_t begin, int64_t end, uint8_t* out, Scratch* s,
                               InstanceFigures* f) const {
  const Corpus& c = corpus_;
  const int32_t mask_id = cfg_.mask_id;
  const bool whole_word = cfg_.whole_word;
  int32_t* in = s->input_ids.data();
  uint32_t* positions = s->positions.data();
  uint32_t* labels = s->labels.data();
  int64_t* hist = f->group_hist;
  // The records are in write order, so their descriptors stream; the corpus ranges they point at
  // are anywhere in the shard: fetch them a few records ahead.
  constexpr int64_t kAhead = 6;
  auto prefetch = [&](int64_t k) {
    if (k >= end) return;
    const Record& r = records_[k];
    PrefetchRange(c.ids + r.a_start, int64_t{4} * r.a_len);
    PrefetchRange(c.ids + r.b_start, int64_t{4} * r.b_len);
    if (whole_word) {
      PrefetchRange(c.word_start + r.a_start, r.a_len);
      PrefetchRange(c.word_start + r.b_start, r.b_len);
    }
  };
  for (int64_t k = begin; k < std::min(end, begin + kAhead); ++k) prefetch(k);
  uint8_t* p = out;
  for (int64_t k = begin; k < end; ++k) {
    prefetch(k + kAhead);
    const Record& r = records_[k];
    const int32_t a_len = r.a_len, b_len = r.b_len;
    const int length = static_cast<int>(InstanceLength(a_len, b_len));  // <= S (checked)
    // [CLS] A [SEP] (B [SEP]), then zeros up to S
    in[0] = cfg_.cls_id;
    if (a_len > 0) std::memcpy(in + 1, c.ids + r.a_start, sizeof(int32_t) * a_len);
    in[a_len + 1] = cfg_.sep_id;
    const int b_first = a_len + 2;
    if (b_len > 0) {
      std::memcpy(in + b_first, c.ids + r.b_start, sizeof(int32_t) * b_len);
      in[length - 1] = cfg_.sep_id;
    }
    if (s->last_length > length) {
      std::memset(in + length, 0, sizeof(int32_t) * (s->last_length - length));
    }
    s->last_length = length;
    int n_pred = 0;
    int64_t shown_mask = 0, shown_random = 0;
    auto emit = [&](int pos, int32_t shown, int32_t original) {
      positions[n_pred] = static_cast<uint32_t>(pos);
      labels[n_pred] = static_cast<uint32_t>(original);
      ++n_pred;
      in[pos] = shown;
      shown_mask += shown == mask_id;
      shown_random += shown != original && shown != mask_id;
    };
    if (ngram_) {
      MaskNgramInstance(c.word_start + r.a_start, a_len, c.word_start + r.b_start, b_len, in,
                        length, whole_word, mask_cfg_, table_, r.key, &s->ngram, hist,
                        f->ngram_masked, f->ngram_drawn, emit);
    } else {
      MaskFastInstance(c.word_start + r.a_start, a_len, c.word_start + r.b_start, b_len, in,
                       length, whole_word, mask_cfg_, r.key, &s->mask, hist, emit);
    }
    f->masked_tokens += n_pred;
    f->mask_replaced += shown_mask;
    f->random_replaced += shown_random;
    const RecordFields fields{reinterpret_cast<const uint32_t*>(in), length,
                              b_len > 0 ? b_first : length, positions, labels, n_pred,
                              r.next_label};
    RecordLayout layout;
    MeasureRecord(fields, write_cfg_, &layout);
    p = WriteRecord(fields, write_cfg_, layout, p);
  }
  return static_cast<size_t>(p - out);
}

size_t ShardWriter::Next(uint8_t* out, size_t capacity, int num_threads, int64_t* n_done) {
  const int64_t n_fit = std::min<int64_t>(n_instances() - next_,
                                          static_cast<int64_t>(capacity / bound_));
  *n_done = 0;
  if (n_fit <= 0) return 0;
  constexpr int64_t kMinPerThread = 256;  // below this a thread costs more than it saves
  const int threads = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(ResolveNumThreads(num_threads), n_fit / kMinPerThread)));
  // The run is cut into pieces that the threads claim one at a time (kPiecesPerThread each on
  // average): on a busy machine a thread that is descheduled holds up one piece, not its whole
  // share of the chunk. Piece q writes records [begin_q, end_q) into its own region, sized by
  // the record bound so that the whole run always fits; the regions are then closed up in order.
  constexpr int64_t kPiecesPerThread = 8;
  const int64_t pieces = threads == 1 ? 1 : int64_t{threads} * kPiecesPerThread;
  std::vector<size_t> used(static_cast<size_t>(pieces));
  std::vector<InstanceFigures> parts(static_cast<size_t>(pieces));
  std::atomic<int64_t> claim{0};
  const int S = cfg_.max_seq_length, P = cfg_.max_predictions;
  ParallelFor(threads, [&](int) {
    Scratch scratch(S, P);
    if (ngram_) scratch.ReserveNgram(S);
    for (int64_t q = claim.fetch_add(1); q < pieces; q = claim.fetch_add(1)) {
      const int64_t begin = n_fit * q / pieces, end = n_fit * (q + 1) / pieces;
      used[q] = WriteRange(next_ + begin, next_ + end, out + static_cast<size_t>(begin) * bound_,
                           &scratch, &parts[q]);
    }
  });
  size_t total = 0;
  for (int64_t q = 0; q < pieces; ++q) {
    const int64_t begin = n_fit * q / pieces;
    if (q > 0) std::memmove(out + total, out + static_cast<size_t>(begin) * bound_, used[q]);
    total += used[q];
    const InstanceFigures& f = parts[q];
    figures_.masked_tokens += f.masked_tokens;
    figures_.mask_replaced += f.mask_replaced;
    figures_.random_replaced += f.random_replaced;
    for (int h = 0; h < kWordSizeHistLen; ++h) figures_.group_hist[h] += f.group_hist[h];
    for (int h = 0; h < kNgramHistLen; ++h) {
      figures_.ngram_masked[h] += f.ngram_masked[h];
      figures_.ngram_drawn[h] += f.ngram_drawn[h];
    }
  }
  next_ += n_fit;
  *n_done = n_fit;
  return total;
}

}  // namespace wwm
