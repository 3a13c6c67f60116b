// BERT (Devlin et al. 2019): post-LN encoder with word + segment + absolute position embeddings and
// the masked-LM head of BertForMaskedLM (decoder tied to the word embeddings).
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "atlas/core/error.hpp"
#include "models/architectures.hpp"
#include "models/bert_blocks.hpp"

namespace atlas::models {

namespace {

class Bert final : public Model {
 public:
  explicit Bert(ModelContext& ctx) : config_(BertConfig::from_hf_json(ctx.config())) {
    const BertConfig& c = config_;
    Layout layout = resolve_layout(ctx, "BertForMaskedLM", "BertModel", "bert.");
    info_ = model_info(ctx, layout,
                       {c.num_hidden_layers, c.num_attention_heads, c.num_attention_heads, c.hidden_size,
                        c.vocab_size, c.max_position_embeddings, false});

    WeightStore& w = ctx.weights();
    const std::string& p = layout.prefix;
    const int64_t d = c.hidden_size;
    embeddings_.load(w, p + "embeddings.", c);
    encoder_.load(w, p + "encoder.layer.", c);
    // The pooler (BertModel, BertForPreTraining) feeds no attention or LM output; claimed when saved.
    w.take_optional(p + "pooler.dense.weight", {d, d});
    w.take_optional(p + "pooler.dense.bias", {d});
    if (layout.has_head) {
      head_.dense_weight = w.take_linear("cls.predictions.transform.dense.weight", {d, d});
      head_.dense_bias = w.take("cls.predictions.transform.dense.bias", {d});
      head_.layer_norm_weight = w.take("cls.predictions.transform.LayerNorm.weight", {d});
      head_.layer_norm_bias = w.take("cls.predictions.transform.LayerNorm.bias", {d});
      head_.bias = w.take("cls.predictions.bias", {c.vocab_size});
      w.claim_tied_copy("cls.predictions.decoder.bias",
                        {c.vocab_size});  // always tied to cls.predictions.bias
      head_.decoder_weight = w.take_or_tie("cls.predictions.decoder.weight", {c.vocab_size, d},
                                           c.tie_word_embeddings, embeddings_.word_embeddings);
      head_.act = c.hidden_act;
      head_.eps = c.layer_norm_eps;
      // BertForPreTraining checkpoints (e.g. bert-base-uncased) also carry the next-sentence head.
      w.take_optional("cls.seq_relationship.weight", {2, d});
      w.take_optional("cls.seq_relationship.bias", {2});
    }
    w.ignore_buffers({"embeddings.position_ids"});
  }

  const ModelInfo& info() const override { return info_; }

  at::Tensor forward(const Inputs& raw_inputs, Taps& taps, bool compute_logits) override {
    c10::InferenceMode guard(!raw_inputs.autograd);
    if (compute_logits) require_lm_head(info_);
    const Inputs inputs = checked_inputs(raw_inputs, info_, embeddings_.word_embeddings.device());
    const at::Tensor& ids = inputs.input_ids;
    at::Tensor position_ids = at::arange(ids.size(1), ids.options()).unsqueeze(0);  // [1,T]
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

std::unique_ptr<Model> make_bert(ModelContext& ctx) { return std::make_unique<Bert>(ctx); }

}  // namespace atlas::models
