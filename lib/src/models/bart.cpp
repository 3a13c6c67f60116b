// BART (Lewis et al. 2020): a post-LN encoder-decoder with learned absolute positions (offset by 2
// rows, a fairseq legacy), a LayerNorm right after the embeddings of each stack, q scaled by
// head_dim^-0.5 after its projection, an LM head tied to `model.shared`, and a `final_logits_bias`
// buffer added to the logits.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "atlas/core/error.hpp"
#include "models/architectures.hpp"
#include "models/layers.hpp"

namespace atlas::models {

namespace {

/// BartLearnedPositionalEmbedding: position p reads row p + 2.
constexpr int64_t kPositionOffset = 2;

struct BartConfig {
  int64_t vocab_size = 0;
  int64_t d_model = 0;
  int64_t encoder_layers = 0, decoder_layers = 0;
  int64_t encoder_attention_heads = 0, decoder_attention_heads = 0;
  int64_t encoder_ffn_dim = 0, decoder_ffn_dim = 0;
  int64_t max_position_embeddings = 0;
  Activation activation_function = Activation::Gelu;
  bool scale_embedding = false;  // embeddings times sqrt(d_model)
  bool tie_word_embeddings = true;
  int64_t pad_token_id = 1;
  int64_t decoder_start_token_id = 2;

  static BartConfig from_hf_json(const ConfigReader& c) {
    BartConfig cfg;
    cfg.vocab_size = c.integer("vocab_size");
    cfg.d_model = c.integer("d_model");
    cfg.encoder_layers = c.integer("encoder_layers");
    cfg.decoder_layers = c.integer("decoder_layers");
    cfg.encoder_attention_heads = c.integer("encoder_attention_heads");
    cfg.decoder_attention_heads = c.integer("decoder_attention_heads");
    cfg.encoder_ffn_dim = c.integer("encoder_ffn_dim");
    cfg.decoder_ffn_dim = c.integer("decoder_ffn_dim");
    cfg.max_position_embeddings = c.integer("max_position_embeddings");
    cfg.activation_function = parse_activation(c, "activation_function", "gelu");
    cfg.scale_embedding = c.boolean("scale_embedding", false);
    cfg.tie_word_embeddings = c.boolean("tie_word_embeddings", true);
    cfg.pad_token_id = c.integer("pad_token_id", 1);
    cfg.decoder_start_token_id = c.integer("decoder_start_token_id", 2);
    // mBART-style pre-LN layers and final layer norms are other architectures.
    c.require_equal("normalize_before", false);
    c.require_equal("add_final_layer_norm", false);
    c.require_equal("is_encoder_decoder", true);
    for (const char* key : {"encoder_attention_heads", "decoder_attention_heads"}) {
      const int64_t h = c.integer(key);
      if (h <= 0 || cfg.d_model % h != 0)
        c.reject(key, fmt::format("a positive divisor of d_model {}", cfg.d_model), std::to_string(h));
    }
    return cfg;
  }
};

struct BartAttentionWeights {
  at::Tensor q_proj_weight, q_proj_bias, k_proj_weight, k_proj_bias, v_proj_weight, v_proj_bias;
  at::Tensor out_proj_weight, out_proj_bias;
};

struct BartLayer {
  BartAttentionWeights self_attn;
  at::Tensor self_attn_layer_norm_weight, self_attn_layer_norm_bias;
  BartAttentionWeights encoder_attn;  // decoder only
  at::Tensor encoder_attn_layer_norm_weight, encoder_attn_layer_norm_bias;
  at::Tensor fc1_weight, fc1_bias, fc2_weight, fc2_bias;
  at::Tensor final_layer_norm_weight, final_layer_norm_bias;
};

struct BartStack {
  at::Tensor embed_positions;  // [max_position_embeddings + 2, D]
  at::Tensor layernorm_embedding_weight, layernorm_embedding_bias;
  std::vector<BartLayer> layers;
  int64_t num_heads = 0;
};

/// nn.LayerNorm's default eps: BART never sets another.
constexpr double kLayerNormEps = 1e-5;

class Bart final : public Model {
 public:
  Bart(ModelContext& ctx) : config_(BartConfig::from_hf_json(ctx.config())) {
    const BartConfig& c = config_;
    Layout layout = resolve_layout(ctx, "BartForConditionalGeneration", "BartModel", "model.");
    // The top-level fields describe the encoder; `stacks` both.
    info_ = model_info(ctx, layout,
                       {c.encoder_layers, c.encoder_attention_heads, 0, c.d_model, c.vocab_size,
                        c.max_position_embeddings, false});
    info_.is_encoder_decoder = true;
    info_.decoder_start_token_id = c.decoder_start_token_id;
    info_.stacks = {
        StackInfo{"encoder", c.encoder_layers, c.encoder_attention_heads, c.encoder_attention_heads, false, false},
        StackInfo{"decoder", c.decoder_layers, c.decoder_attention_heads, c.decoder_attention_heads, true, true}};

    WeightStore& w = ctx.weights();
    const std::string& p = layout.prefix;
    const int64_t d = c.d_model;
    shared_ = w.take(p + "shared.weight", {c.vocab_size, d});
    // pytorch_model.bin files also store the embeddings tied to `shared`.
    w.claim_tied_copy(p + "encoder.embed_tokens.weight", {c.vocab_size, d});
    w.claim_tied_copy(p + "decoder.embed_tokens.weight", {c.vocab_size, d});
    encoder_ = load_stack(w, p + "encoder.", c.encoder_layers, c.encoder_attention_heads, c.encoder_ffn_dim, false);
    decoder_ = load_stack(w, p + "decoder.", c.decoder_layers, c.decoder_attention_heads, c.decoder_ffn_dim, true);
    if (layout.has_head) {
      if (c.tie_word_embeddings) {
        w.claim_tied_copy("lm_head.weight", {c.vocab_size, d});
        lm_head_weight_ = shared_;
      } else {
        lm_head_weight_ = w.take("lm_head.weight", {c.vocab_size, d});
      }
      final_logits_bias_ = w.take("final_logits_bias", {1, c.vocab_size});
    }
  }

  const ModelInfo& info() const override { return info_; }

  at::Tensor forward(const Inputs& raw_inputs, Taps& taps, bool compute_logits) override {
    c10::InferenceMode guard;
    if (compute_logits) require_lm_head(info_);
    const Inputs inputs = checked_inputs(raw_inputs, info_, shared_.device());
    const int64_t b = inputs.input_ids.size(0), s = inputs.input_ids.size(1);
    const int64_t t = inputs.decoder_input_ids.size(1);
    const auto float_options = shared_.options();
    const auto long_options = inputs.input_ids.options();
    auto additive = [&](const at::Tensor& visible) {  // bool -> 0 / finfo.min
      return at::where(visible, at::scalar_tensor(0.0f, float_options), at::scalar_tensor(mask_min(), float_options));
    };

    // _prepare_4d_attention_mask: 0 for real keys, finfo.min for padded ones ([B,1,1,S]).
    at::Tensor encoder_mask;
    if (inputs.attention_mask.defined()) encoder_mask = additive(inputs.attention_mask.ne(0).view({b, 1, 1, s}));
    at::Tensor encoder_hidden = embed(encoder_, inputs.input_ids);  // [B,S,D]
    encoder_hidden = run_stack(encoder_, encoder_hidden, encoder_mask, {}, {}, taps, "encoder");

    // _prepare_4d_causal_attention_mask: causal, and padded decoder keys, are finfo.min.
    at::Tensor positions = at::arange(t, long_options);
    at::Tensor decoder_visible = positions.unsqueeze(0).le(positions.unsqueeze(1)).view({1, 1, t, t});
    if (inputs.decoder_attention_mask.defined())
      decoder_visible = at::logical_and(decoder_visible, inputs.decoder_attention_mask.ne(0).view({b, 1, 1, t}));
    at::Tensor decoder_mask = additive(decoder_visible);  // [B,1,T,T]
    at::Tensor hidden_states = embed(decoder_, inputs.decoder_input_ids);  // [B,T,D]
    hidden_states = run_stack(decoder_, hidden_states, decoder_mask, encoder_hidden, encoder_mask, taps, "decoder");
    if (!compute_logits) return {};
    return project(hidden_states, lm_head_weight_) + final_logits_bias_;  // [B,T,V]
  }

 private:
  BartStack load_stack(WeightStore& w, const std::string& prefix, int64_t layers, int64_t heads, int64_t ffn,
                       bool decoder) {
    const BartConfig& c = config_;
    const int64_t d = c.d_model;
    auto attention = [&](const std::string& p) {
      BartAttentionWeights a;
      a.q_proj_weight = w.take_linear(p + "q_proj.weight", {d, d});
      a.q_proj_bias = w.take(p + "q_proj.bias", {d});
      a.k_proj_weight = w.take_linear(p + "k_proj.weight", {d, d});
      a.k_proj_bias = w.take(p + "k_proj.bias", {d});
      a.v_proj_weight = w.take_linear(p + "v_proj.weight", {d, d});
      a.v_proj_bias = w.take(p + "v_proj.bias", {d});
      a.out_proj_weight = w.take_linear(p + "out_proj.weight", {d, d});
      a.out_proj_bias = w.take(p + "out_proj.bias", {d});
      return a;
    };
    BartStack st;
    st.num_heads = heads;
    st.embed_positions = w.take(prefix + "embed_positions.weight", {c.max_position_embeddings + kPositionOffset, d});
    st.layernorm_embedding_weight = w.take(prefix + "layernorm_embedding.weight", {d});
    st.layernorm_embedding_bias = w.take(prefix + "layernorm_embedding.bias", {d});
    for (int64_t i = 0; i < layers; ++i) {
      const std::string p = fmt::format("{}layers.{}.", prefix, i);
      BartLayer l;
      l.self_attn = attention(p + "self_attn.");
      l.self_attn_layer_norm_weight = w.take(p + "self_attn_layer_norm.weight", {d});
      l.self_attn_layer_norm_bias = w.take(p + "self_attn_layer_norm.bias", {d});
      if (decoder) {
        l.encoder_attn = attention(p + "encoder_attn.");
        l.encoder_attn_layer_norm_weight = w.take(p + "encoder_attn_layer_norm.weight", {d});
        l.encoder_attn_layer_norm_bias = w.take(p + "encoder_attn_layer_norm.bias", {d});
      }
      l.fc1_weight = w.take_linear(p + "fc1.weight", {ffn, d});
      l.fc1_bias = w.take(p + "fc1.bias", {ffn});
      l.fc2_weight = w.take_linear(p + "fc2.weight", {d, ffn});
      l.fc2_bias = w.take(p + "fc2.bias", {d});
      l.final_layer_norm_weight = w.take(p + "final_layer_norm.weight", {d});
      l.final_layer_norm_bias = w.take(p + "final_layer_norm.bias", {d});
      st.layers.push_back(std::move(l));
    }
    return st;
  }

  /// Token embedding (times sqrt(d_model) with scale_embedding) + learned position, then LayerNorm.
  at::Tensor embed(const BartStack& st, const at::Tensor& ids) const {
    at::Tensor inputs_embeds = at::embedding(shared_, ids);  // [B,T,D]
    if (config_.scale_embedding) inputs_embeds = inputs_embeds * std::sqrt(static_cast<double>(config_.d_model));
    at::Tensor positions = at::arange(ids.size(1), ids.options()) + kPositionOffset;  // [T]
    at::Tensor hidden_states = inputs_embeds + at::embedding(st.embed_positions, positions);
    return layer_norm(hidden_states, st.layernorm_embedding_weight, st.layernorm_embedding_bias, kLayerNormEps);
  }

  /// BartAttention (eager): q scaled after its projection, the additive mask, softmax.
  static at::Tensor attention(const BartAttentionWeights& a, int64_t heads, const at::Tensor& x,
                              const at::Tensor& key_value_states, const at::Tensor& mask, Taps& taps,
                              const char* tap, int64_t layer) {
    const double scaling = std::pow(static_cast<double>(x.size(-1) / heads), -0.5);
    at::Tensor query_states = split_heads(project(x, a.q_proj_weight, a.q_proj_bias) * scaling, heads);  // [B,H,Q,d]
    at::Tensor key_states = split_heads(project(key_value_states, a.k_proj_weight, a.k_proj_bias), heads);
    at::Tensor value_states = split_heads(project(key_value_states, a.v_proj_weight, a.v_proj_bias), heads);
    at::Tensor attn_weights = at::matmul(query_states, key_states.transpose(-1, -2));  // [B,H,Q,K]
    if (mask.defined()) attn_weights = attn_weights + mask;
    attn_weights = at::softmax(attn_weights, -1);
    emit_if(taps, tap, layer, attn_weights);
    at::Tensor attn_output = merge_heads(at::matmul(attn_weights, value_states));  // [B,Q,D]
    return project(attn_output, a.out_proj_weight, a.out_proj_bias);
  }

  at::Tensor run_stack(const BartStack& st, at::Tensor hidden_states, const at::Tensor& self_mask,
                       const at::Tensor& encoder_hidden_states, const at::Tensor& cross_mask, Taps& taps,
                       const std::string& stack) const {
    const bool decoder = encoder_hidden_states.defined();
    const std::string hidden_tap = stack + "_hidden";
    const char* self_tap = decoder ? kDecoderAttnProbs : kEncoderAttnProbs;
    const Activation act = config_.activation_function;
    for (size_t i = 0; i < st.layers.size(); ++i) {
      const auto layer = static_cast<int64_t>(i);
      const BartLayer& l = st.layers[i];
      emit_if(taps, hidden_tap.c_str(), layer, hidden_states);
      at::Tensor residual = hidden_states;
      hidden_states =
          residual + attention(l.self_attn, st.num_heads, hidden_states, hidden_states, self_mask, taps, self_tap, layer);
      hidden_states = layer_norm(hidden_states, l.self_attn_layer_norm_weight, l.self_attn_layer_norm_bias, kLayerNormEps);
      if (decoder) {
        residual = hidden_states;
        hidden_states = residual + attention(l.encoder_attn, st.num_heads, hidden_states, encoder_hidden_states,
                                             cross_mask, taps, kCrossAttnProbs, layer);
        hidden_states = layer_norm(hidden_states, l.encoder_attn_layer_norm_weight, l.encoder_attn_layer_norm_bias,
                                   kLayerNormEps);
      }
      residual = hidden_states;
      at::Tensor x = activate(act, project(hidden_states, l.fc1_weight, l.fc1_bias));  // [B,T,F]
      hidden_states = residual + project(x, l.fc2_weight, l.fc2_bias);
      hidden_states = layer_norm(hidden_states, l.final_layer_norm_weight, l.final_layer_norm_bias, kLayerNormEps);
    }
    emit_if(taps, hidden_tap.c_str(), static_cast<int64_t>(st.layers.size()), hidden_states);
    return hidden_states;
  }

  BartConfig config_;
  ModelInfo info_;
  at::Tensor shared_, lm_head_weight_, final_logits_bias_;
  BartStack encoder_, decoder_;
};

}  // namespace

std::unique_ptr<Model> make_bart(ModelContext& ctx) { return std::make_unique<Bart>(ctx); }

}  // namespace atlas::models
