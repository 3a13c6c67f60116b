#pragma once
/// Statistics of the bias measures: Python's round(), Spearman's rank correlation (scipy.stats.spearmanr:
/// Pearson on average ranks), seeded bootstrap confidence intervals and sign-flip permutation p-values of
/// paired differences, Benjamini-Hochberg adjusted p-values. Deterministic for a given seed (std::mt19937_64
/// with our own integer mapping, so results do not depend on the standard library's distributions).
#include <cstdint>
#include <vector>

namespace atlas::bias {

/// Python 3 round(x, digits): the decimal nearest to x's exact binary value, ties to even.
double py_round(double x, int digits);

/// Average ranks (1-based; ties share the mean of their ranks), as scipy.stats.rankdata.
std::vector<double> average_ranks(const std::vector<double>& v);
/// Pearson correlation; NaN when either side is constant or there are fewer than 2 values.
double pearson(const std::vector<double>& x, const std::vector<double>& y);
/// Spearman's rho: Pearson of the average ranks.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

struct PairedTest {
  int64_t n = 0;
  double mean = 0;        // mean of the differences
  double ci_low = 0, ci_high = 0;   // percentile bootstrap 95% CI of the mean
  double p_value = 1;     // two-sided sign-flip permutation p-value, (count + 1) / (permutations + 1)
};
/// Paired differences d_i = a_i - b_i: bootstrap of their mean (`resamples` draws) and a permutation
/// test of "mean 0" by random sign flips (`permutations` draws), both from `seed`.
PairedTest paired_test(const std::vector<double>& differences, int64_t resamples, int64_t permutations,
                       uint64_t seed);

/// Benjamini-Hochberg adjusted p-values (monotone, capped at 1), in the order given.
std::vector<double> benjamini_hochberg(const std::vector<double>& p);

}  // namespace atlas::bias
