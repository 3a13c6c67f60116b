#pragma once
/// The model interface. Each architecture is one file in lib/src/models/ registered by one line in
/// registry.cpp. The forward pass hands every named intermediate to a tap, so extraction is not a
/// special case of the model code. This header pulls in ATen: include it only from models/ and
/// extract/ sources, never from widely included headers.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace atlas::models {

struct ModelInfo {
  std::string model_type;        // config.json "model_type": "gpt2", "bert", "llama", ...
  std::string model_class;       // config.json architectures[0], e.g. "LlamaForCausalLM"
  int64_t num_layers = 0;
  int64_t num_heads = 0;         // query heads (attention maps have this many heads)
  int64_t num_kv_heads = 0;
  int64_t hidden_size = 0;
  int64_t vocab_size = 0;
  int64_t max_positions = 0;     // 0 when unbounded (relative positions)
  bool causal = false;
  int64_t pad_token_id = -1;     // -1 when the config has none
  bool has_lm_head = true;       // false for a bare base model (e.g. BertModel): no logits
  std::string checkpoint_format;                        // "safetensors" or "pytorch_bin"
  std::vector<std::filesystem::path> checkpoint_files;  // for provenance (io::checkpoint_hash)
};

struct Inputs {
  at::Tensor input_ids;          // [B,T] int64
  at::Tensor attention_mask;     // [B,T] int64 (1 = real token); undefined means all ones
  at::Tensor token_type_ids;     // [B,T] int64; undefined means zeros
};

/// Receives named intermediates. Names:
///   "attn_probs" layer l  [B,H,T,T] softmax output (eager attention, before dropout)
///   "hidden"     layer i  [B,T,D] input of layer i; i = num_layers is the final output (after the
///                         final norm for pre-LN models), as transformers' output_hidden_states
class Taps {
 public:
  virtual ~Taps() = default;
  /// Lets the model skip work nobody asked for.
  virtual bool wants(const std::string& name, int64_t layer) const = 0;
  virtual void emit(const std::string& name, int64_t layer, const at::Tensor& value) = 0;
};

/// A tap that keeps nothing.
class NullTaps final : public Taps {
 public:
  bool wants(const std::string&, int64_t) const override { return false; }
  void emit(const std::string&, int64_t, const at::Tensor&) override {}
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  /// Runs the model in inference mode. Returns logits [B,T,V] when `compute_logits`, else an
  /// undefined tensor (the LM head is skipped).
  virtual at::Tensor forward(const Inputs& inputs, Taps& taps, bool compute_logits) = 0;
};

struct LoadOptions {
  std::string device = "cpu";    // "cpu", "cuda", "cuda:1"
};

/// Reads config.json, picks the architecture by model_type, loads weights strictly (a missing
/// tensor, a wrong shape or an unclaimed tensor is a CheckpointError naming tensor, file, expected
/// and got). Unknown model_type: ConfigError listing the supported ones.
std::unique_ptr<Model> load_model(const std::filesystem::path& dir, const LoadOptions& options = {});

/// model_type values load_model accepts.
std::vector<std::string> supported_model_types();

}  // namespace atlas::models
