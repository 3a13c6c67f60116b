// OPT (Zhang et al. 2022, OPTForCausalLM): a decoder with learned positions offset by 2 and counted
// from the attention mask, pre-LN (do_layer_norm_before, OPT-125m and most sizes) or post-LN
// (OPT-350m) layers, queries scaled by head_dim^-0.5 before q.k, a ReLU FFN, optional project_in /
// project_out when word_embed_proj_dim differs from hidden_size, LM head tied to the embedding.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "atlas/core/error.hpp"
#include "models/architectures.hpp"
#include "models/layers.hpp"

namespace atlas::models {

namespace {

/// OPTLearnedPositionalEmbedding's offset: position p reads row p + 2.
constexpr int64_t kPositionOffset = 2;

struct OptConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t ffn_dim = 0;
  int64_t max_position_embeddings = 2048;
  int64_t word_embed_proj_dim = 0;  // null: hidden_size
  Activation activation_function = Activation::Relu;
  bool do_layer_norm_before = true;
  bool remove_final_layer_norm = false;  // "_remove_final_layer_norm"
  bool enable_bias = true;
  bool layer_norm_elementwise_affine = true;
  bool tie_word_embeddings = true;
  // dropout, attention_dropout, layerdrop: inactive at inference.

  static OptConfig from_hf_json(const ConfigReader& c) {
    OptConfig cfg;
    cfg.vocab_size = c.integer("vocab_size");
    cfg.hidden_size = c.integer("hidden_size");
    cfg.num_hidden_layers = c.integer("num_hidden_layers");
    cfg.num_attention_heads = c.integer("num_attention_heads");
    cfg.ffn_dim = c.integer("ffn_dim");
    cfg.max_position_embeddings = c.integer("max_position_embeddings", 2048);
    cfg.word_embed_proj_dim = c.integer("word_embed_proj_dim", cfg.hidden_size);
    cfg.activation_function = parse_activation(c, "activation_function", "relu");
    cfg.do_layer_norm_before = c.boolean("do_layer_norm_before", true);
    cfg.remove_final_layer_norm = c.boolean("_remove_final_layer_norm", false);
    cfg.enable_bias = c.boolean("enable_bias", true);
    cfg.layer_norm_elementwise_affine = c.boolean("layer_norm_elementwise_affine", true);
    cfg.tie_word_embeddings = c.boolean("tie_word_embeddings", true);
    if (cfg.num_attention_heads <= 0 || cfg.hidden_size % cfg.num_attention_heads != 0)
      c.reject("num_attention_heads", fmt::format("a positive divisor of hidden_size {}", cfg.hidden_size),
               std::to_string(cfg.num_attention_heads));
    if (cfg.word_embed_proj_dim <= 0)
      c.reject("word_embed_proj_dim", "a positive integer", std::to_string(cfg.word_embed_proj_dim));
    return cfg;
  }
};

struct OptLayer {
  at::Tensor self_attn_layer_norm_weight, self_attn_layer_norm_bias;
  at::Tensor q_proj_weight, q_proj_bias, k_proj_weight, k_proj_bias, v_proj_weight, v_proj_bias;
  at::Tensor out_proj_weight, out_proj_bias;
  at::Tensor final_layer_norm_weight, final_layer_norm_bias;
  at::Tensor fc1_weight, fc1_bias, fc2_weight, fc2_bias;
};

class Opt final : public Model {
 public:
  explicit Opt(ModelContext& ctx) : config_(OptConfig::from_hf_json(ctx.config())) {
    const OptConfig& c = config_;
    Layout layout = resolve_layout(ctx, "OPTForCausalLM", "OPTModel", "model.");
    info_ = model_info(ctx, layout,
                       {c.num_hidden_layers, c.num_attention_heads, c.num_attention_heads, c.hidden_size,
                        c.vocab_size, c.max_position_embeddings, true});
    info_.kv_cache = true;

    WeightStore& w = ctx.weights();
    const std::string p = layout.prefix + "decoder.";
    const int64_t d = c.hidden_size, ff = c.ffn_dim, e = c.word_embed_proj_dim;
    auto bias = [&](const std::string& name, int64_t n) { return c.enable_bias ? w.take(name, {n}) : at::Tensor(); };
    // LayerNorm(elementwise_affine=False) has no parameters.
    auto norm = [&](const std::string& name, at::Tensor& weight, at::Tensor& bias_out) {
      if (!c.layer_norm_elementwise_affine) return;
      weight = w.take(name + ".weight", {d});
      bias_out = w.take(name + ".bias", {d});
    };
    embed_tokens_ = w.take(p + "embed_tokens.weight", {c.vocab_size, e});
    embed_positions_ = w.take(p + "embed_positions.weight", {c.max_position_embeddings + kPositionOffset, d});
    if (e != d) {
      project_in_weight_ = w.take_linear(p + "project_in.weight", {d, e});
      project_out_weight_ = w.take_linear(p + "project_out.weight", {e, d});
    }
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string l = fmt::format("{}layers.{}.", p, i);
      OptLayer x;
      norm(l + "self_attn_layer_norm", x.self_attn_layer_norm_weight, x.self_attn_layer_norm_bias);
      x.q_proj_weight = w.take_linear(l + "self_attn.q_proj.weight", {d, d});
      x.q_proj_bias = bias(l + "self_attn.q_proj.bias", d);
      x.k_proj_weight = w.take_linear(l + "self_attn.k_proj.weight", {d, d});
      x.k_proj_bias = bias(l + "self_attn.k_proj.bias", d);
      x.v_proj_weight = w.take_linear(l + "self_attn.v_proj.weight", {d, d});
      x.v_proj_bias = bias(l + "self_attn.v_proj.bias", d);
      x.out_proj_weight = w.take_linear(l + "self_attn.out_proj.weight", {d, d});
      x.out_proj_bias = bias(l + "self_attn.out_proj.bias", d);
      norm(l + "final_layer_norm", x.final_layer_norm_weight, x.final_layer_norm_bias);
      x.fc1_weight = w.take_linear(l + "fc1.weight", {ff, d});
      x.fc1_bias = bias(l + "fc1.bias", ff);
      x.fc2_weight = w.take_linear(l + "fc2.weight", {d, ff});
      x.fc2_bias = bias(l + "fc2.bias", d);
      layers_.push_back(std::move(x));
    }
    // Only pre-LN decoders end with a LayerNorm (_remove_final_layer_norm: checkpoints fine-tuned
    // before transformers 4.20.1 that lack it).
    has_final_layer_norm_ = c.do_layer_norm_before && !c.remove_final_layer_norm;
    if (has_final_layer_norm_) norm(p + "final_layer_norm", final_layer_norm_weight_, final_layer_norm_bias_);
    if (layout.has_head)
      lm_head_weight_ = w.take_or_tie("lm_head.weight", {c.vocab_size, e}, c.tie_word_embeddings, embed_tokens_);
  }

  const ModelInfo& info() const override { return info_; }

  at::Tensor forward(const Inputs& raw_inputs, Taps& taps, bool compute_logits) override {
    c10::InferenceMode guard;
    if (compute_logits) require_lm_head(info_);
    const OptConfig& c = config_;
    const Inputs inputs = checked_inputs(raw_inputs, info_, embed_tokens_.device());
    const int64_t b = inputs.input_ids.size(0), t = inputs.input_ids.size(1);
    const int64_t past = inputs.past ? inputs.past->length() : 0;  // T_past: positions past .. past+t-1
    const auto float_options = embed_tokens_.options();
    const int64_t h = c.num_attention_heads, hd = c.hidden_size / c.num_attention_heads;
    const double eps = 1e-5;  // nn.LayerNorm's default: OPT has no layer_norm_eps
    const double scaling = std::pow(static_cast<double>(hd), -0.5);

    const at::Tensor attention_mask_2d = inputs.attention_mask.defined()
                                             ? inputs.attention_mask
                                             : at::ones({b, t}, inputs.input_ids.options());  // [B,T]
    at::Tensor attention_mask = causal_mask(inputs.attention_mask, t, 0, float_options, past);  // [B|1,1,T,past+T]
    // OPTLearnedPositionalEmbedding: cumsum(mask) * mask - 1, so padding reads row -1 + 2 = 1; with a
    // cache (no padding then) the positions past .. past+t-1.
    at::Tensor positions = at::cumsum(attention_mask_2d, 1) * attention_mask_2d - 1 + past;  // [B,T]
    at::Tensor pos_embeds = at::embedding(embed_positions_, positions + kPositionOffset);  // [B,T,D]
    at::Tensor inputs_embeds = at::embedding(embed_tokens_, inputs.input_ids);           // [B,T,E]
    if (project_in_weight_.defined()) inputs_embeds = project(inputs_embeds, project_in_weight_);
    at::Tensor hidden_states = inputs_embeds + pos_embeds;  // [B,T,D]
    const at::Tensor min_value = at::scalar_tensor(mask_min(), float_options);

    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      emit_if(taps, "hidden", i, hidden_states);
      const OptLayer& l = layers_[static_cast<size_t>(i)];

      at::Tensor residual = hidden_states;
      if (c.do_layer_norm_before)
        hidden_states = layer_norm(hidden_states, l.self_attn_layer_norm_weight, l.self_attn_layer_norm_bias, eps);
      at::Tensor query_states = split_heads(project(hidden_states, l.q_proj_weight, l.q_proj_bias) * scaling, h);
      at::Tensor key_states = split_heads(project(hidden_states, l.k_proj_weight, l.k_proj_bias), h);  // [B,H,T,d]
      at::Tensor value_states = split_heads(project(hidden_states, l.v_proj_weight, l.v_proj_bias), h);
      key_states = append_past(inputs.past, true, i, key_states);  // with a cache: past + new [1,H,past+T,d]
      value_states = append_past(inputs.past, false, i, value_states);
      at::Tensor attn_weights = at::matmul(query_states, key_states.transpose(2, 3));  // [B,H,T,past+T]
      attn_weights = at::maximum(attn_weights + attention_mask, min_value);
      attn_weights = at::softmax(attn_weights, -1);
      emit_if(taps, "attn_probs", i, attn_weights);

      at::Tensor attn_output = merge_heads(at::matmul(attn_weights, value_states));  // [B,T,D]
      hidden_states = residual + project(attn_output, l.out_proj_weight, l.out_proj_bias);
      if (!c.do_layer_norm_before)
        hidden_states = layer_norm(hidden_states, l.self_attn_layer_norm_weight, l.self_attn_layer_norm_bias, eps);

      residual = hidden_states;
      if (c.do_layer_norm_before)
        hidden_states = layer_norm(hidden_states, l.final_layer_norm_weight, l.final_layer_norm_bias, eps);
      hidden_states = project(activate(c.activation_function, project(hidden_states, l.fc1_weight, l.fc1_bias)),
                                 l.fc2_weight, l.fc2_bias);  // [B,T,D]
      hidden_states = residual + hidden_states;
      if (!c.do_layer_norm_before)
        hidden_states = layer_norm(hidden_states, l.final_layer_norm_weight, l.final_layer_norm_bias, eps);
    }
    if (has_final_layer_norm_)
      hidden_states = layer_norm(hidden_states, final_layer_norm_weight_, final_layer_norm_bias_, eps);
    if (project_out_weight_.defined()) hidden_states = project(hidden_states, project_out_weight_);  // [B,T,E]
    emit_if(taps, "hidden", c.num_hidden_layers, hidden_states);
    if (!compute_logits) return {};
    if (inputs.last_logits_only) return last_logits(hidden_states, lm_head_weight_);  // [B,1,V]
    return project(hidden_states, lm_head_weight_);  // [B,T,V]
  }

 private:
  OptConfig config_;
  ModelInfo info_;
  bool has_final_layer_norm_ = false;
  at::Tensor embed_tokens_, embed_positions_, project_in_weight_, project_out_weight_;
  at::Tensor final_layer_norm_weight_, final_layer_norm_bias_, lm_head_weight_;
  std::vector<OptLayer> layers_;
};

}  // namespace

std::unique_ptr<Model> make_opt(ModelContext& ctx) { return std::make_unique<Opt>(ctx); }

}  // namespace atlas::models
