// Fuzz target for the --fail-if grammar (atlas/core/expr.hpp): line 1 is the expression, the rest a
// JSON report to evaluate it on (a fixed heads report when the rest is not JSON).
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "atlas/core/expr.hpp"
#include "atlas/core/json.hpp"
#include "fuzz_support.hpp"
#include "fuzz_targets.hpp"

namespace atlas::fuzz {

int fuzz_expr(const uint8_t* data, size_t size) {
  static const nlohmann::json kReport = nlohmann::json::parse(R"({
    "model": "m", "documents": 2, "causal": true, "skipped": [],
    "bias": {"overall": 0.6, "categories": [{"name": "a", "score": 0.5}, {"name": "b", "score": null}]},
    "heads": [{"layer": 0, "head": 0, "sink_mass": 0.9, "entropy": 0.1},
              {"layer": 0, "head": 1, "sink_mass": 0.2, "entropy": null}],
    "profile": [0.5, 0.25]})");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  const std::string expression(text.substr(0, nl));
  nlohmann::json report = kReport;
  if (nl != std::string_view::npos) {
    try {   // JSON nested past the parser's limit is an atlas::Error: keep the fixed report then
      nlohmann::json j = parse_json(std::string(text.substr(nl + 1)), "report", /*allow_exceptions=*/false);
      if (!j.is_discarded()) report = std::move(j);
    } catch (const atlas::Error&) {
    }
  }
  return expect_atlas_errors([&] {
    const Expression e = Expression::parse(expression);
    (void)e.evaluate(report);
    (void)report_fields(report);
  });
}

}  // namespace atlas::fuzz
