// The key/value cache path (models::KVCache, Inputs::past) of the llama family, GPT-2, GPT-NeoX,
// Phi and OPT on the reference checkpoints: running a sequence in pieces, each piece against the
// cached keys/values of the ones before, gives the attention rows and the last-position logits of
// one full run (2e-5),
// also after a truncation (a changed last token) and with Mistral's sliding window. Models without
// the path refuse a cache.
#include <nlohmann/json.hpp>

#include <fstream>

#include "atlas/core/error.hpp"
#include "golden_support.hpp"

using namespace atlas;
namespace fs = std::filesystem;

namespace {

constexpr double kTolerance = 2e-5;

at::Tensor ids_tensor(const std::vector<int64_t>& ids) { return at::tensor(ids, at::kLong).unsqueeze(0); }

/// Deterministic ids in [3, vocab) (past the usual special ids), `n` of them.
std::vector<int64_t> some_ids(int64_t n, int64_t vocab, int64_t seed) {
  std::vector<int64_t> ids;
  uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(seed + 1);
  for (int64_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    ids.push_back(3 + static_cast<int64_t>((x >> 33) % static_cast<uint64_t>(vocab - 3)));
  }
  return ids;
}

struct Run {
  std::vector<at::Tensor> attention;   // per layer [H,T_new,T]
  at::Tensor logits;                   // [T_new,V] (or [1,V] with last_logits_only)
};

Run forward(models::Model& model, const std::vector<int64_t>& ids, models::KVCache* past,
            bool last_only = false) {
  models::Inputs inputs;
  inputs.input_ids = ids_tensor(ids);
  inputs.past = past;
  inputs.last_logits_only = last_only;
  test::RecordingTaps taps;
  Run r;
  r.logits = model.forward(inputs, taps, true).select(0, 0).to(at::kFloat);
  for (int64_t l = 0; l < model.info().num_layers; ++l) {
    REQUIRE(taps.values.count({models::kAttnProbs, l}));
    r.attention.push_back(taps.values.at({models::kAttnProbs, l}).select(0, 0));
  }
  return r;
}

double diff(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  return test::max_abs_diff(a.contiguous(), b.contiguous(), what);
}

/// Runs ids in the pieces that `cuts` delimit against one cache and compares every piece with the
/// full run: attention rows (and zeros right of the diagonal) and the last position's logits.
void check_pieces(models::Model& model, const std::vector<int64_t>& ids, const std::vector<int64_t>& cuts,
                  const std::string& name) {
  const int64_t t = static_cast<int64_t>(ids.size());
  const Run full = forward(model, ids, nullptr);
  models::KVCache cache;
  int64_t start = 0;
  for (size_t k = 0; k <= cuts.size(); ++k) {
    const int64_t end = k < cuts.size() ? cuts[k] : t;
    const std::vector<int64_t> piece(ids.begin() + start, ids.begin() + end);
    CHECK(cache.length() == start);
    const Run r = forward(model, piece, &cache, k == cuts.size());
    CHECK(cache.length() == end);
    REQUIRE(cache.keys.size() == static_cast<size_t>(model.info().num_layers));
    for (size_t l = 0; l < r.attention.size(); ++l) {
      const at::Tensor& got = r.attention[l];   // [H,end-start,end]
      REQUIRE(got.size(1) == end - start);
      REQUIRE(got.size(2) == end);
      const at::Tensor want = full.attention[l].narrow(1, start, end - start);   // [H,end-start,T]
      CHECK_MESSAGE(diff(got, want.narrow(2, 0, end), name + " attention") <= kTolerance, name, " layer ", l,
                    " rows ", start, "..", end);
      if (end < t) CHECK(want.narrow(2, end, t - end).abs().max().item<float>() == 0.0f);
    }
    const at::Tensor last = r.logits.select(0, r.logits.size(0) - 1);
    CHECK_MESSAGE(diff(last, full.logits.select(0, end - 1), name + " logits") <= kTolerance, name, " logits at ",
                  end - 1);
    if (k == cuts.size()) CHECK(r.logits.size(0) == 1);   // last_logits_only
    start = end;
  }
}

fs::path mistral_copy(int64_t window) {
  const fs::path dir = test::scratch_dir("kv-cache-mistral");
  const fs::path src = test::reference_model("llama");
  for (const auto& e : fs::directory_iterator(src))
    if (e.path().filename() != "config.json") fs::copy_file(e.path(), dir / e.path().filename());
  nlohmann::json config = nlohmann::json::parse(std::ifstream(src / "config.json"));
  config["model_type"] = "mistral";
  config["architectures"] = {"MistralForCausalLM"};
  config["sliding_window"] = window;
  std::ofstream(dir / "config.json") << config.dump(2);
  return dir;
}

}  // namespace

TEST_CASE("kv cache: pieces against the cache equal one full run (llama family, gpt2, gpt_neox, phi, opt)") {
  for (const std::string name : {"gpt2", "llama", "qwen2", "gemma", "stories260K", "gpt_neox", "phi", "opt"}) {
    const fs::path dir = name == "stories260K" ? test::shared_dir() / "models" / "stories260K" : test::reference_model(name);
    auto model = models::load_model(dir);
    CAPTURE(name);
    REQUIRE(model->info().kv_cache);
    const std::vector<int64_t> ids = some_ids(40, model->info().vocab_size, 1);
    check_pieces(*model, ids, {1}, name + " 1+39");
    check_pieces(*model, ids, {36}, name + " 36+4");
    check_pieces(*model, ids, {12, 13, 30, 39}, name + " 12+1+17+9+1");
  }
}

TEST_CASE("kv cache: a truncated cache recomputes a changed last token") {
  for (const std::string name : {"gpt2", "llama", "gpt_neox", "opt"}) {
    auto model = models::load_model(test::reference_model(name));
    CAPTURE(name);
    std::vector<int64_t> a = some_ids(30, model->info().vocab_size, 2);
    std::vector<int64_t> b = a;
    b.back() = a.back() == 5 ? 6 : 5;
    models::KVCache cache;
    (void)forward(*model, a, &cache);
    REQUIRE(cache.length() == 30);
    cache.truncate(29);
    CHECK(cache.length() == 29);
    const Run r = forward(*model, {b.back()}, &cache, true);
    const Run full = forward(*model, b, nullptr);
    for (size_t l = 0; l < r.attention.size(); ++l)
      CHECK(diff(r.attention[l], full.attention[l].narrow(1, 29, 1), name + " attention") <= kTolerance);
    CHECK(diff(r.logits.select(0, 0), full.logits.select(0, 29), name + " logits") <= kTolerance);
    cache.truncate(0);
    CHECK(cache.length() == 0);
    CHECK(cache.keys.empty());
    CHECK_THROWS_AS(cache.truncate(1), InputError);
  }
}

TEST_CASE("kv cache: Mistral's sliding window is applied to the cached keys as in a full run") {
  const fs::path dir = mistral_copy(4);
  auto mistral = models::load_model(dir);
  REQUIRE(mistral->info().model_type == "mistral");
  REQUIRE(mistral->info().kv_cache);
  const std::vector<int64_t> ids = some_ids(20, mistral->info().vocab_size, 3);
  // The window is active: row 10 sees keys 7..10 only.
  const Run full = forward(*mistral, ids, nullptr);
  CHECK(full.attention[0].select(1, 10).narrow(1, 0, 7).abs().max().item<float>() == 0.0f);
  CHECK(full.attention[0].select(1, 10).narrow(1, 7, 4).min().item<float>() > 0.0f);
  check_pieces(*mistral, ids, {2}, "mistral 2+18");
  check_pieces(*mistral, ids, {9, 17}, "mistral 9+8+3");
  check_pieces(*mistral, ids, {19}, "mistral 19+1");
}

TEST_CASE("kv cache: refused where it does not apply") {
  auto bert = models::load_model(test::reference_model("bert"));
  CHECK_FALSE(bert->info().kv_cache);
  models::KVCache cache;
  models::Inputs in;
  in.input_ids = ids_tensor({5, 6, 7});
  in.past = &cache;
  models::NullTaps none;
  CHECK_THROWS_WITH_AS(bert->forward(in, none, false), doctest::Contains("no key/value cache path"), InputError);

  auto gpt2 = models::load_model(test::reference_model("gpt2"));
  models::Inputs batch;
  batch.input_ids = at::tensor(std::vector<int64_t>{5, 6, 7, 8}, at::kLong).view({2, 2});
  batch.past = &cache;
  CHECK_THROWS_WITH_AS(gpt2->forward(batch, none, false), doctest::Contains("batch of 1"), InputError);
  models::Inputs masked = in;
  masked.attention_mask = at::ones({1, 3}, at::kLong);
  CHECK_THROWS_WITH_AS(gpt2->forward(masked, none, false), doctest::Contains("attention_mask"), InputError);
  CHECK(cache.length() == 0);   // nothing appended by a refused run
  // Past + new beyond the position limit (256).
  models::Inputs longer;
  longer.input_ids = ids_tensor(some_ids(200, 1000, 4));
  longer.past = &cache;
  (void)gpt2->forward(longer, none, false);
  CHECK(cache.length() == 200);
  longer.input_ids = ids_tensor(some_ids(57, 1000, 5));
  CHECK_THROWS_WITH_AS(gpt2->forward(longer, none, false), doctest::Contains("at most 256 tokens, got 257"),
                       InputError);
  CHECK(cache.length() == 200);
}
