// libFuzzer harness: the LTP legacy segmenter (ltp_cws.h) on arbitrary input (csrc/FUZZING.md).
// Byte 0 picks the path (its value mod 4):
//   0 Segment: a fixed model (every feature template over a small character set, built from an
//     Avro record) segments the rest of the input split into rows -- in bytes or in code points,
//     sometimes with splits that are wrong, sometimes (at most once per 2,000 inputs: it is slow)
//     repeated past 128 KB so that the rows are split over threads -- with either output;
//   1 FromAvroBlock on a cws record built from the input (feature names from the character set
//     or raw bytes, indices near and outside the parameters, weights that are NaN or infinite,
//     maps and arrays in several blocks, negative block counts with sizes), then 0-3 edits
//     (a byte set, inserted or deleted, the record cut), 1-2 records, build or decode only;
//   2 FromAvroBlock on raw bytes;
//   3 FromArrays on hostile arrays (key offsets outside the keys or decreasing, any index, any
//     number of parameters).
// Checks: the words of a row lie inside it, in order, and do not overlap; spans hold no
// whitespace and cover every character that is not whitespace; LTP words tile the row from its
// first word on; 2 threads give the words of 1; valid UTF-8 with valid splits is never refused;
// a record that builds also decodes (build = false); every model that loads segments a
// sentence. Accepted errors: std::invalid_argument; anything else is a finding.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "ltp_cws.h"

namespace {

struct Reached {
  int64_t segment = 0, segmented = 0, big = 0, threaded = 0, avro = 0, avro_built = 0, raw = 0,
          arrays = 0, arrays_built = 0;
  ~Reached() {
    std::fprintf(stderr,
                 "reached: Segment %lld (segmented %lld, past 128 KB %lld, over threads %lld), "
                 "FromAvroBlock structured %lld (built %lld), raw %lld, FromArrays %lld "
                 "(built %lld)\n",
                 static_cast<long long>(segment), static_cast<long long>(segmented),
                 static_cast<long long>(big), static_cast<long long>(threaded),
                 static_cast<long long>(avro),
                 static_cast<long long>(avro_built), static_cast<long long>(raw),
                 static_cast<long long>(arrays), static_cast<long long>(arrays_built));
  }
} reached;

// The characters of the model and of the generated text (UTF-8): CJK, Latin, a digit, spaces,
// NUL, a supplementary character, ideographic space, tab, newline, é, a surrogate-free BMP char.
const char* const kChars[] = {"\xe4\xb8\xad", "\xe5\x9b\xbd", "\xe4\xba\xba", "a", "1", " ",
                              "", "\xf0\x9f\x98\x80", "\xe3\x80\x80",
                              "\t", "\n", "\xe5\xad\x97", "\xc3\xa9", "\xc2\x85", "\xe3\x82\xa2"};
constexpr int kNumChars = sizeof(kChars) / sizeof(kChars[0]);
// kChars[6] stands for NUL (a C string cannot hold it).
std::string CharAt(int i) { return i == 6 ? std::string("\0", 1) : std::string(kChars[i]); }

void PutLong(std::string* out, int64_t v) {  // Avro long: zigzag varint
  uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  while (z >= 0x80) {
    out->push_back(static_cast<char>((z & 0x7F) | 0x80));
    z >>= 7;
  }
  out->push_back(static_cast<char>(z));
}

struct Feature {
  std::string key;
  int64_t index;
};

// LTP's cws record: definition {}, features map<long> (in `map_blocks` blocks; negative counts
// with a byte size when `sized`), parameters array<double> (in `param_blocks` blocks).
std::string CwsDatum(const std::vector<Feature>& features, const std::vector<double>& params,
                     int map_blocks, int param_blocks, bool sized) {
  std::string out;
  const size_t step = std::max<size_t>(1, (features.size() + map_blocks - 1) / map_blocks);
  for (size_t a = 0; a < features.size(); a += step) {
    const size_t b = std::min(features.size(), a + step);
    std::string block;
    for (size_t i = a; i < b; ++i) {
      PutLong(&block, static_cast<int64_t>(features[i].key.size()));
      block += features[i].key;
      PutLong(&block, features[i].index);
    }
    if (sized) {
      PutLong(&out, -static_cast<int64_t>(b - a));
      PutLong(&out, static_cast<int64_t>(block.size()));
    } else {
      PutLong(&out, static_cast<int64_t>(b - a));
    }
    out += block;
  }
  PutLong(&out, 0);
  const size_t pstep = std::max<size_t>(1, (params.size() + param_blocks - 1) / param_blocks);
  for (size_t a = 0; a < params.size(); a += pstep) {
    const size_t b = std::min(params.size(), a + pstep);
    PutLong(&out, static_cast<int64_t>(b - a));
    out.append(reinterpret_cast<const char*>(params.data() + a), (b - a) * sizeof(double));
  }
  PutLong(&out, 0);
  return out;
}

// Every feature template over kChars (characters -2..+2, the bigrams, the class pairs,
// ch[-2] == ch[0]), each with its own index; deterministic weights with ties.
const wwm::LtpCwsModel& FixedModel() {
  static const std::unique_ptr<wwm::LtpCwsModel> m = [] {
    std::vector<Feature> f;
    for (const char t : std::string("01234")) {
      for (int c = 0; c < kNumChars; ++c) f.push_back({std::string(1, t) + CharAt(c), 0});
    }
    for (const char t : std::string("5678")) {
      for (int a = 0; a < kNumChars; a += 2) {
        for (int b = 0; b < kNumChars; b += 3) {
          f.push_back({std::string(1, t) + CharAt(a) + CharAt(b), 0});
        }
      }
    }
    f.push_back({"c", 0});
    for (int a = 1; a <= 6; ++a) {
      for (int b = 1; b <= 6; ++b) f.push_back({"d" + std::to_string(a) + std::to_string(b), 0});
    }
    for (size_t i = 0; i < f.size(); ++i) f[i].index = static_cast<int64_t>(i) + 4;
    std::vector<double> params(4 * (f.size() + 4));
    for (size_t i = 0; i < params.size(); ++i) params[i] = ((i * 7919) % 23) / 4.0 - 2.75;
    const std::string d = CwsDatum(f, params, 3, 2, true);
    return wwm::LtpCwsModel::FromAvroBlock(reinterpret_cast<const uint8_t*>(d.data()), d.size(),
                                           1);
  }();
  return *m;
}

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): the code points,
// or false.
bool DecodeStrict(const uint8_t* p, size_t n, std::vector<uint32_t>* out) {
  out->clear();
  size_t i = 0;
  while (i < n) {
    const uint8_t b = p[i];
    uint32_t c;
    size_t k;
    if (b < 0x80) {
      c = b;
      k = 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      c = b & 0x1F;
      k = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      c = b & 0x0F;
      k = 3;
    } else if (b >= 0xF0 && b <= 0xF4) {
      c = b & 0x07;
      k = 4;
    } else {
      return false;
    }
    if (i + k > n) return false;
    for (size_t j = 1; j < k; ++j) {
      if ((p[i + j] & 0xC0) != 0x80) return false;
      c = (c << 6) | (p[i + j] & 0x3F);
    }
    if ((k == 3 && c < 0x800) || (k == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF)) {
      return false;
    }
    out->push_back(c);
    i += k;
  }
  return true;
}

// Python's str.isspace() (what WordSpans strips).
bool PySpace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// Checks a result against the rows (their code points).
void CheckWords(const wwm::CwsResult& r, const std::vector<std::vector<uint32_t>>& rows,
                wwm::CwsOutput output) {
  const size_t n_rows = rows.size();
  FUZZ_CHECK(r.row_splits.size() == n_rows + 1 && r.row_splits[0] == 0);
  FUZZ_CHECK(r.starts.size() == r.ends.size());
  FUZZ_CHECK(r.row_splits[n_rows] == static_cast<int64_t>(r.starts.size()));
  for (size_t i = 0; i < n_rows; ++i) {
    const int64_t w0 = r.row_splits[i], w1 = r.row_splits[i + 1];
    FUZZ_CHECK(w0 <= w1);
    const std::vector<uint32_t>& cps = rows[i];
    const int32_t len = static_cast<int32_t>(cps.size());
    std::vector<uint8_t> covered(cps.size(), 0);
    for (int64_t w = w0; w < w1; ++w) {
      const int32_t s = r.starts[w], e = r.ends[w];
      FUZZ_CHECK(0 <= s && s < e && e <= len);
      if (w + 1 < w1) FUZZ_CHECK(e <= r.starts[w + 1]);
      for (int32_t k = s; k < e; ++k) covered[k] = 1;
      if (output == wwm::CwsOutput::kSpans) {
        for (int32_t k = s; k < e; ++k) FUZZ_CHECK(!PySpace(cps[k]));
      } else if (w + 1 < w1) {
        FUZZ_CHECK(e == r.starts[w + 1]);  // LTP words tile the row from the first word on
      } else {
        FUZZ_CHECK(e == len);
      }
    }
    for (int32_t k = 0; k < len; ++k) {
      if (output == wwm::CwsOutput::kSpans) FUZZ_CHECK(covered[k] == !PySpace(cps[k]));
    }
    if (output == wwm::CwsOutput::kLtpWords && w1 > w0) {  // only leading whitespace is left out
      for (int32_t k = 0; k < r.starts[w0]; ++k) FUZZ_CHECK(PySpace(cps[k]));
    }
  }
}

void CheckModelWorks(const wwm::LtpCwsModel& m) {
  static const std::string text = std::string("\xe4\xb8\xad\xe5\x9b\xbd\xe4\xba\xba a1") +
                                  std::string("\0", 1) + "\xe4\xb8\xad\xf0\x9f\x98\x80";
  const int64_t splits[] = {0, static_cast<int64_t>(text.size())};
  std::vector<uint32_t> cps;
  FUZZ_CHECK(DecodeStrict(reinterpret_cast<const uint8_t*>(text.data()), text.size(), &cps));
  for (const wwm::CwsOutput o : {wwm::CwsOutput::kSpans, wwm::CwsOutput::kLtpWords}) {
    const wwm::CwsResult r = m.Segment(text.data(), static_cast<int64_t>(text.size()), splits, 1,
                                       false, o, 1);
    CheckWords(r, {cps}, o);
  }
  FUZZ_CHECK(m.num_features() >= 0 && m.num_parameters() >= 16 && m.num_chars() >= 0);
}

// Text for Segment: mostly fragments of kChars, sometimes raw bytes.
std::string MakeText(wwm::FuzzInput& in) {
  std::string text;
  const int n = in.Take<uint8_t>() % 80;
  for (int i = 0; i < n && !in.Empty(); ++i) {
    const uint8_t b = in.Take<uint8_t>();
    if (b < 200) {
      text += CharAt(b % kNumChars);
    } else {
      const int k = 1 + b % 4;
      for (int j = 0; j < k; ++j) text.push_back(static_cast<char>(in.Take<uint8_t>()));
    }
  }
  return text;
}

void SegmentPath(wwm::FuzzInput& in) {
  ++reached.segment;
  const wwm::LtpCwsModel& m = FixedModel();
  const uint8_t mode = in.Take<uint8_t>();
  std::string text = MakeText(in);
  const bool in_chars = mode & 1;
  const auto output = (mode & 2) ? wwm::CwsOutput::kLtpWords : wwm::CwsOutput::kSpans;
  const int threads = 1 + ((mode >> 2) & 1);
  int repeat = 1;
  // past 128 KB, rows split over 2 threads: slow under ASan, so at most once per 2,000 inputs
  // of this path (always on the first: a saved input reproduces on its own)
  if ((mode & 0xFC) == 0xFC && in.Take<uint8_t>() >= 192 && !text.empty() &&
      reached.big * 2000 < reached.segment) {
    ++reached.big;
    repeat = static_cast<int>((140 << 10) / text.size()) + 1;
    std::string big;
    big.reserve(text.size() * repeat);
    for (int r = 0; r < repeat; ++r) big += text;
    text.swap(big);
  }
  const int64_t size = static_cast<int64_t>(text.size());
  int64_t units = size;  // bytes, or code points as the kernel counts them (lead bytes)
  if (in_chars) {
    units = 0;
    for (const char c : text) units += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  }
  const int n_cuts = in.Take<uint8_t>() % 7;
  std::vector<int64_t> splits{0};
  for (int i = 0; i < n_cuts; ++i) {
    const int64_t c = units == 0 ? 0 : static_cast<int64_t>(in.Take<uint16_t>() % (units + 1));
    splits.push_back(c);
  }
  std::sort(splits.begin() + 1, splits.end());
  splits.push_back(units);
  const uint8_t corrupt = in.Take<uint8_t>();
  if (corrupt >= 240) splits[corrupt % splits.size()] = in.Int(-2, 100);
  if (corrupt >= 232 && corrupt < 240) splits.pop_back();  // n_rows one less: ends short
  const int64_t n_rows = static_cast<int64_t>(splits.size()) - 1;
  // expected acceptance: non-decreasing splits from 0 to the end, every row valid UTF-8
  bool valid = splits[0] == 0 && splits[n_rows] == units;
  for (int64_t i = 0; i < n_rows && valid; ++i) valid = splits[i] <= splits[i + 1];
  std::vector<int64_t> byte_splits(splits);
  if (valid && in_chars) {  // code points -> bytes
    int64_t b = 0, chars = 0;
    for (int64_t i = 1; i <= n_rows; ++i) {
      while (chars < splits[i]) {
        ++b;
        while (b < size && (static_cast<uint8_t>(text[b]) & 0xC0) == 0x80) ++b;
        ++chars;
      }
      byte_splits[i] = b;
    }
    valid = b == size;  // continuation bytes past the last code point counted are refused
  }
  std::vector<std::vector<uint32_t>> rows(static_cast<size_t>(std::max<int64_t>(n_rows, 0)));
  for (int64_t i = 0; i < n_rows && valid; ++i) {
    valid = DecodeStrict(reinterpret_cast<const uint8_t*>(text.data()) + byte_splits[i],
                         static_cast<size_t>(byte_splits[i + 1] - byte_splits[i]), &rows[i]);
  }
  wwm::CwsResult r;
  try {
    r = m.Segment(text.data(), size, splits.data(), n_rows, in_chars, output, threads);
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(!valid);  // valid UTF-8 with valid splits is never refused
    return;
  }
  FUZZ_CHECK(valid);
  ++reached.segmented;
  CheckWords(r, rows, output);
  if (threads > 1 && repeat > 1) {
    ++reached.threaded;
    const wwm::CwsResult one = m.Segment(text.data(), size, splits.data(), n_rows, in_chars,
                                         output, 1);
    FUZZ_CHECK(one.starts.size() == r.starts.size() &&
               one.row_splits.size() == r.row_splits.size());
    FUZZ_CHECK(std::equal(one.starts.begin(), one.starts.end(), r.starts.begin()));
    FUZZ_CHECK(std::equal(one.ends.begin(), one.ends.end(), r.ends.begin()));
    FUZZ_CHECK(std::equal(one.row_splits.begin(), one.row_splits.end(), r.row_splits.begin()));
  }
}

double Weight(wwm::FuzzInput& in) {
  const uint8_t sel = in.Take<uint8_t>();
  switch (sel % 8) {
    case 0: return std::numeric_limits<double>::quiet_NaN();
    case 1: return (sel & 8) ? HUGE_VAL : -HUGE_VAL;
    case 2: return in.Take<double>();  // any bit pattern
    case 3: return (sel & 8) ? 1e308 : -0.0;
    default: return static_cast<double>(static_cast<int8_t>(in.Take<uint8_t>())) / 8.0;
  }
}

// Loads a model built by FromAvroBlock or FromArrays; checks that it works.
void Accept(const std::unique_ptr<wwm::LtpCwsModel>& m) {
  FUZZ_CHECK(m != nullptr);
  try {
    CheckModelWorks(*m);
  } catch (...) {  // a model that loaded must segment valid text
    FUZZ_CHECK(false);
  }
}

void AvroPath(wwm::FuzzInput& in) {
  ++reached.avro;
  const int n_features = in.Take<uint8_t>() % 14;
  const size_t n_params = static_cast<uint64_t>(in.Int(0, 80)) % 4097;
  std::vector<Feature> features;
  for (int i = 0; i < n_features; ++i) {
    const uint8_t sel = in.Take<uint8_t>();
    std::string key;
    if (sel < 200) {
      static const char kTemplates[] = "0123456789cd";
      key.push_back(kTemplates[sel % 12]);
      const int k = (sel >> 4) % 3;
      for (int j = 0; j < k; ++j) {
        const uint8_t c = in.Take<uint8_t>();
        key += (c < 240) ? CharAt(c % kNumChars) : std::to_string(c % 8);
      }
    } else {
      const int k = sel % 6;
      for (int j = 0; j < k; ++j) key.push_back(static_cast<char>(in.Take<uint8_t>()));
    }
    features.push_back({key, in.Int(-2, 30)});
  }
  std::vector<double> params(n_params);
  for (auto& p : params) p = Weight(in);
  const uint8_t shape = in.Take<uint8_t>();
  std::string blob = CwsDatum(features, params, 1 + shape % 3, 1 + (shape >> 2) % 3, shape & 16);
  const int copies = 1 + ((shape >> 5) & 1);
  if (copies == 2) blob += blob;
  const int n_edits = in.Take<uint8_t>() % 4;
  for (int e = 0; e < n_edits; ++e) {
    const uint8_t op = in.Take<uint8_t>();
    const size_t at = blob.empty() ? 0 : in.Take<uint16_t>() % (blob.size() + 1);
    const char value = static_cast<char>(in.Take<uint8_t>());
    switch (op % 4) {
      case 0: if (at < blob.size()) blob[at] = value; break;
      case 1: blob.insert(blob.begin() + static_cast<std::ptrdiff_t>(at), value); break;
      case 2: if (at < blob.size()) blob.erase(at, 1); break;
      default: blob.resize(at); break;
    }
  }
  int64_t count = copies;
  const uint8_t cs = in.Take<uint8_t>();
  if (cs >= 240) count = in.Int(-1, 3);
  const bool build = !(cs & 1) || cs < 128;
  const auto* data = reinterpret_cast<const uint8_t*>(blob.data());
  std::unique_ptr<wwm::LtpCwsModel> m;
  try {
    m = wwm::LtpCwsModel::FromAvroBlock(data, blob.size(), count, build);
  } catch (const std::invalid_argument&) {
    return;
  }
  if (!build) {
    FUZZ_CHECK(m == nullptr);
    return;
  }
  ++reached.avro_built;
  Accept(m);
  // a record that builds also decodes
  FUZZ_CHECK(wwm::LtpCwsModel::FromAvroBlock(data, blob.size(), count, false) == nullptr);
}

void RawPath(wwm::FuzzInput& in) {
  ++reached.raw;
  const int64_t count = in.Int(-1, 3);
  const bool build = in.Take<uint8_t>() & 1;
  try {
    auto m = wwm::LtpCwsModel::FromAvroBlock(in.p, in.n, count, build);
    if (build) Accept(m);
  } catch (const std::invalid_argument&) {
  }
}

void ArraysPath(wwm::FuzzInput& in) {
  ++reached.arrays;
  const int n_features = in.Take<uint8_t>() % 20;
  std::string keys;
  std::vector<int64_t> offsets{0}, indices;
  for (int i = 0; i < n_features; ++i) {
    const uint8_t sel = in.Take<uint8_t>();
    if (sel < 180) {
      keys.push_back("0123456789cd"[sel % 12]);
      const int k = sel % 3;
      for (int j = 0; j < k; ++j) keys += CharAt(in.Take<uint8_t>() % kNumChars);
    } else {
      for (int j = 0; j < sel % 5; ++j) keys.push_back(static_cast<char>(in.Take<uint8_t>()));
    }
    offsets.push_back(static_cast<int64_t>(keys.size()));
    indices.push_back(in.Int(-2, 30));
  }
  const uint8_t corrupt = in.Take<uint8_t>();
  if (corrupt >= 240) offsets[corrupt % offsets.size()] = in.Int(-3, 200);
  if (corrupt >= 232 && corrupt < 240 && offsets.size() > 2) std::swap(offsets[1], offsets[2]);
  std::vector<double> params(static_cast<uint64_t>(in.Int(0, 90)) % 4097);
  for (auto& p : params) p = Weight(in);
  try {
    auto m = wwm::LtpCwsModel::FromArrays(keys.data(), static_cast<int64_t>(keys.size()),
                                          offsets.data(), n_features, indices.data(),
                                          params.data(), static_cast<int64_t>(params.size()));
    ++reached.arrays_built;
    Accept(m);
  } catch (const std::invalid_argument&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FixedModel();
  wwm::FuzzInput in{data, size};
  switch (wwm::TakePath(in)) {  // WWM_FUZZ_PATHS selects
    case 0: SegmentPath(in); break;
    case 1: AvroPath(in); break;
    case 2: RawPath(in); break;
    default: ArraysPath(in); break;
  }
  return 0;
}
