// --fail-if expressions: grammar, evaluation over a report, explanations, and the error messages.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "atlas/core/error.hpp"
#include "atlas/core/expr.hpp"

using namespace atlas;
using nlohmann::json;

namespace {

json report() {
  return json::parse(R"({
    "model": "stories260K",
    "documents": 3,
    "causal": true,
    "crows_pairs": {"overall": 0.62, "categories": [{"name": "gender", "score": 0.7}, {"name": "race", "score": 0.55}],
                    "per_bias_type": {"race-color": {"metric": 0.4}}},
    "heads": [
      {"layer": 0, "head": 0, "sink_mass": 0.10, "entropy": 0.9, "self": 0.2},
      {"layer": 0, "head": 1, "sink_mass": 0.50, "entropy": 0.5, "self": null},
      {"layer": 3, "head": 1, "sink_mass": 0.93, "entropy": 0.05, "self": 0.1}
    ],
    "profile": [0.5, 0.25, 0.125]
  })");
}

GateResult eval(const std::string& e) { return Expression::parse(e).evaluate(report()); }

std::string parse_error(const std::string& e) {
  try {
    (void)Expression::parse(e);
  } catch (const InputError& err) {
    return err.what();
  }
  return "";
}
std::string eval_error(const std::string& e) {
  try {
    (void)eval(e);
  } catch (const InputError& err) {
    return err.what();
  }
  return "";
}

}  // namespace

TEST_CASE("aggregates over per-head fields, with the head that gave a max or min") {
  GateResult r = eval("max(sink_mass) > 0.9");
  CHECK(r.crossed);
  CHECK(r.explanation == "max(sink_mass) = 0.93 > 0.9 (layer 3 head 1)");
  r = eval("min(entropy) < 0.1");
  CHECK(r.crossed);
  CHECK(r.explanation == "min(entropy) = 0.05 < 0.1 (layer 3 head 1)");
  CHECK_FALSE(eval("max(sink_mass) > 0.95").crossed);
  CHECK(eval("mean(sink_mass) > 0.5").crossed);            // (0.1 + 0.5 + 0.93) / 3 = 0.51
  CHECK_FALSE(eval("mean(sink_mass) > 0.52").crossed);
  CHECK(eval("abs(sum(sink_mass) - 1.53) < 1e-9").crossed);
  CHECK(eval("count(sink_mass > 0.4) == 2").crossed);
  CHECK(eval("count(sink_mass) == 3").crossed);
  CHECK(eval("count(self) == 2").crossed);                  // null is not counted
  CHECK(eval("abs(mean(self) - 0.15) < 1e-9").crossed);    // ... nor averaged
  CHECK(eval("max(heads.sink_mass) > 0.9").crossed);        // qualified name, same column
  CHECK(eval("any(entropy < 0.1)").crossed);
  CHECK_FALSE(eval("all(entropy < 0.1)").crossed);
  CHECK(eval("max(profile) == 0.5").crossed);               // a plain array of numbers
  CHECK(eval("max(crows_pairs.categories.score) == 0.7").explanation.find("(gender)") != std::string::npos);
}

TEST_CASE("scalar fields, arithmetic, logic and precedence") {
  CHECK(eval("crows_pairs.overall > 0.6").crossed);
  CHECK(eval("crows_pairs.overall > 0.6").explanation == "crows_pairs.overall = 0.62 > 0.6");
  CHECK(eval("crows_pairs.categories[1].score < 0.6").crossed);
  CHECK(eval("abs(crows_pairs.overall - 0.5) >= 0.12").crossed);
  CHECK(eval("documents * 2 + 1 == 7").crossed);           // * before +
  CHECK(eval("-documents < 0").crossed);
  CHECK(eval("documents / 0 > 1").crossed == false);        // NaN compares false
  CHECK(eval("causal").crossed);
  CHECK(eval("causal == true").crossed);
  CHECK(eval("model == \"stories260K\"").crossed);
  CHECK(eval("model != 'gpt2'").crossed);
  CHECK(eval("not (documents > 5)").crossed);
  CHECK(eval("not documents > 5").crossed);                 // not binds looser than >
  CHECK(eval("documents > 5 or max(sink_mass) > 0.9").crossed);
  CHECK_FALSE(eval("documents > 5 and max(sink_mass) > 0.9").crossed);
  CHECK(eval("documents > 5 or documents < 4 and false").crossed == false);   // and before or
  CHECK(eval("true or documents < 4 and false").crossed);
  CHECK(eval("1e-3 < 0.01").crossed);
  CHECK(eval(".5 == 0.5").crossed);
  CHECK(eval("documents >= 3 && !(documents > 3) || false").crossed);
  // after a dot a hyphen joins the key; with spaces it subtracts
  CHECK(eval("crows_pairs.per_bias_type.race-color.metric < 0.5").crossed);
  CHECK(eval("crows_pairs.overall - 0.5 > 0.1").crossed);
  CHECK(eval("documents-1 == 2").crossed);
}

TEST_CASE("a bare column comparison is crossed by any record and names them") {
  GateResult r = eval("sink_mass > 0.4");
  CHECK(r.crossed);
  CHECK(r.explanation == "sink_mass > 0.4 for 2 of 3 heads: layer 0 head 1 (0.5), layer 3 head 1 (0.93)");
  CHECK_FALSE(eval("sink_mass > 0.99").crossed);
  r = eval("sink_mass > 0.4 and entropy < 0.1");
  CHECK(r.crossed);
  CHECK(r.explanation == "sink_mass > 0.4 and entropy < 0.1 for 1 of 3 heads: layer 3 head 1");
  CHECK(eval("sink_mass - entropy > 0.8").crossed);          // column arithmetic, element-wise
}

TEST_CASE("explanations of compound conditions") {
  GateResult r = eval("max(sink_mass) > 0.9 and documents == 3");
  CHECK(r.explanation == "max(sink_mass) = 0.93 > 0.9 (layer 3 head 1) and documents = 3 == 3");
  r = eval("documents > 5 or crows_pairs.overall > 0.6");
  CHECK(r.explanation == "crows_pairs.overall = 0.62 > 0.6");
  r = eval("not (documents > 5)");
  CHECK(r.explanation == "not (documents = 3 > 5)");
}

TEST_CASE("syntax errors name the expression, the column and what was expected") {
  CHECK(parse_error("max(sink_mass > 0.9") ==
        "--fail-if 'max(sink_mass > 0.9': expected ')' closing max(, got end of expression at column 20");
  CHECK(parse_error("") == "--fail-if '': the expression is empty");
  CHECK(parse_error("sink_mass = 0.9").find("'=' is not an operator (use '==' to compare) at column 11") !=
        std::string::npos);
  CHECK(parse_error("median(x) > 1").find("unknown function 'median'") != std::string::npos);
  CHECK(parse_error("x > > 1").find("expected a number, a field name or '(', got '>' at column 5") != std::string::npos);
  CHECK(parse_error("x > 1 2").find("expected an operator") != std::string::npos);
  CHECK(parse_error("1 < x < 2").find("comparisons do not chain") != std::string::npos);
  CHECK(parse_error("x > 'open").find("unterminated string") != std::string::npos);
  CHECK(parse_error("a[x] > 1").find("expected an index") != std::string::npos);
  CHECK(parse_error("x > 1.2.3").find("is not a number") != std::string::npos);
  CHECK(parse_error("x > 3abc").find("unexpected 'a' after number 3") != std::string::npos);
  CHECK(parse_error("x # 1").find("unexpected character '#'") != std::string::npos);
  CHECK(parse_error(std::string(200, '(') + "1" + std::string(200, ')')).find("nests deeper than") !=
        std::string::npos);
  CHECK(parse_error(std::string(5000, '1')).find("at most 4096") != std::string::npos);
}

TEST_CASE("unknown fields list what the report has; type errors say what was expected") {
  const std::string e = eval_error("max(sink) > 0.9");
  CHECK(e.find("unknown field 'sink'") != std::string::npos);
  CHECK(e.find("heads.sink_mass") != std::string::npos);
  CHECK(e.find("crows_pairs.overall") != std::string::npos);
  CHECK(eval_error("crows_pairs.nothing > 1").find("unknown field 'crows_pairs.nothing'") != std::string::npos);
  CHECK(eval_error("max(sink_mass)").find("not a condition") != std::string::npos);
  CHECK(eval_error("crows_pairs > 1").find("is an object") != std::string::npos);
  CHECK(eval_error("model > 1").find("cannot compare a string with a number") != std::string::npos);
  CHECK(eval_error("sink_mass > profile").find("cannot combine a column of 'heads' with one of 'profile'") !=
        std::string::npos);
  CHECK(eval_error("documents and true").find("'and' needs a comparison or a boolean, got a number") !=
        std::string::npos);
  CHECK(eval_error("crows_pairs.categories[5].score > 1").find("out of range") != std::string::npos);
}

TEST_CASE("report_fields lists scalars and per-record columns") {
  const auto f = report_fields(report());
  CHECK(std::find(f.begin(), f.end(), "crows_pairs.overall") != f.end());
  CHECK(std::find(f.begin(), f.end(), "crows_pairs.categories.score") != f.end());
  CHECK(std::find(f.begin(), f.end(), "heads.entropy") != f.end());
  CHECK(std::find(f.begin(), f.end(), "profile") != f.end());
  const auto r = evaluate_gates({"max(sink_mass) > 0.9", "documents > 10"}, report());
  REQUIRE(r.size() == 2);
  CHECK(r[0].crossed);
  CHECK_FALSE(r[1].crossed);
}
