#pragma once
// The Llama decoder (pre-RMSNorm, RoPE, grouped-query attention, SwiGLU), shared by the
// architectures that are Llama up to biases, norms and config spelling: Mistral (llama.cpp), Qwen2
// (qwen2.cpp) and Gemma (gemma.cpp).
#include <memory>
#include <string>

#include "atlas/models/model.hpp"
#include "models/architectures.hpp"
#include "models/layers.hpp"
#include "models/rope.hpp"

namespace atlas::models {

/// config.json keys of LlamaConfig (and the equivalent keys of MistralConfig / Qwen2Config /
/// GemmaConfig).
struct LlamaConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless config.json says
  int64_t max_position_embeddings = 0;
  Activation hidden_act = Activation::Silu;
  double rms_norm_eps = 1e-6;
  RotaryEmbedding rope;                // rope_theta, rope_scaling
  bool attention_bias = false;         // bias on q/k/v projections
  bool attention_output_bias = false;  // bias on o_proj
  bool mlp_bias = false;
  bool tie_word_embeddings = false;
  int64_t sliding_window = 0;  // 0: attention over the whole prefix; else Mistral's window, applied exactly
  int64_t max_input_tokens = 0;  // 0: rope.max_positions(); else inputs past it are refused
  bool rms_norm_unit_offset = false;  // GemmaRMSNorm: x * rsqrt(mean(x^2) + eps) * (1 + weight)
  bool scale_embeddings = false;      // Gemma: embeddings times sqrt(hidden_size) before layer 0

  /// Reads the keys LlamaConfig defines (rope_scaling through RotaryEmbedding::from_hf_json).
  static LlamaConfig from_hf_json(const ConfigReader& c);
  /// Checks the head counts and head_dim, and reads rope_theta / rope_scaling into `rope` over
  /// head_dim; from_hf_json calls it, other readers call it once the other fields are set.
  void finish(const ConfigReader& c);
};

/// A Llama-style decoder for `config`, loaded from the keys of `head_class` ("model." + lm_head) or
/// `base_class` (bare).
std::unique_ptr<Model> make_llama_decoder(ModelContext& ctx, const LlamaConfig& config,
                                          const std::string& head_class, const std::string& base_class);

}  // namespace atlas::models
