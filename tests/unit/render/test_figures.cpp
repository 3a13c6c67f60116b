// What a reader sees: sizes, colours at known cells, glyph coverage, vector formats, reproducibility.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/render/attention_data.hpp"
#include "atlas/render/colormap.hpp"
#include "atlas/render/style.hpp"
#include "atlas/render/visualize.hpp"
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

fs::path fixture(const fs::path& dir, const test::FixtureSpec& spec = {}) {
  fs::path p = dir / "fixture.npz";
  test::write_fixture(p, spec);
  return p;
}

}  // namespace

TEST_CASE("a heatmap PNG has the requested size for width/height and dpi") {
  auto dir = test::scratch_dir("render_size");
  auto in = fixture(dir);
  auto o = options("heatmap", in, dir / "a.png");
  o.width = "6in";
  o.height = "4in";
  o.dpi = 150;
  visualize(o);
  Image img = read_png(dir / "a.png");
  CHECK(img.width == 900);
  CHECK(img.height == 600);

  o.output = dir / "b.png";
  o.width = "1000px";
  o.height = "700px";
  o.dpi = 300;
  visualize(o);
  img = read_png(dir / "b.png");
  CHECK(img.width == 1000);
  CHECK(img.height == 700);
}

TEST_CASE("cell colours equal the colour map at the known values; masked cells are grey") {
  auto dir = test::scratch_dir("render_colours");
  auto in = fixture(dir);
  for (const char* cmap_name : {"viridis", "magma"}) {
    auto o = options("heatmap", in, dir / "h.png");
    o.layer = "1";
    o.head = "2";
    o.colormap = cmap_name;
    o.vmin = 0.0;
    o.vmax = 1.0;
    o.title = "x";
    // A magenta mask colour no antialiased text can produce marks where the matrix is.
    std::ofstream(dir / "magenta.yaml") << "masked: \"#ff00ff\"\nhatch: \"#ff00ff\"\n";
    o.style = (dir / "magenta.yaml").string();
    visualize(o);
    Image img = read_png(o.output);
    // Locate the matrix through its masked (grey) upper triangle: it spans columns 1..q-1 and rows
    // 0..q-2, so its bounding box gives the cell size and the matrix origin.
    const int64_t q = 7;
    const Color grey{1, 0, 1, 1};
    int minx = img.width, maxx = -1, miny = img.height, maxy = -1;
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x) {
        const uint8_t* p = img.pixel(x, y);
        if (p[0] == std::lround(grey.r * 255) && p[1] == std::lround(grey.g * 255) && p[2] == std::lround(grey.b * 255)) {
          minx = std::min(minx, x); maxx = std::max(maxx, x); miny = std::min(miny, y); maxy = std::max(maxy, y);
        }
      }
    REQUIRE(maxx > minx);
    const double cw = (maxx - minx + 1) / double(q - 1), ch = (maxy - miny + 1) / double(q - 1);
    CHECK(cw == doctest::Approx(ch).epsilon(0.05));  // square cells
    const double x0 = minx - cw, y0 = miny;
    const auto& cmap = Colormap::get(cmap_name);
    int exact = 0;
    for (int64_t i = 0; i < q; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        Color want = cmap.at(test::fixture_value(1, 2, i, j, q, true));
        const uint8_t* p = img.pixel(int(x0 + (j + 0.5) * cw), int(y0 + (i + 0.5) * ch));
        const bool same = std::abs(p[0] - std::lround(want.r * 255)) <= 1 && std::abs(p[1] - std::lround(want.g * 255)) <= 1 &&
                          std::abs(p[2] - std::lround(want.b * 255)) <= 1;
        if (!same) MESSAGE("cell " << i << "," << j << " got " << int(p[0]) << "," << int(p[1]) << "," << int(p[2]));
        exact += same;
      }
    CHECK(exact == 28);
    // a masked cell's centre is not a colour-map colour for 0 (it is drawn as masked, not as zero)
    const uint8_t* m = img.pixel(int(x0 + (q - 0.5) * cw), int(y0 + 0.5 * ch));
    Color zero = cmap.at(0.0);
    CHECK_FALSE((m[0] == std::lround(zero.r * 255) && m[1] == std::lround(zero.g * 255) && m[2] == std::lround(zero.b * 255)));
  }
}

TEST_CASE("CJK, Japanese, Arabic, Hindi and emoji labels have glyphs in the installed fonts") {
  for (const char* sample : {"你好世界", "こんにちは", "مرحبا بالعالم", "नमस्ते दुनिया", "😀🎉", "Ġthe ▁der ##s"})
    CHECK_MESSAGE(unknown_glyph_count(sample, "DejaVu Sans") == 0, sample);
  // The check can fail: a private-use code point has no glyph anywhere.
  CHECK(unknown_glyph_count("\xEE\x80\x80", "DejaVu Sans") > 0);
}

TEST_CASE("every kind renders to PNG, SVG, PDF and EPS; vector files rasterise to the expected size") {
  auto dir = test::scratch_dir("render_formats");
  auto in = fixture(dir);
  test::FixtureSpec other;
  other.tokens = {"<s>", "The", "\u0120c", "at", "\u0120sat", "\u0120on", "\u0120the", "\u0120mat"};
  other.labels = {"<s>", "The", " c", "at", " sat", " on", " the", " mat"};
  fs::path in2 = dir / "other.npz";
  test::write_fixture(in2, other);
  for (const auto& kind : figure_kinds()) {
    for (const char* ext : {"png", "svg", "pdf", "eps"}) {
      auto o = options(kind, in, dir / (kind + "." + ext));
      if (kind == "contrast") o.inputs.push_back(in2);
      o.width = "5in";
      o.height = "4in";
      auto written = visualize(o);
      REQUIRE(written.size() == 1);
      CHECK(fs::file_size(written[0]) > 500);
    }
    // 5in x 4in = 360 x 288 pt; at 72 dpi that is 360 x 288 px.
    const auto svg = dir / (kind + ".svg");
    const auto svg_png = dir / (kind + "-svg.png");
    REQUIRE(std::system(("rsvg-convert -d 72 -p 72 -o '" + svg_png.string() + "' '" + svg.string() + "'").c_str()) == 0);
    Image a = read_png(svg_png);
    CHECK(a.width == 360);
    CHECK(a.height == 288);
    const auto pdf = dir / (kind + ".pdf");
    REQUIRE(std::system(("pdftoppm -r 72 -png -singlefile '" + pdf.string() + "' '" + (dir / (kind + "-pdf")).string() + "'").c_str()) == 0);
    Image b = read_png(dir / (kind + "-pdf.png"));
    CHECK(b.width == 360);
    CHECK(b.height == 288);
  }
}

TEST_CASE("the same input gives the same bytes; PDFs carry title, creator and provenance") {
  auto dir = test::scratch_dir("render_repro");
  auto in = fixture(dir);
  for (const char* ext : {"png", "pdf", "svg", "eps"}) {
    auto o = options("heatmap", in, dir / (std::string("a.") + ext));
    o.command_line = "atlas visualize heatmap fixture.npz";
    visualize(o);
    o.output = dir / (std::string("b.") + ext);
    visualize(o);
    CHECK_MESSAGE(read_file(dir / (std::string("a.") + ext)) == read_file(dir / (std::string("b.") + ext)), ext);
  }
  const std::string pdf = read_file(dir / "a.pdf");
  CHECK(pdf.find("/Creator (atlas ") != std::string::npos);
  CHECK(pdf.find("0123abcd") != std::string::npos);  // checkpoint hash from meta
  CHECK(pdf.find("atlas visualize heatmap fixture.npz") != std::string::npos);
  CHECK(pdf.find("20260102030405") != std::string::npos);  // the input's date, not the clock
}

TEST_CASE("batches write one file per layer/head into a directory, in parallel") {
  auto dir = test::scratch_dir("render_batch");
  auto in = fixture(dir);
  auto o = options("heatmap", in, dir / "out/");
  o.all_layers = true;
  o.all_heads = true;
  o.jobs = 3;
  auto written = visualize(o);
  CHECK(written.size() == 6);
  for (const auto& p : written) CHECK(fs::is_regular_file(p));
  CHECK(fs::is_regular_file(dir / "out" / "fixture_heatmap_L1_H2.png"));
  // several figures but a file as output is an error, and nothing is written
  o.output = dir / "single.png";
  CHECK_THROWS_AS(visualize(o), InputError);
  CHECK_FALSE(fs::exists(dir / "single.png"));
}

TEST_CASE("bad input: missing arrays, absent layer/head, bad style, unwritable output") {
  auto dir = test::scratch_dir("render_errors");
  auto in = fixture(dir);
  test::FixtureSpec no_tokens;
  no_tokens.with_tokens = false;
  test::write_fixture(dir / "notokens.npz", no_tokens);
  {
    io::NpzWriter w(dir / "noatt.npz");
    w.add("tokens", io::NdArray::from_strings({1}, {"a"}));
    w.close();
  }
  auto o = options("heatmap", dir / "noatt.npz", dir / "x.png");
  CHECK_THROWS_WITH_AS(visualize(o), doctest::Contains("has no array 'attention'"), FormatError);
  o.inputs = {dir / "notokens.npz"};
  CHECK_THROWS_WITH_AS(visualize(o), doctest::Contains("has no array 'tokens'"), FormatError);
  o.inputs = {in};
  o.layer = "7";
  CHECK_THROWS_WITH_AS(visualize(o), doctest::Contains("--layer '7': layer 7 is not there"), InputError);
  o.layer = "";
  o.head = "9";
  CHECK_THROWS_WITH_AS(visualize(o), doctest::Contains("--head '9': head 9 is not there"), InputError);
  o.head = "";
  std::ofstream(dir / "bad.yaml") << "font: x\ncolour_map: viridis\n";
  o.style = (dir / "bad.yaml").string();
  CHECK_THROWS_WITH_AS(visualize(o), doctest::Contains("unknown key 'colour_map'"), ConfigError);
  o.style = "paper";
  o.colormap = "jet";
  CHECK_THROWS_WITH_AS(visualize(o), doctest::Contains("unknown colour map 'jet'"), ConfigError);
  o.colormap = "";
  o.output = dir / "no-such-dir" / "x.png";
  CHECK_THROWS_AS(visualize(o), InputError);
  o.output = dir / "x.bmp";
  CHECK_THROWS_WITH_AS(visualize(o), doctest::Contains("unknown figure format"), InputError);
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 4);  // no partial files
}

TEST_CASE("cell values keep their leading zero and use a real minus sign") {
  CHECK(format_cell_value(0.583) == "0.58");
  CHECK(format_cell_value(0.0) == "0.00");
  CHECK(format_cell_value(-0.001) == "0.00");  // rounds to zero: no "−0.00"
  CHECK(format_cell_value(-0.034) == "\u22120.03");
  CHECK(format_cell_value(1.845) == "1.84");
  CHECK(format_cell_value(3.03) == "3.03");
}

TEST_CASE("contrast --layer-b compares two layers of one file") {
  auto dir = test::scratch_dir("render_contrast_b");
  auto in = fixture(dir);
  auto o = options("contrast", in, dir / "same.png");
  o.inputs = {in, in};
  o.layer = "1";
  visualize(o);
  // Naming B's layer explicitly as A's own gives the very same figure ...
  o.output = dir / "explicit.png";
  o.layer_b = "1";
  visualize(o);
  CHECK(read_file(dir / "same.png") == read_file(dir / "explicit.png"));
  // ... and another layer a different one.
  o.output = dir / "other.png";
  o.layer_b = "0";
  visualize(o);
  CHECK(read_file(dir / "same.png") != read_file(dir / "other.png"));

  o.output = dir / "bad.png";
  o.layer_b = "9";
  CHECK_THROWS_AS(visualize(o), InputError);
  CHECK_FALSE(fs::exists(dir / "bad.png"));
  auto h = options("heatmap", in, dir / "h.png");
  h.head_b = "0";
  CHECK_THROWS_WITH_AS(visualize(h), doctest::Contains("--layer-b / --head-b apply to contrast only"), InputError);
}
