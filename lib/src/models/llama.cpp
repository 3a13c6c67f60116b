// Llama (Touvron et al. 2023): pre-RMSNorm decoder with rotary position embeddings (rotate_half
// convention), grouped-query attention and a SwiGLU MLP. Mistral is the same network with a
// sliding attention window.
#include "models/llama.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "atlas/core/error.hpp"

namespace atlas::models {

LlamaConfig LlamaConfig::from_hf_json(const ConfigReader& c) {
  LlamaConfig cfg;
  cfg.vocab_size = c.integer("vocab_size");
  cfg.hidden_size = c.integer("hidden_size");
  cfg.intermediate_size = c.integer("intermediate_size");
  cfg.num_hidden_layers = c.integer("num_hidden_layers");
  cfg.num_attention_heads = c.integer("num_attention_heads");
  cfg.num_key_value_heads = c.integer("num_key_value_heads", cfg.num_attention_heads);
  if (cfg.num_attention_heads > 0)
    cfg.head_dim = c.integer("head_dim", cfg.hidden_size / cfg.num_attention_heads);
  cfg.max_position_embeddings = c.integer("max_position_embeddings", 2048);
  cfg.hidden_act = parse_activation(c, "hidden_act", "silu");
  cfg.rms_norm_eps = c.number("rms_norm_eps", 1e-6);
  cfg.attention_bias = c.boolean("attention_bias", false);
  cfg.attention_output_bias = cfg.attention_bias;
  cfg.mlp_bias = c.boolean("mlp_bias", false);
  cfg.tie_word_embeddings = c.boolean("tie_word_embeddings", false);
  // pretraining_tp > 1 only splits the projections into slices in transformers; the sum is the same.
  if (c.integer("pretraining_tp", 1) < 1)
    c.reject("pretraining_tp", "a positive integer", std::to_string(c.integer("pretraining_tp")));
  cfg.finish(c);
  return cfg;
}

void LlamaConfig::finish(const ConfigReader& c) {
  if (num_attention_heads <= 0)
    c.reject("num_attention_heads", "a positive integer", std::to_string(num_attention_heads));
  if (num_key_value_heads <= 0 || num_attention_heads % num_key_value_heads != 0)
    c.reject("num_key_value_heads", fmt::format("a positive divisor of num_attention_heads {}", num_attention_heads),
             std::to_string(num_key_value_heads));
  if (head_dim <= 0 || head_dim % 2 != 0) c.reject("head_dim", "a positive even number", std::to_string(head_dim));
  rope = RotaryEmbedding::from_hf_json(c, head_dim, c.number("rope_theta", 10000.0), max_position_embeddings);
}

namespace {

struct LlamaLayer {
  at::Tensor input_layernorm_weight, post_attention_layernorm_weight;
  at::Tensor q_proj_weight, q_proj_bias, k_proj_weight, k_proj_bias, v_proj_weight, v_proj_bias;
  at::Tensor o_proj_weight, o_proj_bias;
  at::Tensor gate_proj_weight, gate_proj_bias, up_proj_weight, up_proj_bias, down_proj_weight, down_proj_bias;
};

class LlamaDecoder final : public Model {
 public:
  LlamaDecoder(ModelContext& ctx, const LlamaConfig& config, const std::string& head_class,
               const std::string& base_class)
      : config_(config) {
    const LlamaConfig& c = config_;
    Layout layout = resolve_layout(ctx, head_class, base_class, "model.");
    // RoPE has no table that bounds the length, but positions past the trained context are out of
    // distribution: refuse them like the absolute-position models do (unless rope_scaling is dynamic).
    info_ = model_info(ctx, layout,
                       {c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.hidden_size,
                        c.vocab_size, c.max_input_tokens > 0 ? c.max_input_tokens : c.rope.max_positions(), true});
    // Dynamic NTK scaling changes the rotation of every position with the length: no cache path.
    info_.kv_cache = c.rope.scaling.type != RopeScaling::Type::Dynamic;

    WeightStore& w = ctx.weights();
    const std::string& p = layout.prefix;
    const int64_t d = c.hidden_size, ff = c.intermediate_size, hd = c.head_dim;
    const int64_t q_dim = c.num_attention_heads * hd, kv_dim = c.num_key_value_heads * hd;
    auto bias = [&w](bool present, const std::string& name, int64_t n) {
      return present ? w.take(name, {n}) : at::Tensor();
    };
    // GemmaRMSNorm multiplies by (1 + weight) in float32: the same float32 numbers as 1 + weight here.
    auto norm = [&](const std::string& name) {
      at::Tensor weight = w.take(name, {d});
      return c.rms_norm_unit_offset ? 1.0 + weight : weight;
    };
    embed_tokens_ = w.take(p + "embed_tokens.weight", {c.vocab_size, d});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string l = fmt::format("{}layers.{}.", p, i);
      LlamaLayer x;
      x.input_layernorm_weight = norm(l + "input_layernorm.weight");
      x.post_attention_layernorm_weight = norm(l + "post_attention_layernorm.weight");
      x.q_proj_weight = w.take_linear(l + "self_attn.q_proj.weight", {q_dim, d});
      x.q_proj_bias = bias(c.attention_bias, l + "self_attn.q_proj.bias", q_dim);
      x.k_proj_weight = w.take_linear(l + "self_attn.k_proj.weight", {kv_dim, d});
      x.k_proj_bias = bias(c.attention_bias, l + "self_attn.k_proj.bias", kv_dim);
      x.v_proj_weight = w.take_linear(l + "self_attn.v_proj.weight", {kv_dim, d});
      x.v_proj_bias = bias(c.attention_bias, l + "self_attn.v_proj.bias", kv_dim);
      x.o_proj_weight = w.take_linear(l + "self_attn.o_proj.weight", {d, q_dim});
      x.o_proj_bias = bias(c.attention_output_bias, l + "self_attn.o_proj.bias", d);
      x.gate_proj_weight = w.take_linear(l + "mlp.gate_proj.weight", {ff, d});
      x.gate_proj_bias = bias(c.mlp_bias, l + "mlp.gate_proj.bias", ff);
      x.up_proj_weight = w.take_linear(l + "mlp.up_proj.weight", {ff, d});
      x.up_proj_bias = bias(c.mlp_bias, l + "mlp.up_proj.bias", ff);
      x.down_proj_weight = w.take_linear(l + "mlp.down_proj.weight", {d, ff});
      x.down_proj_bias = bias(c.mlp_bias, l + "mlp.down_proj.bias", d);
      layers_.push_back(std::move(x));
    }
    norm_weight_ = norm(p + "norm.weight");
    if (layout.has_head)
      lm_head_weight_ = w.take_or_tie("lm_head.weight", {c.vocab_size, d}, c.tie_word_embeddings, embed_tokens_);
    w.ignore_buffers({"rotary_emb.inv_freq"});
  }

  const ModelInfo& info() const override { return info_; }

  at::Tensor forward(const Inputs& raw_inputs, Taps& taps, bool compute_logits) override {
    c10::InferenceMode guard(!raw_inputs.autograd);
    if (compute_logits) require_lm_head(info_);
    const LlamaConfig& c = config_;
    const Inputs inputs = checked_inputs(raw_inputs, info_, embed_tokens_.device());
    const int64_t t = inputs.input_ids.size(1);
    const int64_t past = inputs.past ? inputs.past->length() : 0;  // T_past: positions past .. past+t-1
    const auto float_options = embed_tokens_.options();

    at::Tensor hidden_states = word_embeddings(embed_tokens_, inputs, taps);  // [B,T,D]
    if (c.scale_embeddings) {
      // GemmaModel: hidden_states * torch.tensor(hidden_size**0.5, dtype=hidden_states.dtype)
      const at::Tensor normalizer =
          at::scalar_tensor(std::sqrt(static_cast<double>(c.hidden_size)), float_options);
      hidden_states = hidden_states * normalizer;
    }
    at::Tensor attention_mask = causal_mask(inputs.attention_mask, t, c.sliding_window, float_options, past);
    // [1,1,T,d]; with a cache the rows of positions past .. past+t-1 (the numbers of a full run).
    auto [cos, sin] = c.rope.cos_sin(past, t, embed_tokens_.device());

    const int64_t n_rep = c.num_attention_heads / c.num_key_value_heads;
    const double scale = std::sqrt(static_cast<double>(c.head_dim));
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      emit_if(taps, "hidden", i, hidden_states);
      const LlamaLayer& l = layers_[static_cast<size_t>(i)];

      at::Tensor residual = hidden_states;
      at::Tensor x = rms_norm(hidden_states, l.input_layernorm_weight, c.rms_norm_eps);
      at::Tensor query_states =
          split_heads(project(x, l.q_proj_weight, l.q_proj_bias), c.num_attention_heads);  // [B,H,T,d]
      at::Tensor key_states =
          split_heads(project(x, l.k_proj_weight, l.k_proj_bias), c.num_key_value_heads);  // [B,KV,T,d]
      at::Tensor value_states =
          split_heads(project(x, l.v_proj_weight, l.v_proj_bias), c.num_key_value_heads);
      query_states = apply_rotary(query_states, cos, sin);
      key_states = apply_rotary(key_states, cos, sin);
      // With a cache: past + new keys / values [1,KV,past+T,d], stored before the GQA repeat.
      key_states = append_past(inputs.past, true, i, key_states);
      at::Tensor new_values = value_states;
      value_states = append_past(inputs.past, false, i, value_states);
      key_states = repeat_kv(key_states, n_rep);  // [B,H,past+T,d]
      value_states = repeat_kv(value_states, n_rep);

      at::Tensor attn_weights = at::matmul(query_states, key_states.transpose(2, 3)) / scale;  // [B,H,T,past+T]
      attn_weights = attn_weights + attention_mask;
      attn_weights = at::softmax(attn_weights, -1, at::kFloat).to(query_states.scalar_type());
      emit_if(taps, "attn_probs", i, attn_weights);
      if (taps.wants(kValueNorms, i))  // of this forward's positions
        taps.emit(kValueNorms, i, value_norms(repeat_kv(new_values, n_rep), l.o_proj_weight));

      attn_weights = apply_head_mask(attn_weights, inputs, i);
      at::Tensor attn_output = merge_heads(at::matmul(attn_weights, value_states));  // [B,T,H*d]
      attn_output = project(attn_output, l.o_proj_weight, l.o_proj_bias);         // [B,T,D]
      hidden_states = residual + attn_output;

      residual = hidden_states;
      x = rms_norm(hidden_states, l.post_attention_layernorm_weight, c.rms_norm_eps);
      at::Tensor gate =
          activate(c.hidden_act, project(x, l.gate_proj_weight, l.gate_proj_bias));  // [B,T,F]
      x = project(gate * project(x, l.up_proj_weight, l.up_proj_bias), l.down_proj_weight,
                     l.down_proj_bias);
      hidden_states = residual + x;
    }
    hidden_states = rms_norm(hidden_states, norm_weight_, c.rms_norm_eps);
    emit_if(taps, "hidden", c.num_hidden_layers, hidden_states);
    if (!compute_logits) return {};
    if (inputs.last_logits_only) return last_logits(hidden_states, lm_head_weight_).to(at::kFloat);   // [B,1,V]
    return project(hidden_states, lm_head_weight_).to(at::kFloat);  // [B,T,V]
  }

 private:
  LlamaConfig config_;
  ModelInfo info_;
  at::Tensor embed_tokens_, norm_weight_, lm_head_weight_;
  std::vector<LlamaLayer> layers_;
};

}  // namespace

std::unique_ptr<Model> make_llama_decoder(ModelContext& ctx, const LlamaConfig& config,
                                          const std::string& head_class, const std::string& base_class) {
  return std::make_unique<LlamaDecoder>(ctx, config, head_class, base_class);
}

std::unique_ptr<Model> make_llama(ModelContext& ctx) {
  return make_llama_decoder(ctx, LlamaConfig::from_hf_json(ctx.config()), "LlamaForCausalLM", "LlamaModel");
}

std::unique_ptr<Model> make_mistral(ModelContext& ctx) {
  LlamaConfig config = LlamaConfig::from_hf_json(ctx.config());
  config.sliding_window = ctx.config().integer("sliding_window", 0);
  if (config.sliding_window < 0)
    ctx.config().reject("sliding_window", "null or a positive integer", std::to_string(config.sliding_window));
  return make_llama_decoder(ctx, config, "MistralForCausalLM", "MistralModel");
}

}  // namespace atlas::models
