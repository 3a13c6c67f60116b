#include "atlas/bias/stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <random>

namespace atlas::bias {

double py_round(double x, int digits) {
  if (!std::isfinite(x)) return x;
  // fmt's fixed formatting is correctly rounded from the exact binary value (as CPython's
  // float.__round__, which goes through _Py_dg_dtoa mode 3); ties of exact values round to even.
  const std::string s = fmt::format("{:.{}f}", x, digits);
  return std::strtod(s.c_str(), nullptr);
}

std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double r = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = r;
    i = j + 1;
  }
  return ranks;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = std::min(x.size(), y.size());
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx == 0 || syy == 0) return std::numeric_limits<double>::quiet_NaN();
  return sxy / std::sqrt(sxx * syy);
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  return pearson(average_ranks(x), average_ranks(y));
}

namespace {
/// Uniform integer in [0, n) from 64 random bits (multiply-shift; n is small here, so the bias is
/// below 2^-40).
uint64_t below(std::mt19937_64& rng, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
}

double quantile_sorted(const std::vector<double>& s, double q) {
  // numpy.percentile's default (linear interpolation between closest ranks).
  if (s.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double pos = q * static_cast<double>(s.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - static_cast<double>(lo));
}
}  // namespace

PairedTest paired_test(const std::vector<double>& d, int64_t resamples, int64_t permutations, uint64_t seed) {
  PairedTest t;
  t.n = static_cast<int64_t>(d.size());
  if (d.empty()) {
    t.mean = t.ci_low = t.ci_high = std::numeric_limits<double>::quiet_NaN();
    return t;
  }
  const auto n = static_cast<double>(d.size());
  t.mean = std::accumulate(d.begin(), d.end(), 0.0) / n;
  std::mt19937_64 rng(seed);
  std::vector<double> means;
  means.reserve(static_cast<size_t>(resamples));
  for (int64_t r = 0; r < resamples; ++r) {
    double s = 0;
    for (size_t i = 0; i < d.size(); ++i) s += d[below(rng, d.size())];
    means.push_back(s / n);
  }
  std::sort(means.begin(), means.end());
  t.ci_low = quantile_sorted(means, 0.025);
  t.ci_high = quantile_sorted(means, 0.975);
  std::mt19937_64 prng(seed ^ 0x9e3779b97f4a7c15ULL);
  const double observed = std::fabs(t.mean);
  int64_t extreme = 0;
  for (int64_t r = 0; r < permutations; ++r) {
    double s = 0;
    for (double x : d) s += (prng() >> 63) ? x : -x;
    // A small tolerance so that the observed arrangement itself always counts as extreme.
    if (std::fabs(s / n) >= observed - 1e-12 * std::max(1.0, observed)) ++extreme;
  }
  t.p_value = static_cast<double>(extreme + 1) / static_cast<double>(permutations + 1);
  return t;
}

std::vector<double> benjamini_hochberg(const std::vector<double>& p) {
  const size_t m = p.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  std::vector<double> adj(m);
  double running = 1.0;
  for (size_t r = m; r-- > 0;) {
    const double v = p[order[r]] * static_cast<double>(m) / static_cast<double>(r + 1);
    running = std::min(running, v);
    adj[order[r]] = std::min(1.0, running);
  }
  return adj;
}

}  // namespace atlas::bias
