#pragma once
/// `--fail-if 'EXPR'`: threshold expressions over the fields of a report (the JSON `--json` prints),
/// e.g. `max(sink_mass) > 0.9`, `crows_pairs.overall >= 0.6 and count(entropy < 0.1) > 2`.
/// The grammar is documented in docs/metrics.md ("Gating"):
///
///   expr    := or
///   or      := and ("or" and)*
///   and     := not ("and" not)*
///   not     := "not" not | compare
///   compare := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
///   sum     := product (("+" | "-") product)*
///   product := unary (("*" | "/") unary)*
///   unary   := "-" unary | primary
///   primary := NUMBER | STRING | "true" | "false" | "(" expr ")" | FUNC "(" expr ")" | PATH
///   FUNC    := max | min | mean | sum | count | any | all | abs
///   PATH    := NAME ("." SEGMENT | "[" INTEGER "]")*       NAME := [A-Za-z_][A-Za-z0-9_]*
///   SEGMENT := NAME ("-" NAME)*        (a key with hyphens after a dot: per_bias_type.race-color)
///
/// A path names a number, boolean or string of the report; a path that passes through an array of
/// records (`heads.sink_mass`) names a *column*, one value per record, and a bare name that is not a
/// top-level key is looked up in the records of the report's arrays (`sink_mass` = `heads.sink_mass`).
/// Arithmetic and comparisons apply element-wise to columns; the aggregates reduce a column to one
/// number and remember which record gave a max or min ("layer 3 head 1"); count() counts the true
/// values of a boolean column (or the records of a numeric one). A top-level boolean column is crossed
/// when any record satisfies it. JSON null (a metric that is undefined, NaN) is skipped by aggregates
/// and makes comparisons false.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace atlas {

struct ExprNode;

/// The outcome of one expression on one report.
struct GateResult {
  std::string expression;     ///< the text as given
  bool crossed = false;       ///< the expression is true
  std::string explanation;    ///< one line: "max(sink_mass) = 0.93 > 0.9 (layer 3 head 1)"
};

/// A parsed `--fail-if` expression. Parsing is hand-written recursive descent: none of the
/// libraries this project allows (docs: CLI11, fmt, nlohmann-json, PCRE2, yaml-cpp ...) evaluates
/// expressions, and the grammar is small (a dozen rules above).
class Expression {
 public:
  /// InputError naming the expression, the column and what was expected, e.g.
  /// "--fail-if 'max(sink_mass >': expected ')' at column 15, got end of expression".
  static Expression parse(const std::string& text);

  /// Evaluates against `report`. InputError when a field is unknown (listing the report's fields),
  /// or the types do not fit (a number where a comparison is needed, columns of different arrays).
  GateResult evaluate(const nlohmann::json& report) const;

  const std::string& text() const { return text_; }

  Expression(Expression&&) noexcept;
  Expression& operator=(Expression&&) noexcept;
  ~Expression();

 private:
  Expression(std::string text, std::unique_ptr<ExprNode> root);
  std::string text_;
  std::unique_ptr<ExprNode> root_;
};

/// The fields an expression can name in `report`, as dotted paths: scalars (`crows_pairs.overall`)
/// and per-record columns (`heads.sink_mass`), in report order.
std::vector<std::string> report_fields(const nlohmann::json& report);

/// Parses and evaluates each expression; the results in order (crossed or not).
std::vector<GateResult> evaluate_gates(const std::vector<std::string>& expressions, const nlohmann::json& report);

}  // namespace atlas
