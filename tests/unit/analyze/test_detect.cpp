// analyze detect: TransformerLens-style scores on a hand-made matrix, and the repeated sequences.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "atlas/analyze/detect.hpp"

using namespace atlas::analyze;

TEST_CASE("repeated random tokens: prefix, two equal copies, seeded, special ids excluded") {
  const auto a = repeated_random_tokens(6, 10, {1}, {0, 1, 2}, 7);
  REQUIRE(a.size() == 13);
  CHECK(a[0] == 1);
  CHECK(std::equal(a.begin() + 1, a.begin() + 7, a.begin() + 7));
  CHECK(std::none_of(a.begin() + 1, a.end(), [](int64_t t) { return t < 3 || t >= 10; }));
  CHECK(a == repeated_random_tokens(6, 10, {1}, {0, 1, 2}, 7));
  CHECK(a != repeated_random_tokens(6, 10, {1}, {0, 1, 2}, 8));
}

TEST_CASE("scores: previous token over all positions, duplicate and induction over the second copy") {
  // [BOS] x y x y: L = 2, prefix 1, n = 5; second copy at positions 3, 4.
  const int64_t n = 5;
  std::vector<float> a(size_t(n * n), 0.0f);
  auto at = [&](int64_t i, int64_t j) -> float& { return a[size_t(i * n + j)]; };
  at(0, 0) = 1;
  at(1, 0) = 1;                                  // prev of 1 = 1.0
  at(2, 1) = 0.5f; at(2, 2) = 0.5f;              // prev of 2 = 0.5
  at(3, 1) = 0.6f; at(3, 2) = 0.4f;              // dup (3 -> 1) 0.6, induction (3 -> 2) 0.4, prev 0.4
  at(4, 2) = 0.1f; at(4, 3) = 0.8f; at(4, 4) = 0.1f;   // dup (4 -> 2) 0.1, induction (4 -> 3) 0.8, prev 0.8
  DetectScores s;
  s.reset({0}, {0});
  s.add_matrix(0, 0, a.data(), n, 1, 2);
  CHECK(s.prev_token(0, 0) == doctest::Approx((1.0 + 0.5 + 0.4 + 0.8) / 4));
  CHECK(s.duplicate(0, 0) == doctest::Approx((0.6 + 0.1) / 2));
  CHECK(s.induction(0, 0) == doctest::Approx((0.4 + 0.8) / 2));
  const auto j = s.to_json();
  CHECK(j["top"]["induction"]["score"].get<double>() == doctest::Approx(0.6));
}
