// BART against transformers' reference outputs: learned positions with offset 2, post-LN layers,
// encoder, decoder and cross-attention of every layer (also a padded batch of both inputs), logits
// with final_logits_bias, hidden states.
#include "atlas/core/error.hpp"
#include "encdec_support.hpp"

using namespace atlas;

TEST_CASE("bart: encoder, decoder and cross-attention, logits and hidden states match transformers") {
  test::check_all_encdec_cases(test::reference_model("bart"), test::reference_cases("bart"));
}

TEST_CASE("bart: without decoder ids the decoder input is decoder_start_token_id") {
  auto model = models::load_model(test::reference_model("bart"));
  CHECK(model->info().decoder_start_token_id == 2);
  test::EncDecDifferences total;
  test::check_encdec_case(*model, test::reference_cases("bart") / "b_len7_dec1.npz", total, true);
}

TEST_CASE("bart: decoder inputs longer than max_position_embeddings are an InputError") {
  auto model = models::load_model(test::reference_model("bart"));
  models::Inputs inputs;
  inputs.input_ids = at::full({1, 4}, 5, at::kLong);
  inputs.decoder_input_ids = at::full({1, 129}, 5, at::kLong);
  models::NullTaps taps;
  CHECK_THROWS_AS(model->forward(inputs, taps, false), InputError);
}

TEST_CASE("decoder-only models refuse decoder inputs") {
  auto model = models::load_model(test::reference_model("gpt2"));
  models::Inputs inputs;
  inputs.input_ids = at::full({1, 4}, 5, at::kLong);
  inputs.decoder_input_ids = at::full({1, 2}, 5, at::kLong);
  models::NullTaps taps;
  CHECK_THROWS_AS(model->forward(inputs, taps, false), InputError);
}
