#include "models/bert_blocks.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "atlas/core/error.hpp"

namespace atlas::models {

BertConfig BertConfig::from_hf_json(const ConfigReader& c) {
  BertConfig cfg;
  cfg.vocab_size = c.integer("vocab_size");
  cfg.hidden_size = c.integer("hidden_size");
  cfg.num_hidden_layers = c.integer("num_hidden_layers");
  cfg.num_attention_heads = c.integer("num_attention_heads");
  cfg.intermediate_size = c.integer("intermediate_size");
  cfg.hidden_act = parse_activation(c, "hidden_act", "gelu");
  cfg.max_position_embeddings = c.integer("max_position_embeddings");
  cfg.type_vocab_size = c.integer("type_vocab_size", 2);
  cfg.layer_norm_eps = c.number("layer_norm_eps", 1e-12);
  cfg.pad_token_id = c.integer("pad_token_id", 0);
  cfg.tie_word_embeddings = c.boolean("tie_word_embeddings", true);
  c.choice("position_embedding_type", "absolute", {"absolute"});
  c.require_equal("is_decoder", false);
  c.require_equal("add_cross_attention", false);
  if (cfg.num_attention_heads <= 0 || cfg.hidden_size % cfg.num_attention_heads != 0)
    c.reject("num_attention_heads", fmt::format("a positive divisor of hidden_size {}", cfg.hidden_size),
             std::to_string(cfg.num_attention_heads));
  return cfg;
}

void BertEmbeddings::load(WeightStore& w, const std::string& prefix, const BertConfig& c) {
  const int64_t d = c.hidden_size;
  word_embeddings = w.take(prefix + "word_embeddings.weight", {c.vocab_size, d});
  position_embeddings = w.take(prefix + "position_embeddings.weight", {c.max_position_embeddings, d});
  token_type_embeddings = w.take(prefix + "token_type_embeddings.weight", {c.type_vocab_size, d});
  layer_norm_weight = w.take(prefix + "LayerNorm.weight", {d});
  layer_norm_bias = w.take(prefix + "LayerNorm.bias", {d});
  eps = c.layer_norm_eps;
}

at::Tensor BertEmbeddings::forward(const at::Tensor& input_ids, const at::Tensor& token_type_ids,
                                   const at::Tensor& position_ids, const at::Tensor& words) const {
  const int64_t max_type = token_type_ids.max().item<int64_t>(),
                min_type = token_type_ids.min().item<int64_t>();
  ATLAS_CHECK(min_type >= 0 && max_type < token_type_embeddings.size(0), InputError,
              "token_type_ids: expected values in [0, {}), got [{}, {}]", token_type_embeddings.size(0),
              min_type, max_type);
  at::Tensor embeddings = (words.defined() ? words : at::embedding(word_embeddings, input_ids)) +
                          at::embedding(token_type_embeddings, token_type_ids);  // [B,T,D]
  embeddings = embeddings + at::embedding(position_embeddings, position_ids);
  return layer_norm(embeddings, layer_norm_weight, layer_norm_bias, eps);
}

void BertEncoder::load(WeightStore& w, const std::string& prefix, const BertConfig& c) {
  config_ = c;
  const int64_t d = c.hidden_size, ff = c.intermediate_size;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("{}{}.", prefix, i);
    BertLayer l;
    l.query_weight = w.take_linear(p + "attention.self.query.weight", {d, d});
    l.query_bias = w.take(p + "attention.self.query.bias", {d});
    l.key_weight = w.take_linear(p + "attention.self.key.weight", {d, d});
    l.key_bias = w.take(p + "attention.self.key.bias", {d});
    l.value_weight = w.take_linear(p + "attention.self.value.weight", {d, d});
    l.value_bias = w.take(p + "attention.self.value.bias", {d});
    l.attention_output_weight = w.take_linear(p + "attention.output.dense.weight", {d, d});
    l.attention_output_bias = w.take(p + "attention.output.dense.bias", {d});
    l.attention_layer_norm_weight = w.take(p + "attention.output.LayerNorm.weight", {d});
    l.attention_layer_norm_bias = w.take(p + "attention.output.LayerNorm.bias", {d});
    l.intermediate_weight = w.take_linear(p + "intermediate.dense.weight", {ff, d});
    l.intermediate_bias = w.take(p + "intermediate.dense.bias", {ff});
    l.output_weight = w.take_linear(p + "output.dense.weight", {d, ff});
    l.output_bias = w.take(p + "output.dense.bias", {d});
    l.output_layer_norm_weight = w.take(p + "output.LayerNorm.weight", {d});
    l.output_layer_norm_bias = w.take(p + "output.LayerNorm.bias", {d});
    layers_.push_back(std::move(l));
  }
}

at::Tensor BertEncoder::forward(at::Tensor hidden_states, const at::Tensor& padding_mask, Taps& taps,
                                const Inputs* inputs) const {
  const BertConfig& c = config_;
  const double scale = std::sqrt(static_cast<double>(c.hidden_size / c.num_attention_heads));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    emit_if(taps, "hidden", i, hidden_states);
    const BertLayer& l = layers_[static_cast<size_t>(i)];

    at::Tensor query = split_heads(project(hidden_states, l.query_weight, l.query_bias),
                                   c.num_attention_heads);  // [B,H,T,d]
    at::Tensor key = split_heads(project(hidden_states, l.key_weight, l.key_bias), c.num_attention_heads);
    at::Tensor value =
        split_heads(project(hidden_states, l.value_weight, l.value_bias), c.num_attention_heads);

    at::Tensor attention_scores = at::matmul(query, key.transpose(-1, -2)) / scale;  // [B,H,T,T]
    if (padding_mask.defined()) attention_scores = attention_scores + padding_mask;
    at::Tensor attention_probs = at::softmax(attention_scores, -1);
    emit_if(taps, "attn_probs", i, attention_probs);
    if (taps.wants(kValueNorms, i)) taps.emit(kValueNorms, i, value_norms(value, l.attention_output_weight));

    if (inputs) attention_probs = apply_head_mask(attention_probs, *inputs, i);
    at::Tensor context = merge_heads(at::matmul(attention_probs, value));  // [B,T,D]
    at::Tensor attention_output =
        layer_norm(project(context, l.attention_output_weight, l.attention_output_bias) + hidden_states,
                   l.attention_layer_norm_weight, l.attention_layer_norm_bias, c.layer_norm_eps);
    at::Tensor intermediate = activate(c.hidden_act, project(attention_output, l.intermediate_weight,
                                                                l.intermediate_bias));  // [B,T,F]
    hidden_states = layer_norm(project(intermediate, l.output_weight, l.output_bias) + attention_output,
                               l.output_layer_norm_weight, l.output_layer_norm_bias, c.layer_norm_eps);
  }
  emit_if(taps, "hidden", c.num_hidden_layers, hidden_states);
  return hidden_states;
}

at::Tensor MlmHead::forward(const at::Tensor& hidden_states) const {
  at::Tensor x = activate(act, project(hidden_states, dense_weight, dense_bias));  // [B,T,D]
  x = layer_norm(x, layer_norm_weight, layer_norm_bias, eps);
  return project(x, decoder_weight, bias);  // [B,T,V]
}

at::Tensor bert_family_forward(const Inputs& inputs, const at::Tensor& position_ids,
                               const BertEmbeddings& embeddings, const BertEncoder& encoder,
                               const MlmHead& head, Taps& taps, bool compute_logits) {
  const at::Tensor& input_ids = inputs.input_ids;
  at::Tensor token_type_ids =
      inputs.token_type_ids.defined() ? inputs.token_type_ids : at::zeros_like(input_ids);  // [B,T]
  const at::Tensor words = word_embeddings(embeddings.word_embeddings, inputs, taps);        // [B,T,D]
  at::Tensor hidden_states = embeddings.forward(input_ids, token_type_ids, position_ids, words);  // [B,T,D]
  at::Tensor padding_mask;
  if (inputs.attention_mask.defined())
    padding_mask = additive_padding_mask(inputs.attention_mask);  // [B,1,1,T]
  hidden_states = encoder.forward(hidden_states, padding_mask, taps, &inputs);
  if (!compute_logits) return {};
  return head.forward(hidden_states);
}

}  // namespace atlas::models
