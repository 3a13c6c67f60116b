#pragma once
/// `atlas analyze cluster`: groups heads by their metric vectors (the `heads` records of an
/// `analyze heads` or `analyze detect` report, or a head-metrics NPZ). Metrics are standardised
/// (z-scores; constant ones dropped), k-means with k-means++ seeding (Arthur & Vassilvitskii 2007)
/// is run for k = 2..8 and the k with the best mean silhouette (Rousseeuw 1987) kept; a 2-D PCA
/// projection places the heads in a figure, and each cluster is named after the metric its centroid
/// is highest on ("previous-token heads", "sink heads" ...). docs/metrics.md, "analyze cluster".
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace atlas::analyze {

/// Heads x features, as read from a report or NPZ.
struct HeadTable {
  std::vector<int64_t> layer, head;          ///< one entry per head
  std::vector<std::string> features;         ///< metric names
  std::vector<std::vector<double>> values;   ///< [head][feature], NaN where the report had null
  std::string source, model;
};
/// A heads JSON report (`{"heads": [{"layer", "head", metric...}]}`) or a head-metrics NPZ.
/// `features` empty: every numeric field but layer, head and queries.
HeadTable read_head_table(const std::filesystem::path& path, const std::vector<std::string>& features = {});

struct KMeansResult {
  int k = 0;
  std::vector<int> assignment;                    ///< cluster of each point
  std::vector<std::vector<double>> centroids;     ///< [k][dim]
  double inertia = 0;                             ///< sum of squared distances to the centroids
};
/// Lloyd's algorithm from k-means++ seeds, best of `restarts` (seeded, deterministic).
KMeansResult kmeans(const std::vector<std::vector<double>>& points, int k, uint64_t seed, int restarts = 10);
/// Mean silhouette coefficient of a clustering (Euclidean); points alone in their cluster count 0.
double silhouette(const std::vector<std::vector<double>>& points, const std::vector<int>& assignment, int k);
/// The first two principal axes of centred `points`: projections [n][2] and explained variance shares.
struct Projection {
  std::vector<std::array<double, 2>> xy;
  std::array<double, 2> explained{};
  std::vector<std::array<double, 2>> loadings;   ///< [dim][2]
};
Projection pca2(const std::vector<std::vector<double>>& points);

struct ClusterOptions {
  int k_min = 2, k_max = 8;
  int k = 0;                    ///< >0: this k, no search
  uint64_t seed = 0;
  std::vector<std::string> features;
};

/// The report: {"source", "model", "features", "k", "silhouette": {"2": s, ...}, "clusters": [{"id",
/// "name", "size", "dominant_metric", "dominant_z", "mean": {metric: raw mean}, "members": ["L0H1"...]}],
/// "heads": [{"layer", "head", "cluster", "x", "y"}], "explained_variance": [pc1, pc2]}.
nlohmann::json cluster_heads(const HeadTable& table, const ClusterOptions& options);

/// The name a cluster gets when `metric` dominates it ("prev_token" -> "previous-token heads").
std::string cluster_name_for(const std::string& metric);

/// The 2-D projection as a figure (.png .svg .pdf), clusters coloured, heads labelled L<l>H<h>.
void write_cluster_figure(const std::filesystem::path& path, const nlohmann::json& report, const std::string& style,
                          int dpi, const std::string& command_line);

}  // namespace atlas::analyze
