// Dictionary conversion with OpenCC's semantics: see chinese_convert.h.
#include "chinese_convert.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace wwm {
namespace {

constexpr int kMaxLeaves = 64;     // leaf dictionaries in one dictionary tree
constexpr int kMaxTreeDepth = 32;  // nesting of groups
constexpr int32_t kWalk = -2;      // solo[]: the node has children, walk the text
constexpr uint64_t kEmpty = ~uint64_t{0};
constexpr uint16_t kSpecial = 0xFFFF;  // Matcher::direct: look the position up (U+FFFF too)

inline bool IsSurrogate(uint32_t c) { return c >= 0xD800 && c <= 0xDFFF; }

// Open addressing map uint64 -> int32 (linear probing, power-of-two size, load <= 1/2).
class FlatMap {
 public:
  FlatMap() { Rehash(16); }
  int32_t Find(uint64_t key) const {
    size_t i = Hash(key) & mask_;
    for (;;) {
      const uint64_t k = keys_[i];
      if (k == key) return vals_[i];
      if (k == kEmpty) return -1;
      i = (i + 1) & mask_;
    }
  }
  // Returns the value for key, inserting `value` when absent.
  int32_t FindOrInsert(uint64_t key, int32_t value) {
    if ((size_ + 1) * 2 > keys_.size()) Rehash(keys_.size() * 2);
    size_t i = Hash(key) & mask_;
    for (;;) {
      const uint64_t k = keys_[i];
      if (k == key) return vals_[i];
      if (k == kEmpty) {
        keys_[i] = key;
        vals_[i] = value;
        ++size_;
        return value;
      }
      i = (i + 1) & mask_;
    }
  }

 private:
  static size_t Hash(uint64_t k) {
    k *= 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(k ^ (k >> 29));
  }
  void Rehash(size_t n) {
    std::vector<uint64_t> old_k = std::move(keys_);
    std::vector<int32_t> old_v = std::move(vals_);
    keys_.assign(n, kEmpty);
    vals_.assign(n, -1);
    mask_ = n - 1;
    size_ = 0;
    for (size_t i = 0; i < old_k.size(); ++i) {
      if (old_k[i] != kEmpty) FindOrInsert(old_k[i], old_v[i]);
    }
  }
  std::vector<uint64_t> keys_;
  std::vector<int32_t> vals_;
  size_t mask_ = 0, size_ = 0;
};

inline uint64_t EdgeKey(int32_t node, uint32_t cp) {
  return (static_cast<uint64_t>(node) << 21) | cp;
}

struct Term {
  int32_t node;
  int32_t leaf;   // local leaf index in the tree
  int32_t value;  // global value id
};

// One dictionary tree (a normalization step, the segmentation or a conversion of the chain):
// all its leaves' keys in one character trie, each node knowing which leaves end a key there.
struct Matcher {
  std::vector<int32_t> tree;  // leaf: {0, local leaf}; group: {1|2, n, children...}
  int n_leaves = 0;
  std::vector<int32_t> root_bmp;        // BMP code point -> root child node, -1 if none
  FlatMap edges;                        // (node, code point) -> child (root astral children too)
  std::vector<uint8_t> has_children;    // per node
  std::vector<int32_t> term_begin;      // per node + 1: its terminals in terms
  std::vector<Term> terms;              // sorted by node, then leaf
  std::vector<int32_t> solo;            // per node: value id (childless root child), -1, kWalk
  std::vector<int32_t> stop1;           // per root child: the result of a walk that stops there
  // per BMP code point: what the character becomes when the result depends on it alone and is
  // one BMP code point (itself when nothing matches and it starts no IDS); kSpecial otherwise
  std::vector<uint16_t> direct;
  // Code points this tree may change, as kMaxTouch ranges [lo, lo + span] (merged, so they may
  // hold unchanged ones too; unused: lo = 0xFFFFFFFF, never hit by a valid code point): a text
  // with none of them is copied as it is. skippable = false: the ranges cover too much to be
  // worth checking.
  static constexpr int kMaxTouch = 2;
  uint32_t touch_lo[kMaxTouch], touch_span[kMaxTouch];
  bool skippable = false;

  int32_t Child(int32_t node, uint32_t cp) const {
    if (node == 0 && cp < 0x10000) return root_bmp[cp];
    return edges.Find(EdgeKey(node, cp));
  }

  // (length, value) of the tree's match given each leaf's longest match; length 0: none.
  std::pair<int32_t, int32_t> Eval(size_t* pos, const int32_t* len, const int32_t* val) const {
    const int32_t kind = tree[(*pos)++];
    if (kind == 0) {
      const int32_t leaf = tree[(*pos)++];
      return {len[leaf], val[leaf]};
    }
    const int32_t n = tree[(*pos)++];
    std::pair<int32_t, int32_t> best{0, -1};
    for (int32_t i = 0; i < n; ++i) {
      const std::pair<int32_t, int32_t> r = Eval(pos, len, val);
      if (kind == 1) {  // short_circuit: the first child with a match (skip the rest)
        if (best.first == 0 && r.first > 0) best = r;
      } else if (r.first > best.first) {  // union: the longest, the first on ties
        best = r;
      }
    }
    return best;
  }

  // The match at s[0..n), n >= 1: its length in code points (0: none) and value id.
  int32_t Match(const uint32_t* s, int64_t n, int32_t* value) const {
    int32_t node = Child(0, s[0]);
    if (node < 0) return 0;
    const int32_t so = solo[node];
    if (so != kWalk) {
      if (so < 0) return 0;
      *value = so;
      return 1;
    }
    // the common case: no key goes on with the next character
    if (n == 1 || Child(node, s[1]) < 0) {
      const int32_t r = stop1[node];
      if (r < 0) return 0;
      *value = r;
      return 1;
    }
    int32_t len[kMaxLeaves], val[kMaxLeaves];
    std::fill(len, len + n_leaves, 0);
    int64_t depth = 1;
    for (;;) {
      for (int32_t t = term_begin[node]; t < term_begin[node + 1]; ++t) {
        len[terms[t].leaf] = static_cast<int32_t>(depth);
        val[terms[t].leaf] = terms[t].value;
      }
      if (!has_children[node] || depth >= n) break;
      node = Child(node, s[depth]);
      if (node < 0) break;
      ++depth;
    }
    size_t pos = 0;
    const std::pair<int32_t, int32_t> r = Eval(&pos, len, val);
    *value = r.second;
    return r.first;
  }
};

// Ideographic description operators and their operand counts (OpenCC's list).
inline int IdsArity(uint32_t c) {
  if (c < 0x2FF0 || c > 0x2FFF) return 0;
  if (c == 0x2FF2 || c == 0x2FF3) return 3;
  if (c == 0x2FFE || c == 0x2FFF) return 1;
  return 2;
}

enum IdsStatus { kIdsComplete, kIdsIncomplete, kIdsInvalid };

IdsStatus ConsumeIds(const uint32_t* s, int64_t n, int depth_left, int* code_points,
                     int64_t* consumed) {
  if (n == 0) return kIdsIncomplete;
  if (depth_left == 0 || *code_points >= 64) return kIdsInvalid;
  ++*code_points;
  const int arity = IdsArity(s[0]);
  if (arity == 0) {
    *consumed = 1;
    return kIdsComplete;
  }
  int64_t off = 1;
  for (int i = 0; i < arity; ++i) {
    if (off >= n) return kIdsIncomplete;
    int64_t len = 0;
    const IdsStatus st = ConsumeIds(s + off, n - off, depth_left - 1, code_points, &len);
    if (st != kIdsComplete) return st;
    off += len;
  }
  *consumed = off;
  return kIdsComplete;
}

// Length of the complete ideographic description sequence at s (0 if none starts there).
inline int64_t IdsLength(const uint32_t* s, int64_t n) {
  if (n == 0 || IdsArity(s[0]) == 0) return 0;
  int code_points = 0;
  int64_t consumed = 0;
  return ConsumeIds(s, n, 16, &code_points, &consumed) == kIdsComplete ? consumed : 0;
}

struct Block {
  int64_t a, b, c, d;  // input [a, b) -> output [c, d), b - a != d - c
};

}  // namespace

struct ChineseConverter::Impl {
  std::vector<uint32_t> values;       // all dictionaries' (first) values
  std::vector<int64_t> value_offsets; // per global value id + 1
  std::vector<Matcher> normalization, chain;
  std::vector<uint32_t> dict_chars;   // the code points of all keys and values, once each
  std::unique_ptr<Matcher> segmentation;

  // Converts s[0..n) with m, writing from out[*o] on (out grows as needed, *o advances);
  // blocks get input positions + in_base and output positions relative to out[0].
  void ConvertRange(const Matcher& m, const uint32_t* s, int64_t n, int64_t in_base,
                    std::vector<uint32_t>* out, int64_t* o, std::vector<Block>* blocks) const {
    int64_t w = *o;
    if (static_cast<int64_t>(out->size()) < w + n) out->resize(std::max<size_t>(w + n, out->size() * 2));
    uint32_t* dst = out->data();
    const uint16_t* direct = m.direct.data();
    int64_t p = 0;
    while (p < n) {
      {  // the run of characters converted alone (most of them), with local pointers
        const uint32_t* sp = s + p;
        const uint32_t* const se = s + n;
        uint32_t* dp = dst + w;
        while (sp < se) {
          const uint32_t c = *sp;
          if (c >= 0x10000) break;
          const uint16_t d = direct[c];
          if (d == kSpecial) break;
          *dp++ = d;
          ++sp;
        }
        p = sp - s;
        w = dp - dst;
        if (p >= n) break;
      }
      int32_t value = -1;
      const int32_t k = m.Match(s + p, n - p, &value);
      if (k > 0) {
        const int64_t v0 = value_offsets[value], v1 = value_offsets[value + 1];
        const int64_t vn = v1 - v0;
        // room for the value and for the rest of the input copied one to one
        const int64_t need = w + vn + (n - p - k);
        if (static_cast<int64_t>(out->size()) < need) {
          out->resize(std::max<size_t>(need, out->size() * 2));
          dst = out->data();
        }
        if (vn != k) blocks->push_back({in_base + p, in_base + p + k, w, w + vn});
        for (int64_t i = 0; i < vn; ++i) dst[w + i] = values[v0 + i];
        w += vn;
        p += k;
      } else {
        int64_t len = IdsLength(s + p, n - p);
        if (len == 0) len = 1;
        for (int64_t i = 0; i < len; ++i) dst[w + i] = s[p + i];
        w += len;
        p += len;
      }
    }
    *o = w;
  }

  // Segment boundaries of s[0..n) by greedy longest match (0 and n included; none for n == 0).
  void Segment(const uint32_t* s, int64_t n, std::vector<int64_t>* cuts) const {
    cuts->clear();
    if (n == 0) return;
    cuts->push_back(0);
    int64_t p = 0;
    while (p < n) {
      int32_t value = -1;
      const int32_t k = segmentation->Match(s + p, n - p, &value);
      if (k > 0) {
        if (cuts->back() != p) cuts->push_back(p);
        p += k;
        cuts->push_back(p);
      } else {
        int64_t len = IdsLength(s + p, n - p);
        p += len == 0 ? 1 : len;
      }
    }
    if (cuts->back() != n) cuts->push_back(n);
  }
};

namespace {

void BuildMatcher(const std::vector<ConvertDictInput>& dicts, const std::vector<int64_t>& base,
                  const std::vector<uint32_t>& values, const std::vector<int64_t>& value_offsets,
                  const int32_t* prog, int64_t prog_len, int64_t* pos, Matcher* m) {
  // parse the tree (prefix form), renumbering leaves locally
  std::vector<int32_t> leaf_dict;
  struct Frame {
    int64_t left;  // children still to read
  };
  std::vector<Frame> stack;
  auto need = [&](int64_t k) {
    if (*pos + k > prog_len) throw std::invalid_argument("convert program: truncated tree");
  };
  // iterative prefix parse with explicit stack of remaining-children counts
  stack.push_back({1});
  while (!stack.empty()) {
    if (stack.back().left == 0) {
      stack.pop_back();
      continue;
    }
    --stack.back().left;
    need(2);
    const int32_t kind = prog[(*pos)++];
    const int32_t arg = prog[(*pos)++];
    if (kind == 0) {
      if (arg < 0 || arg >= static_cast<int64_t>(dicts.size())) {
        throw std::invalid_argument("convert program: dictionary index " + std::to_string(arg) +
                                    " out of range");
      }
      if (static_cast<int>(leaf_dict.size()) >= kMaxLeaves) {
        throw std::invalid_argument("convert program: more than 64 dictionaries in one tree");
      }
      m->tree.push_back(0);
      m->tree.push_back(static_cast<int32_t>(leaf_dict.size()));
      leaf_dict.push_back(arg);
    } else if (kind == 1 || kind == 2) {
      if (arg < 1 || arg > kMaxLeaves) {
        throw std::invalid_argument("convert program: a group needs 1 to 64 children, got " +
                                    std::to_string(arg));
      }
      if (static_cast<int>(stack.size()) >= kMaxTreeDepth) {
        throw std::invalid_argument("convert program: groups nested too deeply");
      }
      m->tree.push_back(kind);
      m->tree.push_back(arg);
      stack.push_back({arg});
    } else {
      throw std::invalid_argument("convert program: unknown node kind " + std::to_string(kind));
    }
  }
  m->n_leaves = static_cast<int>(leaf_dict.size());
  // the trie over all leaves' keys
  m->root_bmp.assign(0x10000, -1);
  int32_t n_nodes = 1;
  m->has_children.assign(1, 0);
  std::vector<Term> terms;
  for (int leaf = 0; leaf < m->n_leaves; ++leaf) {
    const ConvertDictInput& d = dicts[leaf_dict[leaf]];
    for (int64_t k = 0; k < d.n_keys; ++k) {
      int32_t node = 0;
      for (int64_t i = d.key_offsets[k]; i < d.key_offsets[k + 1]; ++i) {
        const uint32_t c = d.keys[i];
        int32_t child;
        if (node == 0 && c < 0x10000) {
          child = m->root_bmp[c];
          if (child < 0) child = m->root_bmp[c] = n_nodes;
        } else {
          child = m->edges.FindOrInsert(EdgeKey(node, c), n_nodes);
        }
        if (child == n_nodes) {
          if (n_nodes == INT32_MAX / 2) throw std::invalid_argument("convert: too many keys");
          ++n_nodes;
          m->has_children.push_back(0);
        }
        m->has_children[node] = 1;
        node = child;
      }
      terms.push_back({node, leaf, static_cast<int32_t>(base[leaf_dict[leaf]] + k)});
    }
  }
  std::stable_sort(terms.begin(), terms.end(), [](const Term& x, const Term& y) {
    return x.node != y.node ? x.node < y.node : x.leaf < y.leaf;
  });
  // one terminal per (node, leaf): the first (a dictionary's keys are unique; keep the first)
  terms.erase(std::unique(terms.begin(), terms.end(),
                          [](const Term& x, const Term& y) {
                            return x.node == y.node && x.leaf == y.leaf;
                          }),
              terms.end());
  m->terms = std::move(terms);
  m->term_begin.assign(n_nodes + 1, 0);
  for (const Term& t : m->terms) ++m->term_begin[t.node + 1];
  for (int32_t i = 0; i < n_nodes; ++i) m->term_begin[i + 1] += m->term_begin[i];
  // childless nodes (looked up as root children): the result depends on the character alone
  m->solo.assign(n_nodes, kWalk);
  std::vector<int32_t> len(m->n_leaves), val(m->n_leaves);
  m->stop1.assign(n_nodes, -1);
  auto solo_of = [&](int32_t node) {
    if (node <= 0) return;
    std::fill(len.begin(), len.end(), 0);
    for (int32_t t = m->term_begin[node]; t < m->term_begin[node + 1]; ++t) {
      len[m->terms[t].leaf] = 1;
      val[m->terms[t].leaf] = m->terms[t].value;
    }
    size_t p = 0;
    const std::pair<int32_t, int32_t> r = m->Eval(&p, len.data(), val.data());
    m->stop1[node] = r.first > 0 ? r.second : -1;
    if (!m->has_children[node]) m->solo[node] = m->stop1[node];
  };
  for (int32_t node = 1; node < n_nodes; ++node) solo_of(node);
  m->direct.assign(0x10000, kSpecial);
  for (uint32_t c = 0; c < 0x10000; ++c) {
    const int32_t node = m->root_bmp[c];
    if (c == kSpecial) continue;  // U+FFFF itself: always looked up
    if (node < 0 || m->solo[node] == -1) {
      if (IdsArity(c) == 0) m->direct[c] = static_cast<uint16_t>(c);  // nothing matches: copied
    } else if (m->solo[node] >= 0) {
      // a match comes first, even on an IDS operator (OpenCC looks for an IDS only where
      // nothing matches)
      const int32_t v = m->solo[node];
      if (value_offsets[v + 1] - value_offsets[v] == 1 && values[value_offsets[v]] < kSpecial) {
        m->direct[c] = static_cast<uint16_t>(values[value_offsets[v]]);
      }
    }
  }
  // The code points the tree may change: those a key starts with, but for a single-character
  // key converted to itself (elsewhere nothing matches, and a character or an ideographic
  // description sequence is copied as it is). Their runs, the closest ones merged until
  // kMaxTouch are left, are checked only when they cover little (a normalization such as
  // CJK_Compatibility_Ideographs: U+F900..U+FAD9 and U+2F800..U+2FA1D; not the t2s chain, which
  // changes thousands of code points all over the CJK block).
  std::vector<uint32_t> touch;
  for (uint32_t c = 0; c < 0x10000; ++c) {
    const int32_t node = m->root_bmp[c];
    if (node < 0) continue;
    const int32_t v = m->solo[node];
    const bool same = v >= 0 && value_offsets[v + 1] - value_offsets[v] == 1 &&
                      values[value_offsets[v]] == c;
    if (!same) touch.push_back(c);
  }
  for (int leaf = 0; leaf < m->n_leaves; ++leaf) {
    const ConvertDictInput& d = dicts[leaf_dict[leaf]];
    for (int64_t k = 0; k < d.n_keys; ++k) {
      if (d.keys[d.key_offsets[k]] >= 0x10000u) touch.push_back(d.keys[d.key_offsets[k]]);
    }
  }
  std::sort(touch.begin(), touch.end());
  std::vector<std::pair<uint32_t, uint32_t>> runs;  // [lo, hi]
  for (uint32_t c : touch) {
    if (!runs.empty() && runs.back().second + 1 >= c) {
      runs.back().second = c;
    } else {
      runs.push_back({c, c});
    }
  }
  while (runs.size() > static_cast<size_t>(Matcher::kMaxTouch)) {
    size_t best = 0;  // merge the two runs with the smallest gap
    for (size_t i = 1; i + 1 < runs.size(); ++i) {
      if (runs[i + 1].first - runs[i].second < runs[best + 1].first - runs[best].second) best = i;
    }
    runs[best].second = runs[best + 1].second;
    runs.erase(runs.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  uint32_t covered = 0;
  for (const auto& r : runs) covered += r.second - r.first + 1;
  m->skippable = covered <= 0x1000;
  for (int i = 0; i < Matcher::kMaxTouch; ++i) {
    const bool used = i < static_cast<int>(runs.size());
    m->touch_lo[i] = used ? runs[i].first : 0xFFFFFFFFu;
    m->touch_span[i] = used ? runs[i].second - runs[i].first : 0;
  }
}

void CheckDict(const ConvertDictInput& d, size_t index) {
  const std::string name = "dictionary " + std::to_string(index);
  if (d.n_keys < 0 || d.n_key_cps < 0 || d.n_value_cps < 0) {
    throw std::invalid_argument(name + ": negative size");
  }
  if (d.n_keys > INT32_MAX / 4) throw std::invalid_argument(name + ": too many keys");
  auto check_offsets = [&](const int64_t* off, int64_t total, bool nonempty, const char* what) {
    if (off[0] != 0 || off[d.n_keys] != total) {
      throw std::invalid_argument(name + ": " + what + " offsets must run from 0 to " +
                                  std::to_string(total));
    }
    for (int64_t k = 0; k < d.n_keys; ++k) {
      const int64_t len = off[k + 1] - off[k];
      if (len < (nonempty ? 1 : 0) || len > (1 << 20)) {
        throw std::invalid_argument(name + ": " + what + " " + std::to_string(k) +
                                    " has length " + std::to_string(len));
      }
    }
  };
  check_offsets(d.key_offsets, d.n_key_cps, true, "key");
  check_offsets(d.value_offsets, d.n_value_cps, false, "value");
  auto check_cps = [&](const uint32_t* s, int64_t n, const char* what) {
    for (int64_t i = 0; i < n; ++i) {
      if (s[i] > 0x10FFFF || IsSurrogate(s[i])) {
        throw std::invalid_argument(name + ": " + what + " holds the invalid code point " +
                                    std::to_string(s[i]));
      }
    }
  };
  check_cps(d.keys, d.n_key_cps, "a key");
  check_cps(d.values, d.n_value_cps, "a value");
}

}  // namespace

ChineseConverter::ChineseConverter(const std::vector<ConvertDictInput>& dicts,
                                   const int32_t* program, int64_t program_len)
    : impl_(new Impl) {
  std::vector<int64_t> base(dicts.size() + 1, 0);
  for (size_t i = 0; i < dicts.size(); ++i) {
    CheckDict(dicts[i], i);
    base[i + 1] = base[i] + dicts[i].n_keys;
  }
  if (base.back() > INT32_MAX / 2) throw std::invalid_argument("convert: too many keys in all");
  impl_->value_offsets.reserve(base.back() + 1);
  impl_->value_offsets.push_back(0);
  for (const ConvertDictInput& d : dicts) {
    impl_->values.insert(impl_->values.end(), d.values, d.values + d.n_value_cps);
    const int64_t start = impl_->value_offsets.back();
    for (int64_t k = 0; k < d.n_keys; ++k) {
      impl_->value_offsets.push_back(start + d.value_offsets[k + 1]);
    }
  }
  for (const ConvertDictInput& d : dicts) {
    impl_->dict_chars.insert(impl_->dict_chars.end(), d.keys, d.keys + d.n_key_cps);
    impl_->dict_chars.insert(impl_->dict_chars.end(), d.values, d.values + d.n_value_cps);
  }
  std::sort(impl_->dict_chars.begin(), impl_->dict_chars.end());
  impl_->dict_chars.erase(std::unique(impl_->dict_chars.begin(), impl_->dict_chars.end()),
                          impl_->dict_chars.end());
  if (program_len < 3) throw std::invalid_argument("convert program: missing header");
  const int32_t n_norm = program[0], has_seg = program[1], n_chain = program[2];
  if (n_norm < 0 || n_norm > 64 || (has_seg != 0 && has_seg != 1) || n_chain < 0 ||
      n_chain > 64) {
    throw std::invalid_argument("convert program: bad header");
  }
  int64_t pos = 3;
  impl_->normalization.resize(n_norm);
  for (Matcher& m : impl_->normalization) BuildMatcher(dicts, base, impl_->values, impl_->value_offsets, program, program_len, &pos, &m);
  if (has_seg) {
    impl_->segmentation.reset(new Matcher);
    BuildMatcher(dicts, base, impl_->values, impl_->value_offsets, program, program_len, &pos, impl_->segmentation.get());
  }
  impl_->chain.resize(n_chain);
  for (Matcher& m : impl_->chain) BuildMatcher(dicts, base, impl_->values, impl_->value_offsets, program, program_len, &pos, &m);
  if (pos != program_len) {
    throw std::invalid_argument("convert program: " + std::to_string(program_len - pos) +
                                " trailing words");
  }
}

ChineseConverter::~ChineseConverter() = default;

void ChineseConverter::CheckInput(const uint32_t* text, int64_t n_text, const int64_t* starts,
                                  const int64_t* ends, int64_t n_lines) {
  if (n_lines < 0) throw std::invalid_argument("convert: negative line count");
  int64_t prev = 0;
  for (int64_t i = 0; i < n_lines; ++i) {
    if (starts[i] < prev || ends[i] < starts[i] || ends[i] > n_text) {
      throw std::invalid_argument("convert: line " + std::to_string(i) + " [" +
                                  std::to_string(starts[i]) + ", " + std::to_string(ends[i]) +
                                  ") is not within the text after the previous line");
    }
    prev = ends[i];
  }
  (void)text;  // the code points are checked by Convert, line by line
}

void ChineseConverter::SplitLines(const uint32_t* text, int64_t n_text, uint32_t separator,
                                  int64_t n_lines, std::vector<int64_t>* starts,
                                  std::vector<int64_t>* ends) {
  starts->clear();
  ends->clear();
  starts->reserve(n_lines);
  ends->reserve(n_lines);
  int64_t a = 0;
  for (int64_t i = 0; i < n_text; ++i) {
    if (text[i] == separator) {
      starts->push_back(a);
      ends->push_back(i);
      a = i + 1;
    }
  }
  starts->push_back(a);
  ends->push_back(n_text);
  if (static_cast<int64_t>(starts->size()) != n_lines) {
    throw std::invalid_argument("convert: the text holds " + std::to_string(starts->size()) +
                                " lines between separators, expected " +
                                std::to_string(n_lines));
  }
}

void ChineseConverter::Convert(const uint32_t* text, int64_t n_text, const int64_t* starts,
                               const int64_t* ends, int64_t n_lines, int64_t separator,
                               const uint8_t* ws_table, int64_t ws_len,
                               ConvertOutput* out) const {
  const Impl& im = *impl_;
  const bool utf8 = separator == kUtf8;
  size_t text_cap = 0, utf8_cap = 0;
  int64_t cps_total = 0;
  if (utf8) {
    utf8_cap = static_cast<size_t>(3 * n_text + 16);
    out->utf8.reserve(utf8_cap);
    out->byte_offsets.reserve(static_cast<size_t>(n_lines + 1));
    out->byte_offsets.push_back(0);
  } else {
    text_cap = static_cast<size_t>(n_text + n_lines + n_text / 8 + 16);
    out->text.reserve(text_cap);
  }
  out->offsets.reserve(static_cast<size_t>(n_lines + 1));
  out->status.reserve(static_cast<size_t>(n_lines));
  out->offsets.push_back(0);
  const bool sep = separator >= 0;  // (kUtf8 < 0)
  // whitespace can move only if a dictionary key or value holds some
  bool ws_check = false;
  for (uint32_t c : im.dict_chars) ws_check |= c < static_cast<uint64_t>(ws_len) && ws_table[c];
  const size_t n_stages = im.normalization.size() + im.chain.size();
  std::vector<std::vector<Block>> stage_blocks(n_stages);
  std::vector<uint32_t> bufs[2];
  std::vector<int64_t> cuts, new_cuts, anc;
  // The first normalization step is skipped on a line holding none of the code points it may
  // change (most lines: CJK_Compatibility_Ideographs of t2s changes a few hundred), found by
  // the scan of the line's code points.
  const Matcher* norm0 = im.normalization.empty() ? nullptr : &im.normalization[0];
  const bool may_skip = norm0 != nullptr && norm0->skippable;
  static_assert(Matcher::kMaxTouch == 2, "the scan below checks 2 ranges");
  const uint32_t lo0 = may_skip ? norm0->touch_lo[0] : 0, sp0 = may_skip ? norm0->touch_span[0] : 0;
  const uint32_t lo1 = may_skip ? norm0->touch_lo[1] : 0, sp1 = may_skip ? norm0->touch_span[1] : 0;
  for (int64_t li = 0; li < n_lines; ++li) {
    if (sep && li > 0 && !utf8) out->text.push_back(static_cast<uint32_t>(separator));
    const uint32_t* s = text + starts[li];
    const int64_t n = ends[li] - starts[li];
    uint32_t surrogate = 0, nul = 0, big = 0, touched = 0;
    for (int64_t i = 0; i < n; ++i) {  // branch-free (vectorised)
      const uint32_t c = s[i];
      surrogate |= c - 0xD800u <= 0xDFFFu - 0xD800u;
      nul |= c == 0;
      big |= c > 0x10FFFF;
      touched |= (c - lo0 <= sp0) | (c - lo1 <= sp1);
    }
    if (!may_skip) touched = 1;
    if (big) {
      throw std::invalid_argument("convert: line " + std::to_string(li) +
                                  " holds a code point above U+10FFFF");
    }
    const uint8_t status = surrogate ? kFailed
                           : nul && im.segmentation ? kReference : kConverted;
    out->status.push_back(status);
    const uint32_t* src = s;  // the text entering the next stage
    int64_t src_n = n;
    bool any_block = false;
    if (status == kConverted && n > 0) {
      size_t st = 0;
      int which = 0;
      for (const Matcher& m : im.normalization) {
        stage_blocks[st].clear();
        if (st == 0 && !touched) {  // most lines: nothing to normalize, no copy
          ++st;
          continue;
        }
        int64_t w = 0;
        im.ConvertRange(m, src, src_n, 0, &bufs[which], &w, &stage_blocks[st]);
        any_block |= !stage_blocks[st].empty();
        src = bufs[which].data();
        src_n = w;
        which ^= 1;
        ++st;
      }
      cuts.clear();
      if (im.segmentation) {
        im.Segment(src, src_n, &cuts);
      } else if (src_n > 0) {
        cuts.push_back(0);
        cuts.push_back(src_n);
      }
      for (const Matcher& m : im.chain) {
        stage_blocks[st].clear();
        new_cuts.clear();
        int64_t w = 0;
        if (!cuts.empty()) new_cuts.push_back(0);
        for (size_t k = 0; k + 1 < cuts.size(); ++k) {
          im.ConvertRange(m, src + cuts[k], cuts[k + 1] - cuts[k], cuts[k], &bufs[which], &w,
                          &stage_blocks[st]);
          new_cuts.push_back(w);
        }
        any_block |= !stage_blocks[st].empty();
        src = bufs[which].data();
        src_n = w;
        which ^= 1;
        cuts.swap(new_cuts);
        ++st;
      }
    }
    if (utf8) {
      size_t at = out->utf8.size();
      if (at + 4 * src_n > utf8_cap) {  // grow geometrically (reserve is exact)
        utf8_cap = std::max<size_t>(at + 4 * src_n, utf8_cap * 2);
        out->utf8.reserve(utf8_cap);
      }
      out->utf8.resize_uninitialized(at + 4 * static_cast<size_t>(src_n));
      uint8_t* u = out->utf8.data() + at;
      for (int64_t i = 0; i < src_n; ++i) {
        const uint32_t c = src[i];
        if (c - 0x800u < 0x10000u - 0x800u) {  // most Chinese text: 3 bytes
          // (a lone surrogate of a kFailed line gets its 3-byte form; the caller drops it).
          // One 4-byte store, 3 bytes kept: the buffer has 4 bytes per code point.
          const uint32_t b = (0xE0u | (c >> 12)) | ((0x80u | ((c >> 6) & 0x3Fu)) << 8) |
                             ((0x80u | (c & 0x3Fu)) << 16);
          uint8_t le[4] = {static_cast<uint8_t>(b), static_cast<uint8_t>(b >> 8),
                           static_cast<uint8_t>(b >> 16), 0};
          std::memcpy(u, le, 4);
          u += 3;
        } else if (c < 0x80) {
          *u++ = static_cast<uint8_t>(c);
        } else if (c < 0x800) {
          *u++ = static_cast<uint8_t>(0xC0 | (c >> 6));
          *u++ = static_cast<uint8_t>(0x80 | (c & 0x3F));
        } else {
          *u++ = static_cast<uint8_t>(0xF0 | (c >> 18));
          *u++ = static_cast<uint8_t>(0x80 | ((c >> 12) & 0x3F));
          *u++ = static_cast<uint8_t>(0x80 | ((c >> 6) & 0x3F));
          *u++ = static_cast<uint8_t>(0x80 | (c & 0x3F));
        }
      }
      at = static_cast<size_t>(u - out->utf8.data());
      out->utf8.resize_uninitialized(at);
      out->byte_offsets.push_back(static_cast<int64_t>(at));
      cps_total += src_n;
      out->offsets.push_back(cps_total);
    } else {
      const size_t at = out->text.size();
      // grow geometrically (reserve allocates exactly what it is asked for)
      if (at + src_n + 1 > text_cap) {
        text_cap = std::max<size_t>(at + src_n + 1, text_cap * 2);
        out->text.reserve(text_cap);
      }
      out->text.resize_uninitialized(at + static_cast<size_t>(src_n));
      if (src_n > 0) std::memcpy(out->text.data() + at, src, static_cast<size_t>(src_n) * 4);
      out->offsets.push_back(static_cast<int64_t>(out->text.size()));
    }
    if (!any_block) {
      // position by position: flag a character turned into whitespace or out of it
      if (ws_check && status == kConverted) {
        const uint64_t lim = static_cast<uint64_t>(ws_len);
        uint8_t moved = 0;
        for (int64_t i = 0; i < n; ++i) {  // branch-free: most characters are beyond the table
          const uint32_t a = s[i], b = src[i];
          moved |= static_cast<uint8_t>((a < lim ? ws_table[a] != 0 : 0) ^
                                        (b < lim ? ws_table[b] != 0 : 0));
        }
        if (moved) out->status[li] = kWhitespace;
      }
      continue;
    }
    // compose the stages' blocks: anc[i] = position of original boundary i in the current
    // text, -1 once it falls strictly inside a block
    anc.resize(n + 1);
    for (int64_t i = 0; i <= n; ++i) anc[i] = i;
    for (size_t k = 0; k < n_stages; ++k) {
      const std::vector<Block>& bl = stage_blocks[k];
      if (bl.empty()) continue;
      size_t b = 0;
      int64_t shift = 0;
      for (int64_t i = 0; i <= n; ++i) {
        const int64_t x = anc[i];
        if (x < 0) continue;
        while (b < bl.size() && bl[b].b <= x) {
          shift += (bl[b].d - bl[b].c) - (bl[b].b - bl[b].a);
          ++b;
        }
        if (b < bl.size() && bl[b].a < x) {
          anc[i] = -1;  // strictly inside block b (x < bl[b].b)
        } else {
          anc[i] = x + shift;
        }
      }
    }
    int64_t pi = 0, pk = 0;
    for (int64_t i = 1; i <= n; ++i) {
      if (anc[i] < 0) continue;
      if (!(i - pi == 1 && anc[i] - pk == 1)) {
        const int64_t blk[5] = {li, pi, i, pk, anc[i]};
        for (int64_t v : blk) out->blocks.push_back(v);
      }
      pi = i;
      pk = anc[i];
    }
  }
}

}  // namespace wwm
