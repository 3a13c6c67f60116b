// OPT (OPT-125m layout) against transformers' reference outputs on every case of attention/opt/: learned positions offset by 2 from the mask cumsum, pre-LN, q scaled before q.k, tied head.
#include "golden_support.hpp"

using namespace atlas;

TEST_CASE("opt: attention, logits and hidden states match transformers on every case") {
  // a_len1, b_len7, c_len60, d_text (the slow tokenizer's ids), f_batch (right padding); all with logits
  const std::vector<std::string> cases = {"a_len1", "b_len7", "c_len60", "d_text", "f_batch"};
  test::require_reference_keys(test::reference_cases("opt"), cases, 2, cases);
  test::check_all_cases(test::reference_model("opt"), test::reference_cases("opt"));
}

TEST_CASE("opt: model info") {
  auto model = models::load_model(test::reference_model("opt"));
  CHECK(model->info().model_class == "OPTForCausalLM");
  CHECK(model->info().num_heads == 4);
  CHECK(model->info().causal);
  CHECK(model->info().pad_token_id == 1);
  CHECK(model->info().max_positions == 256);
}
