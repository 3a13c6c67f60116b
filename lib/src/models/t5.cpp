// T5 (Raffel et al. 2020) and mT5 (Xue et al. 2021): a pre-RMSNorm encoder-decoder without
// absolute positions. Attention is not scaled by 1/sqrt(d_kv) and adds a learned bias per
// relative-position bucket, computed by layer 0 of each stack (bidirectional buckets in the encoder,
// causal in the decoder) and reused by the later layers; cross-attention has no position bias.
// v1.0 ("relu", LM head tied to `shared`, decoder output scaled by d_model^-0.5 before the head);
// v1.1 / mT5 ("gated-gelu": wi_0 / wi_1 with gelu_new, untied lm_head, no rescale).
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "atlas/core/error.hpp"
#include "models/architectures.hpp"
#include "models/layers.hpp"

namespace atlas::models {

namespace {

struct T5Config {
  int64_t vocab_size = 0;
  int64_t d_model = 0;
  int64_t d_kv = 0;
  int64_t d_ff = 0;
  int64_t num_layers = 0;
  int64_t num_decoder_layers = 0;  // defaults to num_layers
  int64_t num_heads = 0;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  Activation dense_act_fn = Activation::Relu;  // from feed_forward_proj, as T5Config derives it
  bool is_gated_act = false;
  bool tie_word_embeddings = true;
  int64_t decoder_start_token_id = 0;
  int64_t pad_token_id = 0;

  static T5Config from_hf_json(const ConfigReader& c, bool tie_default, const std::string& proj_default) {
    T5Config cfg;
    cfg.vocab_size = c.integer("vocab_size");
    cfg.d_model = c.integer("d_model");
    cfg.d_kv = c.integer("d_kv");
    cfg.d_ff = c.integer("d_ff");
    cfg.num_layers = c.integer("num_layers");
    cfg.num_decoder_layers = c.integer("num_decoder_layers", cfg.num_layers);
    cfg.num_heads = c.integer("num_heads");
    cfg.relative_attention_num_buckets = c.integer("relative_attention_num_buckets", 32);
    cfg.relative_attention_max_distance = c.integer("relative_attention_max_distance", 128);
    cfg.layer_norm_epsilon = c.number("layer_norm_epsilon", 1e-6);
    // T5Config recomputes dense_act_fn / is_gated_act from feed_forward_proj ("relu", "gated-gelu",
    // "gated-silu", ...): the stored copies of those keys are ignored, as transformers does.
    const std::string proj = c.string("feed_forward_proj", proj_default);
    std::string act = proj;
    if (proj.rfind("gated-", 0) == 0) {
      cfg.is_gated_act = true;
      act = proj.substr(6);
    }
    if (act.find('-') != std::string::npos || act.empty())
      c.reject("feed_forward_proj", "'ACT' or 'gated-ACT' (e.g. 'relu', 'gated-gelu')", fmt::format("'{}'", proj));
    if (proj == "gated-gelu") act = "gelu_new";  // transformers' special case for T5 v1.1 / mT5
    ConfigReader act_reader(nlohmann::json{{"feed_forward_proj", act}}, c.file());
    cfg.dense_act_fn = parse_activation(act_reader, "feed_forward_proj", act);
    cfg.tie_word_embeddings = c.boolean("tie_word_embeddings", tie_default);
    cfg.pad_token_id = c.integer("pad_token_id", 0);
    cfg.decoder_start_token_id = c.integer("decoder_start_token_id", cfg.pad_token_id);
    c.require_equal("is_encoder_decoder", true);
    for (const char* key : {"d_model", "d_kv", "d_ff", "num_layers", "num_heads", "relative_attention_num_buckets",
                            "relative_attention_max_distance"})
      if (c.has(key) && c.integer(key) <= 0) c.reject(key, "a positive integer", std::to_string(c.integer(key)));
    if (cfg.num_decoder_layers <= 0)
      c.reject("num_decoder_layers", "a positive integer", std::to_string(cfg.num_decoder_layers));
    return cfg;
  }
};

struct T5AttentionWeights {
  at::Tensor q, k, v, o;  // [inner, d] / [d, inner], no biases
};

struct T5Block {
  at::Tensor self_attn_layer_norm;       // layer.0.layer_norm
  T5AttentionWeights self_attn;          // layer.0.SelfAttention
  at::Tensor cross_attn_layer_norm;      // decoder: layer.1.layer_norm
  T5AttentionWeights cross_attn;         // decoder: layer.1.EncDecAttention
  at::Tensor ff_layer_norm;              // layer.{1|2}.layer_norm
  at::Tensor wi, wi_0, wi_1, wo;         // DenseReluDense (wi) or gated (wi_0, wi_1)
};

/// transformers' T5Attention._relative_position_bucket, in the same dtypes (the log in float32) so
/// that bucket edges agree exactly.
at::Tensor relative_position_bucket(at::Tensor relative_position, bool bidirectional, int64_t num_buckets,
                                    int64_t max_distance) {
  at::Tensor relative_buckets = at::zeros_like(relative_position);
  if (bidirectional) {
    num_buckets /= 2;
    relative_buckets = relative_buckets + relative_position.gt(0).to(at::kLong) * num_buckets;
    relative_position = relative_position.abs();
  } else {
    relative_position = -at::minimum(relative_position, at::zeros_like(relative_position));
  }
  const int64_t max_exact = num_buckets / 2;
  at::Tensor is_small = relative_position.lt(max_exact);
  at::Tensor if_large =
      max_exact + (at::log(relative_position.to(at::kFloat) / static_cast<double>(max_exact)) /
                   std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                   static_cast<double>(num_buckets - max_exact))
                      .to(at::kLong);
  if_large = at::minimum(if_large, at::full_like(if_large, num_buckets - 1));
  return relative_buckets + at::where(is_small, relative_position, if_large);
}

class T5 final : public Model {
 public:
  T5(ModelContext& ctx, const std::string& head_class, const std::string& base_class, bool tie_default,
     const std::string& proj_default)
      : config_(T5Config::from_hf_json(ctx.config(), tie_default, proj_default)) {
    const T5Config& c = config_;
    // T5 keys carry no prefix: "shared.weight", "encoder.block.0...", "lm_head.weight".
    Layout layout = resolve_layout(ctx, head_class, base_class, "");
    // The top-level fields describe the encoder; `stacks` both. Relative positions: no limit.
    info_ = model_info(ctx, layout, {c.num_layers, c.num_heads, 0, c.d_model, c.vocab_size, 0, false});
    info_.is_encoder_decoder = true;
    info_.decoder_start_token_id = c.decoder_start_token_id;
    info_.stacks = {StackInfo{"encoder", c.num_layers, c.num_heads, c.num_heads, false, false},
                    StackInfo{"decoder", c.num_decoder_layers, c.num_heads, c.num_heads, true, true}};

    WeightStore& w = ctx.weights();
    const int64_t d = c.d_model;
    shared_ = w.take("shared.weight", {c.vocab_size, d});
    // pytorch_model.bin files also store the embeddings tied to `shared`.
    w.claim_tied_copy("encoder.embed_tokens.weight", {c.vocab_size, d});
    w.claim_tied_copy("decoder.embed_tokens.weight", {c.vocab_size, d});
    encoder_ = load_stack(w, "encoder.", c.num_layers, false);
    decoder_ = load_stack(w, "decoder.", c.num_decoder_layers, true);
    encoder_final_layer_norm_ = w.take("encoder.final_layer_norm.weight", {d});
    decoder_final_layer_norm_ = w.take("decoder.final_layer_norm.weight", {d});
    const int64_t h = c.num_heads, nb = c.relative_attention_num_buckets;
    encoder_relative_attention_bias_ = w.take("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", {nb, h});
    decoder_relative_attention_bias_ = w.take("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", {nb, h});
    if (layout.has_head) {
      if (c.tie_word_embeddings) {
        w.claim_tied_copy("lm_head.weight", {c.vocab_size, d});
        lm_head_weight_ = shared_;
      } else {
        lm_head_weight_ = w.take("lm_head.weight", {c.vocab_size, d});
      }
    }
  }

  const ModelInfo& info() const override { return info_; }

  at::Tensor forward(const Inputs& raw_inputs, Taps& taps, bool compute_logits) override {
    c10::InferenceMode guard;
    if (compute_logits) require_lm_head(info_);
    const T5Config& c = config_;
    const Inputs inputs = checked_inputs(raw_inputs, info_, shared_.device());
    const int64_t b = inputs.input_ids.size(0), s = inputs.input_ids.size(1);
    const int64_t t = inputs.decoder_input_ids.size(1);
    const auto float_options = shared_.options();
    const auto long_options = inputs.input_ids.options();
    auto additive = [&](const at::Tensor& visible) {  // bool -> 0 / finfo.min
      return at::where(visible, at::scalar_tensor(0.0f, float_options), at::scalar_tensor(mask_min(), float_options));
    };

    // Encoder: (1 - mask) * finfo.min over keys, plus the bidirectional position bias.
    at::Tensor encoder_visible = inputs.attention_mask.defined()
                                     ? inputs.attention_mask.ne(0).view({b, 1, 1, s})
                                     : at::ones({b, 1, 1, s}, long_options.dtype(at::kBool));  // [B,1,1,S]
    at::Tensor encoder_mask = additive(encoder_visible);
    at::Tensor encoder_bias = compute_bias(encoder_relative_attention_bias_, s, s, true) + encoder_mask;  // [B,H,S,S]
    at::Tensor encoder_hidden = at::embedding(shared_, inputs.input_ids);  // [B,S,D]
    encoder_hidden = run_stack(encoder_, encoder_hidden, encoder_bias, {}, {}, taps, "encoder");
    encoder_hidden = rms_norm(encoder_hidden, encoder_final_layer_norm_, c.layer_norm_epsilon);
    emit_if(taps, "encoder_hidden", c.num_layers, encoder_hidden);

    // Decoder: causal x padding mask, plus the causal position bias; cross-attention only the
    // encoder's padding mask.
    at::Tensor positions = at::arange(t, long_options);
    at::Tensor decoder_visible = positions.unsqueeze(0).le(positions.unsqueeze(1)).view({1, 1, t, t});
    if (inputs.decoder_attention_mask.defined())
      decoder_visible = at::logical_and(decoder_visible, inputs.decoder_attention_mask.ne(0).view({b, 1, 1, t}));
    at::Tensor decoder_bias =
        compute_bias(decoder_relative_attention_bias_, t, t, false) + additive(decoder_visible);  // [B,H,T,T]
    at::Tensor cross_bias = at::zeros({1, c.num_heads, t, s}, float_options) + encoder_mask;       // [B,H,T,S]
    at::Tensor hidden_states = at::embedding(shared_, inputs.decoder_input_ids);                 // [B,T,D]
    hidden_states = run_stack(decoder_, hidden_states, decoder_bias, encoder_hidden, cross_bias, taps, "decoder");
    hidden_states = rms_norm(hidden_states, decoder_final_layer_norm_, c.layer_norm_epsilon);
    emit_if(taps, "decoder_hidden", c.num_decoder_layers, hidden_states);
    if (!compute_logits) return {};
    if (c.tie_word_embeddings) hidden_states = hidden_states * std::pow(static_cast<double>(c.d_model), -0.5);
    return project(hidden_states, lm_head_weight_);  // [B,T,V]
  }

 private:
  std::vector<T5Block> load_stack(WeightStore& w, const std::string& prefix, int64_t layers, bool decoder) {
    const T5Config& c = config_;
    const int64_t d = c.d_model, inner = c.num_heads * c.d_kv, ff = c.d_ff;
    auto attention = [&](const std::string& p) {
      return T5AttentionWeights{w.take_linear(p + "q.weight", {inner, d}), w.take_linear(p + "k.weight", {inner, d}),
                                w.take_linear(p + "v.weight", {inner, d}), w.take_linear(p + "o.weight", {d, inner})};
    };
    std::vector<T5Block> blocks;
    for (int64_t i = 0; i < layers; ++i) {
      const std::string p = fmt::format("{}block.{}.layer.", prefix, i);
      T5Block blk;
      blk.self_attn_layer_norm = w.take(p + "0.layer_norm.weight", {d});
      blk.self_attn = attention(p + "0.SelfAttention.");
      std::string ff_prefix = p + "1.";
      if (decoder) {
        blk.cross_attn_layer_norm = w.take(p + "1.layer_norm.weight", {d});
        blk.cross_attn = attention(p + "1.EncDecAttention.");
        ff_prefix = p + "2.";
      }
      blk.ff_layer_norm = w.take(ff_prefix + "layer_norm.weight", {d});
      if (c.is_gated_act) {
        blk.wi_0 = w.take_linear(ff_prefix + "DenseReluDense.wi_0.weight", {ff, d});
        blk.wi_1 = w.take_linear(ff_prefix + "DenseReluDense.wi_1.weight", {ff, d});
      } else {
        blk.wi = w.take_linear(ff_prefix + "DenseReluDense.wi.weight", {ff, d});
      }
      blk.wo = w.take_linear(ff_prefix + "DenseReluDense.wo.weight", {d, ff});
      blocks.push_back(std::move(blk));
    }
    return blocks;
  }

  /// T5Attention.compute_bias: [1,H,Q,K] learned bias of each (query, key) distance bucket.
  at::Tensor compute_bias(const at::Tensor& table, int64_t query_length, int64_t key_length, bool bidirectional) const {
    const auto long_options = at::TensorOptions().dtype(at::kLong).device(table.device());
    at::Tensor context_position = at::arange(query_length, long_options).unsqueeze(1);  // [Q,1]
    at::Tensor memory_position = at::arange(key_length, long_options).unsqueeze(0);     // [1,K]
    at::Tensor bucket = relative_position_bucket(memory_position - context_position, bidirectional,
                                                 config_.relative_attention_num_buckets,
                                                 config_.relative_attention_max_distance);  // [Q,K]
    return at::embedding(table, bucket).permute({2, 0, 1}).unsqueeze(0);                    // [1,H,Q,K]
  }

  /// T5Attention without scaling; `position_bias` already holds the additive mask.
  at::Tensor attention(const T5AttentionWeights& a, const at::Tensor& x, const at::Tensor& key_value_states,
                       const at::Tensor& position_bias, Taps& taps, const char* tap, int64_t layer) const {
    const int64_t h = config_.num_heads;
    at::Tensor query_states = split_heads(project(x, a.q), h);                 // [B,H,Q,d_kv]
    at::Tensor key_states = split_heads(project(key_value_states, a.k), h);    // [B,H,K,d_kv]
    at::Tensor value_states = split_heads(project(key_value_states, a.v), h);
    at::Tensor scores = at::matmul(query_states, key_states.transpose(3, 2));  // [B,H,Q,K]
    scores = scores + position_bias;
    at::Tensor attn_weights = at::softmax(scores.to(at::kFloat), -1).to(scores.scalar_type());
    emit_if(taps, tap, layer, attn_weights);
    return project(merge_heads(at::matmul(attn_weights, value_states)), a.o);  // [B,Q,D]
  }

  at::Tensor run_stack(const std::vector<T5Block>& blocks, at::Tensor hidden_states, const at::Tensor& position_bias,
                       const at::Tensor& encoder_hidden_states, const at::Tensor& cross_bias, Taps& taps,
                       const std::string& stack) const {
    const T5Config& c = config_;
    const bool decoder = encoder_hidden_states.defined();
    const std::string hidden_tap = stack + "_hidden";
    const char* self_tap = decoder ? kDecoderAttnProbs : kEncoderAttnProbs;
    for (size_t i = 0; i < blocks.size(); ++i) {
      const auto layer = static_cast<int64_t>(i);
      const T5Block& blk = blocks[i];
      emit_if(taps, hidden_tap.c_str(), layer, hidden_states);
      at::Tensor normed = rms_norm(hidden_states, blk.self_attn_layer_norm, c.layer_norm_epsilon);
      hidden_states = hidden_states + attention(blk.self_attn, normed, normed, position_bias, taps, self_tap, layer);
      if (decoder) {
        normed = rms_norm(hidden_states, blk.cross_attn_layer_norm, c.layer_norm_epsilon);
        hidden_states = hidden_states + attention(blk.cross_attn, normed, encoder_hidden_states, cross_bias, taps,
                                                  kCrossAttnProbs, layer);
      }
      normed = rms_norm(hidden_states, blk.ff_layer_norm, c.layer_norm_epsilon);
      at::Tensor ff = c.is_gated_act
                          ? activate(c.dense_act_fn, project(normed, blk.wi_0)) * project(normed, blk.wi_1)
                          : activate(c.dense_act_fn, project(normed, blk.wi));  // [B,T,F]
      hidden_states = hidden_states + project(ff, blk.wo);
    }
    return hidden_states;
  }

  T5Config config_;
  ModelInfo info_;
  at::Tensor shared_, lm_head_weight_, encoder_final_layer_norm_, decoder_final_layer_norm_;
  at::Tensor encoder_relative_attention_bias_, decoder_relative_attention_bias_;
  std::vector<T5Block> encoder_, decoder_;
};

}  // namespace

std::unique_ptr<Model> make_t5(ModelContext& ctx) {
  return std::make_unique<T5>(ctx, "T5ForConditionalGeneration", "T5Model", true, "relu");
}

std::unique_ptr<Model> make_mt5(ModelContext& ctx) {
  // MT5Config's defaults: untied LM head, gated-gelu feed-forward.
  return std::make_unique<T5>(ctx, "MT5ForConditionalGeneration", "MT5Model", false, "gated-gelu");
}

}  // namespace atlas::models
