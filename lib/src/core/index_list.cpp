#include "atlas/core/index_list.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

#include "atlas/core/error.hpp"

namespace atlas {
namespace {

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string_view::npos ? std::string_view() : s.substr(b, e - b + 1);
}

int64_t parse_int(std::string_view s, std::string_view spec, const IndexAxis& axis) {
  std::string str(s);
  size_t pos = 0;
  int64_t v = 0;
  try {
    v = std::stoll(str, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  ATLAS_CHECK(!str.empty() && pos == str.size(), InputError,
              "{} '{}': '{}' is not a {} index (expected e.g. 'all', '3', '0,2-4', '-1')", axis.flag, spec, str,
              axis.what);
  return v;
}

// One item: {a, b} with a <= b, as given (negatives not yet resolved); a == b for a single index.
struct Item {
  int64_t a, b;
  bool range;
};

std::vector<Item> parse_items(std::string_view spec, const IndexAxis& axis) {
  std::vector<Item> items;
  std::string_view s = trim(spec);
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    std::string_view part = trim(s.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    ATLAS_CHECK(!part.empty(), InputError, "{} '{}': empty item (expected e.g. 'all', '3', '0,2-4', '-1')", axis.flag,
                spec);
    // A range "a-b"; a '-' right at the start of either end is a sign, not the range dash.
    size_t dash = part.find('-', 1);
    if (dash != std::string_view::npos) {
      items.push_back({parse_int(trim(part.substr(0, dash)), spec, axis),
                       parse_int(trim(part.substr(dash + 1)), spec, axis), true});
    } else {
      int64_t v = parse_int(part, spec, axis);
      items.push_back({v, v, false});
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return items;
}

bool is_all(std::string_view spec) {
  std::string_view s = trim(spec);
  return s.empty() || s == "all";
}

}  // namespace

std::vector<int64_t> parse_index_list(std::string_view spec, int64_t count, const IndexAxis& axis) {
  std::vector<int64_t> out;
  if (is_all(spec)) {
    for (int64_t i = 0; i < count; ++i) out.push_back(i);
    return out;
  }
  auto resolve = [&](int64_t i) {
    int64_t r = i < 0 ? count + i : i;
    ATLAS_CHECK(r >= 0 && r < count, InputError,
                "{} '{}': unknown {} {} ({} has {} {}s: 0-{}, or -{} to -1 from the end)", axis.flag, spec, axis.what,
                i, axis.owner, count, axis.what, count - 1, count);
    return r;
  };
  std::set<int64_t> picked;
  for (const Item& it : parse_items(spec, axis)) {
    int64_t a = resolve(it.a), b = resolve(it.b);
    ATLAS_CHECK(a <= b, InputError, "{} '{}': the range {}-{} is reversed", axis.flag, spec, it.a, it.b);
    for (int64_t i = a; i <= b; ++i) picked.insert(i);
  }
  return {picked.begin(), picked.end()};
}

std::vector<int64_t> select_indices(std::string_view spec, const std::vector<int64_t>& available,
                                    const IndexAxis& axis) {
  const int64_t n = static_cast<int64_t>(available.size());
  std::vector<int64_t> out;
  if (is_all(spec)) {
    for (int64_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  auto fail = [&](int64_t i) {
    ATLAS_FAIL(InputError, "{} '{}': {} {} is not there ({} holds {}s {}; -1 is the last)", axis.flag, spec,
               axis.what, i, axis.owner, axis.what, fmt::join(available, ","));
  };
  // A negative value counts from the end of `available`: turn it into the index it names.
  auto resolve = [&](int64_t i) {
    if (i >= 0) return i;
    if (n + i < 0) fail(i);
    return available[static_cast<size_t>(n + i)];
  };
  std::set<int64_t> picked;
  for (const Item& it : parse_items(spec, axis)) {
    int64_t a = resolve(it.a), b = resolve(it.b);
    ATLAS_CHECK(a <= b, InputError, "{} '{}': the range {}-{} is reversed", axis.flag, spec, it.a, it.b);
    bool any = false;
    for (int64_t p = 0; p < n; ++p)
      if (available[p] >= a && available[p] <= b) {
        picked.insert(p);
        any = true;
      }
    if (!any) {
      if (!it.range) fail(it.a);
      ATLAS_FAIL(InputError, "{} '{}': no stored {} in {}-{} ({} holds {}s {})", axis.flag, spec, axis.what, it.a,
                 it.b, axis.owner, axis.what, fmt::join(available, ","));
    }
  }
  return {picked.begin(), picked.end()};
}

}  // namespace atlas
