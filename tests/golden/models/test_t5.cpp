// T5 (v1.0: relu, tied LM head with the d_model^-0.5 rescale) against transformers' reference
// outputs: encoder, decoder and cross-attention of every layer, logits and hidden states.
#include "atlas/core/error.hpp"
#include "encdec_support.hpp"

using namespace atlas;

TEST_CASE("t5: encoder, decoder and cross-attention, logits and hidden states match transformers") {
  test::check_all_encdec_cases(test::reference_model("t5"), test::reference_cases("t5"));
}

TEST_CASE("t5: without decoder ids the decoder input is decoder_start_token_id") {
  auto model = models::load_model(test::reference_model("t5"));
  CHECK(model->info().decoder_start_token_id == 1100);
  test::EncDecDifferences total;
  test::check_encdec_case(*model, test::reference_cases("t5") / "b_len7_dec1.npz", total, true);
}

TEST_CASE("t5: model info describes both stacks") {
  auto model = models::load_model(test::reference_model("t5"));
  const models::ModelInfo& info = model->info();
  CHECK(info.is_encoder_decoder);
  CHECK(info.max_positions == 0);
  REQUIRE(info.stacks.size() == 2);
  CHECK(info.stacks[0].name == "encoder");
  CHECK_FALSE(info.stacks[0].causal);
  CHECK(info.stacks[1].name == "decoder");
  CHECK(info.stacks[1].causal);
  CHECK(info.stacks[1].cross_attention);
  CHECK(info.stacks[1].num_layers == 2);
  CHECK(info.num_layers == 2);  // top-level fields describe the encoder
}

TEST_CASE("t5: decoder ids outside the vocabulary are an InputError") {
  auto model = models::load_model(test::reference_model("t5"));
  models::Inputs inputs;
  inputs.input_ids = at::tensor(std::vector<int64_t>{5, 6, 7}, at::kLong).unsqueeze(0);
  inputs.decoder_input_ids = at::tensor(std::vector<int64_t>{1100, 5000}, at::kLong).unsqueeze(0);
  models::NullTaps taps;
  CHECK_THROWS_AS(model->forward(inputs, taps, false), InputError);
}
