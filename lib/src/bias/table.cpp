#include "bias/table.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"

namespace atlas::bias::detail {

size_t Table::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  ATLAS_FAIL(InputError, "{}: no column '{}' (columns: {})", source, name, fmt::join(header, ", "));
}

namespace {

// Splits `text` into records of fields. CSV: RFC 4180 (quotes double inside quoted fields, newlines
// allowed inside them). TSV: no quoting.
void split(const std::string& text, char delim, std::vector<std::vector<std::string>>& rows,
           std::vector<int64_t>& lines, const std::string& source) {
  size_t i = 0;
  int64_t line = 1;
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;
  while (i < text.size()) {
    std::vector<std::string> fields;
    std::string field;
    const int64_t start_line = line;
    bool quoted = false, was_quoted = false;
    for (;;) {
      if (i >= text.size()) {
        ATLAS_CHECK(!quoted, InputError, "{}:{}: unterminated quoted field", source, start_line);
        fields.push_back(std::move(field));
        break;
      }
      const char c = text[i];
      if (quoted) {
        if (c == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
          } else {
            quoted = false;
            ++i;
          }
        } else {
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        continue;
      }
      if (delim == ',' && c == '"' && field.empty() && !was_quoted) {
        quoted = was_quoted = true;
        ++i;
        continue;
      }
      if (c == delim) {
        fields.push_back(std::move(field));
        field.clear();
        was_quoted = false;
        ++i;
        continue;
      }
      if (c == '\r' || c == '\n') {
        fields.push_back(std::move(field));
        if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
        ++i;
        ++line;
        break;
      }
      field += c;
      ++i;
    }
    const bool blank = fields.size() == 1 && fields[0].empty();
    if (!blank) {
      rows.push_back(std::move(fields));
      lines.push_back(start_line);
    }
  }
}

}  // namespace

Table read_table(const std::filesystem::path& path, char delimiter, bool header, size_t min_fields) {
  std::error_code ec;
  ATLAS_CHECK(std::filesystem::exists(path, ec), InputError, "dataset file '{}' does not exist", path.string());
  Table t;
  t.source = path.string();
  const std::string text = read_file(path);
  split(text, delimiter, t.rows, t.lines, t.source);
  if (header) {
    ATLAS_CHECK(!t.rows.empty(), InputError, "{}: the file is empty (expected a header line)", t.source);
    t.header = std::move(t.rows.front());
    t.rows.erase(t.rows.begin());
    t.lines.erase(t.lines.begin());
    for (auto& h : t.header) {   // "occupation(0)" style headers keep their name; trim spaces only
      while (!h.empty() && (h.back() == ' ')) h.pop_back();
    }
  }
  const size_t need = std::max(min_fields, t.header.size());
  for (size_t r = 0; r < t.rows.size(); ++r)
    ATLAS_CHECK(t.rows[r].size() >= need, InputError, "{}:{}: {} fields, expected {}", t.source, t.lines[r],
                t.rows[r].size(), need);
  return t;
}

}  // namespace atlas::bias::detail
