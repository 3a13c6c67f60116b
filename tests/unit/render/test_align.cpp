// contrast's word alignment: equal lengths position by position, else difflib's matching blocks
// with the differing words of each replaced run paired in order.
#include <doctest/doctest.h>

#include "render/align.hpp"

using atlas::render::align_sequences;
using P = std::vector<std::pair<int64_t, int64_t>>;

TEST_CASE("equal word counts pair position by position, even where words differ") {
  CHECK(align_sequences({"<s>", "lily", "went", "home", "she", "slept"}, {"<s>", "tom", "went", "home", "he", "slept"}) ==
        P{{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}});
}

TEST_CASE("different word counts: equal words matched, differing ones paired inside each replaced run") {
  // difflib.SequenceMatcher(None, a, b).get_opcodes() for these lists:
  //   equal a[0:1] b[0:1]; replace a[1:2] b[1:3]; equal a[2:5] b[3:6]; replace a[5:6] b[6:7]; equal a[6:7] b[7:8]
  const std::vector<std::string> a = {"<s>", "lily", "went", "home", "and", "she", "slept"};
  const std::vector<std::string> b = {"<s>", "the", "boy", "went", "home", "and", "he", "slept"};
  CHECK(align_sequences(a, b) == P{{0, 0}, {1, 1}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}});
  // An insertion leaves the inserted word unpaired.
  CHECK(align_sequences({"a", "b", "c"}, {"a", "x", "b", "c"}) == P{{0, 0}, {1, 2}, {2, 3}});
  // A deletion at the end, and nothing in common at all.
  CHECK(align_sequences({"a", "b", "c"}, {"a", "b"}) == P{{0, 0}, {1, 1}});
  CHECK(align_sequences({"x", "y", "z"}, {"p", "q"}) == P{{0, 0}, {1, 1}});
  CHECK(align_sequences({}, {"p"}).empty());
}

TEST_CASE("the longest common run is matched first, as in difflib") {
  // difflib matches "b c d" (the longest run); left of it "a" replaces "d x" and is paired with "d".
  CHECK(align_sequences({"a", "b", "c", "d"}, {"d", "x", "b", "c", "d", "y"}) == P{{0, 0}, {1, 2}, {2, 3}, {3, 4}});
}
