#include "atlas/bias/scoring.hpp"

#include <numeric>

#include "atlas/core/error.hpp"

namespace atlas::bias {

size_t QueryPlan::add(extract::ScoreQuery q) {
  queries_.push_back(std::move(q));
  return queries_.size() - 1;
}

void QueryPlan::run(extract::Scorer& scorer, const RunSettings& settings) {
  if (results_.size() == queries_.size()) return;
  results_ = scorer.log_probs(queries_, std::max<int64_t>(1, settings.batch_size), settings.progress);
  ATLAS_CHECK(results_.size() == queries_.size(), Error, "internal: {} results for {} queries", results_.size(),
              queries_.size());
}

std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::vector<int64_t> causal_sentence_ids(const extract::Scorer& scorer, const std::string& text) {
  std::vector<int64_t> ids;
  if (scorer.info().bos_id >= 0) ids.push_back(scorer.info().bos_id);
  const tokenize::Encoding enc = scorer.encode(text, false);
  ids.insert(ids.end(), enc.ids.begin(), enc.ids.end());
  ATLAS_CHECK(ids.size() >= 2, InputError, "the sentence '{}' has too few tokens to score", text);
  return ids;
}

extract::ScoreQuery causal_query(const std::vector<int64_t>& ids) {
  extract::ScoreQuery q;
  q.ids = ids;
  for (size_t t = 1; t < ids.size(); ++t) q.picks.emplace_back(static_cast<int64_t>(t - 1), ids[t]);
  return q;
}

extract::ScoreQuery masked_query(const std::vector<int64_t>& ids, int64_t position, int64_t mask_id) {
  extract::ScoreQuery q;
  q.ids = ids;
  q.picks.emplace_back(position, ids.at(static_cast<size_t>(position)));
  q.ids[static_cast<size_t>(position)] = mask_id;
  return q;
}

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }
double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : sum(v) / static_cast<double>(v.size());
}

}  // namespace atlas::bias
