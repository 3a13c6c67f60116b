// Input checks and output details a reader relies on: non-finite attention is an error that names
// the layer and head; PNGs record their resolution; the flow diagram draws at most --top-links
// links per query.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <regex>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/render/attention_data.hpp"
#include "atlas/render/visualize.hpp"
#include "render/figures.hpp"
#include "render_fixtures.hpp"
#include "test_support.hpp"

using namespace atlas;
using namespace atlas::render;
namespace fs = std::filesystem;

namespace {

VisualizeOptions options(const std::string& kind, const fs::path& in, const fs::path& out) {
  VisualizeOptions o;
  o.kind = kind;
  o.inputs = {in};
  o.output = out;
  o.dpi = 100;
  return o;
}

std::string error_of(const VisualizeOptions& o) {
  try {
    visualize(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

uint32_t be32(const std::string& b, size_t at) {
  return (uint32_t(uint8_t(b[at])) << 24) | (uint32_t(uint8_t(b[at + 1])) << 16) | (uint32_t(uint8_t(b[at + 2])) << 8) |
         uint32_t(uint8_t(b[at + 3]));
}

}  // namespace

TEST_CASE("NaN or Inf in the attention is an error naming file, layer and head, and writes nothing") {
  auto dir = test::scratch_dir("render_nan");
  test::FixtureSpec spec;
  spec.poisoned = {{1, 2, 4, 1}};
  test::write_fixture(dir / "nan.npz", spec);
  auto o = options("heatmap", dir / "nan.npz", dir / "nan.png");
  o.layer = "0";  // the bad head is not even drawn: the whole file is refused
  const std::string msg = error_of(o);
  CHECK(msg.find("nan.npz") != std::string::npos);
  CHECK(msg.find("NaN at layer 1, head 2 (query 4, key 1)") != std::string::npos);
  CHECK(msg.find("1 of 6 heads") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "nan.png"));

  spec.poisoned = {{0, 1, 2, 2}, {1, 0, 0, 0}};
  spec.poison = -INFINITY;
  test::write_fixture(dir / "inf.npz", spec);
  o = options("flow", dir / "inf.npz", dir / "inf.png");
  const std::string msg2 = error_of(o);
  CHECK(msg2.find("-Inf at layer 0, head 1") != std::string::npos);
  CHECK(msg2.find("2 of 6 heads (L0H1, L1H0)") != std::string::npos);
  CHECK_THROWS_AS(load_attention((dir / "inf.npz").string()), FormatError);

  // A clean file passes.
  test::write_fixture(dir / "ok.npz");
  CHECK_NOTHROW(load_attention((dir / "ok.npz").string()));
}

TEST_CASE("PNGs carry a pHYs chunk with the --dpi, right after IHDR, with a valid CRC") {
  auto dir = test::scratch_dir("render_phys");
  test::write_fixture(dir / "in.npz");
  for (int dpi : {72, 150, 300}) {
    auto o = options("heatmap", dir / "in.npz", dir / "h.png");
    o.dpi = dpi;
    visualize(o);
    const std::string b = read_file(dir / "h.png");
    REQUIRE(b.size() > 60);
    const size_t at = 8 + 12 + be32(b, 8);  // after the IHDR chunk
    CHECK(be32(b, at) == 9);
    CHECK(b.compare(at + 4, 4, "pHYs") == 0);
    const uint32_t ppm = uint32_t(std::lround(dpi / 0.0254));
    CHECK(be32(b, at + 8) == ppm);
    CHECK(be32(b, at + 12) == ppm);
    CHECK(b[at + 16] == 1);  // unit: metre
    // Cairo reads the file back (it checks CRCs), so the chunk did not break the PNG.
    CHECK(read_png(dir / "h.png").width > 0);
  }
}

TEST_CASE("flow draws the head mean by default and at most --top-links links per query") {
  auto dir = test::scratch_dir("render_toplinks");
  test::write_fixture(dir / "in.npz");
  // Links are the only unfilled paths of a flow SVG (labels are glyphs, the legend a filled swatch).
  auto count_links = [&](VisualizeOptions o) {
    o.output = dir / "f.svg";
    visualize(o);
    const std::string svg = read_file(o.output);
    size_t n = 0;
    for (size_t p = 0; (p = svg.find("fill:none", p)) != std::string::npos; ++p) ++n;
    return n;
  };
  auto o = options("flow", dir / "in.npz", dir / "f.svg");
  o.threshold = 0;
  o.layer = "0";
  // 7 causal queries: query i has i + 1 keys, so top-3 keeps 1 + 2 + 3 * 5 = 18 links of one matrix.
  o.top_links = 3;
  CHECK(count_links(o) == 18);
  o.top_links = 1;
  CHECK(count_links(o) == 7);
  o.top_links = 0;  // all: 28 cells of the lower triangle
  CHECK(count_links(o) == 28);
  o.head = "all";  // three heads overlaid, each with its own top links
  o.top_links = 2;
  CHECK(count_links(o) == 3 * (1 + 2 * 6));
  o.head = "";
  o.top_links = -1;
  CHECK(error_of(o).find("--top-links") != std::string::npos);
}

TEST_CASE("--layer / --head use core's index lists: -1 is the last stored one; mean and all stay") {
  auto dir = test::scratch_dir("render_index_lists");
  test::FixtureSpec spec;
  spec.layers = 3;
  test::write_fixture(dir / "in.npz", spec);
  const AttentionData d = load_attention((dir / "in.npz").string());
  CHECK(parse_selection("-1", d.layers, "layer", d.source, "").positions == std::vector<int64_t>{2});
  CHECK(parse_selection("0,-1", d.layers, "layer", d.source, "").positions == std::vector<int64_t>{0, 2});
  CHECK(parse_selection("-2--1", d.heads, "head", d.source, "").positions == std::vector<int64_t>{1, 2});
  const Selection mean = parse_selection("mean", d.heads, "head", d.source, "");
  CHECK(mean.mean);
  CHECK(mean.positions == std::vector<int64_t>{0, 1, 2});
  const Selection all = parse_selection("", d.layers, "layer", d.source, "all");
  CHECK_FALSE(all.mean);
  CHECK(all.positions.size() == 3);
  CHECK_THROWS_WITH_AS(parse_selection("5", d.layers, "layer", d.source, ""),
                       doctest::Contains("--layer '5': layer 5 is not there"), InputError);
  CHECK_THROWS_WITH_AS(parse_selection("-4", d.heads, "head", d.source, "", "--head-b"),
                       doctest::Contains("--head-b '-4'"), InputError);
  // Batch file names carry the resolved model index.
  auto o = options("heatmap", dir / "in.npz", dir / "out/");
  o.layer = "-1";
  o.head = "-1";
  const auto written = visualize(o);
  REQUIRE(written.size() == 1);
  CHECK(written[0].filename() == "in_heatmap_L2_H2.png");
}

TEST_CASE("titles name what `atlas process` did and read an aggregated axis (-1) as aggregated") {
  Selection one;
  one.positions = {0};
  one.mean = true;
  CHECK(one.describe({-1}, "head") == "heads aggregated");
  CHECK(one.describe({3}, "head") == "head 3");  // the mean of one head is that head
  auto dir = test::scratch_dir("render_captions");
  test::FixtureSpec spec;
  spec.meta_extra = {{"process", nlohmann::json::array({{{"op", "rollout"}, {"residual", true}}})}};
  test::write_fixture(dir / "r.npz", spec);
  const AttentionData d = load_attention((dir / "r.npz").string());
  CHECK(model_label(d) == "fixture-model \u00B7 rollout");
}
