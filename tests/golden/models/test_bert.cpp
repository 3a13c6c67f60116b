// BERT against transformers' reference outputs, incl. sentence pairs (token_type_ids) and a padded
// batch, from safetensors and from pytorch_model.bin (with tied decoder copies).
#include "golden_support.hpp"

using namespace atlas;

TEST_CASE("bert: attention, logits and hidden states match transformers on every case") {
  test::check_all_cases(test::reference_model("bert"), test::reference_cases("bert"));
}

TEST_CASE("bert-bin: pytorch_model.bin with cls.predictions.decoder copies gives the same outputs") {
  test::check_all_cases(test::reference_model("bert-bin"), test::reference_cases("bert"));
}

TEST_CASE("bert: token_type_ids change the result (e_pair would pass without them only by accident)") {
  auto model = models::load_model(test::reference_model("bert"));
  io::NpzReader reader(test::reference_cases("bert") / "e_pair.npz");
  models::Inputs inputs;
  inputs.input_ids = test::to_tensor(reader.get("input_ids")).unsqueeze(0);
  test::RecordingTaps taps;
  model->forward(inputs, taps, false);
  const at::Tensor want = test::to_tensor(reader.get("attn_L1"));
  CHECK(test::max_abs_diff(taps.values.at({"attn_probs", 1}).squeeze(0), want, "attn_L1") > 1e-3);
  CHECK_FALSE(model->info().causal);
}
