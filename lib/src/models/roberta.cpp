// RoBERTa (Liu et al. 2019): the BERT encoder with position ids that count real tokens from
// pad_token_id + 1 (padding tokens get pad_token_id) and the RobertaLMHead.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "atlas/core/error.hpp"
#include "models/architectures.hpp"
#include "models/bert_blocks.hpp"

namespace atlas::models {

namespace {

/// create_position_ids_from_input_ids: cumsum(mask) * mask + padding_idx, mask = ids != pad.
at::Tensor roberta_position_ids(const at::Tensor& input_ids, int64_t padding_idx) {
  at::Tensor mask = input_ids.ne(padding_idx).to(at::kInt);                  // [B,T]
  at::Tensor incremental_indices = at::cumsum(mask, 1).to(at::kInt) * mask;  // [B,T]
  return incremental_indices.to(at::kLong) + padding_idx;
}

class Roberta final : public Model {
 public:
  Roberta(ModelContext& ctx, const std::string& head_class, const std::string& base_class)
      : config_(BertConfig::from_hf_json(ctx.config())) {
    const BertConfig& c = config_;
    if (c.pad_token_id < 0 || c.pad_token_id + 1 >= c.max_position_embeddings)
      ctx.config().reject(
          "pad_token_id",
          fmt::format("in [0, max_position_embeddings - 1 = {})", c.max_position_embeddings - 1),
          std::to_string(c.pad_token_id));
    Layout layout = resolve_layout(ctx, head_class, base_class, "roberta.");
    // Positions start at pad_token_id + 1, so fewer tokens fit than there are position embeddings.
    info_ = model_info(ctx, layout,
                       {c.num_hidden_layers, c.num_attention_heads, c.num_attention_heads, c.hidden_size,
                        c.vocab_size, c.max_position_embeddings - c.pad_token_id - 1, false});
    info_.pad_token_id = c.pad_token_id;

    WeightStore& w = ctx.weights();
    const std::string& p = layout.prefix;
    const int64_t d = c.hidden_size;
    embeddings_.load(w, p + "embeddings.", c);
    encoder_.load(w, p + "encoder.layer.", c);
    w.take_optional(p + "pooler.dense.weight", {d, d});
    w.take_optional(p + "pooler.dense.bias", {d});
    if (layout.has_head) {
      head_.dense_weight = w.take_linear("lm_head.dense.weight", {d, d});
      head_.dense_bias = w.take("lm_head.dense.bias", {d});
      head_.layer_norm_weight = w.take("lm_head.layer_norm.weight", {d});
      head_.layer_norm_bias = w.take("lm_head.layer_norm.bias", {d});
      head_.bias = w.take("lm_head.bias", {c.vocab_size});
      w.claim_tied_copy("lm_head.decoder.bias", {c.vocab_size});  // always tied to lm_head.bias
      head_.decoder_weight = w.take_or_tie("lm_head.decoder.weight", {c.vocab_size, d}, c.tie_word_embeddings,
                                           embeddings_.word_embeddings);
      head_.act = Activation::Gelu;  // RobertaLMHead uses gelu whatever hidden_act says
      head_.eps = c.layer_norm_eps;
    }
    w.ignore_buffers({"embeddings.position_ids"});
  }

  const ModelInfo& info() const override { return info_; }

  at::Tensor forward(const Inputs& raw_inputs, Taps& taps, bool compute_logits) override {
    c10::InferenceMode guard(!raw_inputs.autograd);
    if (compute_logits) require_lm_head(info_);
    const Inputs inputs = checked_inputs(raw_inputs, info_, embeddings_.word_embeddings.device());
    at::Tensor position_ids = roberta_position_ids(inputs.input_ids, config_.pad_token_id);  // [B,T]
    return bert_family_forward(inputs, position_ids, embeddings_, encoder_, head_, taps, compute_logits);
  }

 private:
  BertConfig config_;
  ModelInfo info_;
  BertEmbeddings embeddings_;
  BertEncoder encoder_;
  MlmHead head_;
};

}  // namespace

std::unique_ptr<Model> make_roberta_family(ModelContext& ctx, const std::string& head_class,
                                           const std::string& base_class) {
  return std::make_unique<Roberta>(ctx, head_class, base_class);
}

std::unique_ptr<Model> make_roberta(ModelContext& ctx) {
  return make_roberta_family(ctx, "RobertaForMaskedLM", "RobertaModel");
}

}  // namespace atlas::models
