#pragma once
/// One bias audit: the measures asked for (CrowS-Pairs, StereoSet, WinoBias, Winogender, a suite of
/// templates), run with one loaded model, gathered into one report (the JSON of `--json`, schema in
/// docs/bias.md) with its provenance: model and checkpoint hash, dataset and suite files with their
/// sha256, seed and version.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "atlas/extract/scorer.hpp"

namespace atlas::bias {

struct AuditOptions {
  std::filesystem::path crows_pairs, stereoset, winobias, winogender, suite;   // empty: not run
  std::string crows_method;            // "nangia" | "biasbench" | "" (nangia for masked LMs, biasbench for causal)
  int64_t limit = 0;                   // >0: the first N examples of each dataset / suite items
  uint64_t seed = 0;
  int64_t bootstrap = 1000, permutations = 1000;
  int64_t batch_size = 64;
  std::string command_line;
  /// (measure, done, total) after each batch.
  std::function<void(const std::string&, int64_t, int64_t)> progress;
};

/// Everything the report writers need besides the JSON: per-example rows for --per-pair / --csv
/// and figures for --report.
struct AuditResult {
  nlohmann::json report;
  nlohmann::json details;   // per-example data (crows pairs, occupations, heads), not in --json
};

/// Runs the audit; InputError/ConfigError before any model run for a bad dataset or suite.
AuditResult run_audit(extract::Scorer& scorer, const AuditOptions& options);

/// --per-pair FILE.csv: index,bias_type,direction,sent_more_score,sent_less_score,counted.
void write_per_pair_csv(const AuditResult& result, const std::filesystem::path& path);
/// --csv FILE: one row per reported number: measure,group,field,value.
void write_summary_csv(const AuditResult& result, const std::filesystem::path& path);
/// --report FILE.pdf (multi-page, Cairo, the `visualize` styles).
void write_pdf_report(const AuditResult& result, const std::filesystem::path& path, const std::string& style = "paper");

/// Paths like "crows_pairs.overall" name a summary object in the report; a `--fail-if` expression that
/// names one means its "metric" field. Returns the expression with such paths completed.
std::string complete_metric_paths(const std::string& expression, const nlohmann::json& report);

}  // namespace atlas::bias
