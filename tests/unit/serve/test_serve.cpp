// serve without a socket: the gender swap, the head metrics, and App's routing and errors (no model).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

#include "atlas/serve/server.hpp"
#include "serve/internal.hpp"

using namespace atlas;

TEST_CASE("gender_swap swaps whole words and keeps case") {
  const auto s = serve::gender_swap("He said she saw his dog and her cat. HE was a man; the men laughed.");
  CHECK(s.text == "She said he saw her dog and his cat. SHE was a woman; the women laughed.");
  CHECK(s.replacements == 7);
  CHECK(s.words.front() == "He\u2192She");
  // Inside other words nothing changes; apostrophes belong to the word.
  const auto t = serve::gender_swap("Hello there, the mentor's theme. Shelly's.");
  CHECK(t.text == "Hello there, the mentor's theme. Shelly's.");
  CHECK(t.replacements == 0);
  CHECK(serve::gender_swap("Her king and his queen.").text == "His queen and her king.");
  CHECK(serve::gender_swap("Ça, he — é").text == "Ça, she — é");
}

TEST_CASE("head_metrics are analyze heads' numbers on known matrices") {
  format::AttentionData d;
  d.num_layers = 1;
  d.num_heads = 2;
  d.q = d.k = 3;
  d.layers = {4};
  d.heads = {0, 1};
  d.tokens = d.token_labels = {"the", "dog", "."};
  d.special = {0, 0, 0};
  d.text = "the dog.";
  d.offsets = {{0, 3}, {4, 7}, {7, 8}};
  // head 0: identity; head 1: every row on the first token.
  d.attention = {1, 0, 0, 0, 1, 0, 0, 0, 1,
                 1, 0, 0, 1, 0, 0, 1, 0, 0};
  analyze::Lexicon lex;
  lex.language = "test";
  lex.function_words = {"the"};
  const auto m = serve::head_metrics(d, lex);
  CHECK(m["layers"] == nlohmann::json::array({4}));
  CHECK(m["heads"] == nlohmann::json::array({0, 1}));
  CHECK(m["metrics"].size() == size_t(analyze::kNumHeadMetrics));
  CHECK(m["entropy"][0][0].get<double>() == doctest::Approx(0));   // normalised, as analyze heads
  CHECK(m["self"][0][0].get<double>() == doctest::Approx(1));
  CHECK(m["sink_mass"][0][0].get<double>() == doctest::Approx(1.0 / 3));
  CHECK(m["prev_token"][0][0].get<double>() == doctest::Approx(0));
  CHECK(m["sink_mass"][0][1].get<double>() == doctest::Approx(1));
  CHECK(m["prev_token"][0][1].get<double>() == doctest::Approx(0.5));   // rows 1, 2: on token 0; only row 1's is i-1
  CHECK(m["sink"] == m["sink_mass"]);   // the page's older names
  CHECK(m["previous"] == m["prev_token"]);
  // Every metric equals HeadStats' (the code `atlas analyze heads` reports).
  analyze::HeadStats stats;
  stats.add(d, analyze::classify_tokens(d, lex));
  const auto& names = analyze::head_metric_names();
  for (int k = 0; k < analyze::kNumHeadMetrics; ++k)
    for (int64_t h = 0; h < 2; ++h) {
      CAPTURE(names[size_t(k)]);
      CAPTURE(h);
      const double v = stats.value(0, h, k);
      const auto& got = m[names[size_t(k)]][0][size_t(h)];
      if (std::isnan(v)) CHECK(got.is_null());
      else CHECK(got.get<double>() == v);
    }
  CHECK(m["function_mass"][0][1].get<double>() == doctest::Approx(1));   // all on "the"
  CHECK(m["queries"][0][0] == 3);
  // A uniform row of 4 keys has normalised entropy 1.
  d.num_heads = 1;
  d.q = d.k = 4;
  d.heads = {0};
  d.tokens = d.token_labels = {"a", "b", "c", "d"};
  d.special = {0, 0, 0, 0};
  d.text = "a b c d";
  d.offsets = {{0, 1}, {2, 3}, {4, 5}, {6, 7}};
  d.attention.assign(16, 0.25f);
  CHECK(serve::head_metrics(d, lex)["entropy"][0][0].get<double>() == doctest::Approx(1.0));
}

TEST_CASE("json_string writes what nlohmann dump() writes") {
  std::string s = "<svg a=\"1\">\\ é · ↵ \x7f";
  for (int c = 0; c < 0x20; ++c) s += char(c);
  s += "end";
  CHECK(serve::json_string(s) == nlohmann::json(s).dump());
  CHECK(serve::json_string("") == "\"\"");
}

namespace {
serve::Response call(serve::App& app, const std::string& method, const std::string& path, const std::string& body = "") {
  serve::Request r;
  r.method = method;
  r.path = path;
  r.body = body;
  return app.handle(r);
}
std::string error_of(const serve::Response& r) {
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  REQUIRE(j.is_object());
  REQUIRE(j.contains("error"));
  return j["error"].get<std::string>();
}
}  // namespace

TEST_CASE("App routes, embedded assets and JSON errors without a model") {
  serve::ServeOptions o;
  o.work_dir = std::filesystem::temp_directory_path() / "atlas-unit-serve";
  serve::App app(o, nullptr);
  auto index = call(app, "GET", "/");
  CHECK(index.status == 200);
  CHECK(index.content_type.rfind("text/html", 0) == 0);
  CHECK(index.body.find("/app.js") != std::string::npos);
  CHECK(call(app, "GET", "/app.js").content_type.rfind("text/javascript", 0) == 0);
  CHECK(call(app, "GET", "/style.css").status == 200);
  for (const char* p : {"/../etc/passwd", "/index.html/..", "/web/app.js", "/APP.JS", "/app.js ", ""}) {
    CAPTURE(p);
    const auto r = call(app, "GET", p);
    CHECK(r.status == 404);
    CHECK(error_of(r) == "not found");
  }
  CHECK(call(app, "POST", "/").status == 405);
  const auto models = call(app, "GET", "/api/models");
  CHECK(models.status == 200);
  CHECK(nlohmann::json::parse(models.body)["models"].empty());
  CHECK(error_of(call(app, "POST", "/api/run", "{}")).find("no model given") != std::string::npos);
  CHECK(call(app, "POST", "/api/run", "{").status == 400);
  CHECK(call(app, "POST", "/api/run", "[]").status == 400);
  CHECK(call(app, "GET", "/api/run").status == 405);
  CHECK(call(app, "POST", "/api/run", R"({"model":"x","text":"hi"})").status == 404);
  CHECK(call(app, "GET", "/api/store/none/docs").status == 404);
  CHECK(call(app, "GET", "/api/nothing").status == 404);
  CHECK(call(app, "POST", "/api/render", R"({"text":"hi","kind":"pie"})").status == 400);
  CHECK(call(app, "POST", "/api/swap", R"({"text":"the sun"})").status == 400);
  serve::ServeOptions big;
  big.limits.max_text_chars = 3;
  big.work_dir = o.work_dir;
  big.models.push_back({"m", "/nowhere", false});
  serve::App small(big, nullptr);
  const auto r = call(small, "POST", "/api/run", R"({"model":"m","text":"four"})");
  CHECK(r.status == 413);
  CHECK(error_of(r).find("at most 3") != std::string::npos);
  // A model that cannot be opened is a 500 naming it, every time.
  CHECK(call(small, "POST", "/api/run", R"({"model":"m","text":"abc"})").status == 500);
  CHECK(error_of(call(small, "POST", "/api/run", R"({"model":"m","text":"abc"})")).find("cannot load model 'm'") != std::string::npos);
}
