#pragma once
// Small delimited-table reader for the bias datasets (CrowS-Pairs CSV, Winogender TSVs, StereoSet
// TSV). The corpus reader (corpus/input.hpp) streams one text column; these need several named
// columns and the line of each row for error messages, so a few lines of RFC 4180 parsing live here
// (no CSV library is among the allowed dependencies).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace atlas::bias::detail {

struct Table {
  std::string source;                         // the file, for messages
  std::vector<std::string> header;            // empty without one
  std::vector<std::vector<std::string>> rows;
  std::vector<int64_t> lines;                 // 1-based line where each row starts
  /// The index of a header column; InputError "FILE: no column 'NAME' (columns: ...)".
  size_t column(const std::string& name) const;
};

/// `delimiter` ',' parses RFC 4180 quoting; '\t' splits on tabs with no quoting (TSV).
/// Blank lines are skipped. A row with fewer fields than `min_fields` (or than the header) is an
/// InputError naming the file and line.
Table read_table(const std::filesystem::path& path, char delimiter, bool header, size_t min_fields = 0);

}  // namespace atlas::bias::detail
