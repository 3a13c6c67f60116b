// `atlas serve`'s model handle reuses the key/value cache of its last run: an input that shares a
// token prefix with it runs incrementally, and the NPZ it writes has the members, token arrays and
// meta of a full recompute and attention within 2e-5 (the next-token distribution too). Checked on
// the reference gpt2 and llama checkpoints (text and id input: an extension, a changed last token,
// an unrelated input), with a layer/head selection and float16 storage, and on gpt_neox, phi and
// opt; every other run keeps the document in memory (ServeRequest::in_memory), which must equal
// what its NPZ reads back as. Models without a cache path (bert, roberta, gpt_neox with dynamic
// RoPE scaling) run in full, kept in memory the same way.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "atlas/extract/serve_model.hpp"
#include "atlas/format/attention.hpp"
#include "atlas/io/npz.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using atlas::extract::ServeRequest;
using atlas::extract::ServeResult;
using atlas::io::NpzReader;

namespace {

fs::path model_dir(const std::string& model) {
  if (model == "gpt_neox-dynamic") {
    // The reference gpt_neox with dynamic NTK scaling: the rotation of every position depends on
    // the length, so it has no key/value cache path.
    const fs::path dir = atlas::test::scratch_dir("serve_cache_gpt_neox_dynamic_model");
    const fs::path src = model_dir("gpt_neox");
    for (const auto& e : fs::directory_iterator(src))
      if (e.path().filename() != "config.json") fs::copy_file(e.path(), dir / e.path().filename());
    nlohmann::json config = nlohmann::json::parse(std::ifstream(src / "config.json"));
    config["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
    std::ofstream(dir / "config.json") << config.dump(2);
    return dir;
  }
  return atlas::test::shared_dir() / "reference/models" / model;
}

struct Handles {
  std::shared_ptr<atlas::extract::ServeModel> cached, fresh;   // fresh: a new handle per full run
  atlas::extract::RunOptions options;
  fs::path dir;
  int n = 0;
  bool in_memory = false;   // toggled per comparison: both ways of getting the cached handle's NPZ
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

/// Every field of two documents equal (the one kept in memory, the one read from its file).
void check_same_document(const atlas::format::AttentionData& m, const atlas::format::AttentionData& f) {
  CHECK(m.path == f.path);
  CHECK(m.source == f.source);
  CHECK(m.kind == f.kind);
  CHECK(m.num_layers == f.num_layers);
  CHECK(m.num_heads == f.num_heads);
  CHECK(m.q == f.q);
  CHECK(m.k == f.k);
  CHECK(m.attention == f.attention);   // bit for bit (float16 storage: the rounded values)
  CHECK(m.layers == f.layers);
  CHECK(m.heads == f.heads);
  CHECK(m.input_ids == f.input_ids);
  CHECK(m.tokens == f.tokens);
  CHECK(m.token_labels == f.token_labels);
  CHECK(m.offsets == f.offsets);
  CHECK(m.special == f.special);
  CHECK(m.token_type_ids == f.token_type_ids);
  CHECK(m.key_tokens == f.key_tokens);
  CHECK(m.key_token_labels == f.key_token_labels);
  CHECK(m.key_special == f.key_special);
  CHECK(m.topk == f.topk);
  REQUIRE(m.meta.has_value() == f.meta.has_value());
  if (m.meta) CHECK(m.meta->to_json() == f.meta->to_json());
  CHECK(m.model_name == f.model_name);
  CHECK(m.model_path == f.model_path);
  CHECK(m.checkpoint_sha256 == f.checkpoint_sha256);
  CHECK(m.command_line == f.command_line);
  CHECK(m.text == f.text);
  CHECK(m.created == f.created);
  CHECK(m.version == f.version);
  CHECK(m.text_pair == f.text_pair);
  CHECK(m.causal == f.causal);
  CHECK(m.causal_mask() == f.causal_mask());
}

/// Runs the input on the cached handle and on a fresh one (a full run) and compares the NPZs.
int64_t run_and_compare(Handles& h, const std::optional<std::string>& text,
                        const std::optional<std::vector<int64_t>>& ids) {
  ServeRequest inc = request(h, text, ids);
  inc.in_memory = h.in_memory = !h.in_memory;
  const ServeResult a = h.cached->run(inc);
  if (inc.in_memory && h.cached->info().in_memory) {
    // Kept in memory: no file until asked for; then the file reads back as exactly that document.
    REQUIRE(a.data);
    REQUIRE(a.write_npz);
    CHECK_FALSE(fs::exists(inc.output));
    a.write_npz(inc.output);
    check_same_document(*a.data, atlas::format::load_attention(inc.output.string()));
  } else {
    CHECK_FALSE(a.data);
    CHECK(fs::exists(inc.output));
  }
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
      // Within 2e-5 as float32; float16 storage: plus one float16 step of the value (the two float32
      // values, 1e-7 apart, may round to neighbouring float16 numbers).
      const bool half = ax.dtype() == atlas::io::DType::F16;
      const std::vector<double> vx = values(ax), vy = values(ay);
      double d = 0;
      for (size_t i = 0; i < vx.size(); ++i) {
        const double big = std::max(std::abs(vx[i]), std::abs(vy[i]));
        const double step = half && big > 0 ? std::ldexp(1.0, std::max(std::ilogb(big), -14) - 10) : 0.0;
        d = std::max(d, std::abs(vx[i] - vy[i]) - step);
      }
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

TEST_CASE("serve cache: gpt_neox (partial RoPE), phi, opt (learned positions with an offset) extended") {
  for (const std::string name : {"gpt_neox", "phi", "opt"}) {
    CAPTURE(name);
    Handles h = open(name);
    REQUIRE(h.cached->info().kv_cache);
    if (name != "gpt_neox") {   // the reference gpt_neox has no tokenizer files
      CHECK(run_and_compare(h, kText, std::nullopt) == 0);
      CHECK(run_and_compare(h, kText + " and associated documentation files", std::nullopt) > 10);
    }
    std::vector<int64_t> ids = {15, 27, 99, 300, 4, 18, 250, 7, 600, 31};
    CHECK(run_and_compare(h, std::nullopt, ids) == 0);
    ids.insert(ids.end(), {44, 5, 6});
    CHECK(run_and_compare(h, std::nullopt, ids) == 10);
  }
}

TEST_CASE("serve cache: encoder models and --topk run in full") {
  // Computed in full, but kept in memory too (every other comparison): the document and its NPZ.
  Handles bert = open("bert");
  CHECK_FALSE(bert.cached->info().kv_cache);
  CHECK(bert.cached->info().in_memory);
  (void)bert.cached->run(request(bert, kText, std::nullopt));
  CHECK(run_and_compare(bert, kText + " and more", std::nullopt) == 0);
  CHECK(run_and_compare(bert, kText + " and more", std::nullopt) == 0);
  Handles roberta = open("roberta", "0,-1", "1", "float16");
  CHECK(run_and_compare(roberta, kText, std::nullopt) == 0);
  CHECK(run_and_compare(roberta, kText, std::nullopt) == 0);
  // A causal model without a key/value cache path: next-token probabilities from the last position.
  Handles neox = open("gpt_neox-dynamic");
  CHECK_FALSE(neox.cached->info().kv_cache);
  CHECK(neox.cached->info().next_token);
  const std::vector<int64_t> ids = {15, 27, 99, 300, 4, 18, 250, 7, 600, 31};   // no tokenizer files
  CHECK(run_and_compare(neox, std::nullopt, ids) == 0);
  CHECK(run_and_compare(neox, std::nullopt, ids) == 0);
  Handles topk;
  topk.options.model_dir = model_dir("gpt2");
  topk.options.threads = 2;
  topk.options.topk = 4;
  topk.cached = atlas::extract::open_serve_model(topk.options);
  topk.dir = atlas::test::scratch_dir("serve_cache_topk");
  CHECK_FALSE(topk.cached->info().kv_cache);
  CHECK_FALSE(topk.cached->info().in_memory);
  CHECK(run_and_compare(topk, kText, std::nullopt) == 0);   // asked to keep it in memory: written at once
}
