#pragma once
/// Building blocks shared by the probability measures: how a sentence becomes scoring queries for a
/// causal LM (every token after BOS, from the position before it) or a masked LM (one query per masked
/// position: pseudo-log-likelihood), collected from every example first and run in one batched pass.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "atlas/extract/scorer.hpp"

namespace atlas::bias {

struct RunSettings {
  int64_t batch_size = 64;
  /// Called with (queries done, queries in all) after each batch (a progress bar).
  std::function<void(int64_t, int64_t)> progress;
};

/// Queries from all examples, run together; each add() returns a handle to read the result by.
class QueryPlan {
 public:
  size_t add(extract::ScoreQuery q);
  /// Runs every query added so far (once).
  void run(extract::Scorer& scorer, const RunSettings& settings);
  const std::vector<double>& result(size_t handle) const { return results_.at(handle); }
  size_t size() const { return queries_.size(); }

 private:
  std::vector<extract::ScoreQuery> queries_;
  std::vector<std::vector<double>> results_;
};

/// ASCII lower-casing, for uncased models (the datasets' text is English; metric.py calls str.lower()).
std::string lower_ascii(std::string s);

/// [BOS] + the sentence's tokens without special tokens (bias-bench scores a causal LM's sentence
/// after its BOS / "<|endoftext|>" token); without a BOS the first token is not scored.
std::vector<int64_t> causal_sentence_ids(const extract::Scorer& scorer, const std::string& text);
/// One query scoring every token t >= 1 of `ids` from position t - 1.
extract::ScoreQuery causal_query(const std::vector<int64_t>& ids);
/// One query with `ids[position]` replaced by the mask token, picking the original token there.
extract::ScoreQuery masked_query(const std::vector<int64_t>& ids, int64_t position, int64_t mask_id);

double sum(const std::vector<double>& v);
double mean(const std::vector<double>& v);

}  // namespace atlas::bias
