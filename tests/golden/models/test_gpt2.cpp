// GPT-2 against transformers' reference outputs (safetensors and the legacy pytorch_model.bin).
#include "golden_support.hpp"

using namespace atlas;

TEST_CASE("gpt2: attention, logits and hidden states match transformers on every case") {
  test::check_all_cases(test::reference_model("gpt2"), test::reference_cases("gpt2"));
}

TEST_CASE("gpt2-bin: pytorch_model.bin with its tied lm_head copy gives the same outputs") {
  test::check_all_cases(test::reference_model("gpt2-bin"), test::reference_cases("gpt2"));
}

TEST_CASE("gpt2: model info") {
  auto model = models::load_model(test::reference_model("gpt2"));
  const auto& info = model->info();
  CHECK(info.model_type == "gpt2");
  CHECK(info.model_class == "GPT2LMHeadModel");
  CHECK(info.num_layers == 2);
  CHECK(info.num_heads == 4);
  CHECK(info.hidden_size == 64);
  CHECK(info.vocab_size == 1000);
  CHECK(info.max_positions == 256);
  CHECK(info.causal);
  CHECK(info.has_lm_head);
}
