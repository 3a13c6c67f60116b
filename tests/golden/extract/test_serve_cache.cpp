// `atlas serve`'s model handle reuses the key/value cache of its last run: an input that shares a
// token prefix with it runs incrementally, and the NPZ it writes has the members, token arrays and
// meta of a full recompute and attention within 2e-5 (the next-token distribution too). Checked on
// the reference gpt2 and llama checkpoints (text and id input: an extension, a changed last token,
// an unrelated input), with a layer/head selection and float16 storage.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "atlas/extract/serve_model.hpp"
#include "atlas/io/npz.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using atlas::extract::ServeRequest;
using atlas::extract::ServeResult;
using atlas::io::NpzReader;

namespace {

fs::path model_dir(const std::string& model) { return atlas::test::shared_dir() / "reference/models" / model; }

struct Handles {
  std::shared_ptr<atlas::extract::ServeModel> cached, fresh;   // fresh: a new handle per full run
  atlas::extract::RunOptions options;
  fs::path dir;
  int n = 0;
};

Handles open(const std::string& model, const std::string& layers = "all", const std::string& heads = "all",
             const std::string& dtype = "float32") {
  Handles h;
  h.options.model_dir = model_dir(model);
  h.options.threads = 2;
  h.options.layers = layers;
  h.options.heads = heads;
  h.options.dtype = dtype;
  h.cached = atlas::extract::open_serve_model(h.options);
  h.dir = atlas::test::scratch_dir("serve_cache_" + model);
  return h;
}

ServeRequest request(Handles& h, const std::optional<std::string>& text, const std::optional<std::vector<int64_t>>& ids) {
  ServeRequest r;
  r.text = text;
  r.ids = ids;
  r.output = h.dir / fmt::format("{}.npz", h.n++);
  return r;
}

/// Float members as doubles.
std::vector<double> values(const atlas::io::NdArray& a) {
  std::vector<float> f = a.to_float();
  return {f.begin(), f.end()};
}

/// Runs the input on the cached handle and on a fresh one (a full run) and compares the NPZs.
int64_t run_and_compare(Handles& h, const std::optional<std::string>& text,
                        const std::optional<std::vector<int64_t>>& ids) {
  const ServeRequest inc = request(h, text, ids);
  const ServeResult a = h.cached->run(inc);
  auto fresh = atlas::extract::open_serve_model(h.options);
  const ServeRequest full = request(h, text, ids);
  const ServeResult b = fresh->run(full);
  CHECK(b.reused_tokens == 0);
  REQUIRE(a.tokens == b.tokens);
  CHECK(a.reused_tokens < a.tokens);
  NpzReader x(inc.output), y(full.output);
  REQUIRE(x.names() == y.names());
  for (const std::string& name : x.names()) {
    CAPTURE(name);
    const auto ax = x.get(name), ay = y.get(name);
    REQUIRE(ax.shape() == ay.shape());
    REQUIRE(ax.dtype() == ay.dtype());
    if (name == "meta") {
      auto mx = nlohmann::json::parse(ax.to_string()), my = nlohmann::json::parse(ay.to_string());
      mx.erase("created");
      my.erase("created");
      CHECK(mx == my);
    } else if (name.rfind("attention", 0) == 0) {
      const std::vector<double> vx = values(ax), vy = values(ay);
      double d = 0;
      for (size_t i = 0; i < vx.size(); ++i) d = std::max(d, std::abs(vx[i] - vy[i]));
      CHECK(d <= 2e-5);
    } else {
      CHECK(std::equal(ax.data(), ax.data() + ax.nbytes(), ay.data()));
    }
  }
  REQUIRE(a.next_probabilities.size() == b.next_probabilities.size());
  double d = 0;
  for (size_t i = 0; i < a.next_probabilities.size(); ++i)
    d = std::max(d, double(std::abs(a.next_probabilities[i] - b.next_probabilities[i])));
  CHECK(d <= 2e-5);
  return a.reused_tokens;
}

const std::string kText = "Permission is hereby granted, free of charge, to any person obtaining a copy of this software";

}  // namespace

TEST_CASE("serve cache: gpt2 text extended, last token changed, unrelated text") {
  Handles h = open("gpt2");
  REQUIRE(h.cached->info().kv_cache);
  const int64_t first = run_and_compare(h, kText, std::nullopt);
  CHECK(first == 0);
  const int64_t ext = run_and_compare(h, kText + " and associated documentation files", std::nullopt);
  CHECK(ext > 10);
  // The same text again: everything but the last token is reused.
  const std::string again = kText + " and associated documentation files";
  h.cached->run(request(h, again, std::nullopt));
  const int64_t same = run_and_compare(h, again, std::nullopt);
  CHECK(same > 10);
  // Ids: an extension by one token, then the last token changed, then an unrelated input.
  std::vector<int64_t> ids = {15, 27, 99, 300, 4, 18, 250, 7, 600, 31};
  CHECK(run_and_compare(h, std::nullopt, ids) == 0);
  ids.push_back(44);
  CHECK(run_and_compare(h, std::nullopt, ids) == 10);
  ids.back() = 45;
  CHECK(run_and_compare(h, std::nullopt, ids) == 10);
  ids.insert(ids.end(), {1, 2, 3, 900, 901});
  CHECK(run_and_compare(h, std::nullopt, ids) == 11);
  CHECK(run_and_compare(h, std::nullopt, std::vector<int64_t>{16, 27, 99}) == 0);
  CHECK(run_and_compare(h, std::nullopt, std::vector<int64_t>{16, 27, 98, 5, 5}) == 2);
  CHECK(run_and_compare(h, std::nullopt, std::vector<int64_t>{16}) == 0);
}

TEST_CASE("serve cache: llama (BOS shared, grouped-query heads) with a layer/head selection and float16 storage") {
  Handles h = open("llama", "-1", "0,2", "float16");
  REQUIRE(h.cached->info().kv_cache);
  CHECK(run_and_compare(h, kText, std::nullopt) == 0);
  CHECK(run_and_compare(h, kText + " and associated documentation files", std::nullopt) > 10);
  // Another text: only the BOS token is shared.
  CHECK(run_and_compare(h, "The above copyright notice shall be included", std::nullopt) == 1);
}

TEST_CASE("serve cache: encoder models and --topk run in full") {
  Handles bert = open("bert");
  CHECK_FALSE(bert.cached->info().kv_cache);
  (void)bert.cached->run(request(bert, kText, std::nullopt));
  CHECK(run_and_compare(bert, kText + " and more", std::nullopt) == 0);
  Handles topk;
  topk.options.model_dir = model_dir("gpt2");
  topk.options.threads = 2;
  topk.options.topk = 4;
  topk.cached = atlas::extract::open_serve_model(topk.options);
  topk.dir = atlas::test::scratch_dir("serve_cache_topk");
  CHECK_FALSE(topk.cached->info().kv_cache);
}
