// Qwen2 (Qwen team 2024): the Llama decoder with biases on the q/k/v projections (none on o_proj)
// and an optional sliding window.
#include <algorithm>

#include "atlas/core/error.hpp"
#include "models/llama.hpp"

namespace atlas::models {

std::unique_ptr<Model> make_qwen2(ModelContext& ctx) {
  const ConfigReader& c = ctx.config();
  LlamaConfig config = LlamaConfig::from_hf_json(c);
  config.attention_bias = true;
  config.attention_output_bias = false;
  // Which layers slide depends on the transformers version (4.40's eager mask applies sliding_window
  // to every layer whatever use_sliding_window says; later versions only from max_window_layers on
  // and only with use_sliding_window): inputs longer than the window are refused, not guessed.
  const int64_t window = c.integer("sliding_window", 0);
  c.boolean("use_sliding_window", false);
  const int64_t longest = config.rope.max_positions();
  if (window > 0) config.max_input_tokens = longest > 0 ? std::min(window, longest) : window;
  return make_llama_decoder(ctx, config, "Qwen2ForCausalLM", "Qwen2Model");
}

}  // namespace atlas::models
