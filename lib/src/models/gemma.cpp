// Gemma (Gemma team 2024): the Llama decoder with RMSNorm scaled by (1 + weight), token embeddings
// multiplied by sqrt(hidden_size), a GeGLU MLP (tanh GELU), head_dim independent of hidden_size /
// heads, multi-/grouped-query attention and an LM head tied to the embedding.
#include "atlas/core/error.hpp"
#include "models/llama.hpp"

namespace atlas::models {

namespace {

/// config.json keys of GemmaConfig (transformers 4.40), with its defaults.
LlamaConfig gemma_config(const ConfigReader& c) {
  LlamaConfig cfg;
  cfg.vocab_size = c.integer("vocab_size");
  cfg.hidden_size = c.integer("hidden_size");
  cfg.intermediate_size = c.integer("intermediate_size");
  cfg.num_hidden_layers = c.integer("num_hidden_layers");
  cfg.num_attention_heads = c.integer("num_attention_heads");
  cfg.num_key_value_heads = c.integer("num_key_value_heads", cfg.num_attention_heads);
  cfg.head_dim = c.integer("head_dim", 256);
  cfg.max_position_embeddings = c.integer("max_position_embeddings", 8192);
  // GemmaMLP reads hidden_activation and, when it is null, uses gelu_pytorch_tanh whatever
  // hidden_act says (first Gemma configs say "gelu" but the model was trained with the tanh form).
  cfg.hidden_act = parse_activation(c, "hidden_activation", "gelu_pytorch_tanh");
  cfg.rms_norm_eps = c.number("rms_norm_eps", 1e-6);
  cfg.attention_bias = c.boolean("attention_bias", false);
  cfg.attention_output_bias = cfg.attention_bias;
  cfg.tie_word_embeddings = c.boolean("tie_word_embeddings", true);
  // GemmaConfig has no rope_scaling: transformers ignores it, so a value here has no agreed meaning.
  c.require_equal("rope_scaling", nullptr);
  cfg.rms_norm_unit_offset = true;
  cfg.scale_embeddings = true;
  cfg.finish(c);
  return cfg;
}

}  // namespace

std::unique_ptr<Model> make_gemma(ModelContext& ctx) {
  return make_llama_decoder(ctx, gemma_config(ctx.config()), "GemmaForCausalLM", "GemmaModel");
}

}  // namespace atlas::models
