// Llama against transformers' reference outputs: the tiny GQA model, its sharded copy, and the
// trained stories260K model.
#include "golden_support.hpp"

using namespace atlas;

TEST_CASE("llama: attention, logits and hidden states match transformers on every case") {
  test::check_all_cases(test::reference_model("llama"), test::reference_cases("llama"));
}

TEST_CASE("llama-sharded: two safetensors shards give the same outputs") {
  test::check_all_cases(test::reference_model("llama-sharded"), test::reference_cases("llama"));
}

TEST_CASE("stories260K: a trained model with tied embeddings matches transformers") {
  test::check_all_cases(test::shared_dir() / "models" / "stories260K", test::reference_cases("stories260K"));
}

TEST_CASE("llama: model info reports grouped-query heads") {
  auto model = models::load_model(test::reference_model("llama"));
  CHECK(model->info().num_heads == 4);
  CHECK(model->info().num_kv_heads == 2);
  CHECK(model->info().causal);
  CHECK(model->info().max_positions == 256);  // the trained context, max_position_embeddings
}
