// Colour maps equal the published tables; styles reject unknown keys naming file and key.
#include <doctest/doctest.h>

#include "atlas/core/error.hpp"
#include "atlas/render/colormap.hpp"
#include "atlas/render/style.hpp"
#include "atlas/render/visualize.hpp"
#include "test_support.hpp"

using namespace atlas;
using namespace atlas::render;

TEST_CASE("colour maps match matplotlib's published endpoints and index like matplotlib") {
  // viridis[0] = (0.267004, 0.004874, 0.329415), viridis[255] = (0.993248, 0.906157, 0.143936)
  const auto& v = Colormap::get("viridis");
  CHECK(int(v.entry(0)[0]) == 68);
  CHECK(int(v.entry(0)[2]) == 84);
  CHECK(int(v.entry(255)[0]) == 253);
  CHECK(int(v.entry(255)[1]) == 231);
  CHECK(int(v.entry(255)[2]) == 37);
  CHECK(Colormap::index_of(0.0) == 0);
  CHECK(Colormap::index_of(0.5) == 128);
  CHECK(Colormap::index_of(1.0) == 255);
  CHECK(Colormap::index_of(-3) == 0);
  // magma starts near black, cividis ends yellow; greys is white → black
  CHECK(int(Colormap::get("magma").entry(0)[0]) == 0);
  CHECK(int(Colormap::get("greys").entry(0)[0]) == 255);
  CHECK(int(Colormap::get("greys").entry(255)[0]) == 0);
  // diverging maps are near-white in the middle and symmetric in role
  const auto& d = Colormap::get("rdbu_r");
  CHECK(d.diverging());
  CHECK(int(d.entry(128)[0]) > 230);
  CHECK(int(d.entry(0)[2]) > int(d.entry(0)[0]));      // negative end blue
  CHECK(int(d.entry(255)[0]) > int(d.entry(255)[2]));  // positive end red
  CHECK_THROWS_AS(Colormap::get("jet"), ConfigError);
}

TEST_CASE("shipped styles load; unknown keys and bad values name the file and key") {
  for (const char* name : {"paper", "slides", "dark"}) {
    Style s = load_style(name);
    CHECK(s.name == name);
  }
  CHECK(load_style("dark").background.r < 0.2);
  CHECK_THROWS_WITH_AS(parse_style("title_size: 9\nfontsize: 3\n", "mine.yaml"),
                       doctest::Contains("style 'mine.yaml': unknown key 'fontsize'"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_style("background: white\n", "mine.yaml"),
                       doctest::Contains("key 'background'"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_style("colormap: rainbow\n", "mine.yaml"), doctest::Contains("unknown colour map"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_style("tick_size: -1\n", "mine.yaml"), doctest::Contains("'tick_size'"), ConfigError);
  CHECK_THROWS_AS(load_style("no-such-style"), ConfigError);
  Style s = parse_style("head_colors: ['#000000', '#ffffff80']\nwidth: 3.5\n", "x");
  CHECK(s.head_colors.size() == 2);
  CHECK(s.head_colors[1].a == doctest::Approx(128 / 255.0));
  CHECK(s.width == 3.5);
}

TEST_CASE("figure lengths: inches, cm, pixels at a dpi, points") {
  CHECK(parse_length_pt("6in", 300, "w") == doctest::Approx(432));
  CHECK(parse_length_pt("6", 300, "w") == doctest::Approx(432));
  CHECK(parse_length_pt("1800px", 300, "w") == doctest::Approx(432));
  CHECK(parse_length_pt("2.54cm", 300, "w") == doctest::Approx(72));
  CHECK(parse_length_pt("100pt", 300, "w") == doctest::Approx(100));
  CHECK_THROWS_AS(parse_length_pt("6 inches", 300, "w"), InputError);
  CHECK_THROWS_AS(parse_length_pt("-2in", 300, "w"), InputError);
}
