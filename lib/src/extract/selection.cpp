#include <algorithm>
#include <cctype>
#include <set>

#include "atlas/core/error.hpp"
#include "atlas/extract/extract.hpp"

namespace atlas::extract {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

int64_t parse_int(const std::string& s, const std::string& what, const std::string& spec) {
  size_t pos = 0;
  int64_t v = 0;
  try {
    v = std::stoll(s, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  ATLAS_CHECK(!s.empty() && pos == s.size(), InputError,
              "bad {} selection '{}': '{}' is not an integer (expected e.g. 'all', '3', '0,2-4', '-1')",
              what, spec, s);
  return v;
}

}  // namespace

std::vector<int64_t> parse_index_list(const std::string& spec, int64_t count, const std::string& what) {
  std::string s = trim(spec);
  std::vector<int64_t> out;
  if (s.empty() || s == "all") {
    for (int64_t i = 0; i < count; ++i) out.push_back(i);
    return out;
  }
  std::set<int64_t> picked;
  auto resolve = [&](int64_t i) {
    int64_t r = i < 0 ? count + i : i;
    ATLAS_CHECK(r >= 0 && r < count, InputError, "unknown {} {} (the model has {} {}s: 0-{})", what, i,
                count, what, count - 1);
    return r;
  };
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string part = trim(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    ATLAS_CHECK(!part.empty(), InputError, "bad {} selection '{}': empty item", what, spec);
    // A range "a-b"; a leading '-' is a negative index, not a range.
    size_t dash = part.find('-', 1);
    if (dash != std::string::npos) {
      int64_t a = resolve(parse_int(trim(part.substr(0, dash)), what, spec));
      int64_t b = resolve(parse_int(trim(part.substr(dash + 1)), what, spec));
      ATLAS_CHECK(a <= b, InputError, "bad {} selection '{}': range {} is reversed", what, spec, part);
      for (int64_t i = a; i <= b; ++i) picked.insert(i);
    } else {
      picked.insert(resolve(parse_int(part, what, spec)));
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return {picked.begin(), picked.end()};
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
