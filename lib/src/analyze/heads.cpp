// Per-head attention statistics (docs/metrics.md, "analyze heads"), streamed over documents.
#include "atlas/analyze/heads.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "atlas/analyze/documents.hpp"
#include "atlas/core/error.hpp"
#include "atlas/io/npz.hpp"

namespace atlas::analyze {

// Declared in documents.hpp; defined here so the head metrics (atlas_analyze_heads) stand alone.
nlohmann::json number_or_null(double v) {
  if (std::isnan(v) || std::isinf(v)) return nullptr;
  return v;
}

const std::array<const char*, kNumHeadMetrics>& head_metric_names() {
  static const std::array<const char*, kNumHeadMetrics> kNames = {
      "entropy",     "mean_distance",   "mean_distance_no_first", "sink_mass",     "self",
      "prev_token",  "long_range",      "mean_confidence",        "max_confidence", "sparsity",
      "special_mass", "punct_mass",     "function_mass",          "content_mass",  "inter_sentence_mass"};
  return kNames;
}

void HeadStats::reset(std::vector<int64_t> layers, std::vector<int64_t> heads) {
  layers_ = std::move(layers);
  heads_ = std::move(heads);
  acc_.assign(layers_.size() * heads_.size(), Acc{});
  sent_sum_.assign(layers_.size() * kMaxSentences * kMaxSentences, 0.0);
  sent_count_.assign(layers_.size() * kMaxSentences, 0.0);
}

void HeadStats::add(const format::AttentionData& doc, const TokenClasses& classes) {
  ATLAS_CHECK(!doc.keys_differ() && doc.q == doc.k, InputError,
              "{}: analyze heads needs square self-attention, got {} queries x {} keys ({})", doc.source, doc.q,
              doc.k, doc.kind);
  if (acc_.empty()) reset(doc.layers, doc.heads);
  ATLAS_CHECK(doc.layers == layers_ && doc.heads == heads_, InputError,
              "{}: stores layers [{}] and heads [{}], but the documents before it have layers [{}] and heads [{}]",
              doc.source, fmt::join(doc.layers, ","), fmt::join(doc.heads, ","), fmt::join(layers_, ","),
              fmt::join(heads_, ","));
  ATLAS_CHECK(int64_t(classes.special.size()) == doc.q, InputError, "{}: token classes for {} tokens, document has {}",
              doc.source, classes.special.size(), doc.q);
  for (int64_t li = 0; li < doc.num_layers; ++li)
    for (int64_t hi = 0; hi < doc.num_heads; ++hi)
      add_matrix(li, hi, doc.matrix(li, hi), doc.q, doc.causal_mask(), classes);
}

void HeadStats::add_matrix(int64_t li, int64_t hi, const float* a, int64_t n, bool causal, const TokenClasses& c) {
  ATLAS_CHECK(li >= 0 && li < int64_t(layers_.size()) && hi >= 0 && hi < int64_t(heads_.size()), InputError,
              "head ({}, {}) outside the {} x {} accumulated", li, hi, layers_.size(), heads_.size());
  Acc& acc = at(li, hi);
  std::vector<float> top;
  const int64_t S = kMaxSentences;
  const bool have_sentences = int64_t(c.sentence.size()) == n;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t nv = causal ? i + 1 : n;   // valid keys: causal models average over 0..i only
    if (nv < 2) continue;                     // one valid key: every row statistic is trivial
    const float* row = a + i * n;
    double s = 0;
    for (int64_t j = 0; j < nv; ++j) s += row[j];
    if (!(s > 0)) continue;                   // an all-zero row (top-k files can have them): no distribution
    double ent = 0, dist = 0, dist1 = 0, mass1 = 0, lr = 0, conf = 0, spec = 0, punct = 0, func = 0, cont = 0,
           inter = 0;
    for (int64_t j = 0; j < nv; ++j) {
      const double p = row[j];
      if (p <= 0) continue;
      const double q = p / s;
      ent -= q * std::log(q);
      const int64_t d = i > j ? i - j : j - i;
      dist += p * double(d);
      if (j > 0) {
        dist1 += p * double(d);
        mass1 += p;
      }
      if (d >= kLongRangeDistance) lr += p;
      conf = std::max(conf, p);
      if (c.special[j]) spec += p;
      if (c.punct[j]) punct += p;
      if (c.function[j]) func += p;
      if (c.content[j]) cont += p;
      if (have_sentences && c.sentence[j] != c.sentence[i]) inter += p;
    }
    auto put = [&](int m, double v) {
      acc.sum[m] += v;
      ++acc.count[m];
    };
    put(kEntropy, ent / std::log(double(nv)));
    put(kMeanDistance, dist / s);
    if (mass1 > 0) put(kMeanDistanceNoFirst, dist1 / mass1);
    put(kSinkMass, row[0]);
    put(kSelf, row[i]);
    if (i >= 1) put(kPrevToken, row[i - 1]);
    put(kLongRange, lr);
    put(kMeanConfidence, conf);
    acc.max_conf = std::max(acc.max_conf, conf);
    ++acc.count[kMaxConfidence];
    // Sparsity: the mass of the ceil(10 %) largest weights among the valid keys.
    const int64_t k = std::max<int64_t>(1, int64_t(std::ceil(kSparsityShare * double(nv))));
    top.assign(row, row + nv);
    std::nth_element(top.begin(), top.begin() + (k - 1), top.end(), std::greater<float>());
    double topsum = 0;
    for (int64_t t = 0; t < k; ++t) topsum += top[t];
    put(kSparsity, topsum / s);
    put(kSpecialMass, spec);
    put(kPunctMass, punct);
    put(kFunctionMass, func);
    put(kContentMass, cont);
    if (have_sentences) put(kInterSentenceMass, inter);
    // Sentence matrix (head mean): mass from this query's sentence to each key sentence.
    if (have_sentences && c.sentence[i] < S) {
      const int64_t si = c.sentence[i];
      sent_count_[size_t(li * S + si)] += 1;
      for (int64_t j = 0; j < nv; ++j)
        if (c.sentence[j] < S) sent_sum_[size_t((li * S + si) * S + c.sentence[j])] += row[j];
    }
  }
}

double HeadStats::value(int64_t li, int64_t hi, int m) const {
  const Acc& acc = at(li, hi);
  if (acc.count[m] == 0) return std::numeric_limits<double>::quiet_NaN();
  if (m == kMaxConfidence) return acc.max_conf;
  return acc.sum[m] / double(acc.count[m]);
}

int64_t HeadStats::queries(int64_t li, int64_t hi) const { return at(li, hi).count[kEntropy]; }

std::vector<std::vector<std::vector<double>>> HeadStats::sentence_matrix() const {
  const int64_t S = kMaxSentences;
  // Sentences that occur at all (rows with queries), so the matrix is as small as the data.
  int64_t used = 0;
  for (size_t li = 0; li < layers_.size(); ++li)
    for (int64_t s = 0; s < S; ++s)
      if (sent_count_[li * S + s] > 0) used = std::max(used, s + 1);
  std::vector<std::vector<std::vector<double>>> out(layers_.size());
  for (size_t li = 0; li < layers_.size(); ++li) {
    out[li].assign(size_t(used), std::vector<double>(size_t(used), 0.0));
    for (int64_t s = 0; s < used; ++s) {
      const double n = sent_count_[li * S + s];
      for (int64_t t = 0; t < used; ++t)
        out[li][s][t] = n > 0 ? sent_sum_[(li * S + s) * S + t] / n : std::numeric_limits<double>::quiet_NaN();
    }
  }
  return out;
}

nlohmann::json HeadStats::to_json() const {
  nlohmann::json heads = nlohmann::json::array();
  const auto& names = head_metric_names();
  for (size_t li = 0; li < layers_.size(); ++li)
    for (size_t hi = 0; hi < heads_.size(); ++hi) {
      nlohmann::json h = {{"layer", layers_[li]}, {"head", heads_[hi]}};
      for (int m = 0; m < kNumHeadMetrics; ++m) h[names[size_t(m)]] = number_or_null(value(int64_t(li), int64_t(hi), m));
      h["queries"] = queries(int64_t(li), int64_t(hi));
      heads.push_back(std::move(h));
    }
  nlohmann::json sm = nlohmann::json::array();
  for (const auto& layer : sentence_matrix()) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : layer) {
      nlohmann::json row = nlohmann::json::array();
      for (double v : r) row.push_back(number_or_null(v));
      rows.push_back(row);
    }
    sm.push_back(rows);
  }
  return {{"layers", layers_}, {"head_indices", heads_}, {"heads", heads}, {"sentence_matrix", sm}};
}

std::vector<float> HeadStats::table() const {
  std::vector<float> out;
  for (size_t li = 0; li < layers_.size(); ++li)
    for (size_t hi = 0; hi < heads_.size(); ++hi)
      for (int m = 0; m < kNumHeadMetrics; ++m) out.push_back(float(value(int64_t(li), int64_t(hi), m)));
  return out;
}

void write_metrics_npz(const std::filesystem::path& path, const HeadStats& stats, const nlohmann::json& report) {
  const int64_t L = int64_t(stats.layers().size()), H = int64_t(stats.heads().size());
  io::NpzWriter npz(path);
  npz.add("metrics", io::NdArray::from<float>({L, H, int64_t(kNumHeadMetrics)}, stats.table()));
  const auto& names = head_metric_names();
  npz.add("metric_names", io::NdArray::from_strings({int64_t(kNumHeadMetrics)},
                                                     std::vector<std::string>(names.begin(), names.end())));
  npz.add("layers", io::NdArray::from<int64_t>({L}, stats.layers()));
  npz.add("heads", io::NdArray::from<int64_t>({H}, stats.heads()));
  std::vector<int64_t> q;
  for (int64_t li = 0; li < L; ++li)
    for (int64_t hi = 0; hi < H; ++hi) q.push_back(stats.queries(li, hi));
  npz.add("queries", io::NdArray::from<int64_t>({L, H}, q));
  nlohmann::json meta = report;
  meta.erase("heads");
  meta["format"] = "atlas.head_metrics";
  meta["format_version"] = 1;
  npz.add("meta", io::NdArray::scalar_string(meta.dump()));
  npz.close();
}

std::string heads_csv(const HeadStats& stats) {
  std::ostringstream out;
  out << "layer,head";
  for (const char* n : head_metric_names()) out << ',' << n;
  out << ",queries\n";
  for (size_t li = 0; li < stats.layers().size(); ++li)
    for (size_t hi = 0; hi < stats.heads().size(); ++hi) {
      out << stats.layers()[li] << ',' << stats.heads()[hi];
      for (int m = 0; m < kNumHeadMetrics; ++m) {
        const double v = stats.value(int64_t(li), int64_t(hi), m);
        out << ',';
        if (!std::isnan(v)) out << fmt::format("{:.6g}", v);
      }
      out << ',' << stats.queries(int64_t(li), int64_t(hi)) << '\n';
    }
  return out.str();
}

}  // namespace atlas::analyze
