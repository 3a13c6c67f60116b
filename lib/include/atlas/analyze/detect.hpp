#pragma once
/// `atlas analyze detect`: the head detectors of TransformerLens (Nanda & Bloom 2022) and of the
/// induction-head analysis (Olsson et al. 2022), run on sequences of random tokens repeated twice:
/// [BOS] r_1 .. r_L r_1 .. r_L. For a query at position i of the second copy,
///   previous-token score  = A[i][i-1]      (every position i >= 1)
///   duplicate-token score = A[i][i-L]      (the same token in the first copy)
///   induction score       = A[i][i-L+1]    (the token that followed it there)
/// averaged over positions and sequences (docs/metrics.md, "analyze detect").
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "atlas/extract/extract.hpp"
#include "atlas/format/attention.hpp"

namespace atlas::analyze {

struct DetectOptions {
  extract::RunOptions run;       ///< model, threads, device (layers/heads: all)
  int64_t length = 32;           ///< L: random tokens per copy
  int64_t sequences = 8;         ///< sequences averaged
  uint64_t seed = 0;
};

/// [prefix..., r, r] with r drawn uniformly (std::mt19937_64 seeded with `seed`) from [0, vocab)
/// without `exclude` (special ids).
std::vector<int64_t> repeated_random_tokens(int64_t length, int64_t vocab, const std::vector<int64_t>& prefix,
                                            const std::vector<int64_t>& exclude, uint64_t seed);

/// Accumulates the three scores per head over documents of that shape.
class DetectScores {
 public:
  /// `prefix`: tokens before the first copy (1 with a BOS token), `length`: L.
  void add(const format::AttentionData& doc, int64_t prefix, int64_t length);
  /// One head's [n, n] matrix (tests).
  void add_matrix(int64_t li, int64_t hi, const float* a, int64_t n, int64_t prefix, int64_t length);
  void reset(std::vector<int64_t> layers, std::vector<int64_t> heads);
  double prev_token(int64_t li, int64_t hi) const;
  double duplicate(int64_t li, int64_t hi) const;
  double induction(int64_t li, int64_t hi) const;
  const std::vector<int64_t>& layers() const { return layers_; }
  const std::vector<int64_t>& heads() const { return heads_; }
  /// {"heads": [{"layer", "head", "prev_token", "duplicate_token", "induction"}], "top": {...}}
  nlohmann::json to_json() const;

 private:
  struct Acc {
    double prev = 0, dup = 0, ind = 0;
    int64_t n_prev = 0, n_second = 0;
  };
  std::vector<int64_t> layers_, heads_;
  std::vector<Acc> acc_;
};

/// Runs the model (through the model runtime) on `options.sequences` repeated sequences and scores
/// them. The report: {"model", "length", "sequences", "seed", "bos", "heads": [...], "top": {...}}.
nlohmann::json run_detect(const DetectOptions& options);

}  // namespace atlas::analyze
