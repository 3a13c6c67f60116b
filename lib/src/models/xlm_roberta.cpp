// XLM-RoBERTa (Conneau et al. 2020): the RoBERTa network under its own model_type and class names
// (tensors roberta.* and lm_head.*); only its tokenizer (sentencepiece.bpe.model) differs.
#include "models/bert_blocks.hpp"

namespace atlas::models {

std::unique_ptr<Model> make_xlm_roberta(ModelContext& ctx) {
  return make_roberta_family(ctx, "XLMRobertaForMaskedLM", "XLMRobertaModel");
}

}  // namespace atlas::models
