#pragma once
// What registry.cpp needs from each architecture file: one factory per architecture, and the
// loading context the factories share.
#include <c10/core/Device.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "atlas/models/model.hpp"
#include "models/config_reader.hpp"
#include "models/weights.hpp"

namespace atlas::models {

class ModelContext {
 public:
  /// `linear_layout`: WeightStore::set_linear_layout of the weights (LoadOptions::linear_layout).
  ModelContext(std::filesystem::path dir, ConfigReader config, c10::Device device, bool linear_layout = false);
  const std::filesystem::path& dir() const { return dir_; }
  const ConfigReader& config() const { return config_; }
  c10::Device device() const { return device_; }
  /// Opens the checkpoint on first use, so that config errors come before weight errors.
  WeightStore& weights();

 private:
  std::filesystem::path dir_;
  ConfigReader config_;
  c10::Device device_;
  bool linear_layout_ = false;
  std::unique_ptr<WeightStore> weights_;
};

/// Which class the checkpoint was saved from and how its keys look.
struct Layout {
  std::string model_class;  // architectures[0], or inferred from the keys when absent
  std::string prefix;       // "transformer." / "bert." / "model." ..., or "" for bare base-model keys
  bool has_head = false;
};
/// The head class (e.g. "GPT2LMHeadModel") has an LM head; the base class ("GPT2Model") has not.
/// The prefix is `prefix` when some key starts with it, else "" (hub checkpoints such as "gpt2"
/// store the base keys without prefix even under the head class). Other classes: ConfigError.
Layout resolve_layout(ModelContext& ctx, const std::string& head_class, const std::string& base_class,
                      const std::string& prefix);
/// The sizes of a model that its ModelInfo reports.
struct ModelDims {
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // 0: num_heads
  int64_t hidden_size = 0;
  int64_t vocab_size = 0;
  int64_t max_positions = 0;  // 0: unbounded
  bool causal = false;
};
/// ModelInfo from config.json (model_type, pad_token_id), the layout, the checkpoint and `dims`.
ModelInfo model_info(ModelContext& ctx, const Layout& layout, const ModelDims& dims);

using Factory = std::unique_ptr<Model> (*)(ModelContext& ctx);

std::unique_ptr<Model> make_gpt2(ModelContext& ctx);
std::unique_ptr<Model> make_bert(ModelContext& ctx);
std::unique_ptr<Model> make_distilbert(ModelContext& ctx);
std::unique_ptr<Model> make_roberta(ModelContext& ctx);
std::unique_ptr<Model> make_xlm_roberta(ModelContext& ctx);
std::unique_ptr<Model> make_llama(ModelContext& ctx);
std::unique_ptr<Model> make_mistral(ModelContext& ctx);
std::unique_ptr<Model> make_qwen2(ModelContext& ctx);
std::unique_ptr<Model> make_gpt_neox(ModelContext& ctx);
std::unique_ptr<Model> make_gemma(ModelContext& ctx);
std::unique_ptr<Model> make_phi(ModelContext& ctx);
std::unique_ptr<Model> make_opt(ModelContext& ctx);
std::unique_ptr<Model> make_t5(ModelContext& ctx);
std::unique_ptr<Model> make_mt5(ModelContext& ctx);
std::unique_ptr<Model> make_bart(ModelContext& ctx);

}  // namespace atlas::models
