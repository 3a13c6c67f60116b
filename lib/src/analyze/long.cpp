// analyze long: attention mass by log-binned token distance per layer and head, streamed.
#include <algorithm>
#include <cmath>
#include <limits>

#include "atlas/analyze/cases.hpp"
#include "atlas/core/error.hpp"

namespace atlas::analyze {

int DistanceProfile::bin_of(int64_t d) {
  if (d <= 0) return 0;
  int b = 1;
  while ((int64_t{1} << b) <= d) ++b;
  return b;   // [2^(b-1), 2^b)
}

void DistanceProfile::reset(std::vector<int64_t> layers, std::vector<int64_t> heads) {
  layers_ = std::move(layers);
  heads_ = std::move(heads);
  acc_.assign(layers_.size() * heads_.size(), Acc{});
}

void DistanceProfile::add(const format::AttentionData& doc) {
  ATLAS_CHECK(doc.q == doc.k && !doc.keys_differ(), InputError, "{}: analyze long needs self-attention", doc.source);
  if (acc_.empty()) reset(doc.layers, doc.heads);
  ATLAS_CHECK(doc.layers == layers_ && doc.heads == heads_, InputError,
              "{}: layers / heads differ from the documents before it", doc.source);
  for (int64_t li = 0; li < doc.num_layers; ++li)
    for (int64_t hi = 0; hi < doc.num_heads; ++hi) add_matrix(li, hi, doc.matrix(li, hi), doc.q, doc.causal_mask());
}

void DistanceProfile::add_matrix(int64_t li, int64_t hi, const float* a, int64_t n, bool causal) {
  Acc& acc = acc_[size_t(li * int64_t(heads_.size()) + hi)];
  const int nbins = bin_of(std::max<int64_t>(n - 1, 0)) + 1;
  if (int(acc.mass.size()) < nbins) {
    acc.mass.resize(size_t(nbins), 0.0);
    acc.pairs.resize(size_t(nbins), 0.0);
    acc.uniform.resize(size_t(nbins), 0.0);
  }
  max_distance_ = std::max(max_distance_, n - 1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t nv = causal ? i + 1 : n;
    if (nv < 2) continue;
    const float* row = a + i * n;
    double local = 0, local_u = 0, dist = 0;
    for (int64_t j = 0; j < nv; ++j) {
      const int64_t d = i > j ? i - j : j - i;
      const int b = bin_of(d);
      acc.mass[size_t(b)] += row[j];
      acc.pairs[size_t(b)] += 1;
      acc.uniform[size_t(b)] += 1.0 / double(nv);
      dist += row[j] * double(d);
      if (d <= local_) {
        local += row[j];
        local_u += 1.0 / double(nv);
      }
    }
    acc.local += local;
    acc.local_uniform += local_u;
    acc.dist += dist;
    ++acc.queries;
  }
}

nlohmann::json DistanceProfile::to_json() const {
  const int nbins = bin_of(max_distance_) + 1;
  nlohmann::json layers = nlohmann::json::array();
  nlohmann::json heads = nlohmann::json::array();
  for (size_t li = 0; li < layers_.size(); ++li) {
    // Layer: the head mean (sums over the layer's heads).
    std::vector<double> mass(size_t(nbins), 0.0), pairs(size_t(nbins), 0.0), uni(size_t(nbins), 0.0);
    double local = 0, local_u = 0;
    int64_t queries = 0;
    for (size_t hi = 0; hi < heads_.size(); ++hi) {
      const Acc& a = acc_[li * heads_.size() + hi];
      for (size_t b = 0; b < a.mass.size(); ++b) {
        mass[b] += a.mass[b];
        pairs[b] += a.pairs[b];
        uni[b] += a.uniform[b];
      }
      local += a.local;
      local_u += a.local_uniform;
      queries += a.queries;
      heads.push_back({{"layer", layers_[li]},
                       {"head", heads_[hi]},
                       {"proximal_preference", number_or_null(a.local_uniform > 0 ? a.local / a.local_uniform : NAN)},
                       {"local_mass", number_or_null(a.queries ? a.local / double(a.queries) : NAN)},
                       {"mean_distance", number_or_null(a.queries ? a.dist / double(a.queries) : NAN)}});
    }
    nlohmann::json bins = nlohmann::json::array();
    for (int b = 0; b < nbins; ++b) {
      const int64_t from = b == 0 ? 0 : int64_t{1} << (b - 1);
      const int64_t to = b == 0 ? 0 : std::min<int64_t>((int64_t{1} << b) - 1, max_distance_);
      bins.push_back({{"from", from},
                      {"to", to},
                      {"mass", number_or_null(queries ? mass[size_t(b)] / double(queries) : NAN)},
                      {"per_key", number_or_null(pairs[size_t(b)] > 0 ? mass[size_t(b)] / pairs[size_t(b)] : NAN)},
                      {"ratio", number_or_null(uni[size_t(b)] > 0 ? mass[size_t(b)] / uni[size_t(b)] : NAN)}});
    }
    layers.push_back({{"layer", layers_[li]},
                      {"proximal_preference", number_or_null(local_u > 0 ? local / local_u : NAN)},
                      {"local_mass", number_or_null(queries ? local / double(queries) : NAN)},
                      {"bins", bins}});
  }
  return {{"local_window", local_}, {"max_distance", max_distance_}, {"layers", layers}, {"heads", heads}};
}

}  // namespace atlas::analyze
