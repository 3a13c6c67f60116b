// Qwen2 against transformers' reference outputs (q/k/v biases, grouped-query attention).
#include "golden_support.hpp"

using namespace atlas;

TEST_CASE("qwen2: attention, logits and hidden states match transformers on every case") {
  test::check_all_cases(test::reference_model("qwen2"), test::reference_cases("qwen2"));
}
