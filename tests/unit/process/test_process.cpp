// Known answers for every `atlas process` operation on small hand-made documents.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "atlas/core/error.hpp"
#include "atlas/process/process.hpp"

using namespace atlas;
using namespace atlas::process;
using format::AttentionData;

namespace {

// [L, H, 3, 3] document over tokens a b c.
AttentionData doc(int64_t layers, int64_t heads, std::vector<float> values) {
  AttentionData d;
  d.source = "test.npz";
  d.num_layers = layers;
  d.num_heads = heads;
  d.q = d.k = 3;
  d.attention = std::move(values);
  REQUIRE(static_cast<int64_t>(d.attention.size()) == layers * heads * 9);
  for (int64_t l = 0; l < layers; ++l) d.layers.push_back(l);
  for (int64_t h = 0; h < heads; ++h) d.heads.push_back(h);
  d.tokens = {"▁a", "▁b", "▁c"};
  d.token_labels = {" a", " b", " c"};
  d.offsets = {{0, 1}, {1, 3}, {3, 5}};
  d.special = {0, 0, 0};
  d.input_ids = {5, 6, 7};
  d.text = "a b c";
  d.key_tokens = d.tokens;
  d.key_token_labels = d.token_labels;
  d.key_special = d.special;
  return d;
}

// Layer 0: two heads whose mean is A0 = [[1,0,0],[.5,.5,0],[.2,.3,.5]]; layer 1: both heads
// A1 = [[1,0,0],[1,0,0],[0,0,1]].
AttentionData two_layers() {
  return doc(2, 2,
             {1, 0, 0, 1, 0, 0, 0.4f, 0.6f, 0,      // l0 h0
              1, 0, 0, 0, 1, 0, 0, 0, 1,            // l0 h1
              1, 0, 0, 1, 0, 0, 0, 0, 1,            // l1 h0
              1, 0, 0, 1, 0, 0, 0, 0, 1});          // l1 h1
}

float at(const AttentionData& d, int64_t l, int64_t h, int64_t i, int64_t j) { return d.matrix(l, h)[i * d.k + j]; }

}  // namespace

TEST_CASE("max_flow: textbook graphs") {
  // CLRS figure 26.1: max flow 23.
  std::vector<std::tuple<int64_t, int64_t, double>> clrs{{0, 1, 16}, {0, 2, 13}, {1, 3, 12}, {2, 1, 4}, {2, 4, 14},
                                                         {3, 2, 9},  {3, 5, 20}, {4, 3, 7},  {4, 5, 4}};
  CHECK(max_flow(6, clrs, 0, 5) == doctest::Approx(23.0));
  // Needs a reverse edge: the first path s-a-b-t must be partly undone.
  std::vector<std::tuple<int64_t, int64_t, double>> cancel{{0, 1, 1}, {0, 2, 1}, {1, 2, 1}, {1, 3, 1}, {2, 3, 1}};
  CHECK(max_flow(4, cancel, 0, 3) == doctest::Approx(2.0));
  CHECK(max_flow(4, {{0, 1, 0.5}, {2, 3, 1}}, 0, 3) == doctest::Approx(0.0));   // unreachable
  CHECK_THROWS_AS(max_flow(2, {{0, 5, 1}}, 0, 1), InputError);
}

TEST_CASE("rollout: a 3-token example by hand") {
  Result r = rollout(two_layers(), true);
  REQUIRE(r.data.num_layers == 2);
  REQUIRE(r.data.num_heads == 1);
  CHECK(r.data.heads == std::vector<int64_t>{kAggregated});
  // Â0 = 0.5·A0 + 0.5·I = [[1,0,0],[.25,.75,0],[.1,.15,.75]]
  CHECK(at(r.data, 0, 0, 1, 0) == doctest::Approx(0.25));
  CHECK(at(r.data, 0, 0, 2, 2) == doctest::Approx(0.75));
  // Â1 = [[1,0,0],[.5,.5,0],[0,0,1]]; R1 = Â1·Â0: row 1 = .5·[1,0,0] + .5·[.25,.75,0]
  CHECK(at(r.data, 1, 0, 1, 0) == doctest::Approx(0.625));
  CHECK(at(r.data, 1, 0, 1, 1) == doctest::Approx(0.375));
  CHECK(at(r.data, 1, 0, 2, 0) == doctest::Approx(0.1));
  CHECK(at(r.data, 1, 0, 2, 1) == doctest::Approx(0.15));
  CHECK(at(r.data, 1, 0, 2, 2) == doctest::Approx(0.75));
  // Without the residual: A1·A0, row 1 = A0 row 0.
  Result raw = rollout(two_layers(), false);
  CHECK(at(raw.data, 1, 0, 1, 0) == doctest::Approx(1.0));
  CHECK(at(raw.data, 1, 0, 2, 2) == doctest::Approx(0.5));
  CHECK(r.step["op"] == "rollout");
  CHECK(raw.step["residual"] == false);
}

TEST_CASE("flow: the same example, max-flow by hand (differs from rollout)") {
  FlowOptions o;
  o.threads = 2;
  Result f = flow(two_layers(), o);
  REQUIRE(f.data.num_layers == 1);
  CHECK(f.data.layers == std::vector<int64_t>{1});
  // Output 1 of layer 1: 0.5 to (1,0) -> (0,0) and 0.5 to (1,1) of which 0.25 reaches token 0.
  CHECK(at(f.data, 0, 0, 1, 0) == doctest::Approx(0.75));
  CHECK(at(f.data, 0, 0, 1, 1) == doctest::Approx(0.5));
  CHECK(at(f.data, 0, 0, 1, 2) == doctest::Approx(0.0));
  CHECK(at(f.data, 0, 0, 2, 0) == doctest::Approx(0.1));
  CHECK(at(f.data, 0, 0, 2, 2) == doctest::Approx(0.75));
  CHECK(at(f.data, 0, 0, 0, 0) == doctest::Approx(1.0));
  // Layer 0 alone: the flow is the single edge, Â0.
  o.layers = "0";
  Result f0 = flow(two_layers(), o);
  CHECK(at(f0.data, 0, 0, 2, 1) == doctest::Approx(0.15));
  o.layers = "5";
  CHECK_THROWS_AS(flow(two_layers(), o), InputError);
}

TEST_CASE("aggregate: mean and max over heads, layers, both") {
  AttentionData d = two_layers();
  Result hm = aggregate(d, Over::Heads, How::Mean);
  CHECK(hm.data.num_layers == 2);
  CHECK(hm.data.num_heads == 1);
  CHECK(at(hm.data, 0, 0, 2, 1) == doctest::Approx(0.3));
  Result hx = aggregate(d, Over::Heads, How::Max);
  CHECK(at(hx.data, 0, 0, 2, 1) == doctest::Approx(0.6));
  CHECK(at(hx.data, 0, 0, 2, 2) == doctest::Approx(1.0));
  Result lm = aggregate(d, Over::Layers, How::Mean);
  CHECK(lm.data.num_layers == 1);
  CHECK(lm.data.num_heads == 2);
  CHECK(lm.data.layers == std::vector<int64_t>{kAggregated});
  CHECK(at(lm.data, 0, 1, 1, 1) == doctest::Approx(0.5));   // (1 + 0) / 2
  Result both = aggregate(d, Over::Both, How::Mean);
  CHECK(at(both.data, 0, 0, 2, 2) == doctest::Approx((0 + 1 + 1 + 1) / 4.0));
  CHECK_THROWS_AS(parse_over("rows"), InputError);
}

TEST_CASE("slice: layers, heads and a token range") {
  SliceOptions o;
  o.layers = "-1";
  o.heads = "1";
  o.tokens = "1:";
  Result s = slice(two_layers(), o);
  CHECK(s.data.layers == std::vector<int64_t>{1});
  CHECK(s.data.heads == std::vector<int64_t>{1});
  CHECK(s.data.q == 2);
  CHECK(s.data.tokens == std::vector<std::string>{"▁b", "▁c"});
  CHECK(s.data.input_ids == std::vector<int64_t>{6, 7});
  CHECK(at(s.data, 0, 0, 1, 1) == doctest::Approx(1.0));   // c -> c
  o.tokens = "2:1";
  CHECK_THROWS_AS(slice(two_layers(), o), InputError);
  o.tokens = "";
  o.heads = "4";
  CHECK_THROWS_WITH_AS(slice(two_layers(), o), doctest::Contains("--heads '4'"), InputError);
}

TEST_CASE("diff: A - B, and mismatched files name both and what differs") {
  AttentionData a = two_layers(), b = two_layers();
  b.source = "other.npz";
  b.attention[0] = 0.25f;
  Result d = diff(a, b, false);
  CHECK(d.data.attention[0] == doctest::Approx(0.75));
  CHECK(d.data.attention[1] == doctest::Approx(0.0));
  b.tokens[1] = "▁x";
  CHECK_THROWS_WITH_AS(diff(a, b, false), doctest::Contains("test.npz and other.npz have different tokens: position 1"),
                       InputError);
  AttentionData c = two_layers();
  c.source = "c.npz";
  c.layers = {0, 2};
  CHECK_THROWS_WITH_AS(diff(a, c, false), doctest::Contains("c.npz layers 0,2"), InputError);
}

TEST_CASE("diff --words: texts that tokenize differently but have the same words") {
  AttentionData a = doc(1, 1, {1, 0, 0, 0.5f, 0.5f, 0, 0.2f, 0.3f, 0.5f});
  a.tokens = {"▁Lu", "cy", "▁ran"};
  a.offsets = {{0, 2}, {2, 4}, {4, 8}};
  a.text = "Lucy ran";
  AttentionData b = doc(1, 1, {1, 0, 0, 0.5f, 0.5f, 0, 0.2f, 0.3f, 0.5f});
  b.tokens = {"▁Lucy", "▁r", "an"};
  b.offsets = {{0, 4}, {4, 6}, {6, 8}};
  b.text = "Lucy ran";
  CHECK_THROWS_AS(diff(a, b, false), InputError);
  Result d = diff(a, b, true);
  REQUIRE(d.data.q == 2);
  // A words: [[1,0],[.5,.5]]; B words: Lucy row [1,0], ran row mean of [.5,.5] and [.2,.8] = [.35,.65]
  CHECK(d.data.attention[2] == doctest::Approx(0.15));
  CHECK(d.data.attention[3] == doctest::Approx(-0.15));
}

TEST_CASE("write_result: meta.process is appended, top-k stored sparse and read back") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("atlas_process_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_result(rollout(two_layers(), true), dir / "r.npz", "atlas process rollout");
  AttentionData r = load((dir / "r.npz").string());
  REQUIRE(r.meta.has_value());
  REQUIRE(r.meta->process.size() == 1);
  CHECK(r.meta->process[0]["op"] == "rollout");
  CHECK(r.heads == std::vector<int64_t>{kAggregated});
  write_result(topk(r, 1), dir / "t.npz", "atlas process topk");
  AttentionData t = load((dir / "t.npz").string());
  REQUIRE(t.meta->process.size() == 2);
  CHECK(t.meta->process[1]["op"] == "topk");
  CHECK(t.topk == 1);
  CHECK(at(t, 1, 0, 1, 0) == doctest::Approx(0.625));
  CHECK(at(t, 1, 0, 1, 1) == doctest::Approx(0.0));   // dropped
  fs::remove_all(dir);
}
