// analyze cluster: k-means on separable points, silhouette by hand, PCA on a known direction, names.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "atlas/analyze/cluster.hpp"

using namespace atlas::analyze;

TEST_CASE("k-means++ separates two obvious groups, seeded and deterministic") {
  const std::vector<std::vector<double>> p = {{0, 0}, {0.1, 0}, {0, 0.1}, {10, 10}, {10.1, 10}, {10, 10.1}};
  const auto r = kmeans(p, 2, 1);
  CHECK(r.assignment[0] == r.assignment[1]);
  CHECK(r.assignment[1] == r.assignment[2]);
  CHECK(r.assignment[3] == r.assignment[4]);
  CHECK(r.assignment[0] != r.assignment[3]);
  // Inertia of a group = sum |x|^2 - 3 |mean|^2 = (0 + 0.01 + 0.01) - 3 * 2 / 900 (mean (1/30, 1/30));
  // the second group is the same shape.
  CHECK(r.inertia == doctest::Approx(2 * (0.02 - 3 * 2.0 / 900)).epsilon(1e-9));
  CHECK(kmeans(p, 2, 1).assignment == r.assignment);
}

TEST_CASE("silhouette of a hand-computed 1-D clustering") {
  // Points 0, 1 | 5: a(0) = 1, b(0) = 5 -> s = 0.8; a(1) = 1, b(1) = 4 -> 0.75; the singleton 0.
  const std::vector<std::vector<double>> p = {{0}, {1}, {5}};
  CHECK(silhouette(p, {0, 0, 1}, 2) == doctest::Approx((0.8 + 0.75 + 0) / 3));
}

TEST_CASE("PCA finds the direction of largest variance") {
  // Points on the line y = x (plus a little noise on y = -x): PC1 ~ (1, 1) / sqrt 2, almost all variance.
  const std::vector<std::vector<double>> p = {{-2, -2}, {-1, -1.1}, {0, 0}, {1, 1.1}, {2, 2}, {0.1, -0.1}};
  const auto pr = pca2(p);
  CHECK(std::fabs(pr.loadings[0][0]) == doctest::Approx(std::sqrt(0.5)).epsilon(0.02));
  CHECK(std::fabs(pr.loadings[1][0]) == doctest::Approx(std::sqrt(0.5)).epsilon(0.02));
  CHECK(pr.explained[0] > 0.99);
  CHECK(pr.explained[0] + pr.explained[1] == doctest::Approx(1.0));
}

TEST_CASE("clusters are named by the metric their centroid is highest on") {
  HeadTable t;
  t.features = {"prev_token", "sink_mass", "entropy"};
  // Four previous-token heads, four sink heads, four broad heads.
  for (int i = 0; i < 12; ++i) {
    t.layer.push_back(i / 4);
    t.head.push_back(i % 4);
    const double e = 0.01 * i;
    if (i < 4) t.values.push_back({0.9 + e, 0.05, 0.2});
    else if (i < 8) t.values.push_back({0.05, 0.9 + e, 0.2});
    else t.values.push_back({0.05, 0.05, 0.9 + e});
  }
  t.source = "test";
  const auto r = cluster_heads(t, {});
  CHECK(r["k"] == 3);
  std::vector<std::string> names;
  for (const auto& c : r["clusters"]) names.push_back(c["name"]);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"broad heads", "previous-token heads", "sink heads"});
  CHECK(r["best_silhouette"].get<double>() > 0.9);
  CHECK(cluster_name_for("induction") == "induction heads");
}
