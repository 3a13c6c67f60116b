// DistilBERT (Sanh et al. 2019): a 6-layer-style BERT without token types and pooler; its
// attention scales q by 1/sqrt(head_dim) before the product and masks with masked_fill.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "atlas/core/error.hpp"
#include "models/architectures.hpp"
#include "models/layers.hpp"

namespace atlas::models {

namespace {

// DistilBERT hard-codes this epsilon for every LayerNorm.
constexpr double kLayerNormEps = 1e-12;

struct DistilBertConfig {
  int64_t vocab_size = 0;
  int64_t dim = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t hidden_dim = 0;
  Activation activation = Activation::Gelu;
  int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = true;

  static DistilBertConfig from_hf_json(const ConfigReader& c) {
    DistilBertConfig cfg;
    cfg.vocab_size = c.integer("vocab_size");
    cfg.dim = c.integer("dim");
    cfg.n_layers = c.integer("n_layers");
    cfg.n_heads = c.integer("n_heads");
    cfg.hidden_dim = c.integer("hidden_dim");
    cfg.activation = parse_activation(c, "activation", "gelu");
    cfg.max_position_embeddings = c.integer("max_position_embeddings");
    // sinusoidal_pos_embds only changes how the position table is initialised; it is stored either way.
    c.boolean("sinusoidal_pos_embds", false);
    cfg.tie_word_embeddings = c.boolean("tie_word_embeddings", true);
    if (cfg.n_heads <= 0 || cfg.dim % cfg.n_heads != 0)
      c.reject("n_heads", fmt::format("a positive divisor of dim {}", cfg.dim), std::to_string(cfg.n_heads));
    return cfg;
  }
};

struct DistilBertLayer {
  at::Tensor q_lin_weight, q_lin_bias, k_lin_weight, k_lin_bias, v_lin_weight, v_lin_bias;
  at::Tensor out_lin_weight, out_lin_bias, sa_layer_norm_weight, sa_layer_norm_bias;
  at::Tensor lin1_weight, lin1_bias, lin2_weight, lin2_bias, output_layer_norm_weight, output_layer_norm_bias;
};

class DistilBert final : public Model {
 public:
  explicit DistilBert(ModelContext& ctx) : config_(DistilBertConfig::from_hf_json(ctx.config())) {
    const DistilBertConfig& c = config_;
    Layout layout = resolve_layout(ctx, "DistilBertForMaskedLM", "DistilBertModel", "distilbert.");
    info_ = model_info(ctx, layout,
                       {c.n_layers, c.n_heads, c.n_heads, c.dim, c.vocab_size, c.max_position_embeddings, false});

    WeightStore& w = ctx.weights();
    const std::string& p = layout.prefix;
    const int64_t d = c.dim, ff = c.hidden_dim;
    word_embeddings_ = w.take(p + "embeddings.word_embeddings.weight", {c.vocab_size, d});
    position_embeddings_ =
        w.take(p + "embeddings.position_embeddings.weight", {c.max_position_embeddings, d});
    embeddings_layer_norm_weight_ = w.take(p + "embeddings.LayerNorm.weight", {d});
    embeddings_layer_norm_bias_ = w.take(p + "embeddings.LayerNorm.bias", {d});
    for (int64_t i = 0; i < c.n_layers; ++i) {
      const std::string l = fmt::format("{}transformer.layer.{}.", p, i);
      DistilBertLayer x;
      x.q_lin_weight = w.take_linear(l + "attention.q_lin.weight", {d, d});
      x.q_lin_bias = w.take(l + "attention.q_lin.bias", {d});
      x.k_lin_weight = w.take_linear(l + "attention.k_lin.weight", {d, d});
      x.k_lin_bias = w.take(l + "attention.k_lin.bias", {d});
      x.v_lin_weight = w.take_linear(l + "attention.v_lin.weight", {d, d});
      x.v_lin_bias = w.take(l + "attention.v_lin.bias", {d});
      x.out_lin_weight = w.take_linear(l + "attention.out_lin.weight", {d, d});
      x.out_lin_bias = w.take(l + "attention.out_lin.bias", {d});
      x.sa_layer_norm_weight = w.take(l + "sa_layer_norm.weight", {d});
      x.sa_layer_norm_bias = w.take(l + "sa_layer_norm.bias", {d});
      x.lin1_weight = w.take_linear(l + "ffn.lin1.weight", {ff, d});
      x.lin1_bias = w.take(l + "ffn.lin1.bias", {ff});
      x.lin2_weight = w.take_linear(l + "ffn.lin2.weight", {d, ff});
      x.lin2_bias = w.take(l + "ffn.lin2.bias", {d});
      x.output_layer_norm_weight = w.take(l + "output_layer_norm.weight", {d});
      x.output_layer_norm_bias = w.take(l + "output_layer_norm.bias", {d});
      layers_.push_back(std::move(x));
    }
    if (layout.has_head) {
      vocab_transform_weight_ = w.take_linear("vocab_transform.weight", {d, d});
      vocab_transform_bias_ = w.take("vocab_transform.bias", {d});
      vocab_layer_norm_weight_ = w.take("vocab_layer_norm.weight", {d});
      vocab_layer_norm_bias_ = w.take("vocab_layer_norm.bias", {d});
      vocab_projector_bias_ = w.take("vocab_projector.bias", {c.vocab_size});
      vocab_projector_weight_ =
          w.take_or_tie("vocab_projector.weight", {c.vocab_size, d}, c.tie_word_embeddings, word_embeddings_);
    }
    w.ignore_buffers({"embeddings.position_ids"});
  }

  const ModelInfo& info() const override { return info_; }

  at::Tensor forward(const Inputs& raw_inputs, Taps& taps, bool compute_logits) override {
    c10::InferenceMode guard;
    if (compute_logits) require_lm_head(info_);
    const DistilBertConfig& c = config_;
    const Inputs inputs = checked_inputs(raw_inputs, info_, word_embeddings_.device());
    const at::Tensor& input_ids = inputs.input_ids;
    const int64_t t = input_ids.size(1);
    // DistilBERT has no segment embeddings; token_type_ids are ignored, as transformers does.
    at::Tensor position_ids = at::arange(t, input_ids.options()).unsqueeze(0);  // [1,T]
    at::Tensor hidden_state = at::embedding(word_embeddings_, input_ids) +
                              at::embedding(position_embeddings_, position_ids);  // [B,T,D]
    hidden_state =
        layer_norm(hidden_state, embeddings_layer_norm_weight_, embeddings_layer_norm_bias_, kLayerNormEps);

    at::Tensor key_is_padding;  // [B,1,1,T]
    if (inputs.attention_mask.defined())
      key_is_padding = inputs.attention_mask.eq(0).view({input_ids.size(0), 1, 1, t});
    const at::Tensor mask_value = at::scalar_tensor(mask_min(), hidden_state.options());
    const double dim_per_head = static_cast<double>(c.dim / c.n_heads);

    for (int64_t i = 0; i < c.n_layers; ++i) {
      emit_if(taps, "hidden", i, hidden_state);
      const DistilBertLayer& l = layers_[static_cast<size_t>(i)];
      at::Tensor q =
          split_heads(project(hidden_state, l.q_lin_weight, l.q_lin_bias), c.n_heads);  // [B,H,T,d]
      at::Tensor k = split_heads(project(hidden_state, l.k_lin_weight, l.k_lin_bias), c.n_heads);
      at::Tensor v = split_heads(project(hidden_state, l.v_lin_weight, l.v_lin_bias), c.n_heads);
      q = q / std::sqrt(dim_per_head);
      at::Tensor scores = at::matmul(q, k.transpose(2, 3));  // [B,H,T,T]
      if (key_is_padding.defined()) scores = scores.masked_fill(key_is_padding.expand_as(scores), mask_value);
      at::Tensor weights = at::softmax(scores, -1);
      emit_if(taps, "attn_probs", i, weights);

      at::Tensor context = merge_heads(at::matmul(weights, v));  // [B,T,D]
      at::Tensor sa_output = project(context, l.out_lin_weight, l.out_lin_bias);
      sa_output =
          layer_norm(sa_output + hidden_state, l.sa_layer_norm_weight, l.sa_layer_norm_bias, kLayerNormEps);
      at::Tensor ffn_output =
          project(activate(c.activation, project(sa_output, l.lin1_weight, l.lin1_bias)), l.lin2_weight,
                     l.lin2_bias);  // [B,T,D]
      hidden_state = layer_norm(ffn_output + sa_output, l.output_layer_norm_weight, l.output_layer_norm_bias,
                                kLayerNormEps);
    }
    emit_if(taps, "hidden", c.n_layers, hidden_state);
    if (!compute_logits) return {};
    at::Tensor prediction_logits =
        activate(c.activation, project(hidden_state, vocab_transform_weight_, vocab_transform_bias_));
    prediction_logits =
        layer_norm(prediction_logits, vocab_layer_norm_weight_, vocab_layer_norm_bias_, kLayerNormEps);
    return project(prediction_logits, vocab_projector_weight_, vocab_projector_bias_);  // [B,T,V]
  }

 private:
  DistilBertConfig config_;
  ModelInfo info_;
  at::Tensor word_embeddings_, position_embeddings_, embeddings_layer_norm_weight_,
      embeddings_layer_norm_bias_;
  std::vector<DistilBertLayer> layers_;
  at::Tensor vocab_transform_weight_, vocab_transform_bias_, vocab_layer_norm_weight_, vocab_layer_norm_bias_;
  at::Tensor vocab_projector_weight_, vocab_projector_bias_;
};

}  // namespace

std::unique_ptr<Model> make_distilbert(ModelContext& ctx) { return std::make_unique<DistilBert>(ctx); }

}  // namespace atlas::models
