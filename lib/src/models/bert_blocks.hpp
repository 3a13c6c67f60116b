#pragma once
// The BERT encoder (Devlin et al. 2019) shared by bert.cpp and roberta.cpp, which differ only in
// their position ids, checkpoint prefixes and LM head names.
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "atlas/models/model.hpp"
#include "models/architectures.hpp"
#include "models/config_reader.hpp"
#include "models/layers.hpp"
#include "models/weights.hpp"

namespace atlas::models {

/// config.json keys of BertConfig / RobertaConfig.
struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  Activation hidden_act = Activation::Gelu;
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;
  bool tie_word_embeddings = true;

  static BertConfig from_hf_json(const ConfigReader& c);
};

/// word + token type + absolute position embeddings, then LayerNorm.
struct BertEmbeddings {
  at::Tensor word_embeddings, position_embeddings, token_type_embeddings, layer_norm_weight, layer_norm_bias;
  double eps = 1e-12;

  void load(WeightStore& w, const std::string& prefix, const BertConfig& c);
  /// input_ids, token_type_ids [B,T]; position_ids [B,T] or [1,T] -> [B,T,D]
  /// `words`: the word embeddings when already looked up (inputs_embeds), else undefined.
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& token_type_ids,
                     const at::Tensor& position_ids, const at::Tensor& words = {}) const;
};

struct BertLayer {
  at::Tensor query_weight, query_bias, key_weight, key_bias, value_weight, value_bias;
  at::Tensor attention_output_weight, attention_output_bias, attention_layer_norm_weight,
      attention_layer_norm_bias;
  at::Tensor intermediate_weight, intermediate_bias;
  at::Tensor output_weight, output_bias, output_layer_norm_weight, output_layer_norm_bias;
};

class BertEncoder {
 public:
  /// Layers under `prefix` ("bert.encoder.layer.").
  void load(WeightStore& w, const std::string& prefix, const BertConfig& c);
  /// Post-LN layers. Emits "hidden" 0..L (input of each layer, then the output) and "attn_probs".
  /// `padding_mask` is the additive [B,1,1,T] mask or undefined.
  /// `inputs` (optional) supplies the head_mask.
  at::Tensor forward(at::Tensor hidden_states, const at::Tensor& padding_mask, Taps& taps,
                     const Inputs* inputs = nullptr) const;

 private:
  BertConfig config_;
  std::vector<BertLayer> layers_;
};

/// dense -> activation -> LayerNorm -> decoder (tied to the word embeddings) + bias.
struct MlmHead {
  at::Tensor dense_weight, dense_bias, layer_norm_weight, layer_norm_bias, decoder_weight, bias;
  Activation act = Activation::Gelu;
  double eps = 1e-12;

  at::Tensor forward(const at::Tensor& hidden_states) const;  // [B,T,V]
};

/// RoBERTa's network loaded from the keys of `head_class` (roberta. + lm_head) or `base_class`
/// (bare): RoBERTa itself and the architectures that are RoBERTa under another name (XLM-RoBERTa).
std::unique_ptr<Model> make_roberta_family(ModelContext& ctx, const std::string& head_class,
                                           const std::string& base_class);

/// The forward pass BERT and RoBERTa share once their position ids are chosen: embeddings (token
/// types default to 0), the additive padding mask, the encoder, and the MLM head when asked.
at::Tensor bert_family_forward(const Inputs& inputs, const at::Tensor& position_ids,
                               const BertEmbeddings& embeddings, const BertEncoder& encoder,
                               const MlmHead& head, Taps& taps, bool compute_logits);

}  // namespace atlas::models
