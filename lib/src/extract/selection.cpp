#include <algorithm>
#include <cctype>

#include "atlas/core/error.hpp"
#include "atlas/core/index_list.hpp"
#include "atlas/extract/extract.hpp"

namespace atlas::extract {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

std::vector<int64_t> parse_index_list(const std::string& spec, int64_t count, const std::string& what) {
  // "decoder layer" selects through --layers too.
  const bool head = what.size() >= 4 && what.compare(what.size() - 4, 4, "head") == 0;
  return atlas::parse_index_list(spec, count, IndexAxis{head ? "--heads" : "--layers", what, "the model"});
}

std::vector<int64_t> parse_ids(const std::string& spec) {
  std::vector<int64_t> ids;
  size_t start = 0;
  std::string s = trim(spec);
  ATLAS_CHECK(!s.empty(), InputError, "--ids is empty (expected e.g. --ids 1,2,3)");
  while (true) {
    size_t comma = s.find(',', start);
    std::string part = trim(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    size_t pos = 0;
    int64_t v = -1;
    bool ok = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '-'; });
    if (ok) {
      try {
        v = std::stoll(part, &pos);
      } catch (const std::exception&) {
        ok = false;
      }
    }
    ATLAS_CHECK(ok && pos == part.size(), InputError, "bad --ids '{}': '{}' is not an integer id", spec, part);
    ids.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return ids;
}

}  // namespace atlas::extract
