// Word level in visualize: every kind accepts --words, contrast compares texts of different
// tokenisation word by word with each panel labelled by its own words, --focus takes a word.
#include <doctest/doctest.h>

#include "atlas/core/error.hpp"
#include "atlas/render/attention_data.hpp"
#include "atlas/render/style.hpp"
#include "atlas/render/visualize.hpp"
#include "render/figures.hpp"
#include "render_fixtures.hpp"
#include "test_support.hpp"

using namespace atlas;
using namespace atlas::render;
namespace fs = std::filesystem;

namespace {

using Labels = std::vector<std::string>;

fs::path write(const fs::path& dir, const std::string& name, const Labels& labels, nlohmann::json meta = {}) {
  auto spec = test::text_fixture(labels);
  if (!meta.is_null()) spec.meta_extra = meta;
  const fs::path p = dir / name;
  test::write_fixture(p, spec);
  return p;
}

// The minimal pair of the issue: 8 and 9 tokens, 6 words each.
const Labels kLily = {"<s>", "Lily", " went", " home", ".", " She", " slept", "."};
const Labels kTom = {"<s>", "T", "om", " went", " home", ".", " He", " slept", "."};

std::string error_of(const VisualizeOptions& o) {
  try {
    visualize(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct Contrast {
  AttentionData a, b;
  Style style = load_style("paper");
  VisualizeOptions o;
  ContrastPanels run() {
    FigureRequest req;
    req.data = &a;
    req.other = &b;
    req.style = &style;
    req.options = &o;
    req.layers = parse_selection("0", a.layers, "layer", a.source, "");
    req.heads = parse_selection("mean", a.heads, "head", a.source, "");
    return contrast_panels(req);
  }
};

}  // namespace

TEST_CASE("contrast of two texts of different tokenisation compares them word by word") {
  auto dir = test::scratch_dir("render_words_contrast");
  Contrast c;
  c.a = load_attention(write(dir, "lily.npz", kLily).string());
  c.b = load_attention(write(dir, "tom.npz", kTom).string());
  REQUIRE(c.a.q == 8);
  REQUIRE(c.b.q == 9);
  // Without --words: the token counts differ, so the texts are compared by words anyway.
  for (bool words : {false, true}) {
    if (words) {
      c.a = word_level_document(c.a);
      c.b = word_level_document(c.b);
      CHECK(is_word_level(c.a));
    }
    const ContrastPanels p = c.run();
    CHECK(p.labels_a == Labels{"<s>", "Lily", "went", "home.", "She", "slept."});
    CHECK(p.labels_b == Labels{"<s>", "Tom", "went", "home.", "He", "slept."});
    CHECK(p.labels_d == Labels{"<s>", "Lily/Tom", "went", "home.", "She/He", "slept."});
    CHECK(p.alignment.find("6 words each, compared position by position") != std::string::npos);
    CHECK(p.unpaired.empty());
    CHECK(p.a.rows == 6);
    // Rows still sum to 1 at word level (attention to a word is the sum over its pieces).
    for (int64_t i = 0; i < p.b.rows; ++i) {
      double s = 0;
      for (int64_t j = 0; j < p.b.cols; ++j) s += p.b.at(i, j);
      CHECK(s == doctest::Approx(1.0).epsilon(1e-5));
    }
  }
  // Through visualize(): a figure, with or without --words.
  VisualizeOptions o;
  o.kind = "contrast";
  o.inputs = {dir / "lily.npz", dir / "tom.npz"};
  o.output = dir / "pair.png";
  o.dpi = 72;
  CHECK(visualize(o).size() == 1);
  o.words = true;
  o.output = dir / "pair-words.png";
  CHECK(visualize(o).size() == 1);
}

TEST_CASE("contrast of texts with different word counts aligns words as difflib does") {
  auto dir = test::scratch_dir("render_words_align");
  Contrast c;
  c.a = load_attention(write(dir, "a.npz", {"<s>", "Lily", " went", " home", " and", " she", " slept", "."}).string());
  c.b = load_attention(
      write(dir, "b.npz", {"<s>", "The", " b", "oy", " went", " home", " and", " he", " slept", "."}).string());
  const ContrastPanels p = c.run();
  // <s> = <s>; "Lily" replaces "The boy" (paired with "The", "boy" left over); the rest matches
  // except she/he, paired inside their replaced run.
  CHECK(p.labels_a == Labels{"<s>", "Lily", "went", "home", "and", "she", "slept."});
  CHECK(p.labels_b == Labels{"<s>", "The", "went", "home", "and", "he", "slept."});
  CHECK(p.labels_d[1] == "Lily/The");
  CHECK(p.unpaired == Labels{"B boy"});
  CHECK(p.alignment.find("7 and 8 words aligned") != std::string::npos);
}

TEST_CASE("--focus and --target take a word: its tokens at token level, the word at word level") {
  auto dir = test::scratch_dir("render_words_focus");
  const Labels pieces = {"<s>", "Mom", " told", " L", "u", "cy", " that", " she", " could", " have", " a",
                         " cookie", " and", " she", " sm", "iled", "."};
  const auto in = write(dir, "lucy.npz", pieces);
  const AttentionData d = load_attention(in.string());
  CHECK(find_positions(d, "3", "focus") == std::vector<int64_t>{3});
  CHECK(find_positions(d, "told", "focus") == std::vector<int64_t>{2});      // a token's label
  CHECK(find_positions(d, "Lucy", "focus") == std::vector<int64_t>{3, 4, 5});  // a word of 3 tokens
  CHECK(find_positions(d, "she", "focus") == std::vector<int64_t>{7});
  CHECK(find_positions(d, "she#2", "focus") == std::vector<int64_t>{13});
  CHECK(find_positions(d, "smiled.", "target") == std::vector<int64_t>{14, 15, 16});
  const AttentionData w = word_level_document(d);
  CHECK(w.q == 13);
  CHECK(find_positions(w, "Lucy", "focus") == std::vector<int64_t>{3});
  CHECK(find_positions(w, "she#2", "focus") == std::vector<int64_t>{11});
  // A word that is not there: an error listing the words.
  std::string msg;
  try {
    find_positions(d, "Lily", "focus");
  } catch (const InputError& e) {
    msg = e.what();
  }
  CHECK(msg.find("Lily") != std::string::npos);
  CHECK(msg.find("Lucy") != std::string::npos);
  CHECK(msg.find("cookie") != std::string::npos);
  CHECK_THROWS_AS(find_positions(d, "she#3", "focus"), InputError);

  // Every kind renders at word level; flow and flowgraph with a word focus / target.
  for (const char* kind : {"heatmap", "grid", "flow", "flowgraph", "profile"}) {
    VisualizeOptions o;
    o.kind = kind;
    o.inputs = {in};
    o.output = dir / (std::string(kind) + ".png");
    o.dpi = 72;
    o.words = true;
    if (o.kind == "flow") o.focus = "she#2";
    if (o.kind == "flowgraph") o.target = "Lucy";
    CHECK_MESSAGE(visualize(o).size() == 1, kind);
  }
  VisualizeOptions o;
  o.kind = "flow";
  o.inputs = {in};
  o.output = dir / "bad.png";
  o.focus = "Lily";
  CHECK(error_of(o).find("Lucy") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "bad.png"));
}

TEST_CASE("a word-level file from `atlas process words` is drawn as it is; --words leaves it alone") {
  auto dir = test::scratch_dir("render_words_file");
  // Words as tokens, marked in meta.process the way `atlas process words` marks its output.
  const auto in = write(dir, "w.npz", {"<s>", "Lily", " went", " home."},
                        {{"process", nlohmann::json::array({{{"op", "words"}}})}});
  const AttentionData d = load_attention(in.string());
  CHECK(is_word_level(d));
  const AttentionData w = word_level_document(d);
  CHECK(w.q == d.q);
  CHECK(w.attention == d.attention);
}
