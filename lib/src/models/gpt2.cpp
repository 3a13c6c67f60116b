// GPT-2 (Radford et al. 2019): pre-LN decoder, learned absolute positions, Conv1D projections whose
// weights are stored transposed ([in, out]), LM head tied to the token embedding.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "atlas/core/error.hpp"
#include "models/architectures.hpp"
#include "models/layers.hpp"

namespace atlas::models {

namespace {

struct Gpt2Config {
  int64_t vocab_size = 0;
  int64_t n_positions = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_inner = 0;  // null in config.json means 4 * n_embd
  Activation activation_function = Activation::GeluNew;
  double layer_norm_epsilon = 1e-5;
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
  bool tie_word_embeddings = true;

  static Gpt2Config from_hf_json(const ConfigReader& c) {
    Gpt2Config cfg;
    cfg.vocab_size = c.integer("vocab_size");
    cfg.n_positions = c.integer("n_positions");
    cfg.n_embd = c.integer("n_embd");
    cfg.n_layer = c.integer("n_layer");
    cfg.n_head = c.integer("n_head");
    cfg.n_inner = c.integer("n_inner", 4 * cfg.n_embd);
    cfg.activation_function = parse_activation(c, "activation_function", "gelu_new");
    cfg.layer_norm_epsilon = c.number("layer_norm_epsilon", 1e-5);
    cfg.scale_attn_weights = c.boolean("scale_attn_weights", true);
    cfg.scale_attn_by_inverse_layer_idx = c.boolean("scale_attn_by_inverse_layer_idx", false);
    // reorder_and_upcast_attn only changes the precision of a float16 model; we compute in float32.
    c.boolean("reorder_and_upcast_attn", false);
    c.require_equal("add_cross_attention", false);
    cfg.tie_word_embeddings = c.boolean("tie_word_embeddings", true);
    if (cfg.n_head <= 0 || cfg.n_embd % cfg.n_head != 0)
      c.reject("n_head", fmt::format("a positive divisor of n_embd {}", cfg.n_embd),
               std::to_string(cfg.n_head));
    return cfg;
  }
};

struct Gpt2Block {
  at::Tensor ln_1_weight, ln_1_bias;
  at::Tensor c_attn_weight, c_attn_bias;  // Conv1D: [in, out]
  at::Tensor attn_c_proj_weight, attn_c_proj_bias;
  at::Tensor ln_2_weight, ln_2_bias;
  at::Tensor c_fc_weight, c_fc_bias;
  at::Tensor mlp_c_proj_weight, mlp_c_proj_bias;
};

/// transformers' Conv1D: x @ weight + bias with weight [in, out]. Its transpose is a linear
/// weight in the stored-transposed layout, so `linear_layout` hands it to project() (oneDNN).
at::Tensor conv1d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool linear_layout) {
  if (linear_layout) return project(x, weight.t(), bias);
  std::vector<int64_t> out_shape = x.sizes().vec();
  out_shape.back() = weight.size(1);
  return at::addmm(bias, x.reshape({-1, x.size(-1)}), weight).view(out_shape);
}

class Gpt2 final : public Model {
 public:
  Gpt2(ModelContext& ctx) : config_(Gpt2Config::from_hf_json(ctx.config())) {
    const Gpt2Config& c = config_;
    Layout layout = resolve_layout(ctx, "GPT2LMHeadModel", "GPT2Model", "transformer.");
    info_ = model_info(ctx, layout, {c.n_layer, c.n_head, c.n_head, c.n_embd, c.vocab_size, c.n_positions, true});
    info_.kv_cache = true;

    WeightStore& w = ctx.weights();
    linear_layout_ = w.linear_layout();
    const std::string& p = layout.prefix;
    const int64_t d = c.n_embd;
    wte_ = w.take(p + "wte.weight", {c.vocab_size, d});
    wpe_ = w.take(p + "wpe.weight", {c.n_positions, d});
    for (int64_t i = 0; i < c.n_layer; ++i) {
      const std::string h = fmt::format("{}h.{}.", p, i);
      Gpt2Block b;
      b.ln_1_weight = w.take(h + "ln_1.weight", {d});
      b.ln_1_bias = w.take(h + "ln_1.bias", {d});
      b.c_attn_weight = w.take(h + "attn.c_attn.weight", {d, 3 * d});
      b.c_attn_bias = w.take(h + "attn.c_attn.bias", {3 * d});
      b.attn_c_proj_weight = w.take(h + "attn.c_proj.weight", {d, d});
      b.attn_c_proj_bias = w.take(h + "attn.c_proj.bias", {d});
      b.ln_2_weight = w.take(h + "ln_2.weight", {d});
      b.ln_2_bias = w.take(h + "ln_2.bias", {d});
      b.c_fc_weight = w.take(h + "mlp.c_fc.weight", {d, c.n_inner});
      b.c_fc_bias = w.take(h + "mlp.c_fc.bias", {c.n_inner});
      b.mlp_c_proj_weight = w.take(h + "mlp.c_proj.weight", {c.n_inner, d});
      b.mlp_c_proj_bias = w.take(h + "mlp.c_proj.bias", {d});
      blocks_.push_back(std::move(b));
    }
    ln_f_weight_ = w.take(p + "ln_f.weight", {d});
    ln_f_bias_ = w.take(p + "ln_f.bias", {d});
    if (layout.has_head)
      lm_head_weight_ = w.take_or_tie("lm_head.weight", {c.vocab_size, d}, c.tie_word_embeddings, wte_);
    // Causal-mask buffers that checkpoints written by older transformers versions contain.
    w.ignore_buffers({".attn.bias", ".attn.masked_bias"});
  }

  const ModelInfo& info() const override { return info_; }

  at::Tensor forward(const Inputs& raw_inputs, Taps& taps, bool compute_logits) override {
    c10::InferenceMode guard(!raw_inputs.autograd);
    if (compute_logits) require_lm_head(info_);
    const Gpt2Config& c = config_;
    const Inputs inputs = checked_inputs(raw_inputs, info_, wte_.device());
    const int64_t t = inputs.input_ids.size(1);
    const int64_t past = inputs.past ? inputs.past->length() : 0;  // T_past: positions past .. past+t-1
    const auto device = wte_.device();

    at::Tensor position_ids =
        at::arange(past, past + t, at::TensorOptions().dtype(at::kLong).device(device)).unsqueeze(0);  // [1,T]
    at::Tensor hidden_states =
        word_embeddings(wte_, inputs, taps) + at::embedding(wpe_, position_ids);  // [B,T,D]
    at::Tensor causal_mask = causal_visible(t, past, at::TensorOptions().device(device));  // [T,past+T]
    at::Tensor padding_mask;
    if (inputs.attention_mask.defined())
      padding_mask = additive_padding_mask(inputs.attention_mask);  // [B,1,1,T]
    const at::Tensor mask_value = at::scalar_tensor(mask_min(), at::TensorOptions().device(device));

    for (int64_t i = 0; i < c.n_layer; ++i) {
      emit_if(taps, "hidden", i, hidden_states);
      const Gpt2Block& b = blocks_[static_cast<size_t>(i)];

      at::Tensor residual = hidden_states;
      at::Tensor x = layer_norm(hidden_states, b.ln_1_weight, b.ln_1_bias, c.layer_norm_epsilon);
      std::vector<at::Tensor> qkv =
          conv1d(x, b.c_attn_weight, b.c_attn_bias, linear_layout_).split(c.n_embd, 2);  // 3 x [B,T,D]
      at::Tensor query = split_heads(qkv[0], c.n_head);                  // [B,H,T,d]
      at::Tensor key = split_heads(qkv[1], c.n_head);
      at::Tensor value = split_heads(qkv[2], c.n_head);
      const at::Tensor new_value = value;
      key = append_past(inputs.past, true, i, key);  // with a cache: past + new [1,H,past+T,d]
      value = append_past(inputs.past, false, i, value);

      at::Tensor attn_weights = at::matmul(query, key.transpose(-1, -2));  // [B,H,T,past+T]
      if (c.scale_attn_weights) attn_weights = attn_weights / std::sqrt(static_cast<double>(value.size(-1)));
      if (c.scale_attn_by_inverse_layer_idx) attn_weights = attn_weights / static_cast<double>(i + 1);
      attn_weights = at::where(causal_mask, attn_weights, mask_value);
      if (padding_mask.defined()) attn_weights = attn_weights + padding_mask;
      attn_weights = at::softmax(attn_weights, -1);
      emit_if(taps, "attn_probs", i, attn_weights);
      if (taps.wants(kValueNorms, i))  // of this forward's positions
        taps.emit(kValueNorms, i, value_norms(new_value, b.attn_c_proj_weight, true));

      attn_weights = apply_head_mask(attn_weights, inputs, i);
      at::Tensor attn_output = merge_heads(at::matmul(attn_weights, value));  // [B,T,D]
      attn_output = conv1d(attn_output, b.attn_c_proj_weight, b.attn_c_proj_bias, linear_layout_);
      hidden_states = attn_output + residual;

      residual = hidden_states;
      x = layer_norm(hidden_states, b.ln_2_weight, b.ln_2_bias, c.layer_norm_epsilon);
      x = conv1d(activate(c.activation_function, conv1d(x, b.c_fc_weight, b.c_fc_bias, linear_layout_)),
                 b.mlp_c_proj_weight, b.mlp_c_proj_bias, linear_layout_);  // [B,T,D]
      hidden_states = residual + x;
    }
    hidden_states = layer_norm(hidden_states, ln_f_weight_, ln_f_bias_, c.layer_norm_epsilon);
    emit_if(taps, "hidden", c.n_layer, hidden_states);
    if (!compute_logits) return {};
    if (inputs.last_logits_only) return last_logits(hidden_states, lm_head_weight_);   // [B,1,V]
    return project(hidden_states, lm_head_weight_);  // [B,T,V]
  }

 private:
  Gpt2Config config_;
  bool linear_layout_ = false;  // Conv1D products through project() (LoadOptions::linear_layout)
  ModelInfo info_;
  at::Tensor wte_, wpe_, ln_f_weight_, ln_f_bias_, lm_head_weight_;
  std::vector<Gpt2Block> blocks_;
};

}  // namespace

std::unique_ptr<Model> make_gpt2(ModelContext& ctx) { return std::make_unique<Gpt2>(ctx); }

}  // namespace atlas::models
