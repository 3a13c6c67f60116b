// --shard I/N.
#include <cctype>
#include <climits>

#include "atlas/core/error.hpp"
#include "atlas/corpus/input.hpp"

namespace atlas::corpus {

namespace {
// A non-negative decimal without sign, spaces or overflow; nullopt otherwise.
std::optional<int> parse_count(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}
}  // namespace

bool ShardSpec::contains(int64_t ordinal) const { return ordinal % count == index; }

ShardSpec parse_shard(const std::string& spec) {
  constexpr const char* kExpected = "expected I/N with 0 <= I < N, e.g. 0/4 for the first of four shards";
  auto slash = spec.find('/');
  ATLAS_CHECK(slash != std::string::npos, InputError, "invalid shard '{}': {}", spec, kExpected);
  auto index = parse_count(std::string_view(spec).substr(0, slash));
  auto count = parse_count(std::string_view(spec).substr(slash + 1));
  ATLAS_CHECK(index && count, InputError, "invalid shard '{}': {} (I and N are plain decimal integers)", spec,
              kExpected);
  ATLAS_CHECK(*count >= 1, InputError, "invalid shard '{}': {} (the shard count N must be at least 1)", spec,
              kExpected);
  ATLAS_CHECK(*index < *count, InputError, "invalid shard '{}': {} (with N = {}, I is 0 to {})", spec,
              kExpected, *count, *count - 1);
  return ShardSpec{*index, *count};
}

}  // namespace atlas::corpus
