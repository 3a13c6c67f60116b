// RoBERTa against transformers' reference outputs (position ids start at pad_token_id + 1).
#include "golden_support.hpp"

using namespace atlas;

TEST_CASE("roberta: attention, logits and hidden states match transformers on every case") {
  test::check_all_cases(test::reference_model("roberta"), test::reference_cases("roberta"));
}

TEST_CASE("roberta: max positions account for the pad offset") {
  auto model = models::load_model(test::reference_model("roberta"));
  CHECK(model->info().max_positions == 258 - 1 - 1);
  CHECK(model->info().pad_token_id == 1);
}
