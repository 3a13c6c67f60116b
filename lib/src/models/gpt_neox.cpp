// GPT-NeoX (Black et al. 2022): pre-LN decoder with a fused [q|k|v]-per-head projection, partial
// rotary embeddings (first rotary_pct of each head's dimensions) and, by default, parallel
// attention and MLP residual branches.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "atlas/core/error.hpp"
#include "models/architectures.hpp"
#include "models/layers.hpp"
#include "models/rope.hpp"

namespace atlas::models {

namespace {

struct GptNeoXConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 2048;
  Activation hidden_act = Activation::Gelu;
  double rotary_pct = 0.25;
  RotaryEmbedding rope;  // rotary_emb_base, rope_scaling over the rotary dimensions
  double layer_norm_eps = 1e-5;
  bool use_parallel_residual = true;
  bool attention_bias = true;
  bool tie_word_embeddings = false;

  static GptNeoXConfig from_hf_json(const ConfigReader& c) {
    GptNeoXConfig cfg;
    cfg.vocab_size = c.integer("vocab_size");
    cfg.hidden_size = c.integer("hidden_size");
    cfg.num_hidden_layers = c.integer("num_hidden_layers");
    cfg.num_attention_heads = c.integer("num_attention_heads");
    cfg.intermediate_size = c.integer("intermediate_size");
    cfg.max_position_embeddings = c.integer("max_position_embeddings", 2048);
    cfg.hidden_act = parse_activation(c, "hidden_act", "gelu");
    cfg.rotary_pct = c.number("rotary_pct", 0.25);
    cfg.layer_norm_eps = c.number("layer_norm_eps", 1e-5);
    cfg.use_parallel_residual = c.boolean("use_parallel_residual", true);
    cfg.attention_bias = c.boolean("attention_bias", true);
    cfg.tie_word_embeddings = c.boolean("tie_word_embeddings", false);
    if (cfg.num_attention_heads <= 0 || cfg.hidden_size % cfg.num_attention_heads != 0)
      c.reject("num_attention_heads", fmt::format("a positive divisor of hidden_size {}", cfg.hidden_size),
               std::to_string(cfg.num_attention_heads));
    if (!(cfg.rotary_pct > 0.0 && cfg.rotary_pct <= 1.0))
      c.reject("rotary_pct", "a number in (0, 1]", std::to_string(cfg.rotary_pct));
    const int64_t head_size = cfg.hidden_size / cfg.num_attention_heads;
    const auto rotary_ndims = static_cast<int64_t>(static_cast<double>(head_size) * cfg.rotary_pct);
    if (rotary_ndims % 2 != 0 || rotary_ndims == 0)
      c.reject("rotary_pct",
               fmt::format("a fraction giving an even, nonzero number of the {} head dimensions", head_size),
               std::to_string(cfg.rotary_pct));
    cfg.rope = RotaryEmbedding::from_hf_json(c, rotary_ndims, c.number("rotary_emb_base", 10000.0),
                                             cfg.max_position_embeddings);
    cfg.rope.dynamic_base_in_float32 = false;
    return cfg;
  }
};

struct GptNeoXLayer {
  at::Tensor input_layernorm_weight, input_layernorm_bias, post_attention_layernorm_weight,
      post_attention_layernorm_bias;
  at::Tensor query_key_value_weight, query_key_value_bias, dense_weight, dense_bias;
  at::Tensor dense_h_to_4h_weight, dense_h_to_4h_bias, dense_4h_to_h_weight, dense_4h_to_h_bias;
};

class GptNeoX final : public Model {
 public:
  explicit GptNeoX(ModelContext& ctx) : config_(GptNeoXConfig::from_hf_json(ctx.config())) {
    const GptNeoXConfig& c = config_;
    head_size_ = c.hidden_size / c.num_attention_heads;
    Layout layout = resolve_layout(ctx, "GPTNeoXForCausalLM", "GPTNeoXModel", "gpt_neox.");
    // The trained context bounds the input (RoPE has no table), unless rope_scaling is dynamic.
    info_ = model_info(ctx, layout,
                       {c.num_hidden_layers, c.num_attention_heads, c.num_attention_heads, c.hidden_size,
                        c.vocab_size, c.rope.max_positions(), true});
    // Dynamic NTK scaling rotates every position by a base that depends on the whole length.
    info_.kv_cache = c.rope.scaling.type != RopeScaling::Type::Dynamic;

    WeightStore& w = ctx.weights();
    const std::string& p = layout.prefix;
    const int64_t d = c.hidden_size, ff = c.intermediate_size;
    auto bias = [&](const std::string& name, int64_t n) {
      return c.attention_bias ? w.take(name, {n}) : at::Tensor();
    };
    embed_in_ = w.take(p + "embed_in.weight", {c.vocab_size, d});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string l = fmt::format("{}layers.{}.", p, i);
      GptNeoXLayer x;
      x.input_layernorm_weight = w.take(l + "input_layernorm.weight", {d});
      x.input_layernorm_bias = w.take(l + "input_layernorm.bias", {d});
      x.post_attention_layernorm_weight = w.take(l + "post_attention_layernorm.weight", {d});
      x.post_attention_layernorm_bias = w.take(l + "post_attention_layernorm.bias", {d});
      x.query_key_value_weight = w.take_linear(l + "attention.query_key_value.weight", {3 * d, d});
      x.query_key_value_bias = bias(l + "attention.query_key_value.bias", 3 * d);
      x.dense_weight = w.take_linear(l + "attention.dense.weight", {d, d});
      x.dense_bias = bias(l + "attention.dense.bias", d);
      x.dense_h_to_4h_weight = w.take_linear(l + "mlp.dense_h_to_4h.weight", {ff, d});
      x.dense_h_to_4h_bias = w.take(l + "mlp.dense_h_to_4h.bias", {ff});
      x.dense_4h_to_h_weight = w.take_linear(l + "mlp.dense_4h_to_h.weight", {d, ff});
      x.dense_4h_to_h_bias = w.take(l + "mlp.dense_4h_to_h.bias", {d});
      layers_.push_back(std::move(x));
    }
    final_layer_norm_weight_ = w.take(p + "final_layer_norm.weight", {d});
    final_layer_norm_bias_ = w.take(p + "final_layer_norm.bias", {d});
    if (layout.has_head)
      embed_out_ = w.take_or_tie("embed_out.weight", {c.vocab_size, d}, c.tie_word_embeddings, embed_in_);
    w.ignore_buffers({".attention.bias", ".attention.masked_bias", "rotary_emb.inv_freq"});
  }

  const ModelInfo& info() const override { return info_; }

  at::Tensor forward(const Inputs& raw_inputs, Taps& taps, bool compute_logits) override {
    c10::InferenceMode guard;
    if (compute_logits) require_lm_head(info_);
    const GptNeoXConfig& c = config_;
    const Inputs inputs = checked_inputs(raw_inputs, info_, embed_in_.device());
    const int64_t b = inputs.input_ids.size(0), t = inputs.input_ids.size(1);
    const int64_t past = inputs.past ? inputs.past->length() : 0;  // T_past: positions past .. past+t-1
    const int64_t tk = past + t;                                   // keys: positions 0 .. past+t-1
    const auto float_options = embed_in_.options();

    at::Tensor hidden_states = at::embedding(embed_in_, inputs.input_ids);                     // [B,T,D]
    at::Tensor causal_mask = causal_visible(t, past, float_options.dtype(at::kBool).device(embed_in_.device()));  // [T,past+T]
    at::Tensor padding_mask;
    if (inputs.attention_mask.defined())
      padding_mask = additive_padding_mask(inputs.attention_mask);  // [B,1,1,T]
    const at::Tensor mask_value = at::scalar_tensor(mask_min(), float_options);

    // [1,1,T,r]; with a cache the rows of positions past .. past+t-1 (the numbers of a full run).
    auto [cos, sin] = c.rope.cos_sin(past, t, embed_in_.device());
    const double norm_factor = 1.0 / std::sqrt(static_cast<double>(head_size_));
    const int64_t h = c.num_attention_heads, hs = head_size_;

    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      emit_if(taps, "hidden", i, hidden_states);
      const GptNeoXLayer& l = layers_[static_cast<size_t>(i)];

      at::Tensor x =
          layer_norm(hidden_states, l.input_layernorm_weight, l.input_layernorm_bias, c.layer_norm_eps);
      at::Tensor qkv = project(x, l.query_key_value_weight, l.query_key_value_bias)
                           .view({b, t, h, 3 * hs});                   // [B,T,H,3d]
      at::Tensor query = qkv.narrow(-1, 0, hs).permute({0, 2, 1, 3});  // [B,H,T,d]
      at::Tensor key = qkv.narrow(-1, hs, hs).permute({0, 2, 1, 3});
      at::Tensor value = qkv.narrow(-1, 2 * hs, hs).permute({0, 2, 1, 3});
      query = apply_rotary(query, cos, sin);  // the first r dimensions rotate
      key = apply_rotary(key, cos, sin);
      key = append_past(inputs.past, true, i, key);  // with a cache: past + new [1,H,past+T,d]
      value = append_past(inputs.past, false, i, value);

      at::Tensor attn_scores = at::zeros({b * h, t, tk}, float_options);
      attn_scores =
          at::baddbmm(attn_scores, query.reshape({b * h, t, hs}), key.reshape({b * h, tk, hs}).transpose(1, 2),
                      /*beta=*/1.0, /*alpha=*/norm_factor)
              .view({b, h, t, tk});  // [B,H,T,past+T]
      attn_scores = at::where(causal_mask, attn_scores, mask_value);
      if (padding_mask.defined()) attn_scores = attn_scores + padding_mask;
      at::Tensor attn_weights = at::softmax(attn_scores, -1);
      emit_if(taps, "attn_probs", i, attn_weights);

      at::Tensor attn_output = merge_heads(at::matmul(attn_weights, value));  // [B,T,D]
      attn_output = project(attn_output, l.dense_weight, l.dense_bias);
      auto mlp = [&](const at::Tensor& y) {
        return project(activate(c.hidden_act, project(y, l.dense_h_to_4h_weight, l.dense_h_to_4h_bias)),
                          l.dense_4h_to_h_weight, l.dense_4h_to_h_bias);  // [B,T,D]
      };
      if (c.use_parallel_residual) {
        at::Tensor mlp_output = mlp(layer_norm(hidden_states, l.post_attention_layernorm_weight,
                                               l.post_attention_layernorm_bias, c.layer_norm_eps));
        hidden_states = mlp_output + attn_output + hidden_states;
      } else {
        attn_output = attn_output + hidden_states;
        at::Tensor mlp_output = mlp(layer_norm(attn_output, l.post_attention_layernorm_weight,
                                               l.post_attention_layernorm_bias, c.layer_norm_eps));
        hidden_states = mlp_output + attn_output;
      }
    }
    hidden_states =
        layer_norm(hidden_states, final_layer_norm_weight_, final_layer_norm_bias_, c.layer_norm_eps);
    emit_if(taps, "hidden", c.num_hidden_layers, hidden_states);
    if (!compute_logits) return {};
    if (inputs.last_logits_only) return last_logits(hidden_states, embed_out_);  // [B,1,V]
    return project(hidden_states, embed_out_);  // [B,T,V]
  }

 private:
  GptNeoXConfig config_;
  ModelInfo info_;
  int64_t head_size_ = 0;
  at::Tensor embed_in_, final_layer_norm_weight_, final_layer_norm_bias_, embed_out_;
  std::vector<GptNeoXLayer> layers_;
};

}  // namespace

std::unique_ptr<Model> make_gpt_neox(ModelContext& ctx) { return std::make_unique<GptNeoX>(ctx); }

}  // namespace atlas::models
