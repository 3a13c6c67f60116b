#pragma once
// Runs a suite: attention measures per layer and head (word level, counterfactual pairs, bootstrap
// CIs, permutation p-values, Benjamini-Hochberg) and the log-probability gap of each pair.
#include "atlas/bias/audit.hpp"
#include "atlas/bias/suite.hpp"

namespace atlas::bias::detail {
void run_suite(extract::Scorer& scorer, const AuditOptions& o, const Suite& suite, AuditResult& r);
}
