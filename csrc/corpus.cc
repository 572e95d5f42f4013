#include "corpus.h"

#include <stdexcept>
#include <string>

namespace wwm {

void CheckCorpus(const Corpus& c) {
  if (c.n_sentences < 0 || c.n_documents < 0) {
    throw std::invalid_argument("sent_splits and doc_splits must not be empty");
  }
  const int64_t* s = c.sent_splits;
  const int64_t* d = c.doc_splits;
  if (s[0] != 0 || s[c.n_sentences] != c.n_ids) {
    throw std::invalid_argument("sent_splits must run from 0 to len(ids) = " +
                                std::to_string(c.n_ids) + ", got " + std::to_string(s[0]) +
                                " ... " + std::to_string(s[c.n_sentences]));
  }
  if (d[0] != 0 || d[c.n_documents] != c.n_sentences) {
    throw std::invalid_argument("doc_splits must run from 0 to the number of sentences " +
                                std::to_string(c.n_sentences) + ", got " + std::to_string(d[0]) +
                                " ... " + std::to_string(d[c.n_documents]));
  }
  for (int64_t i = 0; i < c.n_sentences; ++i) {
    // s[i] >= s[0] = 0 by induction, so the difference cannot overflow
    if (s[i + 1] <= s[i] || s[i + 1] - s[i] > kMaxSentenceTokens) {
      throw std::invalid_argument("sentence " + std::to_string(i) + " spans sent_splits " +
                                  std::to_string(s[i]) + " .. " + std::to_string(s[i + 1]) +
                                  " (must be non-empty, sorted and at most " +
                                  std::to_string(kMaxSentenceTokens) + " tokens)");
    }
  }
  for (int64_t i = 0; i < c.n_documents; ++i) {
    if (d[i + 1] <= d[i]) {
      throw std::invalid_argument("document " + std::to_string(i) + " spans doc_splits " +
                                  std::to_string(d[i]) + " .. " + std::to_string(d[i + 1]) +
                                  " (must be non-empty and sorted)");
    }
  }
}

void ThrowBadInstance(const InstanceView& v, int64_t i, int64_t n_ids, int max_seq_length) {
  const std::string where = "instance " + std::to_string(i);
  if (!RangeInside(v.a_start[i], v.a_len[i], n_ids)) {
    throw std::out_of_range(where + " points outside the corpus: a_start " +
                            std::to_string(v.a_start[i]) + ", a_len " +
                            std::to_string(v.a_len[i]) + " is not a range of its " +
                            std::to_string(n_ids) + " ids");
  }
  if (!RangeInside(v.b_start[i], v.b_len[i], n_ids)) {
    throw std::out_of_range(where + " points outside the corpus: b_start " +
                            std::to_string(v.b_start[i]) + ", b_len " +
                            std::to_string(v.b_len[i]) + " is not a range of its " +
                            std::to_string(n_ids) + " ids");
  }
  throw std::invalid_argument(where + " has " +
                              std::to_string(InstanceLength(v.a_len[i], v.b_len[i])) +
                              " tokens > max_seq_length " + std::to_string(max_seq_length));
}

}  // namespace wwm
