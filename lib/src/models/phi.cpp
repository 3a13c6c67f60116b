// Phi-1 / Phi-1.5 / Phi-2 (Microsoft 2023, PhiForCausalLM): one LayerNorm per layer feeding attention
// and MLP in parallel, partial rotary embeddings (the first partial_rotary_factor of each head's
// dimensions), biases everywhere, a final LayerNorm and an LM head with a bias.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "atlas/core/error.hpp"
#include "models/architectures.hpp"
#include "models/layers.hpp"
#include "models/rope.hpp"

namespace atlas::models {

namespace {

struct PhiConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t max_position_embeddings = 2048;
  Activation hidden_act = Activation::GeluNew;
  double layer_norm_eps = 1e-5;
  double partial_rotary_factor = 0.5;
  bool qk_layernorm = false;
  bool tie_word_embeddings = false;
  int64_t head_dim = 0;   // hidden_size / num_attention_heads
  RotaryEmbedding rope;   // rope_theta, rope_scaling over int(partial_rotary_factor * head_dim) dims
  // resid_pdrop, embd_pdrop, attention_dropout: dropout, inactive at inference.

  static PhiConfig from_hf_json(const ConfigReader& c) {
    PhiConfig cfg;
    cfg.vocab_size = c.integer("vocab_size");
    cfg.hidden_size = c.integer("hidden_size");
    cfg.intermediate_size = c.integer("intermediate_size");
    cfg.num_hidden_layers = c.integer("num_hidden_layers");
    cfg.num_attention_heads = c.integer("num_attention_heads");
    cfg.num_key_value_heads = c.integer("num_key_value_heads", cfg.num_attention_heads);
    cfg.max_position_embeddings = c.integer("max_position_embeddings", 2048);
    cfg.hidden_act = parse_activation(c, "hidden_act", "gelu_new");
    cfg.layer_norm_eps = c.number("layer_norm_eps", 1e-5);
    cfg.partial_rotary_factor = c.number("partial_rotary_factor", 0.5);
    cfg.qk_layernorm = c.boolean("qk_layernorm", false);
    cfg.tie_word_embeddings = c.boolean("tie_word_embeddings", false);
    if (cfg.num_attention_heads <= 0 || cfg.hidden_size % cfg.num_attention_heads != 0)
      c.reject("num_attention_heads", fmt::format("a positive divisor of hidden_size {}", cfg.hidden_size),
               std::to_string(cfg.num_attention_heads));
    if (cfg.num_key_value_heads <= 0 || cfg.num_attention_heads % cfg.num_key_value_heads != 0)
      c.reject("num_key_value_heads",
               fmt::format("a positive divisor of num_attention_heads {}", cfg.num_attention_heads),
               std::to_string(cfg.num_key_value_heads));
    cfg.head_dim = cfg.hidden_size / cfg.num_attention_heads;
    // transformers 4.40 applies LayerNorm(head_dim) to the flat [B,T,heads*head_dim] projection,
    // which only runs with one head.
    if (cfg.qk_layernorm && cfg.num_attention_heads != 1)
      c.reject("qk_layernorm",
               fmt::format("false with {} heads (transformers' q/k LayerNorm only runs with one head)",
                           cfg.num_attention_heads),
               "true");
    const auto rotary_dim = static_cast<int64_t>(cfg.partial_rotary_factor * static_cast<double>(cfg.head_dim));
    if (!(cfg.partial_rotary_factor > 0 && cfg.partial_rotary_factor <= 1) || rotary_dim <= 0 || rotary_dim % 2)
      c.reject("partial_rotary_factor",
               fmt::format("a fraction in (0, 1] giving an even, nonzero number of the {} head dimensions",
                           cfg.head_dim),
               fmt::format("{}", cfg.partial_rotary_factor));
    cfg.rope = RotaryEmbedding::from_hf_json(c, rotary_dim, c.number("rope_theta", 10000.0),
                                             cfg.max_position_embeddings);
    cfg.rope.dynamic_base_in_float32 = false;  // PhiDynamicNTKScalingRotaryEmbedding: a Python int seq_len
    return cfg;
  }
};

struct PhiLayer {
  at::Tensor input_layernorm_weight, input_layernorm_bias;
  at::Tensor q_proj_weight, q_proj_bias, k_proj_weight, k_proj_bias, v_proj_weight, v_proj_bias;
  at::Tensor q_layernorm_weight, q_layernorm_bias, k_layernorm_weight, k_layernorm_bias;
  at::Tensor dense_weight, dense_bias;
  at::Tensor fc1_weight, fc1_bias, fc2_weight, fc2_bias;
};

class Phi final : public Model {
 public:
  explicit Phi(ModelContext& ctx) : config_(PhiConfig::from_hf_json(ctx.config())) {
    const PhiConfig& c = config_;
    Layout layout = resolve_layout(ctx, "PhiForCausalLM", "PhiModel", "model.");
    info_ = model_info(ctx, layout,
                       {c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.hidden_size,
                        c.vocab_size, c.rope.max_positions(), true});
    // Dynamic NTK scaling rotates every position by a base that depends on the whole length.
    info_.kv_cache = c.rope.scaling.type != RopeScaling::Type::Dynamic;

    WeightStore& w = ctx.weights();
    const std::string& p = layout.prefix;
    const int64_t d = c.hidden_size, ff = c.intermediate_size, hd = c.head_dim;
    const int64_t q_dim = c.num_attention_heads * hd, kv_dim = c.num_key_value_heads * hd;
    embed_tokens_ = w.take(p + "embed_tokens.weight", {c.vocab_size, d});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string l = fmt::format("{}layers.{}.", p, i);
      PhiLayer x;
      x.input_layernorm_weight = w.take(l + "input_layernorm.weight", {d});
      x.input_layernorm_bias = w.take(l + "input_layernorm.bias", {d});
      x.q_proj_weight = w.take_linear(l + "self_attn.q_proj.weight", {q_dim, d});
      x.q_proj_bias = w.take(l + "self_attn.q_proj.bias", {q_dim});
      x.k_proj_weight = w.take_linear(l + "self_attn.k_proj.weight", {kv_dim, d});
      x.k_proj_bias = w.take(l + "self_attn.k_proj.bias", {kv_dim});
      x.v_proj_weight = w.take_linear(l + "self_attn.v_proj.weight", {kv_dim, d});
      x.v_proj_bias = w.take(l + "self_attn.v_proj.bias", {kv_dim});
      if (c.qk_layernorm) {
        x.q_layernorm_weight = w.take(l + "self_attn.q_layernorm.weight", {hd});
        x.q_layernorm_bias = w.take(l + "self_attn.q_layernorm.bias", {hd});
        x.k_layernorm_weight = w.take(l + "self_attn.k_layernorm.weight", {hd});
        x.k_layernorm_bias = w.take(l + "self_attn.k_layernorm.bias", {hd});
      }
      x.dense_weight = w.take_linear(l + "self_attn.dense.weight", {d, q_dim});
      x.dense_bias = w.take(l + "self_attn.dense.bias", {d});
      x.fc1_weight = w.take_linear(l + "mlp.fc1.weight", {ff, d});
      x.fc1_bias = w.take(l + "mlp.fc1.bias", {ff});
      x.fc2_weight = w.take_linear(l + "mlp.fc2.weight", {d, ff});
      x.fc2_bias = w.take(l + "mlp.fc2.bias", {d});
      layers_.push_back(std::move(x));
    }
    final_layernorm_weight_ = w.take(p + "final_layernorm.weight", {d});
    final_layernorm_bias_ = w.take(p + "final_layernorm.bias", {d});
    if (layout.has_head) {
      lm_head_weight_ = w.take_or_tie("lm_head.weight", {c.vocab_size, d}, c.tie_word_embeddings, embed_tokens_);
      lm_head_bias_ = w.take("lm_head.bias", {c.vocab_size});
    }
    w.ignore_buffers({"rotary_emb.inv_freq"});
  }

  const ModelInfo& info() const override { return info_; }

  at::Tensor forward(const Inputs& raw_inputs, Taps& taps, bool compute_logits) override {
    c10::InferenceMode guard;
    if (compute_logits) require_lm_head(info_);
    const PhiConfig& c = config_;
    const Inputs inputs = checked_inputs(raw_inputs, info_, embed_tokens_.device());
    const int64_t t = inputs.input_ids.size(1);
    const int64_t past = inputs.past ? inputs.past->length() : 0;  // T_past: positions past .. past+t-1
    const auto float_options = embed_tokens_.options();

    at::Tensor hidden_states = at::embedding(embed_tokens_, inputs.input_ids);  // [B,T,D]
    at::Tensor attention_mask = causal_mask(inputs.attention_mask, t, 0, float_options, past);  // [B|1,1,T,past+T]
    // [1,1,T,r]; with a cache the rows of positions past .. past+t-1 (the numbers of a full run).
    auto [cos, sin] = c.rope.cos_sin(past, t, embed_tokens_.device());
    const int64_t n_rep = c.num_attention_heads / c.num_key_value_heads;
    const double scale = std::sqrt(static_cast<double>(c.head_dim));

    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      emit_if(taps, "hidden", i, hidden_states);
      const PhiLayer& l = layers_[static_cast<size_t>(i)];

      at::Tensor residual = hidden_states;
      at::Tensor x = layer_norm(hidden_states, l.input_layernorm_weight, l.input_layernorm_bias, c.layer_norm_eps);
      at::Tensor query_states = project(x, l.q_proj_weight, l.q_proj_bias);  // [B,T,H*d]
      at::Tensor key_states = project(x, l.k_proj_weight, l.k_proj_bias);    // [B,T,KV*d]
      at::Tensor value_states = project(x, l.v_proj_weight, l.v_proj_bias);
      if (c.qk_layernorm) {
        query_states = layer_norm(query_states, l.q_layernorm_weight, l.q_layernorm_bias, c.layer_norm_eps);
        key_states = layer_norm(key_states, l.k_layernorm_weight, l.k_layernorm_bias, c.layer_norm_eps);
      }
      query_states = apply_rotary(split_heads(query_states, c.num_attention_heads), cos, sin);  // [B,H,T,d]
      key_states = apply_rotary(split_heads(key_states, c.num_key_value_heads), cos, sin);      // [B,KV,T,d]
      value_states = split_heads(value_states, c.num_key_value_heads);
      // With a cache: past + new keys / values [1,KV,past+T,d], stored before the GQA repeat.
      key_states = append_past(inputs.past, true, i, key_states);
      value_states = append_past(inputs.past, false, i, value_states);
      key_states = repeat_kv(key_states, n_rep);  // [B,H,past+T,d]
      value_states = repeat_kv(value_states, n_rep);

      // Phi-2 upcasts queries and keys to float32 against overflow.
      at::Tensor attn_weights =
          at::matmul(query_states.to(at::kFloat), key_states.to(at::kFloat).transpose(2, 3)) / scale;  // [B,H,T,past+T]
      attn_weights = attn_weights + attention_mask;
      attn_weights = at::softmax(attn_weights, -1, at::kFloat).to(value_states.scalar_type());
      emit_if(taps, "attn_probs", i, attn_weights);

      at::Tensor attn_output = merge_heads(at::matmul(attn_weights, value_states));  // [B,T,H*d]
      attn_output = project(attn_output, l.dense_weight, l.dense_bias);           // [B,T,D]
      at::Tensor feed_forward_hidden_states =
          project(activate(c.hidden_act, project(x, l.fc1_weight, l.fc1_bias)), l.fc2_weight, l.fc2_bias);
      hidden_states = attn_output + feed_forward_hidden_states + residual;
    }
    hidden_states = layer_norm(hidden_states, final_layernorm_weight_, final_layernorm_bias_, c.layer_norm_eps);
    emit_if(taps, "hidden", c.num_hidden_layers, hidden_states);
    if (!compute_logits) return {};
    if (inputs.last_logits_only) hidden_states = hidden_states.narrow(1, t - 1, 1);   // -> [B,1,V]
    return project(hidden_states, lm_head_weight_, lm_head_bias_).to(at::kFloat);  // [B,T,V]
  }

 private:
  PhiConfig config_;
  ModelInfo info_;
  at::Tensor embed_tokens_, final_layernorm_weight_, final_layernorm_bias_, lm_head_weight_, lm_head_bias_;
  std::vector<PhiLayer> layers_;
};

}  // namespace

std::unique_ptr<Model> make_phi(ModelContext& ctx) { return std::make_unique<Phi>(ctx); }

}  // namespace atlas::models
