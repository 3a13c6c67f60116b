// `--fail-if` expressions: a tokenizer, a recursive-descent parser into a small tree, and an
// evaluator over an nlohmann::json report with scalar and per-record ("column") values.
// Hand-written: no library in our allowed set evaluates expressions (atlas/core/expr.hpp).
#include "atlas/core/expr.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <variant>

#include "atlas/core/error.hpp"

namespace atlas {

namespace {

constexpr size_t kMaxLength = 4096;   // a gate is one line; longer input is a mistake (or a fuzzer)
constexpr int kMaxDepth = 64;         // nesting: bounds the parser's and the evaluator's recursion
constexpr size_t kMaxListed = 60;     // fields named in an "unknown field" message

enum class Tok { Number, String, Name, LParen, RParen, LBracket, RBracket, Dot, Op, End };

struct Token {
  Tok kind = Tok::End;
  std::string text;   // operator spelling, name, string contents
  double number = 0;
  size_t pos = 0;     // byte offset in the expression
};

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::End: return "end of expression";
    case Tok::String: return fmt::format("string \"{}\"", t.text);
    case Tok::Number: return fmt::format("number {}", t.text);
    default: return fmt::format("'{}'", t.text);
  }
}

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// The tree.

enum class NodeKind { Number, String, Bool, Path, Func, Neg, Not, Arith, Compare, And, Or };

struct PathSegment {
  std::string key;     // empty: an index
  int64_t index = -1;
};

struct ExprNode {
  NodeKind kind;
  size_t begin = 0, end = 0;          // source span, for messages
  double number = 0;
  std::string str;                    // string literal, function name, operator
  bool boolean = false;
  std::vector<PathSegment> path;
  std::unique_ptr<ExprNode> lhs, rhs; // Func/Neg/Not: lhs only
};

namespace {

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) { lex(); }

  std::unique_ptr<ExprNode> parse() {
    ATLAS_CHECK(!(tokens_.size() == 1), InputError, "--fail-if '{}': the expression is empty", text_);
    auto root = parse_or();
    if (peek().kind != Tok::End) fail_expected("an operator ('and', 'or', '>', ...)");
    return root;
  }

 private:
  [[noreturn]] void fail_at(size_t pos, const std::string& what) const {
    ATLAS_FAIL(InputError, "--fail-if '{}': {} at column {}", text_, what, pos + 1);
  }
  [[noreturn]] void fail_expected(const std::string& what) const {
    fail_at(peek().pos, fmt::format("expected {}, got {}", what, describe(peek())));
  }

  void lex() {
    ATLAS_CHECK(text_.size() <= kMaxLength, InputError,
                "--fail-if: the expression is {} characters long; at most {} are accepted", text_.size(),
                kMaxLength);
    size_t i = 0;
    const size_t n = text_.size();
    while (i < n) {
      const char c = text_[i];
      if (std::isspace(static_cast<unsigned char>(c))) { ++i; continue; }
      Token t;
      t.pos = i;
      if (std::isdigit(static_cast<unsigned char>(c)) ||
          (c == '.' && i + 1 < n && std::isdigit(static_cast<unsigned char>(text_[i + 1])))) {
        size_t j = i;
        while (j < n && (std::isdigit(static_cast<unsigned char>(text_[j])) || text_[j] == '.')) ++j;
        if (j < n && (text_[j] == 'e' || text_[j] == 'E')) {
          size_t k = j + 1;
          if (k < n && (text_[k] == '+' || text_[k] == '-')) ++k;
          if (k < n && std::isdigit(static_cast<unsigned char>(text_[k]))) {
            j = k;
            while (j < n && std::isdigit(static_cast<unsigned char>(text_[j]))) ++j;
          }
        }
        t.kind = Tok::Number;
        t.text = text_.substr(i, j - i);
        const auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), t.number);
        if (r.ec != std::errc() || r.ptr != t.text.data() + t.text.size())
          fail_at(i, fmt::format("'{}' is not a number", t.text));
        if (j < n && is_name_start(text_[j])) fail_at(j, fmt::format("unexpected '{}' after number {}", text_[j], t.text));
        i = j;
      } else if (is_name_start(c)) {
        size_t j = i;
        // After a '.', a '-' between letters belongs to the name (`per_bias_type.race-color`): report
        // keys such as bias types hold hyphens. Subtraction there needs spaces (`a.b - c`).
        const bool segment = i > 0 && text_[i - 1] == '.';
        while (j < n && (is_name_char(text_[j]) ||
                         (segment && text_[j] == '-' && j + 1 < n && is_name_start(text_[j + 1]))))
          ++j;
        t.kind = Tok::Name;
        t.text = text_.substr(i, j - i);
        i = j;
      } else if (c == '"' || c == '\'') {
        const size_t close = text_.find(c, i + 1);
        if (close == std::string::npos) fail_at(i, "unterminated string");
        t.kind = Tok::String;
        t.text = text_.substr(i + 1, close - i - 1);
        i = close + 1;
      } else if (c == '(' || c == ')' || c == '[' || c == ']' || c == '.') {
        t.kind = c == '(' ? Tok::LParen : c == ')' ? Tok::RParen : c == '[' ? Tok::LBracket
               : c == ']' ? Tok::RBracket : Tok::Dot;
        t.text = std::string(1, c);
        ++i;
      } else {
        static const char* const kOps[] = {"<=", ">=", "==", "!=", "&&", "||", "<", ">", "+", "-", "*", "/", "!"};
        const char* found = nullptr;
        for (const char* op : kOps)
          if (text_.compare(i, std::char_traits<char>::length(op), op) == 0) { found = op; break; }
        if (found == nullptr) {
          if (c == '=') fail_at(i, "'=' is not an operator (use '==' to compare)");
          fail_at(i, fmt::format("unexpected character '{}'", std::isprint(static_cast<unsigned char>(c))
                                                                   ? std::string(1, c)
                                                                   : fmt::format("\\x{:02x}", static_cast<unsigned char>(c))));
        }
        t.kind = Tok::Op;
        t.text = found;
        // C spellings accepted as the words.
        if (t.text == "&&") t.text = "and";
        else if (t.text == "||") t.text = "or";
        else if (t.text == "!") t.text = "not";
        i += std::char_traits<char>::length(found);
      }
      tokens_.push_back(std::move(t));
    }
    Token end;
    end.pos = n;
    tokens_.push_back(end);
  }

  const Token& peek() const { return tokens_[pos_]; }
  bool is_word(const char* w) const {
    const Token& t = peek();
    return (t.kind == Tok::Name || t.kind == Tok::Op) && t.text == w;
  }
  size_t prev_end() const {
    const Token& t = tokens_[pos_ - 1];
    return t.kind == Tok::String ? text_.find(text_[t.pos], t.pos + 1) + 1 : t.pos + std::max<size_t>(1, t.text.size());
  }

  struct DepthGuard {
    int& depth;
    DepthGuard(int& d, const Parser& p) : depth(d) {
      if (++depth > kMaxDepth) p.fail_at(p.peek().pos, fmt::format("the expression nests deeper than {} levels", kMaxDepth));
    }
    ~DepthGuard() { --depth; }
  };

  std::unique_ptr<ExprNode> make(NodeKind kind, size_t begin) {
    auto n = std::make_unique<ExprNode>();
    n->kind = kind;
    n->begin = begin;
    return n;
  }
  std::unique_ptr<ExprNode> binary(NodeKind kind, std::string op, std::unique_ptr<ExprNode> l,
                                   std::unique_ptr<ExprNode> r) {
    auto n = make(kind, l->begin);
    n->str = std::move(op);
    n->end = r->end;
    n->lhs = std::move(l);
    n->rhs = std::move(r);
    return n;
  }

  std::unique_ptr<ExprNode> parse_or() {
    DepthGuard g(depth_, *this);
    auto l = parse_and();
    while (is_word("or")) {
      ++pos_;
      l = binary(NodeKind::Or, "or", std::move(l), parse_and());
    }
    return l;
  }
  std::unique_ptr<ExprNode> parse_and() {
    auto l = parse_not();
    while (is_word("and")) {
      ++pos_;
      l = binary(NodeKind::And, "and", std::move(l), parse_not());
    }
    return l;
  }
  std::unique_ptr<ExprNode> parse_not() {
    DepthGuard g(depth_, *this);
    if (is_word("not")) {
      const size_t begin = peek().pos;
      ++pos_;
      auto n = make(NodeKind::Not, begin);
      n->lhs = parse_not();
      n->end = n->lhs->end;
      return n;
    }
    return parse_compare();
  }
  std::unique_ptr<ExprNode> parse_compare() {
    auto l = parse_sum();
    const Token& t = peek();
    if (t.kind == Tok::Op && (t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">=" ||
                              t.text == "==" || t.text == "!=")) {
      const std::string op = t.text;
      ++pos_;
      l = binary(NodeKind::Compare, op, std::move(l), parse_sum());
      const Token& u = peek();
      if (u.kind == Tok::Op && (u.text == "<" || u.text == "<=" || u.text == ">" || u.text == ">=" ||
                                u.text == "==" || u.text == "!="))
        fail_at(u.pos, "comparisons do not chain (write 'a < b and b < c')");
    }
    return l;
  }
  std::unique_ptr<ExprNode> parse_sum() {
    auto l = parse_product();
    while (peek().kind == Tok::Op && (peek().text == "+" || peek().text == "-")) {
      const std::string op = peek().text;
      ++pos_;
      l = binary(NodeKind::Arith, op, std::move(l), parse_product());
    }
    return l;
  }
  std::unique_ptr<ExprNode> parse_product() {
    auto l = parse_unary();
    while (peek().kind == Tok::Op && (peek().text == "*" || peek().text == "/")) {
      const std::string op = peek().text;
      ++pos_;
      l = binary(NodeKind::Arith, op, std::move(l), parse_unary());
    }
    return l;
  }
  std::unique_ptr<ExprNode> parse_unary() {
    DepthGuard g(depth_, *this);
    if (peek().kind == Tok::Op && peek().text == "-") {
      const size_t begin = peek().pos;
      ++pos_;
      auto n = make(NodeKind::Neg, begin);
      n->lhs = parse_unary();
      n->end = n->lhs->end;
      return n;
    }
    return parse_primary();
  }
  std::unique_ptr<ExprNode> parse_primary() {
    const Token& t = peek();
    const size_t begin = t.pos;
    switch (t.kind) {
      case Tok::Number: {
        auto n = make(NodeKind::Number, begin);
        n->number = t.number;
        ++pos_;
        n->end = prev_end();
        return n;
      }
      case Tok::String: {
        auto n = make(NodeKind::String, begin);
        n->str = t.text;
        ++pos_;
        n->end = prev_end();
        return n;
      }
      case Tok::LParen: {
        ++pos_;
        auto inner = parse_or();
        if (peek().kind != Tok::RParen) fail_expected("')'");
        ++pos_;
        inner->begin = begin;   // the span includes the parentheses, as the user wrote it
        inner->end = prev_end();
        return inner;
      }
      case Tok::Name: break;
      default: fail_expected("a number, a field name or '('");
    }
    const std::string name = t.text;
    if (name == "and" || name == "or" || name == "not") fail_expected("a number, a field name or '('");
    ++pos_;
    if (name == "true" || name == "false") {
      auto n = make(NodeKind::Bool, begin);
      n->boolean = name == "true";
      n->end = prev_end();
      return n;
    }
    if (peek().kind == Tok::LParen) {
      static const std::set<std::string> kFuncs = {"max", "min", "mean", "sum", "count", "any", "all", "abs"};
      if (kFuncs.count(name) == 0)
        fail_at(begin, fmt::format("unknown function '{}' (functions: max, min, mean, sum, count, any, all, abs)", name));
      ++pos_;
      auto n = make(NodeKind::Func, begin);
      n->str = name;
      n->lhs = parse_or();
      if (peek().kind != Tok::RParen) fail_expected(fmt::format("')' closing {}(", name));
      ++pos_;
      n->end = prev_end();
      return n;
    }
    auto n = make(NodeKind::Path, begin);
    n->path.push_back({name, -1});
    while (true) {
      if (peek().kind == Tok::Dot) {
        ++pos_;
        if (peek().kind != Tok::Name) fail_expected("a field name after '.'");
        n->path.push_back({peek().text, -1});
        ++pos_;
      } else if (peek().kind == Tok::LBracket) {
        ++pos_;
        const Token& idx = peek();
        if (idx.kind != Tok::Number || idx.number < 0 || idx.number != std::floor(idx.number) || idx.number > 1e9)
          fail_expected("an index (0, 1, ...) inside '[ ]'");
        n->path.push_back({"", static_cast<int64_t>(idx.number)});
        ++pos_;
        if (peek().kind != Tok::RBracket) fail_expected("']'");
        ++pos_;
      } else {
        break;
      }
    }
    n->end = prev_end();
    return n;
  }

  const std::string& text_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Values and evaluation.

/// The records of an array a column was taken from: its path and a label per record.
struct Records {
  std::string path;                  // "heads"
  std::string noun;                  // "heads" (for "3 of 64 heads")
  std::vector<std::string> labels;   // "layer 3 head 1"
};

enum class VType { Number, Bool, String };

struct Value {
  VType type = VType::Number;
  bool column = false;
  double num = 0;                     // scalar number / bool (0, 1); NaN for null
  std::string str;                    // scalar string
  std::vector<double> values;         // column (NaN: null)
  std::shared_ptr<const Records> records;
  std::string where;                  // scalar from max()/min(): the record it came from
  std::string explain;                // booleans: why they have their value
};

const char* type_name(const Value& v) {
  if (v.column) return v.type == VType::Bool ? "a column of booleans" : "a column of numbers";
  return v.type == VType::Number ? "a number" : v.type == VType::Bool ? "a boolean" : "a string";
}

std::string num_text(double v) {
  if (std::isnan(v)) return "null";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{:.4g}", v);
}

std::string record_label(const nlohmann::json& rec, const std::string& array_path, size_t i) {
  if (rec.is_object()) {
    auto num = [&](const char* k) -> const nlohmann::json* {
      auto it = rec.find(k);
      return it != rec.end() && it->is_number() ? &*it : nullptr;
    };
    const auto* layer = num("layer");
    const auto* head = num("head");
    if (layer && head) return fmt::format("layer {} head {}", layer->dump(), head->dump());
    if (layer) return fmt::format("layer {}", layer->dump());
    for (const char* k : {"name", "id", "category", "language", "label", "metric"}) {
      auto it = rec.find(k);
      if (it != rec.end() && it->is_string()) return it->get<std::string>();
    }
    if (head) return fmt::format("head {}", head->dump());
  }
  return fmt::format("{}[{}]", array_path, i);
}

bool is_record_array(const nlohmann::json& j) {
  return j.is_array() && !j.empty() && std::all_of(j.begin(), j.end(), [](const auto& e) { return e.is_object(); });
}

// Field listing, for report_fields() and the "unknown field" message.
void list_fields(const nlohmann::json& j, const std::string& prefix, int depth, std::vector<std::string>& out) {
  if (depth > 6) return;
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string p = prefix.empty() ? it.key() : prefix + "." + it.key();
      const auto& v = it.value();
      if (v.is_number() || v.is_boolean() || v.is_string() || v.is_null()) {
        out.push_back(p);
      } else if (v.is_object()) {
        list_fields(v, p, depth + 1, out);
      } else if (is_record_array(v)) {
        std::vector<std::string> keys;   // union of scalar keys, in first-seen order
        std::set<std::string> seen;
        for (const auto& rec : v)
          for (auto r = rec.begin(); r != rec.end(); ++r)
            if ((r.value().is_number() || r.value().is_boolean() || r.value().is_null()) && seen.insert(r.key()).second)
              keys.push_back(r.key());
        for (const auto& k : keys) out.push_back(p + "." + k);
      } else if (v.is_array() && !v.empty() &&
                 std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_number() || e.is_null(); })) {
        out.push_back(p);
      }
    }
  }
}

// Record arrays (object members, up to a few levels down) whose records have key `name`.
void find_record_arrays(const nlohmann::json& j, const std::string& prefix, const std::string& name, int depth,
                        std::vector<std::string>& out) {
  if (depth > 4 || !j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string p = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (is_record_array(it.value())) {
      if (std::any_of(it.value().begin(), it.value().end(), [&](const auto& r) { return r.contains(name); }))
        out.push_back(p);
    } else if (it.value().is_object()) {
      find_record_arrays(it.value(), p, name, depth + 1, out);
    }
  }
}

class Evaluator {
 public:
  Evaluator(const std::string& text, const nlohmann::json& report) : text_(text), report_(report) {}

  Value eval(const ExprNode& n, int depth = 0) {
    if (depth > 4 * kMaxDepth) fail(n, "the expression nests too deeply");
    switch (n.kind) {
      case NodeKind::Number: { Value v; v.num = n.number; return v; }
      case NodeKind::String: { Value v; v.type = VType::String; v.str = n.str; return v; }
      case NodeKind::Bool: {
        Value v;
        v.type = VType::Bool;
        v.num = n.boolean ? 1 : 0;
        v.explain = n.boolean ? "true" : "false";
        return v;
      }
      case NodeKind::Path: return resolve(n);
      case NodeKind::Neg: {
        Value v = eval(*n.lhs, depth + 1);
        need_number(*n.lhs, v, "'-'");
        if (v.column) for (double& x : v.values) x = -x;
        else v.num = -v.num;
        v.where.clear();
        return v;
      }
      case NodeKind::Not: {
        Value v = eval(*n.lhs, depth + 1);
        need_bool(*n.lhs, v, "'not'");
        if (v.column) {
          for (double& x : v.values) x = x != 0 ? 0 : 1;
        } else {
          v.num = v.num != 0 ? 0 : 1;
          v.explain = "not (" + v.explain + ")";
        }
        return v;
      }
      case NodeKind::Arith: return arith(n, eval(*n.lhs, depth + 1), eval(*n.rhs, depth + 1));
      case NodeKind::Compare: return compare(n, eval(*n.lhs, depth + 1), eval(*n.rhs, depth + 1));
      case NodeKind::And:
      case NodeKind::Or: return logic(n, eval(*n.lhs, depth + 1), eval(*n.rhs, depth + 1));
      case NodeKind::Func: return func(n, eval(*n.lhs, depth + 1));
    }
    fail(n, "internal: unknown node");
  }

  std::string src(const ExprNode& n) const { return text_.substr(n.begin, n.end - n.begin); }

  /// Why a boolean column is true: "sink_mass > 0.9 for 2 of 64 heads: layer 3 head 1 (0.93), ...".
  std::string column_explain(const ExprNode& n, const Value& v, const Value* shown) const {
    std::vector<std::string> items;
    size_t count = 0;
    for (size_t i = 0; i < v.values.size(); ++i) {
      if (v.values[i] == 0 || std::isnan(v.values[i])) continue;
      ++count;
      if (items.size() < 4) {
        std::string s = v.records->labels[i];
        if (shown != nullptr) s += " (" + num_text(shown->values[i]) + ")";
        items.push_back(s);
      }
    }
    std::string out = fmt::format("{} for {} of {} {}", src(n), count, v.values.size(), v.records->noun);
    if (count > 0) out += ": " + fmt::format("{}", fmt::join(items, ", ")) + (count > items.size() ? ", ..." : "");
    return out;
  }

 private:
  [[noreturn]] void fail(const ExprNode& n, const std::string& what) const {
    ATLAS_FAIL(InputError, "--fail-if '{}': {} (at '{}', column {})", text_, what, src(n), n.begin + 1);
  }
  void need_number(const ExprNode& n, const Value& v, const std::string& op) const {
    if (v.type != VType::Number) fail(n, fmt::format("{} needs a number, got {}", op, type_name(v)));
  }
  void need_bool(const ExprNode& n, const Value& v, const std::string& op) const {
    if (v.type != VType::Bool)
      fail(n, fmt::format("{} needs a comparison or a boolean, got {}", op, type_name(v)));
  }

  // Column x column must come from the same records; returns the column's length (0: both scalar).
  size_t broadcast(const ExprNode& n, const Value& a, const Value& b) const {
    if (a.column && b.column) {
      if (a.records->path != b.records->path || a.values.size() != b.values.size())
        fail(n, fmt::format("cannot combine a column of '{}' with one of '{}' (aggregate one with max(), min(), ...)",
                            a.records->path, b.records->path));
      return a.values.size();
    }
    return a.column ? a.values.size() : b.column ? b.values.size() : 0;
  }

  template <class F>
  Value elementwise(const ExprNode& n, const Value& a, const Value& b, VType type, F f) const {
    Value out;
    out.type = type;
    if (!a.column && !b.column) {
      out.num = f(a.num, b.num);
      return out;
    }
    const size_t len = broadcast(n, a, b);
    out.column = true;
    out.records = a.column ? a.records : b.records;
    out.values.resize(len);
    for (size_t i = 0; i < len; ++i) out.values[i] = f(a.column ? a.values[i] : a.num, b.column ? b.values[i] : b.num);
    return out;
  }

  Value arith(const ExprNode& n, const Value& a, const Value& b) const {
    need_number(*n.lhs, a, fmt::format("'{}'", n.str));
    need_number(*n.rhs, b, fmt::format("'{}'", n.str));
    const char op = n.str[0];
    Value v = elementwise(n, a, b, VType::Number, [op](double x, double y) {
      switch (op) {
        case '+': return x + y;
        case '-': return x - y;
        case '*': return x * y;
        default: return y == 0 ? std::numeric_limits<double>::quiet_NaN() : x / y;
      }
    });
    return v;
  }

  Value compare(const ExprNode& n, const Value& a, const Value& b) const {
    const std::string& op = n.str;
    const bool equality = op == "==" || op == "!=";
    if (a.type != b.type || (!equality && a.type != VType::Number))
      fail(n, fmt::format("'{}' cannot compare {} with {}", op, type_name(a), type_name(b)));
    Value v;
    if (a.type == VType::String) {
      if (a.column || b.column) fail(n, "strings are compared only as single values");
      v.type = VType::Bool;
      v.num = ((a.str == b.str) == (op == "==")) ? 1 : 0;
      v.explain = fmt::format("{} = \"{}\" {} \"{}\"", src(*n.lhs), a.str, op, b.str);
      return v;
    }
    v = elementwise(n, a, b, VType::Bool, [&op](double x, double y) -> double {
      if (std::isnan(x) || std::isnan(y)) return op == "!=" ? 1 : 0;
      if (op == "<") return x < y;
      if (op == "<=") return x <= y;
      if (op == ">") return x > y;
      if (op == ">=") return x >= y;
      if (op == "==") return x == y;
      return x != y;
    });
    if (!v.column) {
      auto side = [&](const ExprNode& s, const Value& val) {
        if (s.kind == NodeKind::Number || s.kind == NodeKind::Bool) return src(s);
        return fmt::format("{} = {}", src(s), a.type == VType::Bool ? (val.num != 0 ? "true" : "false") : num_text(val.num));
      };
      v.explain = side(*n.lhs, a) + " " + op + " " + side(*n.rhs, b);
      const std::string& where = !a.where.empty() ? a.where : b.where;
      if (!where.empty()) v.explain += " (" + where + ")";
    } else {
      v.explain = column_explain(n, v, a.column ? &a : &b);
    }
    return v;
  }

  Value logic(const ExprNode& n, const Value& a, const Value& b) const {
    need_bool(*n.lhs, a, fmt::format("'{}'", n.str));
    need_bool(*n.rhs, b, fmt::format("'{}'", n.str));
    const bool is_and = n.kind == NodeKind::And;
    Value v = elementwise(n, a, b, VType::Bool, [is_and](double x, double y) -> double {
      return is_and ? (x != 0 && y != 0) : (x != 0 || y != 0);
    });
    if (!v.column) {
      if (is_and) v.explain = v.num != 0 ? a.explain + " and " + b.explain : (a.num == 0 ? a.explain : b.explain);
      else if (a.num != 0 && b.num != 0) v.explain = a.explain + " and " + b.explain;
      else v.explain = a.num != 0 ? a.explain : b.num != 0 ? b.explain : a.explain + " and " + b.explain;
    } else {
      v.explain = column_explain(n, v, nullptr);
    }
    return v;
  }

  Value func(const ExprNode& n, Value arg) const {
    const std::string& f = n.str;
    Value v;
    if (f == "abs") {
      need_number(*n.lhs, arg, "abs()");
      if (arg.column) for (double& x : arg.values) x = std::fabs(x);
      else arg.num = std::fabs(arg.num);
      arg.where.clear();
      return arg;
    }
    if (f == "any" || f == "all") {
      need_bool(*n.lhs, arg, f + "()");
      if (!arg.column) return arg;
      v.type = VType::Bool;
      size_t yes = 0;
      for (double x : arg.values) yes += (x != 0 && !std::isnan(x));
      v.num = f == "any" ? yes > 0 : yes == arg.values.size();
      v.explain = fmt::format("{}: {} of {} {}", src(n), yes, arg.values.size(), arg.records->noun);
      return v;
    }
    if (f == "count") {
      if (arg.type == VType::String) fail(n, "count() needs a column, got a string");
      double c = 0;
      if (!arg.column) c = arg.type == VType::Bool ? arg.num : 1;
      else for (double x : arg.values) c += arg.type == VType::Bool ? (x != 0 && !std::isnan(x)) : !std::isnan(x);
      v.num = c;
      return v;
    }
    // max, min, mean, sum
    need_number(*n.lhs, arg, f + "()");
    if (!arg.column) {
      arg.where.clear();
      return arg;
    }
    double acc = f == "max" ? -std::numeric_limits<double>::infinity()
                : f == "min" ? std::numeric_limits<double>::infinity() : 0;
    size_t used = 0, best = 0;
    for (size_t i = 0; i < arg.values.size(); ++i) {
      const double x = arg.values[i];
      if (std::isnan(x)) continue;
      if ((f == "max" && x > acc) || (f == "min" && x < acc)) { acc = x; best = i; }
      else if (f == "mean" || f == "sum") acc += x;
      ++used;
    }
    if (used == 0) acc = std::numeric_limits<double>::quiet_NaN();
    else if (f == "mean") acc /= double(used);
    v.num = acc;
    if (used > 0 && (f == "max" || f == "min")) v.where = arg.records->labels[best];
    return v;
  }

  // --- paths ---
  Value resolve(const ExprNode& n) {
    std::vector<PathSegment> path = n.path;
    if (report_.is_object() && !report_.contains(path.front().key)) {
      // A bare per-record name: `sink_mass` -> `heads.sink_mass`.
      std::vector<std::string> arrays;
      find_record_arrays(report_, "", path.front().key, 0, arrays);
      if (arrays.empty()) unknown(n, path.front().key);
      std::string chosen = arrays.front();
      if (arrays.size() > 1) {
        auto heads = std::find(arrays.begin(), arrays.end(), "heads");
        if (heads == arrays.end())
          fail(n, fmt::format("'{}' is a field of several arrays ({}); name one, e.g. {}.{}", path.front().key,
                              fmt::join(arrays, ", "), arrays.front(), path.front().key));
        chosen = *heads;
      }
      std::vector<PathSegment> prefix;
      size_t start = 0;
      while (start <= chosen.size()) {
        size_t dot = chosen.find('.', start);
        if (dot == std::string::npos) dot = chosen.size();
        prefix.push_back({chosen.substr(start, dot - start), -1});
        start = dot + 1;
      }
      path.insert(path.begin(), prefix.begin(), prefix.end());
    }

    // Walk: first as a single value, then (after an array of records) one value per record.
    const nlohmann::json* cur = &report_;
    std::vector<const nlohmann::json*> col;
    std::shared_ptr<Records> records;
    std::string walked;
    for (const PathSegment& seg : path) {
      const std::string step = seg.key.empty() ? fmt::format("[{}]", seg.index) : seg.key;
      const std::string here = walked.empty() ? step : seg.key.empty() ? walked + step : walked + "." + step;
      if (!records && seg.key.size() && is_record_array(*cur)) {
        // Entering the records of an array: `heads.sink_mass`.
        records = std::make_shared<Records>();
        records->path = walked;
        const size_t dot = walked.rfind('.');
        records->noun = dot == std::string::npos ? walked : walked.substr(dot + 1);
        for (size_t i = 0; i < cur->size(); ++i) {
          col.push_back(&(*cur)[i]);
          records->labels.push_back(record_label((*cur)[i], walked, i));
        }
      }
      if (records) {
        bool any = false;
        for (auto& p : col) {
          if (p == nullptr) continue;
          if (seg.key.empty()) p = p->is_array() && size_t(seg.index) < p->size() ? &(*p)[seg.index] : nullptr;
          else p = p->is_object() && p->contains(seg.key) ? &(*p)[seg.key] : nullptr;
          any = any || p != nullptr;
        }
        if (!any) unknown(n, here);
      } else if (seg.key.empty()) {
        if (!cur->is_array()) fail(n, fmt::format("'{}' is not an array", walked));
        if (size_t(seg.index) >= cur->size())
          fail(n, fmt::format("index {} is out of range: '{}' has {} entries", seg.index, walked, cur->size()));
        cur = &(*cur)[seg.index];
      } else {
        if (!cur->is_object() || !cur->contains(seg.key)) unknown(n, here);
        cur = &(*cur)[seg.key];
      }
      walked = here;
    }

    Value v;
    auto scalar_of = [&](const nlohmann::json* j, VType& type) -> double {
      if (j == nullptr || j->is_null()) return std::numeric_limits<double>::quiet_NaN();
      if (j->is_boolean()) { type = VType::Bool; return j->get<bool>() ? 1 : 0; }
      if (j->is_number()) return j->get<double>();
      fail(n, fmt::format("'{}' is {}, not a number or boolean", walked, j->type_name()));
    };
    if (records) {
      v.column = true;
      v.records = records;
      VType type = VType::Number;
      for (const auto* p : col) {
        VType t = VType::Number;
        if (p != nullptr && !p->is_null() && !p->is_number() && !p->is_boolean())
          fail(n, fmt::format("'{}' holds {} values, not numbers", walked, p->type_name()));
        v.values.push_back(scalar_of(p, t));
        if (p != nullptr && !p->is_null()) type = t;
      }
      v.type = type;
      return v;
    }
    if (cur->is_string()) {
      v.type = VType::String;
      v.str = cur->get<std::string>();
      return v;
    }
    if (cur->is_array()) {
      // A plain array of numbers is a column labelled by index.
      auto rec = std::make_shared<Records>();
      rec->path = walked;
      rec->noun = "entries";
      v.column = true;
      for (size_t i = 0; i < cur->size(); ++i) {
        VType t = VType::Number;
        if (!(*cur)[i].is_number() && !(*cur)[i].is_null())
          fail(n, fmt::format("'{}' is an array of {}, not of numbers", walked, (*cur)[i].type_name()));
        v.values.push_back(scalar_of(&(*cur)[i], t));
        rec->labels.push_back(fmt::format("{}[{}]", walked, i));
      }
      v.records = rec;
      return v;
    }
    if (cur->is_object()) fail(n, fmt::format("'{}' is an object; name one of its fields", walked));
    VType t = VType::Number;
    v.num = scalar_of(cur, t);
    v.type = t;
    if (t == VType::Bool) v.explain = fmt::format("{} = {}", walked, v.num != 0 ? "true" : "false");
    return v;
  }

  [[noreturn]] void unknown(const ExprNode& n, const std::string& field) const {
    std::vector<std::string> fields = report_fields(report_);
    std::string listed;
    for (size_t i = 0; i < fields.size() && i < kMaxListed; ++i) listed += (i ? ", " : "") + fields[i];
    if (fields.size() > kMaxListed) listed += fmt::format(", ... ({} more)", fields.size() - kMaxListed);
    if (fields.empty()) listed = "none";
    ATLAS_FAIL(InputError, "--fail-if '{}': unknown field '{}' (at column {}); the report has: {}", text_, field,
               n.begin + 1, listed);
  }

  const std::string& text_;
  const nlohmann::json& report_;
};

}  // namespace

Expression::Expression(std::string text, std::unique_ptr<ExprNode> root)
    : text_(std::move(text)), root_(std::move(root)) {}
Expression::Expression(Expression&&) noexcept = default;
Expression& Expression::operator=(Expression&&) noexcept = default;
Expression::~Expression() = default;

Expression Expression::parse(const std::string& text) {
  Parser p(text);
  auto root = p.parse();
  return Expression(text, std::move(root));
}

GateResult Expression::evaluate(const nlohmann::json& report) const {
  Evaluator ev(text_, report);
  Value v = ev.eval(*root_);
  if (v.type != VType::Bool)
    ATLAS_FAIL(InputError, "--fail-if '{}': the expression is {}, not a condition (compare it: '{} > 0.5')", text_,
               type_name(v), text_);
  GateResult r;
  r.expression = text_;
  if (v.column) {
    size_t yes = 0;
    for (double x : v.values) yes += (x != 0 && !std::isnan(x));
    r.crossed = yes > 0;
    r.explanation = ev.column_explain(*root_, v, nullptr);
    // A plain comparison shows the values of the records that cross it.
    if (root_->kind == NodeKind::Compare) r.explanation = v.explain;
  } else {
    r.crossed = v.num != 0;
    r.explanation = v.explain;
  }
  return r;
}

std::vector<std::string> report_fields(const nlohmann::json& report) {
  std::vector<std::string> out;
  list_fields(report, "", 0, out);
  return out;
}

std::vector<GateResult> evaluate_gates(const std::vector<std::string>& expressions, const nlohmann::json& report) {
  std::vector<GateResult> out;
  for (const auto& e : expressions) out.push_back(Expression::parse(e).evaluate(report));
  return out;
}

}  // namespace atlas
