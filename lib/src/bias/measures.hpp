#pragma once
// The measures of an audit besides CrowS-Pairs (StereoSet, WinoBias, Winogender, suites): their
// inputs, read and checked before any model run, and their runs into the report.
#include <nlohmann/json.hpp>

#include "atlas/bias/audit.hpp"
#include "atlas/bias/scoring.hpp"
#include "atlas/bias/stereoset.hpp"
#include "atlas/bias/suite.hpp"
#include "atlas/bias/wino.hpp"

namespace atlas::bias {
nlohmann::json number_or_null(double v);
}

namespace atlas::bias::detail {

struct Measures {
  std::optional<StereoSetData> stereoset;
  std::optional<WinoBiasData> winobias;
  std::optional<WinogenderData> winogender;
  std::optional<Suite> suite;
};

/// {"path": absolute path, "sha256": …} of a dataset file, for the report's provenance.
nlohmann::json file_json(const std::filesystem::path& p);
/// The scorer's batch size and a progress callback labelled with `measure`.
RunSettings settings_for(const AuditOptions& o, const std::string& measure);

Measures read_measures(const AuditOptions& o, nlohmann::json& datasets);
void run_measures(extract::Scorer& scorer, const AuditOptions& o, const Measures& m, AuditResult& r);

}  // namespace atlas::bias::detail
