// Gemma against transformers' reference outputs on every case of attention/gemma/: (1 + w) RMSNorm, sqrt(hidden)-scaled embeddings, GeGLU, head_dim 32 with one kv head, tied head.
#include "golden_support.hpp"

using namespace atlas;

TEST_CASE("gemma: attention, logits and hidden states match transformers on every case") {
  // a_len1, b_len7, c_len60, d_text (the slow tokenizer's ids), f_batch (right padding); all with logits
  const std::vector<std::string> cases = {"a_len1", "b_len7", "c_len60", "d_text", "f_batch"};
  test::require_reference_keys(test::reference_cases("gemma"), cases, 2, cases);
  test::check_all_cases(test::reference_model("gemma"), test::reference_cases("gemma"));
}

TEST_CASE("gemma: model info reports multi-query heads and the tied head") {
  auto model = models::load_model(test::reference_model("gemma"));
  CHECK(model->info().model_class == "GemmaForCausalLM");
  CHECK(model->info().num_heads == 4);
  CHECK(model->info().num_kv_heads == 1);
  CHECK(model->info().causal);
  CHECK(model->info().has_lm_head);
  CHECK(model->info().max_positions == 256);
}
