#include "gating.hpp"

#include <fmt/format.h>

#include <cstdio>

#include "atlas/core/error.hpp"
#include "atlas/core/expr.hpp"

namespace atlas::cli {

std::shared_ptr<std::vector<std::string>> add_fail_if(CLI::App* cmd) {
  auto exprs = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--fail-if", *exprs,
                  "Exit 3 when EXPR holds for the report, e.g. 'max(sink_mass) > 0.9' (repeatable; grammar: "
                  "docs/metrics.md, Gating)")
      ->type_name("EXPR")
      ->take_all()
      ->allow_extra_args(false)
      ->check([](const std::string& text) -> std::string {
        try {
          (void)Expression::parse(text);
        } catch (const Error& e) {
          // CLI11 puts "--fail-if: " in front already.
          std::string what = e.what();
          const std::string prefix = "--fail-if ";
          return what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what;
        }
        return "";
      });
  return exprs;
}

int apply_gates(const CLI::App& cmd, const std::vector<std::string>& expressions, const nlohmann::json& report) {
  std::string name;
  for (const CLI::App* a = &cmd; a != nullptr && a->get_parent() != nullptr; a = a->get_parent())
    name = a->get_name() + (name.empty() ? "" : " " + name);
  // Every expression is evaluated before any is reported: a field the report lacks is a usage
  // error, and then no threshold lines are printed.
  std::vector<GateResult> results;
  for (const auto& text : expressions) {
    try {
      results.push_back(Expression::parse(text).evaluate(report));
    } catch (const InputError& e) {
      fmt::print(stderr, "atlas: error: {}: {}\n", name, e.what());
      return 2;
    }
  }
  int rc = 0;
  for (const auto& r : results) {
    if (!r.crossed) continue;
    fmt::print(stderr, "atlas: threshold crossed: {}\n", r.explanation);
    rc = 3;
  }
  return rc;
}

}  // namespace atlas::cli
