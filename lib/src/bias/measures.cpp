#include "bias/measures.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "atlas/bias/stats.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "bias/suite_run.hpp"

namespace atlas::bias::detail {
namespace fs = std::filesystem;
using nlohmann::json;

json file_json(const fs::path& p) {
  return {{"path", fs::absolute(p).lexically_normal().string()}, {"sha256", sha256_file(p)}};
}

RunSettings settings_for(const AuditOptions& o, const std::string& measure) {
  RunSettings s;
  s.batch_size = o.batch_size;
  if (o.progress) s.progress = [p = o.progress, measure](int64_t d, int64_t t) { p(measure, d, t); };
  return s;
}

namespace {

template <class V>
void limit(V& v, int64_t n) {
  if (n > 0 && static_cast<int64_t>(v.size()) > n) v.resize(static_cast<size_t>(n));
}

json stereo_json(const StereoStats& s) {
  return {{"count", s.count}, {"groups", s.groups}, {"lms", number_or_null(s.lms)}, {"ss", number_or_null(s.ss)},
          {"icat", number_or_null(s.icat)}};
}

}  // namespace

Measures read_measures(const AuditOptions& o, json& datasets) {
  Measures m;
  if (!o.stereoset.empty()) {
    m.stereoset = read_stereoset(o.stereoset);
    limit(m.stereoset->examples, o.limit);
    datasets["stereoset"] = file_json(o.stereoset);
  }
  if (!o.winobias.empty()) {
    m.winobias = read_winobias(o.winobias);
    if (o.limit > 0) {
      // The first N of each file, so that pro and anti stay paired.
      std::map<std::string, int64_t> per_file;
      std::vector<WinoBiasItem> kept;
      for (auto& it : m.winobias->items)
        if (++per_file[it.file] <= o.limit) kept.push_back(std::move(it));
      m.winobias->items = std::move(kept);
    }
    json files = json::array();
    for (const auto& f : m.winobias->files) files.push_back(file_json(f));
    datasets["winobias"] = files;
  }
  if (!o.winogender.empty()) {
    m.winogender = read_winogender(o.winogender);
    if (o.limit > 0) {
      // The first N occupations, all their sentences.
      std::vector<std::string> occs;
      std::vector<WinogenderSentence> kept;
      for (auto& s : m.winogender->sentences) {
        if (std::find(occs.begin(), occs.end(), s.occupation) == occs.end()) occs.push_back(s.occupation);
        if (static_cast<int64_t>(occs.size()) <= o.limit) kept.push_back(s);
      }
      m.winogender->sentences = std::move(kept);
    }
    json files = json::array();
    for (const auto& f : m.winogender->files) files.push_back(file_json(f));
    datasets["winogender"] = files;
  }
  if (!o.suite.empty()) {
    m.suite = load_suite(o.suite);
    limit(m.suite->items, o.limit);
    datasets["suite"] = {{"path", fs::absolute(o.suite).lexically_normal().string()},
                         {"sha256", m.suite->sha256},
                         {"name", m.suite->name},
                         {"source", m.suite->source}};
  }
  return m;
}

void run_measures(extract::Scorer& scorer, const AuditOptions& o, const Measures& m, AuditResult& r) {
  json& rep = r.report;
  if (m.stereoset) {
    const auto& ex = m.stereoset->examples;
    const std::vector<StereoScores> sc = score_stereoset(scorer, ex, settings_for(o, "stereoset"));
    const bool per_target = m.stereoset->has_targets;
    json domains = json::object();
    std::set<std::string> names;
    for (const auto& e : ex) names.insert(e.bias_type);
    for (const auto& d : names) domains[d] = stereo_json(stereoset_stats(ex, sc, per_target, d));
    rep["stereoset"] = {{"format", m.stereoset->format},
                        {"per_target_averaging", per_target},
                        {"overall", stereo_json(stereoset_stats(ex, sc, per_target))},
                        {"per_domain", domains}};
    if (!per_target)
      rep["stereoset"]["note"] =
          "the processed TSV has no target terms: SS and LMS are pooled over each domain's examples, not averaged "
          "over target terms as the official evaluation does";
    json rows = json::array();
    for (size_t i = 0; i < ex.size(); ++i)
      rows.push_back({{"id", ex[i].id}, {"bias_type", ex[i].bias_type}, {"target", ex[i].target},
                      {"stereotype", ex[i].stereotype.sentence}, {"anti_stereotype", ex[i].anti_stereotype.sentence},
                      {"unrelated", ex[i].unrelated.sentence}, {"stereotype_score", sc[i].stereotype},
                      {"anti_stereotype_score", sc[i].anti_stereotype}, {"unrelated_score", sc[i].unrelated}});
    r.details["stereoset"] = rows;
  }
  if (m.winobias) {
    const auto& items = m.winobias->items;
    const std::vector<bool> ok = score_winobias(scorer, items, settings_for(o, "winobias"));
    auto js = [](const WinoBiasStats& s) {
      return json{{"pro", s.pro}, {"anti", s.anti}, {"gap", s.gap}, {"n_pro", s.n_pro}, {"n_anti", s.n_anti}};
    };
    rep["winobias"] = {{"overall", js(winobias_stats(items, ok))},
                       {"type1", js(winobias_stats(items, ok, 1))},
                       {"type2", js(winobias_stats(items, ok, 2))},
                       {"skipped", m.winobias->skipped},
                       {"score", scorer.info().causal ? "summed log-probability after BOS"
                                                      : "pseudo-log-likelihood (every token masked alone)"}};
    json rows = json::array();
    for (size_t i = 0; i < items.size(); ++i)
      if (!ok[i])
        rows.push_back({{"file", items[i].file}, {"line", items[i].line}, {"pro", items[i].pro},
                        {"with_referent", items[i].with_referent}, {"with_other", items[i].with_other}});
    r.details["winobias_wrong"] = rows;
  }
  if (m.winogender) {
    std::vector<std::string> texts;
    for (const auto& s : m.winogender->sentences) texts.push_back(s.text);
    const std::vector<double> sc = sentence_log_probs(scorer, texts, settings_for(o, "winogender"));
    const WinogenderResult w = winogender_result(*m.winogender, sc);
    json occ = json::object();
    json rows = json::array();
    for (const auto& [name, v] : w.occupation_score) {
      occ[name] = v;
      auto st = m.winogender->stats.find(name);
      rows.push_back({{"occupation", name}, {"score", v},
                      {"bls_pct_female", st == m.winogender->stats.end() ? json(nullptr) : json(st->second.bls_pct_female)}});
    }
    rep["winogender"] = {{"spearman_bls", number_or_null(w.spearman_bls)},
                         {"spearman_bergsma", number_or_null(w.spearman_bergsma)},
                         {"occupations", w.occupations},
                         {"sentence_pairs", w.sentence_pairs},
                         {"score", "mean over an occupation's sentences of log p(female) - log p(male)"}};
    r.details["winogender_occupations"] = rows;
  }
  if (m.suite) run_suite(scorer, o, *m.suite, r);
}

}  // namespace atlas::bias::detail
