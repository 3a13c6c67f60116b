#pragma once
// `--fail-if 'EXPR'` for every analyze command (atlas/core/expr.hpp, docs/metrics.md "Gating"):
// a syntax error is a usage error (exit 2) found while the flags are parsed; after the command has
// built its report, each crossed threshold is one line on stderr and the exit code is 3.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace atlas::cli {

/// Adds the repeatable `--fail-if EXPR` option to `cmd`; the expressions are parsed (not yet
/// evaluated) by the option's check, so `atlas analyze heads --fail-if 'max(' ...` exits 2 at once.
std::shared_ptr<std::vector<std::string>> add_fail_if(CLI::App* cmd);

/// Evaluates the gates on `report` (what `--json` prints). Prints "atlas: threshold crossed: WHY"
/// on stderr for each crossed one and returns 3 if any was; an expression that names a field the
/// report lacks prints "atlas: error: COMMAND: ..." (listing the fields) and returns 2; else 0.
int apply_gates(const CLI::App& cmd, const std::vector<std::string>& expressions, const nlohmann::json& report);

}  // namespace atlas::cli
