// XLM-RoBERTa against transformers' reference outputs on every case of attention/xlm_roberta/: the RoBERTa network under model_type xlm-roberta (ids from the NPZ; its tokenizer is tested elsewhere).
#include "golden_support.hpp"

using namespace atlas;

TEST_CASE("xlm_roberta: attention, logits and hidden states match transformers on every case") {
  // a_len1, b_len7, c_len60, d_text (the slow tokenizer's ids), f_batch (right padding); all with logits
  const std::vector<std::string> cases = {"a_len1", "b_len7", "c_len60", "d_text", "f_batch"};
  test::require_reference_keys(test::reference_cases("xlm_roberta"), cases, 2, cases);
  test::check_all_cases(test::reference_model("xlm_roberta"), test::reference_cases("xlm_roberta"));
}

TEST_CASE("xlm_roberta: model info") {
  auto model = models::load_model(test::reference_model("xlm_roberta"));
  CHECK(model->info().model_type == "xlm-roberta");
  CHECK(model->info().model_class == "XLMRobertaForMaskedLM");
  CHECK_FALSE(model->info().causal);
  CHECK(model->info().vocab_size == 1002);
  CHECK(model->info().max_positions == 256);  // 258 position rows, positions start at pad_token_id + 1 = 2
}
