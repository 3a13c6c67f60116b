// GPT-NeoX against transformers' reference outputs (partial rotary, parallel residual).
#include "golden_support.hpp"

using namespace atlas;

TEST_CASE("gpt_neox: attention, logits and hidden states match transformers on every case") {
  test::check_all_cases(test::reference_model("gpt_neox"), test::reference_cases("gpt_neox"));
}
