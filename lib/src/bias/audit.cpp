#include "atlas/bias/audit.hpp"

#include <cmath>

#include "atlas/bias/crows.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/version.hpp"
#include "bias/measures.hpp"

namespace atlas::bias {
namespace fs = std::filesystem;
using nlohmann::json;
using detail::file_json;
using detail::settings_for;

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

namespace {

json stats_json(const CrowsStats& s) {
  return {{"metric", s.metric},
          {"stereotype", s.stereotype ? json(*s.stereotype) : json(nullptr)},
          {"anti_stereotype", s.anti_stereotype ? json(*s.anti_stereotype) : json(nullptr)},
          {"neutral", s.neutral_percent},
          {"n", s.n}};
}

}  // namespace

AuditResult run_audit(extract::Scorer& scorer, const AuditOptions& o) {
  const extract::ScorerInfo& info = scorer.info();
  AuditResult r;
  json& rep = r.report;
  rep["atlas_version"] = version();
  rep["git_revision"] = git_revision();
  rep["command_line"] = o.command_line;
  rep["model"] = {{"path", info.model_path},
                  {"model_type", info.model_type},
                  {"model_class", info.model_class},
                  {"checkpoint_sha256", info.checkpoint_sha256},
                  {"kind", info.causal ? "causal" : "masked"},
                  {"tokenizer", info.tokenizer_kind},
                  {"do_lower_case", info.do_lower_case}};
  rep["seed"] = o.seed;
  rep["limit"] = o.limit;
  rep["datasets"] = json::object();
  ATLAS_CHECK(!o.crows_pairs.empty() || !o.stereoset.empty() || !o.winobias.empty() || !o.winogender.empty() ||
                  !o.suite.empty(),
              InputError, "nothing to audit: give --crows-pairs, --stereoset, --winobias, --winogender or --suite");

  // Read and check every input before the first model run: a bad file fails fast.
  std::vector<CrowsPair> crows;
  CrowsMethod method = info.causal ? CrowsMethod::BiasBench : CrowsMethod::Nangia;
  if (!o.crows_pairs.empty()) {
    crows = read_crows_pairs(o.crows_pairs);
    if (o.limit > 0 && static_cast<int64_t>(crows.size()) > o.limit) crows.resize(static_cast<size_t>(o.limit));
    if (!o.crows_method.empty()) method = parse_crows_method(o.crows_method);
    ATLAS_CHECK(!(info.causal && method == CrowsMethod::Nangia), InputError,
                "--crows-method nangia scores masked language models (pseudo-log-likelihood); {} is causal: use "
                "--crows-method biasbench",
                info.model_class);
    rep["datasets"]["crows_pairs"] = file_json(o.crows_pairs);
  }
  detail::Measures measures = detail::read_measures(o, rep["datasets"]);

  if (!crows.empty()) {
    const CrowsResult c = run_crows(scorer, crows, method, settings_for(o, "crows-pairs"));
    json per = json::object();
    for (const auto& [type, s] : c.per_bias_type) per[type] = stats_json(s);
    rep["crows_pairs"] = {{"method", crows_method_name(method)},
                          {"score",
                           info.causal ? "geometric-mean token probability after BOS"
                           : method == CrowsMethod::Nangia
                               ? "sum of log-probabilities of the unmodified tokens (masked one at a time), rounded to 3"
                               : "sum of log-probabilities of the modified tokens (masked one at a time), rounded to 3"},
                          {"overall", stats_json(c.overall)},
                          {"per_bias_type", per}};
    json rows = json::array();
    for (size_t i = 0; i < crows.size(); ++i)
      rows.push_back({{"index", crows[i].index},
                      {"bias_type", crows[i].bias_type},
                      {"direction", crows[i].direction},
                      {"sent_more", crows[i].sent_more},
                      {"sent_less", crows[i].sent_less},
                      {"sent_more_score", c.scores[i].sent_more},
                      {"sent_less_score", c.scores[i].sent_less},
                      {"counted", c.scores[i].counted},
                      {"neutral", c.scores[i].neutral}});
    r.details["crows_pairs"] = rows;
  }
  detail::run_measures(scorer, o, measures, r);
  return r;
}

}  // namespace atlas::bias
