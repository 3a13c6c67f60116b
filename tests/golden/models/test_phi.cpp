// Phi (phi-2 layout) against transformers' reference outputs on every case of attention/phi/: partial rotary (8 of 16 dims), parallel attention and MLP off one LayerNorm, biased lm_head.
#include "golden_support.hpp"

using namespace atlas;

TEST_CASE("phi: attention, logits and hidden states match transformers on every case") {
  // a_len1, b_len7, c_len60, d_text (the slow tokenizer's ids), f_batch (right padding); all with logits
  const std::vector<std::string> cases = {"a_len1", "b_len7", "c_len60", "d_text", "f_batch"};
  test::require_reference_keys(test::reference_cases("phi"), cases, 2, cases);
  test::check_all_cases(test::reference_model("phi"), test::reference_cases("phi"));
}

TEST_CASE("phi: model info") {
  auto model = models::load_model(test::reference_model("phi"));
  CHECK(model->info().model_class == "PhiForCausalLM");
  CHECK(model->info().num_heads == 4);
  CHECK(model->info().num_kv_heads == 4);
  CHECK(model->info().causal);
  CHECK(model->info().max_positions == 256);
}
