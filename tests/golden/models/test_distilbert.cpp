// DistilBERT against transformers' reference outputs.
#include "golden_support.hpp"

using namespace atlas;

TEST_CASE("distilbert: attention, logits and hidden states match transformers on every case") {
  test::check_all_cases(test::reference_model("distilbert"), test::reference_cases("distilbert"));
}
