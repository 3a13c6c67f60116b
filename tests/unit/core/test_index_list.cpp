// The one --layer(s)/--head(s) parser: "all", "3", "0,2-4", "-1"; errors name flag, spec and range.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "atlas/core/error.hpp"
#include "atlas/core/index_list.hpp"

using namespace atlas;
using V = std::vector<int64_t>;

namespace {
const IndexAxis kLayers{"--layers", "layer", "the model"};

std::string error_of(const std::string& spec, int64_t count) {
  try {
    parse_index_list(spec, count, kLayers);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("parse_index_list: all, single, lists, ranges, negatives") {
  CHECK(parse_index_list("all", 3, kLayers) == V{0, 1, 2});
  CHECK(parse_index_list("", 2, kLayers) == V{0, 1});
  CHECK(parse_index_list("3", 5, kLayers) == V{3});
  CHECK(parse_index_list("0,2-4", 5, kLayers) == V{0, 2, 3, 4});
  CHECK(parse_index_list("-1", 5, kLayers) == V{4});
  CHECK(parse_index_list("-2,0", 5, kLayers) == V{0, 3});
  CHECK(parse_index_list("-3--1", 5, kLayers) == V{2, 3, 4});
  CHECK(parse_index_list("0--1", 3, kLayers) == V{0, 1, 2});
  CHECK(parse_index_list(" 4 , 1-2 ,1", 5, kLayers) == V{1, 2, 4});  // sorted, unique, spaces allowed
}

TEST_CASE("parse_index_list: errors name the flag, the spec and the valid range") {
  std::string e = error_of("0,7", 5);
  CHECK(e.find("--layers '0,7'") != std::string::npos);
  CHECK(e.find("unknown layer 7") != std::string::npos);
  CHECK(e.find("0-4") != std::string::npos);
  CHECK(error_of("-6", 5).find("unknown layer -6") != std::string::npos);
  CHECK(error_of("x", 5).find("'x' is not a layer index") != std::string::npos);
  CHECK(error_of("1,,2", 5).find("empty item") != std::string::npos);
  CHECK(error_of("3-1", 5).find("reversed") != std::string::npos);
  CHECK(error_of("1.5", 5).find("not a layer index") != std::string::npos);
}

TEST_CASE("select_indices: positions into the stored indices") {
  const IndexAxis heads{"--heads", "head", "'a.npz'"};
  const V stored{2, 3, 4};
  CHECK(select_indices("all", stored, heads) == V{0, 1, 2});
  CHECK(select_indices("3", stored, heads) == V{1});
  CHECK(select_indices("-1", stored, heads) == V{2});
  CHECK(select_indices("0-3", stored, heads) == V{0, 1});   // a range takes what is stored within it
  CHECK_THROWS_WITH_AS(select_indices("1", stored, heads), doctest::Contains("head 1 is not there ('a.npz' holds heads 2,3,4"),
                       InputError);
  CHECK_THROWS_AS(select_indices("5-9", stored, heads), InputError);
  CHECK_THROWS_AS(select_indices("-4", stored, heads), InputError);
}
