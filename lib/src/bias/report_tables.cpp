// --per-pair and --csv writers, and the completion of summary-object paths in --fail-if expressions.
#include <fmt/format.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "atlas/bias/audit.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"

namespace atlas::bias {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string num(const json& v) {
  if (v.is_null()) return "";
  if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
  if (v.is_number_float()) return fmt::format("{}", v.get<double>());   // shortest round-trip
  if (v.is_number()) return v.dump();
  return csv_field(v.get<std::string>());
}

void write_text(const fs::path& path, const std::string& text) {
  write_atomically(path, [&](const fs::path& tmp) {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    f.close();
    ATLAS_CHECK(f, IoError, "cannot write '{}'", path.string());
  });
}

void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, json>>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else if (j.is_number() || j.is_boolean() || j.is_null()) {
    out.emplace_back(prefix, j);
  }
}

}  // namespace

void write_per_pair_csv(const AuditResult& result, const fs::path& path) {
  ATLAS_CHECK(result.details.contains("crows_pairs"), InputError, "--per-pair needs a CrowS-Pairs run (--crows-pairs)");
  std::string s = "index,bias_type,direction,sent_more_score,sent_less_score,counted\n";
  for (const json& r : result.details["crows_pairs"])
    s += fmt::format("{},{},{},{},{},{}\n", r["index"].get<int64_t>(), csv_field(r["bias_type"].get<std::string>()),
                     r["direction"].get<std::string>(), num(r["sent_more_score"]), num(r["sent_less_score"]),
                     r["counted"].get<bool>() ? 1 : 0);
  write_text(path, s);
}

void write_summary_csv(const AuditResult& result, const fs::path& path) {
  std::string s = "measure,field,value\n";
  for (const char* m : {"crows_pairs", "stereoset", "winobias", "winogender", "suite"}) {
    if (!result.report.contains(m)) continue;
    std::vector<std::pair<std::string, json>> rows;
    json copy = result.report[m];
    if (copy.is_object()) copy.erase("heads");   // per-head rows are in the JSON
    flatten(copy, "", rows);
    for (const auto& [k, v] : rows) s += fmt::format("{},{},{}\n", m, csv_field(k), num(v));
  }
  write_text(path, s);
}

std::string complete_metric_paths(const std::string& expression, const json& report) {
  // A dotted path not followed by '.', '[' or '(' that names an object with a "metric" member.
  static const std::regex path_re(R"([A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z_][A-Za-z0-9_\-]*)*)");
  std::string out;
  size_t last = 0;
  for (auto it = std::sregex_iterator(expression.begin(), expression.end(), path_re); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    const size_t end = static_cast<size_t>(m.position() + m.length());
    out += expression.substr(last, static_cast<size_t>(m.position()) - last) + m.str();
    last = end;
    if (end < expression.size() && (expression[end] == '.' || expression[end] == '[' || expression[end] == '('))
      continue;
    const json* node = &report;
    bool found = true;
    std::string part;
    std::stringstream ss(m.str());
    while (std::getline(ss, part, '.')) {
      if (!node->is_object() || !node->contains(part)) {
        found = false;
        break;
      }
      node = &(*node)[part];
    }
    if (found && node->is_object() && node->contains("metric")) out += ".metric";
  }
  return out + expression.substr(last);
}

}  // namespace atlas::bias
