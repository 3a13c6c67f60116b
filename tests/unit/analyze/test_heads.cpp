// analyze heads: every metric on small matrices whose values are worked out by hand
// (docs/metrics.md gives the formulas).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "atlas/analyze/heads.hpp"
#include "atlas/core/error.hpp"

using namespace atlas;
using namespace atlas::analyze;

namespace {
TokenClasses classes(int64_t n) {
  TokenClasses c;
  c.special.assign(size_t(n), 0);
  c.punct.assign(size_t(n), 0);
  c.function.assign(size_t(n), 0);
  c.content.assign(size_t(n), 0);
  c.sentence.assign(size_t(n), 0);
  return c;
}
double v(const HeadStats& s, int m) { return s.value(0, 0, m); }
}  // namespace

TEST_CASE("causal 3 x 3: every metric by hand, query 0 (one valid key) left out") {
  // Rows: query 0 sees only itself; 1 splits evenly; 2 gives 0.2 / 0.3 / 0.5.
  const std::vector<float> a = {1, 0, 0, 0.5f, 0.5f, 0, 0.2f, 0.3f, 0.5f};
  TokenClasses c = classes(3);
  c.special = {1, 0, 0};    // <s>
  c.punct = {0, 0, 1};      // "."
  c.function = {0, 1, 0};
  c.content = {0, 0, 0};
  c.sentence = {0, 0, 1};
  HeadStats s;
  s.reset({0}, {0});
  s.add_matrix(0, 0, a.data(), 3, /*causal=*/true, c);
  CHECK(s.queries(0, 0) == 2);
  // entropy: query 1: ln 2 / ln 2 = 1; query 2: H(0.2, 0.3, 0.5) / ln 3 = 1.029653 / 1.098612.
  const double h2 = -(0.2 * std::log(0.2) + 0.3 * std::log(0.3) + 0.5 * std::log(0.5)) / std::log(3.0);
  CHECK(v(s, kEntropy) == doctest::Approx((1 + h2) / 2).epsilon(1e-6));
  CHECK(v(s, kMeanDistance) == doctest::Approx((0.5 + 0.7) / 2));            // 0.5*1; 0.2*2 + 0.3*1
  CHECK(v(s, kMeanDistanceNoFirst) == doctest::Approx((0 + 0.3 / 0.8) / 2)); // key 0 dropped, renormalised
  CHECK(v(s, kSinkMass) == doctest::Approx((0.5 + 0.2) / 2));
  CHECK(v(s, kSelf) == doctest::Approx(0.5));
  CHECK(v(s, kPrevToken) == doctest::Approx((0.5 + 0.3) / 2));
  CHECK(v(s, kLongRange) == doctest::Approx(0.0));
  CHECK(v(s, kMeanConfidence) == doctest::Approx(0.5));
  CHECK(v(s, kMaxConfidence) == doctest::Approx(0.5));
  CHECK(v(s, kSparsity) == doctest::Approx(0.5));   // top ceil(10 %) = 1 key of 2 and of 3
  CHECK(v(s, kSpecialMass) == doctest::Approx((0.5 + 0.2) / 2));
  CHECK(v(s, kPunctMass) == doctest::Approx((0 + 0.5) / 2));
  CHECK(v(s, kFunctionMass) == doctest::Approx((0.5 + 0.3) / 2));
  CHECK(v(s, kContentMass) == doctest::Approx(0.0));
  CHECK(v(s, kInterSentenceMass) == doctest::Approx((0 + 0.5) / 2));   // query 2 (sentence 1) -> keys 0, 1
  // Sentence matrix: sentence 0 has query 1 (0.5 + 0.5 on sentence 0), sentence 1 query 2.
  const auto m = s.sentence_matrix();
  REQUIRE(m.size() == 1);
  REQUIRE(m[0].size() == 2);
  CHECK(m[0][0][0] == doctest::Approx(1.0));
  CHECK(m[0][0][1] == doctest::Approx(0.0));
  CHECK(m[0][1][0] == doctest::Approx(0.5));
  CHECK(m[0][1][1] == doctest::Approx(0.5));
}

TEST_CASE("bidirectional uniform 7 x 7: long range, distance, entropy, sparsity") {
  const int64_t n = 7;
  const std::vector<float> a(size_t(n * n), 1.0f / 7);
  HeadStats s;
  s.reset({2}, {5});
  s.add_matrix(0, 0, a.data(), n, /*causal=*/false, classes(n));
  CHECK(s.queries(0, 0) == 7);
  CHECK(v(s, kEntropy) == doctest::Approx(1.0));
  // |i-j| >= 5: rows 0 and 6 have 2 such keys, rows 1 and 5 one: (2+1+0+0+0+1+2) / 7 / 7.
  CHECK(v(s, kLongRange) == doctest::Approx(6.0 / 49));
  // sum over i, j of |i-j| = n (n^2 - 1) / 3 = 112, over 7 rows of weight 1/7.
  CHECK(v(s, kMeanDistance) == doctest::Approx(112.0 / 49));
  CHECK(v(s, kSparsity) == doctest::Approx(1.0 / 7));   // ceil(0.7) = 1 key
  CHECK(v(s, kPrevToken) == doctest::Approx(1.0 / 7));  // queries 1..6
  CHECK(v(s, kSinkMass) == doctest::Approx(1.0 / 7));
  CHECK(v(s, kMaxConfidence) == doctest::Approx(1.0 / 7));
  const nlohmann::json j = s.to_json();
  CHECK(j["heads"][0]["layer"] == 2);
  CHECK(j["heads"][0]["head"] == 5);
  CHECK(j["heads"][0]["long_range"].get<double>() == doctest::Approx(6.0 / 49));
}

TEST_CASE("sparsity takes the top 10 % of the valid keys (ceil), not of all keys") {
  // One causal row of 20 valid keys: 10 % = 2 keys, 0.3 + 0.2.
  const int64_t n = 20;
  std::vector<float> a(size_t(n * n), 0.0f);
  for (int64_t i = 0; i < n; ++i) a[size_t(i * n + i)] = 1;     // other rows: all on self
  float* last = a.data() + (n - 1) * n;
  last[n - 1] = 0;
  last[3] = 0.3f;
  last[7] = 0.2f;
  for (int64_t j = 8; j < 18; ++j) last[j] = 0.05f;
  HeadStats s;
  s.reset({0}, {0});
  s.add_matrix(0, 0, a.data(), n, true, classes(n));
  // Rows 1..18: a single key holds everything (top 1 or 2 keys = 1.0); row 19: 0.5.
  CHECK(v(s, kSparsity) == doctest::Approx((18 * 1.0 + 0.5) / 19));
}

TEST_CASE("a head without valid queries is null; mismatched documents are refused") {
  HeadStats s;
  s.reset({0}, {0});
  const std::vector<float> one = {1};
  s.add_matrix(0, 0, one.data(), 1, true, classes(1));
  CHECK(std::isnan(s.value(0, 0, kEntropy)));
  CHECK(s.to_json()["heads"][0]["entropy"].is_null());
  CHECK_THROWS_AS(s.add_matrix(3, 0, one.data(), 1, true, classes(1)), InputError);
}

TEST_CASE("metric names are the JSON keys, in order") {
  const auto& names = head_metric_names();
  CHECK(std::string(names[kEntropy]) == "entropy");
  CHECK(std::string(names[kSinkMass]) == "sink_mass");
  CHECK(std::string(names[kPrevToken]) == "prev_token");
  CHECK(std::string(names[kInterSentenceMass]) == "inter_sentence_mass");
}
