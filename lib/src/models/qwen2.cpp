// Qwen2 (Qwen team 2024): the Llama decoder with biases on the q/k/v projections (none on o_proj)
// and an optional sliding window.
#include "atlas/core/error.hpp"
#include "models/llama.hpp"

namespace atlas::models {

std::unique_ptr<Model> make_qwen2(ModelContext& ctx) {
  const ConfigReader& c = ctx.config();
  LlamaConfig config = LlamaConfig::from_hf_json(c);
  config.attention_bias = true;
  config.attention_output_bias = false;
  if (c.boolean("use_sliding_window", false)) config.sliding_window = c.integer("sliding_window", 0);
  return make_llama_decoder(ctx, config, "Qwen2ForCausalLM", "Qwen2Model");
}

}  // namespace atlas::models
