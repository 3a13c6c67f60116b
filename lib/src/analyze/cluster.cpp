// Head clustering: standardised metric vectors, k-means++ / Lloyd, silhouette, PCA.
// The numerics are written here: the project's allowed libraries have no k-means, silhouette or
// symmetric eigensolver outside LibTorch, and this module is torch-free (a dozen-dimensional
// covariance matrix needs no more than cyclic Jacobi rotations).
#include "atlas/analyze/cluster.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "atlas/analyze/documents.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/json.hpp"
#include "atlas/io/npz.hpp"

namespace atlas::analyze {
namespace fs = std::filesystem;

namespace {

double sq_dist(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}

bool is_id_field(const std::string& k) { return k == "layer" || k == "head" || k == "queries" || k == "cluster"; }

}  // namespace

HeadTable read_head_table(const fs::path& path, const std::vector<std::string>& wanted) {
  HeadTable t;
  t.source = path.string();
  ATLAS_CHECK(fs::is_regular_file(path), InputError, "'{}' does not exist (expected a heads report .json or a head-metrics .npz)",
              path.string());
  if (path.extension() == ".npz") {
    io::NpzReader npz(path);
    ATLAS_CHECK(npz.contains("metrics") && npz.contains("metric_names"), FormatError,
                "'{}' is not a head-metrics NPZ (no 'metrics' / 'metric_names'; write one with analyze heads -o FILE.npz)",
                path.string());
    const io::NdArray m = npz.get("metrics");
    ATLAS_CHECK(m.ndim() == 3, FormatError, "'{}': 'metrics' must be [L, H, M], got {} dimensions", path.string(), m.ndim());
    const auto names = npz.get("metric_names").to_strings();
    const auto vals = m.to_double();
    const int64_t L = m.shape()[0], H = m.shape()[1], M = m.shape()[2];
    ATLAS_CHECK(int64_t(names.size()) == M, FormatError, "'{}': {} metric names for {} metrics", path.string(), names.size(), M);
    const auto layers = npz.contains("layers") ? npz.get("layers").to_int64() : std::vector<int64_t>();
    const auto heads = npz.contains("heads") ? npz.get("heads").to_int64() : std::vector<int64_t>();
    t.features = names;
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h) {
        t.layer.push_back(l < int64_t(layers.size()) ? layers[l] : l);
        t.head.push_back(h < int64_t(heads.size()) ? heads[h] : h);
        t.values.emplace_back(vals.begin() + (l * H + h) * M, vals.begin() + (l * H + h + 1) * M);
      }
    if (npz.contains("meta")) {
      const auto meta = parse_json(npz.get("meta").to_string(), path.string() + " meta", false);
      if (meta.is_object()) t.model = meta.value("model", "");
    }
  } else {
    const nlohmann::json r = parse_json(read_file(path), path.string());
    ATLAS_CHECK(r.is_object() && r.contains("heads") && r["heads"].is_array() && !r["heads"].empty(), InputError,
                "'{}' has no 'heads' records (expected the JSON of analyze heads or analyze detect)", path.string());
    t.model = r.value("model", "");
    std::vector<std::string> keys;
    std::set<std::string> seen;
    for (const auto& h : r["heads"])
      for (auto it = h.begin(); it != h.end(); ++it)
        if ((it.value().is_number() || it.value().is_null()) && !is_id_field(it.key()) && seen.insert(it.key()).second)
          keys.push_back(it.key());
    t.features = keys;
    for (const auto& h : r["heads"]) {
      ATLAS_CHECK(h.contains("layer") && h.contains("head") && h["layer"].is_number_integer() && h["head"].is_number_integer(),
                  InputError, "'{}': a heads record without integer 'layer' and 'head': {}", path.string(), h.dump());
      t.layer.push_back(h["layer"].get<int64_t>());
      t.head.push_back(h["head"].get<int64_t>());
      std::vector<double> row;
      for (const auto& k : keys) {
        const auto it = h.find(k);
        row.push_back(it != h.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN());
      }
      t.values.push_back(row);
    }
  }
  if (!wanted.empty()) {
    std::vector<size_t> idx;
    for (const auto& w : wanted) {
      const auto it = std::find(t.features.begin(), t.features.end(), w);
      ATLAS_CHECK(it != t.features.end(), InputError, "'{}' has no metric '{}' (have: {})", path.string(), w,
                  fmt::join(t.features, ", "));
      idx.push_back(size_t(it - t.features.begin()));
    }
    for (auto& row : t.values) {
      std::vector<double> r;
      for (size_t i : idx) r.push_back(row[i]);
      row = r;
    }
    t.features = wanted;
  }
  return t;
}

KMeansResult kmeans(const std::vector<std::vector<double>>& points, int k, uint64_t seed, int restarts) {
  const size_t n = points.size();
  ATLAS_CHECK(k >= 1 && size_t(k) <= n, InputError, "k-means: k = {} for {} points", k, n);
  const size_t dim = points.front().size();
  std::mt19937_64 rng(seed);
  KMeansResult best;
  best.inertia = std::numeric_limits<double>::infinity();
  for (int r = 0; r < std::max(1, restarts); ++r) {
    // k-means++: the first centre uniformly, each next one with probability proportional to the
    // squared distance to the nearest centre chosen so far.
    std::vector<std::vector<double>> c;
    c.push_back(points[std::uniform_int_distribution<size_t>(0, n - 1)(rng)]);
    std::vector<double> d2(n);
    while (int(c.size()) < k) {
      double total = 0;
      for (size_t i = 0; i < n; ++i) {
        double m = std::numeric_limits<double>::infinity();
        for (const auto& cc : c) m = std::min(m, sq_dist(points[i], cc));
        d2[i] = m;
        total += m;
      }
      size_t pick = 0;
      if (total > 0) {
        double u = std::uniform_real_distribution<double>(0, total)(rng);
        for (pick = 0; pick + 1 < n && u >= d2[pick]; ++pick) u -= d2[pick];
      } else {
        pick = std::uniform_int_distribution<size_t>(0, n - 1)(rng);
      }
      c.push_back(points[pick]);
    }
    std::vector<int> a(n, -1);
    for (int iter = 0; iter < 300; ++iter) {
      bool changed = false;
      for (size_t i = 0; i < n; ++i) {
        int bi = 0;
        double bd = std::numeric_limits<double>::infinity();
        for (int j = 0; j < k; ++j) {
          const double d = sq_dist(points[i], c[size_t(j)]);
          if (d < bd) { bd = d; bi = j; }
        }
        if (a[i] != bi) { a[i] = bi; changed = true; }
      }
      if (!changed) break;
      std::vector<std::vector<double>> sum(size_t(k), std::vector<double>(dim, 0.0));
      std::vector<int> cnt(size_t(k), 0);
      for (size_t i = 0; i < n; ++i) {
        for (size_t d = 0; d < dim; ++d) sum[size_t(a[i])][d] += points[i][d];
        ++cnt[size_t(a[i])];
      }
      for (int j = 0; j < k; ++j) {
        if (cnt[size_t(j)] == 0) {
          // An empty cluster takes the point farthest from its centre.
          size_t far = 0;
          double fd = -1;
          for (size_t i = 0; i < n; ++i) {
            const double d = sq_dist(points[i], c[size_t(a[i])]);
            if (d > fd) { fd = d; far = i; }
          }
          c[size_t(j)] = points[far];
          a[far] = j;
          continue;
        }
        for (size_t d = 0; d < dim; ++d) c[size_t(j)][d] = sum[size_t(j)][d] / cnt[size_t(j)];
      }
    }
    double inertia = 0;
    for (size_t i = 0; i < n; ++i) inertia += sq_dist(points[i], c[size_t(a[i])]);
    if (inertia < best.inertia - 1e-12) {
      best.k = k;
      best.assignment = a;
      best.centroids = c;
      best.inertia = inertia;
    }
  }
  return best;
}

double silhouette(const std::vector<std::vector<double>>& points, const std::vector<int>& a, int k) {
  const size_t n = points.size();
  if (n < 2 || k < 2) return 0;
  std::vector<int> size(size_t(k), 0);
  for (int c : a) ++size[size_t(c)];
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (size[size_t(a[i])] <= 1) continue;   // s(i) = 0 for a singleton
    std::vector<double> sum(size_t(k), 0.0);
    for (size_t j = 0; j < n; ++j)
      if (j != i) sum[size_t(a[j])] += std::sqrt(sq_dist(points[i], points[j]));
    const double ai = sum[size_t(a[i])] / (size[size_t(a[i])] - 1);
    double bi = std::numeric_limits<double>::infinity();
    for (int c = 0; c < k; ++c)
      if (c != a[i] && size[size_t(c)] > 0) bi = std::min(bi, sum[size_t(c)] / size[size_t(c)]);
    const double m = std::max(ai, bi);
    total += m > 0 ? (bi - ai) / m : 0;
  }
  return total / double(n);
}

Projection pca2(const std::vector<std::vector<double>>& points) {
  Projection p;
  const size_t n = points.size();
  const size_t dim = n ? points.front().size() : 0;
  std::vector<double> mean(dim, 0.0);
  for (const auto& x : points)
    for (size_t d = 0; d < dim; ++d) mean[d] += x[d] / double(n);
  std::vector<double> cov(dim * dim, 0.0);   // flat [dim][dim]
  for (const auto& x : points)
    for (size_t a = 0; a < dim; ++a)
      for (size_t b = 0; b < dim; ++b) cov[a * dim + b] += (x[a] - mean[a]) * (x[b] - mean[b]) / std::max<double>(1, double(n) - 1);
  // Cyclic Jacobi: rotate away the off-diagonal entries; V collects the eigenvectors (columns).
  std::vector<double> V(dim * dim, 0.0);
  for (size_t i = 0; i < dim; ++i) V[i * dim + i] = 1;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (size_t a = 0; a < dim; ++a)
      for (size_t b = a + 1; b < dim; ++b) off += cov[a * dim + b] * cov[a * dim + b];
    if (off < 1e-22) break;
    for (size_t pi = 0; pi < dim; ++pi)
      for (size_t q = pi + 1; q < dim; ++q) {
        if (std::fabs(cov[pi * dim + q]) < 1e-300) continue;
        const double theta = (cov[q * dim + q] - cov[pi * dim + pi]) / (2 * cov[pi * dim + q]);
        const double t = (theta >= 0 ? 1 : -1) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (size_t r = 0; r < dim; ++r) {
          const double arp = cov[r * dim + pi], arq = cov[r * dim + q];
          cov[r * dim + pi] = c * arp - s * arq;
          cov[r * dim + q] = s * arp + c * arq;
        }
        for (size_t r = 0; r < dim; ++r) {
          const double apr = cov[pi * dim + r], aqr = cov[q * dim + r];
          cov[pi * dim + r] = c * apr - s * aqr;
          cov[q * dim + r] = s * apr + c * aqr;
        }
        for (size_t r = 0; r < dim; ++r) {
          const double vrp = V[r * dim + pi], vrq = V[r * dim + q];
          V[r * dim + pi] = c * vrp - s * vrq;
          V[r * dim + q] = s * vrp + c * vrq;
        }
      }
  }
  std::vector<size_t> order(dim);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cov[a * dim + a] > cov[b * dim + b]; });
  double trace = 0;
  for (size_t d = 0; d < dim; ++d) trace += std::max(0.0, cov[d * dim + d]);
  p.loadings.assign(dim, {0, 0});
  for (int c = 0; c < 2 && size_t(c) < dim; ++c) {
    const size_t e = order[size_t(c)];
    p.explained[size_t(c)] = trace > 0 ? std::max(0.0, cov[e * dim + e]) / trace : 0;
    // Sign convention: the largest loading positive, so reruns give the same picture.
    size_t big = 0;
    for (size_t d = 0; d < dim; ++d)
      if (std::fabs(V[d * dim + e]) > std::fabs(V[big * dim + e])) big = d;
    const double sign = V[big * dim + e] < 0 ? -1 : 1;
    for (size_t d = 0; d < dim; ++d) p.loadings[d][size_t(c)] = sign * V[d * dim + e];
  }
  for (const auto& x : points) {
    std::array<double, 2> xy{0, 0};
    for (int c = 0; c < 2; ++c)
      for (size_t d = 0; d < dim; ++d) xy[size_t(c)] += (x[d] - mean[d]) * p.loadings[d][size_t(c)];
    p.xy.push_back(xy);
  }
  return p;
}

std::string cluster_name_for(const std::string& metric) {
  static const std::map<std::string, std::string> kNames = {
      {"prev_token", "previous-token heads"},
      {"sink_mass", "sink heads"},
      {"self", "self heads"},
      {"entropy", "broad heads"},
      {"long_range", "long-range heads"},
      {"mean_distance", "long-range heads"},
      {"mean_distance_no_first", "long-range heads"},
      {"punct_mass", "punctuation heads"},
      {"special_mass", "special-token heads"},
      {"function_mass", "function-word heads"},
      {"content_mass", "content-word heads"},
      {"mean_confidence", "focused heads"},
      {"max_confidence", "focused heads"},
      {"sparsity", "focused heads"},
      {"inter_sentence_mass", "cross-sentence heads"},
      {"induction", "induction heads"},
      {"duplicate_token", "duplicate-token heads"},
  };
  const auto it = kNames.find(metric);
  return it != kNames.end() ? it->second : metric + " heads";
}

nlohmann::json cluster_heads(const HeadTable& table, const ClusterOptions& options) {
  const size_t n = table.values.size();
  ATLAS_CHECK(n >= 3, InputError, "'{}': {} heads; clustering needs at least 3", table.source, n);
  // Standardise; a feature without variance (or without values) says nothing and is dropped.
  std::vector<size_t> keep;
  std::vector<double> mean, sd;
  for (size_t f = 0; f < table.features.size(); ++f) {
    double s = 0, s2 = 0;
    int64_t c = 0;
    for (const auto& row : table.values)
      if (!std::isnan(row[f])) { s += row[f]; s2 += row[f] * row[f]; ++c; }
    if (c < 2) continue;
    const double m = s / double(c);
    const double var = std::max(0.0, s2 / double(c) - m * m);
    if (var < 1e-18) continue;
    keep.push_back(f);
    mean.push_back(m);
    sd.push_back(std::sqrt(var));
  }
  ATLAS_CHECK(!keep.empty(), InputError, "'{}': no metric varies across heads; nothing to cluster on", table.source);
  std::vector<std::vector<double>> z(n, std::vector<double>(keep.size(), 0.0));
  for (size_t i = 0; i < n; ++i)
    for (size_t f = 0; f < keep.size(); ++f) {
      const double x = table.values[i][keep[f]];
      z[i][f] = std::isnan(x) ? 0.0 : (x - mean[f]) / sd[f];   // a missing value sits at the mean
    }
  std::vector<std::string> features;
  for (size_t f : keep) features.push_back(table.features[f]);

  nlohmann::json sil = nlohmann::json::object();
  KMeansResult best;
  double best_s = -2;
  const int kmax = std::min<int>(options.k_max, int(n) - 1);
  const int kmin = options.k > 0 ? options.k : std::max(2, options.k_min);
  const int kend = options.k > 0 ? options.k : kmax;
  ATLAS_CHECK(kmin <= kend && kmin >= 1 && size_t(kend) <= n, InputError, "'{}': k from {} to {} for {} heads", table.source,
              kmin, kend, n);
  for (int k = kmin; k <= kend; ++k) {
    KMeansResult r = kmeans(z, k, options.seed + uint64_t(k));
    const double s = silhouette(z, r.assignment, k);
    sil[std::to_string(k)] = s;
    if (s > best_s + 1e-12) {
      best_s = s;
      best = std::move(r);
    }
  }
  const Projection proj = pca2(z);

  // Names: the metric each centroid is highest on (in z), the runner-up when that name is taken.
  std::vector<std::pair<int, std::vector<size_t>>> ranked;
  nlohmann::json clusters = nlohmann::json::array();
  std::set<std::string> taken;
  std::vector<int> order(size_t(best.k));
  std::iota(order.begin(), order.end(), 0);
  std::vector<int> size(size_t(best.k), 0);
  for (int c : best.assignment) ++size[size_t(c)];
  std::vector<std::string> names(size_t(best.k));
  std::vector<size_t> dominant(size_t(best.k));
  // The clusters with the most extreme centroid choose first.
  std::vector<double> peak(size_t(best.k));
  for (int c = 0; c < best.k; ++c)
    peak[size_t(c)] = *std::max_element(best.centroids[size_t(c)].begin(), best.centroids[size_t(c)].end());
  std::sort(order.begin(), order.end(), [&](int a, int b) { return peak[size_t(a)] > peak[size_t(b)]; });
  for (int c : order) {
    const auto& cen = best.centroids[size_t(c)];
    std::vector<size_t> f(cen.size());
    std::iota(f.begin(), f.end(), 0);
    std::sort(f.begin(), f.end(), [&](size_t a, size_t b) { return cen[a] > cen[b]; });
    std::string name;
    size_t dom = f.front();
    if (cen[f.front()] < 0.25) {
      name = "mixed heads";
    } else {
      for (size_t idx : f) {
        if (cen[idx] < 0.25) break;
        const std::string cand = cluster_name_for(features[idx]);
        if (!taken.count(cand)) { name = cand; dom = idx; break; }
      }
      if (name.empty()) name = cluster_name_for(features[f.front()]);
    }
    for (int suffix = 2; taken.count(name); ++suffix)
      name = (suffix == 2 ? name : name.substr(0, name.rfind(" ("))) + fmt::format(" ({})", suffix);
    taken.insert(name);
    names[size_t(c)] = name;
    dominant[size_t(c)] = dom;
  }
  for (int c = 0; c < best.k; ++c) {
    nlohmann::json members = nlohmann::json::array();
    nlohmann::json means = nlohmann::json::object();
    for (size_t f = 0; f < keep.size(); ++f) {
      double s = 0;
      int64_t cnt = 0;
      for (size_t i = 0; i < n; ++i)
        if (best.assignment[i] == c && !std::isnan(table.values[i][keep[f]])) { s += table.values[i][keep[f]]; ++cnt; }
      means[features[f]] = cnt ? number_or_null(s / double(cnt)) : nlohmann::json(nullptr);
    }
    for (size_t i = 0; i < n; ++i)
      if (best.assignment[i] == c) members.push_back(fmt::format("L{}H{}", table.layer[i], table.head[i]));
    clusters.push_back({{"id", c},
                        {"name", names[size_t(c)]},
                        {"size", size[size_t(c)]},
                        {"dominant_metric", features[dominant[size_t(c)]]},
                        {"dominant_z", best.centroids[size_t(c)][dominant[size_t(c)]]},
                        {"mean", means},
                        {"members", members}});
  }
  nlohmann::json heads = nlohmann::json::array();
  for (size_t i = 0; i < n; ++i)
    heads.push_back({{"layer", table.layer[i]}, {"head", table.head[i]}, {"cluster", best.assignment[i]},
                     {"cluster_name", names[size_t(best.assignment[i])]}, {"x", proj.xy[i][0]}, {"y", proj.xy[i][1]}});
  return {{"source", table.source},
          {"model", table.model},
          {"features", features},
          {"k", best.k},
          {"best_silhouette", best_s},
          {"silhouette", sil},
          {"seed", options.seed},
          {"explained_variance", {proj.explained[0], proj.explained[1]}},
          {"clusters", clusters},
          {"heads", heads}};
}

}  // namespace atlas::analyze
