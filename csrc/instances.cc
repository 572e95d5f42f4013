#include "instances.h"

#include <stdexcept>
#include <string>

#include "corpus.h"
#include "random.h"

namespace wwm {
namespace {

inline int64_t SentenceStart(const Corpus& c, int64_t s) { return c.sent_splits[s]; }
inline int32_t SentenceLength(const Corpus& c, int64_t s) {
  return static_cast<int32_t>(c.sent_splits[s + 1] - c.sent_splits[s]);
}

// Google's truncate_seq_pair on ranges: trim the longer (B on ties) at a random end per token.
// (Locals, not the pointers, in the loop: it runs once per trimmed token.)
template <typename Rng>
void TruncatePair(int64_t* a_start, int32_t* a_len, int64_t* b_start, int32_t* b_len,
                  int max_num_tokens, Rng& rng) {
  int64_t as = *a_start, bs = *b_start;
  int32_t al = *a_len, bl = *b_len;
  while (int64_t{al} + bl > max_num_tokens) {  // int64: two int32 lengths never wrap
    if (al > bl) {
      as += rng.RandomBelowHalf();  // del trunc_tokens[0] (or trunc_tokens.pop())
      --al;
    } else {
      bs += rng.RandomBelowHalf();
      --bl;
    }
  }
  *a_start = as;
  *a_len = al;
  *b_start = bs;
  *b_len = bl;
}

void Append(InstanceSet* out, int64_t a_start, int32_t a_len, int64_t b_start, int32_t b_len,
            bool random_next) {
  out->a_start.push_back(a_start);
  out->a_len.push_back(a_len);
  out->b_start.push_back(b_start);
  out->b_len.push_back(b_len);
  out->next_label.push_back(random_next ? 1 : 0);
}

// One document, one pass, Google's control flow. `pick_random_document(rng)` returns the index
// (into the corpus' document list) of the document a random next is taken from; `emit` receives
// each finished instance. Returns nothing; all state lives in the callers' closures.
template <typename Rng, typename PickDoc, typename Emit>
void InstancesFromDocument(const Corpus& c, const BuildConfig& cfg, int64_t doc, Rng& rng,
                           PickDoc pick_random_document, Emit emit) {
  const int64_t s0 = c.doc_splits[doc];
  const int64_t n = c.doc_splits[doc + 1] - s0;
  const int max_num_tokens = cfg.next_sentence ? cfg.max_seq_length - 3 : cfg.max_seq_length - 2;
  int target = max_num_tokens;
  if (rng.Random() < cfg.short_seq_prob) {
    target = static_cast<int>(rng.RandInt(2, max_num_tokens));
  }
  int64_t chunk_first = 0;  // the chunk is sentences [chunk_first, chunk_first + chunk_n)
  int64_t chunk_n = 0;
  int64_t current_length = 0;
  int64_t i = 0;
  while (i < n) {
    if (chunk_n == 0) chunk_first = i;
    ++chunk_n;
    current_length += SentenceLength(c, s0 + i);
    if (i == n - 1 || current_length >= target) {
      if (!cfg.next_sentence) {
        int64_t a_start = SentenceStart(c, s0 + chunk_first);
        int32_t a_len = static_cast<int32_t>(current_length);
        int64_t b_start = 0;
        int32_t b_len = 0;
        TruncatePair(&a_start, &a_len, &b_start, &b_len, max_num_tokens, rng);
        emit(a_start, a_len, b_start, b_len, false);
      } else {
        int64_t a_end = 1;
        if (chunk_n >= 2) a_end = rng.RandInt(1, chunk_n - 1);
        int64_t a_start = SentenceStart(c, s0 + chunk_first);
        int32_t a_len = static_cast<int32_t>(SentenceStart(c, s0 + chunk_first + a_end) - a_start);
        int64_t b_start;
        int32_t b_len = 0;
        bool random_next = false;
        if (chunk_n == 1 || rng.Random() < 0.5) {
          random_next = true;
          const int64_t target_b_length = target - a_len;
          const int64_t rdoc = pick_random_document(rng);
          const int64_t r0 = c.doc_splits[rdoc];
          const int64_t rn = c.doc_splits[rdoc + 1] - r0;
          const int64_t random_start = rng.RandInt(0, rn - 1);
          b_start = SentenceStart(c, r0 + random_start);
          for (int64_t j = random_start; j < rn; ++j) {
            b_len += SentenceLength(c, r0 + j);
            if (b_len >= target_b_length) break;
          }
          i -= chunk_n - a_end;  // put the unused sentences back
        } else {
          b_start = SentenceStart(c, s0 + chunk_first + a_end);
          b_len = static_cast<int32_t>(SentenceStart(c, s0 + chunk_first + chunk_n) - b_start);
        }
        TruncatePair(&a_start, &a_len, &b_start, &b_len, max_num_tokens, rng);
        emit(a_start, a_len, b_start, b_len, random_next);
      }
      chunk_n = 0;
      current_length = 0;
    }
    ++i;
  }
}

uint64_t FastShardKey(uint64_t seed, uint64_t shard) {
  return DeriveKey(DeriveKey(seed, 0x5eed), shard);
}

}  // namespace

void ValidateConfig(const BuildConfig& cfg, bool compat) {
  if (cfg.max_seq_length < 5 || cfg.max_seq_length > kMaxSeqLength) {
    throw std::invalid_argument("max_seq_length must be in [5, " + std::to_string(kMaxSeqLength) +
                                "] ([CLS] A [SEP] B [SEP] needs at least one token per segment), "
                                "got " + std::to_string(cfg.max_seq_length));
  }
  CheckMaskConfig(MaskConfigOf(cfg));
  if (cfg.max_predictions > cfg.max_seq_length) {
    throw std::invalid_argument("max_predictions_per_seq (" + std::to_string(cfg.max_predictions) +
                                ") cannot exceed max_seq_length (" +
                                std::to_string(cfg.max_seq_length) + ")");
  }
  if (!(cfg.short_seq_prob >= 0.0 && cfg.short_seq_prob <= 1.0)) {
    throw std::invalid_argument("short_seq_prob must be in [0, 1], got " +
                                std::to_string(cfg.short_seq_prob));
  }
  if (cfg.dupe_factor < 1) {
    throw std::invalid_argument("dupe_factor must be >= 1, got " + std::to_string(cfg.dupe_factor));
  }
  if (compat && !cfg.next_sentence) {
    throw std::invalid_argument("compat mode reproduces Google's script, which always builds "
                                "next-sentence pairs; next_sentence=False needs mode='fast'");
  }
}

void BuildCompat(const Corpus& c, const BuildConfig& cfg, const std::vector<uint32_t>& seed_key,
                 InstanceSet* out, const CompatMasker& masker) {
  ValidateConfig(cfg, true);
  CheckCorpus(c);
  PyRandom rng(seed_key);
  const int64_t n_docs = c.n_documents;
  std::vector<int64_t> order(static_cast<size_t>(n_docs));
  for (int64_t d = 0; d < n_docs; ++d) order[d] = d;
  Shuffle(rng, order.data(), order.size());  // rng.shuffle(all_documents)

  InstanceSet built;
  built.pred_splits.push_back(0);
  built.preds.group_hist.resize(kWordSizeHistLen, 0);
  InstanceTokens tokens;
  MaskScratch scratch;
  const MaskConfig mask_cfg = MaskConfigOf(cfg);
  for (int pass = 0; pass < cfg.dupe_factor; ++pass) {
    for (int64_t di = 0; di < n_docs; ++di) {
      auto pick = [&](PyRandom& r) {
        int64_t rdi = 0;
        for (int attempt = 0; attempt < 10; ++attempt) {
          rdi = r.RandInt(0, n_docs - 1);
          if (rdi != di) break;
        }
        return order[rdi];
      };
      auto emit = [&](int64_t a_start, int32_t a_len, int64_t b_start, int32_t b_len,
                      bool random_next) {
        if (a_len < 1 || b_len < 1) {
          throw std::invalid_argument("an instance ended with an empty segment (Google's script "
                                      "asserts here); increase max_seq_length");
        }
        Append(&built, a_start, a_len, b_start, b_len, random_next);
        FillInstanceTokens(c, a_start, a_len, b_start, b_len, cfg, false, &tokens);
        if (masker) {
          masker(tokens, rng, &built.preds);
        } else {
          MaskInstance(tokens.ids.data(), tokens.special.data(), tokens.joins.data(),
                       static_cast<int>(tokens.ids.size()), mask_cfg, rng, &scratch, &built.preds);
        }
        built.pred_splits.push_back(static_cast<int64_t>(built.preds.positions.size()));
      };
      InstancesFromDocument(c, cfg, order[di], rng, pick, emit);
    }
  }
  // rng.shuffle(instances): permute the descriptors and their predictions.
  const size_t n = built.a_start.size();
  std::vector<int64_t> perm(n);
  for (size_t k = 0; k < n; ++k) perm[k] = static_cast<int64_t>(k);
  Shuffle(rng, perm.data(), perm.size());
  out->pred_splits.push_back(0);
  out->preds.group_hist = std::move(built.preds.group_hist);
  for (size_t k = 0; k < n; ++k) {
    const int64_t j = perm[k];
    Append(out, built.a_start[j], built.a_len[j], built.b_start[j], built.b_len[j],
           built.next_label[j] != 0);
    for (int64_t p = built.pred_splits[j]; p < built.pred_splits[j + 1]; ++p) {
      out->preds.positions.push_back(built.preds.positions[p]);
      out->preds.input_ids.push_back(built.preds.input_ids[p]);
      out->preds.labels.push_back(built.preds.labels[p]);
    }
    out->pred_splits.push_back(static_cast<int64_t>(out->preds.positions.size()));
  }
}

void BuildFast(const Corpus& c, const BuildConfig& cfg, uint64_t seed, uint64_t shard,
               InstanceSet* out) {
  ValidateConfig(cfg, false);
  CheckCorpus(c);
  const int64_t n_docs = c.n_documents;
  const uint64_t shard_key = FastShardKey(seed, shard);
  InstanceSet built;
  for (int pass = 0; pass < cfg.dupe_factor; ++pass) {
    const uint64_t pass_key = DeriveKey(shard_key, static_cast<uint64_t>(pass));
    for (int64_t d = 0; d < n_docs; ++d) {
      const uint64_t doc_key = DeriveKey(pass_key, static_cast<uint64_t>(d));
      KeyedRng rng(doc_key);
      uint64_t k = 0;
      auto pick = [&](KeyedRng& r) -> int64_t {
        if (n_docs == 1) return d;  // nothing else to choose from (Google would retry 10 times)
        const int64_t other = static_cast<int64_t>(r.RandBelow(static_cast<uint64_t>(n_docs - 1)));
        return other >= d ? other + 1 : other;
      };
      auto emit = [&](int64_t a_start, int32_t a_len, int64_t b_start, int32_t b_len,
                      bool random_next) {
        Append(&built, a_start, a_len, b_start, b_len, random_next);
        built.key.push_back(DeriveKey(doc_key, 0x1000000ULL + k++));
      };
      InstancesFromDocument(c, cfg, d, rng, pick, emit);
    }
  }
  *out = std::move(built);
}

void ShuffledOrder(int64_t n, uint64_t seed, uint64_t shard, PodVector<int64_t>* order) {
  order->resize_uninitialized(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) (*order)[k] = k;
  KeyedRng rng(DeriveKey(FastShardKey(seed, shard), 0x5417F1E));
  Shuffle(rng, order->data(), order->size());
}

}  // namespace wwm
