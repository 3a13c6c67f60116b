// Strict loading: fixtures built at test time from the tiny GPT-2 / Llama checkpoints with one thing
// wrong each (missing tensor, wrong shape, unclaimed tensor, unknown model_type, unsupported config
// value); every error must name the tensor or key, the file, expected and got.
#include <ATen/ATen.h>
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "atlas/core/error.hpp"
#include "atlas/io/checkpoint.hpp"
#include "atlas/io/npy.hpp"
#include "atlas/models/model.hpp"
#include "test_support.hpp"

using namespace atlas;
namespace fs = std::filesystem;

namespace {

struct Entry {
  std::string name;
  std::string dtype;  // safetensors spelling
  std::vector<int64_t> shape;
  std::string bytes;
};

/// Minimal safetensors writer: 8-byte header length, JSON header padded with spaces, data.
/// `misalign` extra spaces shift the whole data buffer off the 8-byte grid.
void write_safetensors(const fs::path& file, const std::vector<Entry>& entries, size_t misalign = 0) {
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const auto& e : entries) {
    header[e.name] = {
        {"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  text += std::string(misalign, ' ');
  std::ofstream out(file, std::ios::binary);
  const uint64_t n = text.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << text;
  for (const auto& e : entries) out << e.bytes;
}

/// The tensors of a reference checkpoint as writable entries (F32 as stored).
std::vector<Entry> entries_of(const std::string& model) {
  std::vector<Entry> entries;
  auto tensors =
      io::read_safetensors(test::shared_dir() / "reference" / "models" / model / "model.safetensors");
  for (const auto& [name, raw] : tensors)
    entries.push_back({name, io::tensor_dtype_name(raw.dtype), raw.shape,
                       std::string(reinterpret_cast<const char*>(raw.data), raw.nbytes)});
  return entries;
}

nlohmann::json config_of(const std::string& model) {
  std::ifstream in(test::shared_dir() / "reference" / "models" / model / "config.json");
  return nlohmann::json::parse(in);
}

/// A model folder with `config` and `entries` in scratch space.
fs::path make_fixture(const std::string& name, const nlohmann::json& config,
                      const std::vector<Entry>& entries, size_t misalign = 0) {
  fs::path dir = test::scratch_dir("models_loading/" + name);
  std::ofstream(dir / "config.json") << config.dump(2);
  write_safetensors(dir / "model.safetensors", entries, misalign);
  return dir;
}

/// Runs `fn`, requires an exception of type E, returns its message.
template <class E>
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("wrong exception type: ", e.what());
  }
  FAIL("no exception");
  return {};
}

void check_mentions(const std::string& message, const std::vector<std::string>& parts) {
  MESSAGE("error message: ", message);
  for (const auto& p : parts) CHECK_MESSAGE(message.find(p) != std::string::npos, "missing '", p, "'");
}

at::Tensor attention_of(models::Model& model, const std::vector<int64_t>& ids, int64_t layer) {
  class One final : public models::Taps {
   public:
    explicit One(int64_t layer) : layer_(layer) {}
    bool wants(const std::string& name, int64_t layer) const override {
      return name == "attn_probs" && layer == layer_;
    }
    void emit(const std::string&, int64_t, const at::Tensor& value) override { kept = value.clone(); }
    at::Tensor kept;

   private:
    int64_t layer_;
  } taps(layer);
  models::Inputs inputs;
  inputs.input_ids = at::tensor(ids, at::kLong).unsqueeze(0);
  model.forward(inputs, taps, false);
  return taps.kept;
}

}  // namespace

TEST_CASE("a missing tensor names tensor, file, expected and got") {
  auto entries = entries_of("gpt2");
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [](const Entry& e) { return e.name == "transformer.h.1.ln_2.bias"; }),
                entries.end());
  fs::path dir = make_fixture("missing", config_of("gpt2"), entries);
  std::string msg = error_of<CheckpointError>([&] { models::load_model(dir); });
  check_mentions(msg, {"transformer.h.1.ln_2.bias", (dir / "model.safetensors").string(),
                       "expected shape [64]", "got no such tensor"});
}

TEST_CASE("a wrong shape names tensor, file, expected and got") {
  auto entries = entries_of("gpt2");
  for (auto& e : entries)
    if (e.name == "transformer.wpe.weight") {
      e.shape = {128, 64};
      e.bytes.resize(128 * 64 * 4);
    }
  fs::path dir = make_fixture("shape", config_of("gpt2"), entries);
  std::string msg = error_of<CheckpointError>([&] { models::load_model(dir); });
  check_mentions(msg,
                 {"transformer.wpe.weight", (dir / "model.safetensors").string(), "[256, 64]", "[128, 64]"});
}

TEST_CASE("an unclaimed tensor is an error naming tensor, file, expected and got") {
  auto entries = entries_of("llama");
  entries.push_back({"model.layers.0.self_attn.rotary_scale", "F32", {2}, std::string(8, '\0')});
  fs::path dir = make_fixture("extra", config_of("llama"), entries);
  std::string msg = error_of<CheckpointError>([&] { models::load_model(dir); });
  check_mentions(msg, {"model.layers.0.self_attn.rotary_scale", (dir / "model.safetensors").string(),
                       "LlamaForCausalLM", "expected none", "[2]"});
}

TEST_CASE("an unknown model_type lists the supported ones") {
  auto config = config_of("gpt2");
  config["model_type"] = "mamba";
  fs::path dir = make_fixture("unknown_type", config, entries_of("gpt2"));
  std::string msg = error_of<ConfigError>([&] { models::load_model(dir); });
  check_mentions(msg,
                 {"config.json", "model_type", "'mamba'", "gpt2", "bert", "distilbert", "roberta", "llama"});
  auto types = models::supported_model_types();
  for (const char* t : {"gpt2", "bert", "distilbert", "roberta", "llama", "mistral", "qwen2", "gpt_neox", "gemma",
                        "phi", "opt", "xlm-roberta"})
    CHECK(std::find(types.begin(), types.end(), t) != types.end());
}

TEST_CASE("unsupported config values are rejected naming config.json, key, expected and got") {
  SUBCASE("rope_scaling type") {
    auto config = config_of("llama");
    config["rope_scaling"] = {{"type", "longrope"}, {"factor", 4.0}};
    fs::path dir = make_fixture("rope_scaling", config, entries_of("llama"));
    check_mentions(error_of<ConfigError>([&] { models::load_model(dir); }),
                   {"config.json", "rope_scaling.type", "'linear'", "'longrope'"});
  }
  SUBCASE("rope_scaling on gpt_neox goes through the same parser") {
    auto config = config_of("gpt_neox");
    config["rope_scaling"] = {{"rope_type", "su"}, {"factor", 4.0}};
    fs::path dir = make_fixture("rope_scaling_neox", config, entries_of("gpt_neox"));
    check_mentions(error_of<ConfigError>([&] { models::load_model(dir); }),
                   {"config.json", "rope_scaling.type", "'dynamic'", "'su'"});
  }
  SUBCASE("rope_scaling on gemma, whose config class has none") {
    auto config = config_of("gemma");
    config["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    fs::path dir = make_fixture("rope_scaling_gemma", config, entries_of("gemma"));
    check_mentions(error_of<ConfigError>([&] { models::load_model(dir); }),
                   {"config.json", "rope_scaling", "null", "linear"});
  }
  SUBCASE("phi qk_layernorm with several heads") {
    auto config = config_of("phi");
    config["qk_layernorm"] = true;
    fs::path dir = make_fixture("phi_qk_layernorm", config, entries_of("phi"));
    check_mentions(error_of<ConfigError>([&] { models::load_model(dir); }),
                   {"config.json", "qk_layernorm", "4 heads", "true"});
  }
  SUBCASE("activation") {
    auto config = config_of("gpt2");
    config["activation_function"] = "swiglu";
    fs::path dir = make_fixture("activation", config, entries_of("gpt2"));
    check_mentions(error_of<ConfigError>([&] { models::load_model(dir); }),
                   {"config.json", "activation_function", "gelu_new", "'swiglu'"});
  }
  SUBCASE("position_embedding_type") {
    auto config = config_of("bert");
    config["position_embedding_type"] = "relative_key";
    fs::path dir = make_fixture("position_embedding_type", config, entries_of("bert"));
    check_mentions(error_of<ConfigError>([&] { models::load_model(dir); }),
                   {"config.json", "position_embedding_type", "absolute", "'relative_key'"});
  }
  SUBCASE("architecture class") {
    auto config = config_of("bert");
    config["architectures"] = {"BertForSequenceClassification"};
    fs::path dir = make_fixture("architecture", config, entries_of("bert"));
    check_mentions(error_of<ConfigError>([&] { models::load_model(dir); }),
                   {"config.json", "architectures[0]", "BertForMaskedLM", "'BertForSequenceClassification'"});
  }
  SUBCASE("device") {
    check_mentions(error_of<ConfigError>([&] {
                     models::load_model(test::shared_dir() / "reference" / "models" / "gpt2", {"tpu:0"});
                   }),
                   {"device", "'tpu:0'"});
  }
}

TEST_CASE("the bare base-model layout loads; logits are then a clear error") {
  auto config = config_of("gpt2");
  config["architectures"] = {"GPT2Model"};
  auto entries = entries_of("gpt2");
  for (auto& e : entries) e.name = e.name.substr(std::string("transformer.").size());
  fs::path dir = make_fixture("bare", config, entries);
  auto bare = models::load_model(dir);
  CHECK_FALSE(bare->info().has_lm_head);
  CHECK(bare->info().model_class == "GPT2Model");
  auto full = models::load_model(test::shared_dir() / "reference" / "models" / "gpt2");
  const std::vector<int64_t> ids = {5, 17, 300, 2, 999};
  CHECK(at::equal(attention_of(*bare, ids, 1), attention_of(*full, ids, 1)));
  models::NullTaps none;
  models::Inputs inputs;
  inputs.input_ids = at::tensor(ids, at::kLong).unsqueeze(0);
  check_mentions(error_of<InputError>([&] { bare->forward(inputs, none, true); }), {"logits", "GPT2Model"});
  CHECK_FALSE(bare->forward(inputs, none, false).defined());
}

TEST_CASE("float16 and bfloat16 checkpoints are converted to float32") {
  auto reference = models::load_model(test::shared_dir() / "reference" / "models" / "llama");
  const std::vector<int64_t> ids = {5, 17, 300, 2, 999, 41};
  const at::Tensor want = attention_of(*reference, ids, 1);
  for (const std::string dtype : {"F16", "BF16"}) {
    auto entries = entries_of("llama");
    for (auto& e : entries) {
      const size_t n = e.bytes.size() / 4;
      std::string out(n * 2, '\0');
      for (size_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, e.bytes.data() + 4 * i, 4);
        uint16_t h;
        if (dtype == "F16") {
          h = io::float_to_half(f);
        } else {
          uint32_t bits;
          std::memcpy(&bits, &f, 4);
          h = static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);  // round to nearest even
        }
        std::memcpy(&out[2 * i], &h, 2);
      }
      e.dtype = dtype;
      e.bytes = out;
    }
    fs::path dir = make_fixture("half_" + dtype, config_of("llama"), entries);
    auto model = models::load_model(dir);
    const at::Tensor got = attention_of(*model, ids, 1);
    REQUIRE((got.scalar_type() == at::kFloat));
    const double diff = (got - want).abs().max().item<double>();
    MESSAGE(dtype, " weights: max |attention diff| vs float32 ", diff);
    CHECK(diff < (dtype == "F16" ? 5e-3 : 5e-2));
    CHECK(diff > 0.0);  // the weights really were rounded
  }
}

TEST_CASE("unaligned float32 and float64 weights load bit for bit like the mapped float32") {
  // The reference loads aligned float32 as views of the mapping; an unaligned buffer is copied and
  // float64 is converted: the model must not be able to tell. GPT-2 ties lm_head to wte (logits).
  const fs::path reference_dir = test::shared_dir() / "reference" / "models" / "gpt2";
  auto reference = models::load_model(reference_dir);
  const std::vector<int64_t> ids = {5, 17, 300, 2, 999, 41};
  models::NullTaps none;
  models::Inputs inputs;
  inputs.input_ids = at::tensor(ids, at::kLong).unsqueeze(0);
  const at::Tensor want_logits = reference->forward(inputs, none, true);
  for (const size_t misalign : {1, 2, 3, 4}) {
    CAPTURE(misalign);
    auto model =
        models::load_model(make_fixture("unaligned", config_of("gpt2"), entries_of("gpt2"), misalign));
    for (int64_t layer : {0, 1})
      CHECK(at::equal(attention_of(*model, ids, layer), attention_of(*reference, ids, layer)));
    CHECK(at::equal(model->forward(inputs, none, true), want_logits));
  }
  auto entries = entries_of("gpt2");
  for (auto& e : entries) {
    const size_t n = e.bytes.size() / 4;
    std::string out(n * 8, '\0');
    for (size_t i = 0; i < n; ++i) {
      float f;
      std::memcpy(&f, e.bytes.data() + 4 * i, 4);
      const double d = f;
      std::memcpy(&out[8 * i], &d, 8);
    }
    e.dtype = "F64";
    e.bytes = out;
  }
  auto model = models::load_model(make_fixture("f64", config_of("gpt2"), entries));
  for (int64_t layer : {0, 1})
    CHECK(at::equal(attention_of(*model, ids, layer), attention_of(*reference, ids, layer)));
  CHECK(at::equal(model->forward(inputs, none, true), want_logits));
}

TEST_CASE("inputs are validated") {
  auto model = models::load_model(test::shared_dir() / "reference" / "models" / "gpt2");
  models::NullTaps none;
  models::Inputs inputs;
  inputs.input_ids = at::tensor(std::vector<int64_t>{1, 1000}, at::kLong).unsqueeze(0);
  check_mentions(error_of<InputError>([&] { model->forward(inputs, none, false); }),
                 {"input_ids", "[0, 1000)"});
  inputs.input_ids = at::zeros({1, 257}, at::kLong);
  check_mentions(error_of<InputError>([&] { model->forward(inputs, none, false); }), {"256", "257"});
  inputs.input_ids = at::zeros({1, 4}, at::kLong);
  inputs.attention_mask = at::ones({1, 3}, at::kLong);
  check_mentions(error_of<InputError>([&] { model->forward(inputs, none, false); }),
                 {"attention_mask", "[1, 4]"});
}

TEST_CASE("mistral's sliding window is applied exactly: query i sees keys i - window < j <= i") {
  auto config = config_of("llama");
  config["model_type"] = "mistral";
  config["architectures"] = {"MistralForCausalLM"};
  config.erase("attention_bias");
  const int64_t window = 4, t = 10;
  config["sliding_window"] = window;
  auto mistral = models::load_model(make_fixture("mistral", config, entries_of("llama")));
  auto llama = models::load_model(test::shared_dir() / "reference" / "models" / "llama");
  const std::vector<int64_t> ids = {5, 17, 300, 2, 999, 41, 7, 8, 123, 64};
  for (int64_t layer : {0, 1}) {
    CAPTURE(layer);
    const at::Tensor probs = attention_of(*mistral, ids, layer)[0];  // [H,T,T]
    REQUIRE(probs.size(-1) == t);
    // the hand-built mask
    at::Tensor visible = at::zeros({t, t}, at::kBool);
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = 0; j < t; ++j) visible[i][j] = (j <= i && j > i - window);
    const at::Tensor outside = probs.masked_select(visible.logical_not().expand_as(probs));
    CHECK(outside.abs().max().item<float>() == 0.0f);  // exactly 0, as finfo.min masking gives
    CHECK(probs.masked_select(visible.expand_as(probs)).min().item<float>() > 0.0f);
    CHECK((probs.sum(-1) - 1).abs().max().item<double>() < 1e-6);
  }
  // Layer 0 sees the same scores as llama's, so its windowed softmax is llama's renormalised over
  // the window.
  const at::Tensor full = attention_of(*llama, ids, 0)[0];  // [H,T,T]
  at::Tensor in_window = at::zeros({t, t}, at::kFloat);
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = std::max<int64_t>(0, i - window + 1); j <= i; ++j) in_window[i][j] = 1.0f;
  at::Tensor expected = full * in_window;
  expected = expected / expected.sum(-1, true);
  CHECK((attention_of(*mistral, ids, 0)[0] - expected).abs().max().item<double>() < 1e-6);

  // A window at least as long as the input is no window.
  for (int64_t long_window : {t, t + 5}) {
    config["sliding_window"] = long_window;
    auto wide = models::load_model(make_fixture("mistral_wide", config, entries_of("llama")));
    for (int64_t layer : {0, 1}) CHECK(at::equal(attention_of(*wide, ids, layer), attention_of(*llama, ids, layer)));
  }
}

TEST_CASE("dynamic NTK rope_scaling runs past max_position_embeddings and is plain RoPE within it") {
  auto config = config_of("llama");
  config["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  auto dynamic = models::load_model(make_fixture("dynamic", config, entries_of("llama")));
  auto llama = models::load_model(test::shared_dir() / "reference" / "models" / "llama");
  CHECK(dynamic->info().max_positions == 0);
  const std::vector<int64_t> ids = {5, 17, 300, 2, 999, 41, 7, 8};
  CHECK(at::equal(attention_of(*dynamic, ids, 1), attention_of(*llama, ids, 1)));
  std::vector<int64_t> long_ids(300);
  for (size_t i = 0; i < long_ids.size(); ++i) long_ids[i] = static_cast<int64_t>((i * 37) % 1000);
  const at::Tensor probs = attention_of(*dynamic, long_ids, 1);
  CHECK((probs.sum(-1) - 1).abs().max().item<double>() < 1e-5);
}

namespace {

Entry f32_entry(const std::string& name, const at::Tensor& t) {
  at::Tensor c = t.to(at::kFloat).contiguous();
  return {name, "F32", c.sizes().vec(),
          std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()) * 4)};
}

at::Tensor logits_of(models::Model& model, const std::vector<int64_t>& ids) {
  models::NullTaps none;
  models::Inputs inputs;
  inputs.input_ids = at::tensor(ids, at::kLong).unsqueeze(0);
  return model.forward(inputs, none, true);
}

}  // namespace

TEST_CASE("opt: project_in / project_out when word_embed_proj_dim differs from hidden_size") {
  // Embeddings padded with zeros to 128 dims, project_in = [I | 0], project_out = [I; 0]: the same
  // network as the 64-dim reference, so attention and logits must agree.
  auto config = config_of("opt");
  config["word_embed_proj_dim"] = 128;
  auto entries = entries_of("opt");
  for (auto& e : entries)
    if (e.name == "model.decoder.embed_tokens.weight") {
      at::Tensor embed = at::from_blob(e.bytes.data(), {1000, 64}, at::kFloat);
      e = f32_entry(e.name, at::cat({embed, at::zeros({1000, 64})}, 1));
    }
  const at::Tensor eye = at::eye(64, at::kFloat);
  entries.push_back(f32_entry("model.decoder.project_in.weight", at::cat({eye, at::zeros({64, 64})}, 1)));
  entries.push_back(f32_entry("model.decoder.project_out.weight", at::cat({eye, at::zeros({64, 64})}, 0)));
  auto projected = models::load_model(make_fixture("opt_project", config, entries));
  auto opt = models::load_model(test::shared_dir() / "reference" / "models" / "opt");
  const std::vector<int64_t> ids = {2, 17, 300, 5, 999, 41};
  for (int64_t layer : {0, 1})
    CHECK((attention_of(*projected, ids, layer) - attention_of(*opt, ids, layer)).abs().max().item<double>() < 1e-6);
  CHECK((logits_of(*projected, ids) - logits_of(*opt, ids)).abs().max().item<double>() < 1e-5);
  // project_out is required when the dims differ
  entries.pop_back();
  check_mentions(error_of<CheckpointError>(
                     [&] { models::load_model(make_fixture("opt_project_missing", config, entries)); }),
                 {"model.decoder.project_out.weight", "[128, 64]"});
}

TEST_CASE("opt: post-LN layers (do_layer_norm_before false) have no final layer norm") {
  auto config = config_of("opt");
  config["do_layer_norm_before"] = false;
  // Strict loading: the pre-LN final_layer_norm is not part of a post-LN decoder.
  check_mentions(
      error_of<CheckpointError>([&] { models::load_model(make_fixture("opt_post_ln_extra", config, entries_of("opt"))); }),
      {"model.decoder.final_layer_norm.weight", "OPTForCausalLM"});
  auto entries = entries_of("opt");
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [](const Entry& e) { return e.name.rfind("model.decoder.final_layer_norm.", 0) == 0; }),
                entries.end());
  auto post_ln = models::load_model(make_fixture("opt_post_ln", config, entries));
  auto pre_ln = models::load_model(test::shared_dir() / "reference" / "models" / "opt");
  const std::vector<int64_t> ids = {2, 17, 300, 5, 999, 41};
  // Layer 0's attention input is the embedding in post-LN, its LayerNorm in pre-LN.
  const at::Tensor probs = attention_of(*post_ln, ids, 0);
  CHECK((probs.sum(-1) - 1).abs().max().item<double>() < 1e-6);
  CHECK((probs - attention_of(*pre_ln, ids, 0)).abs().max().item<double>() > 1e-3);
  CHECK(logits_of(*post_ln, ids).isfinite().all().item<bool>());
}
