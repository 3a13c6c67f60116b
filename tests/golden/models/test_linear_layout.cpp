// LoadOptions::linear_layout (`--gemm onednn`): linear weights stored transposed and multiplied by
// oneDNN's sgemm. Every architecture must still match transformers on every reference case, within
// the same tolerances as the default path, and the products must really have gone through oneDNN.
#include "encdec_support.hpp"
#include "golden_support.hpp"

using namespace atlas;

namespace {

models::LoadOptions onednn() {
  models::LoadOptions o;
  o.linear_layout = true;
  return o;
}

/// check_all_cases with the linear layout; with oneDNN in the build, some products ran through it.
void check_decoder_or_encoder(const std::string& model, const std::string& cases) {
  const int64_t before = models::onednn_products();
  test::check_all_cases(test::reference_model(model), test::reference_cases(cases), onednn());
  if (models::linear_layout_available())
    CHECK_MESSAGE(models::onednn_products() > before, model, ": no product ran through oneDNN");
}

}  // namespace

TEST_CASE("linear layout: every decoder and encoder matches transformers") {
  for (const char* name : {"gpt2", "gpt2-bin", "bert", "distilbert", "roberta", "xlm_roberta", "llama", "llama-sharded",
                           "qwen2", "gemma", "gpt_neox", "phi", "opt"}) {
    std::string cases = name;
    if (cases == "gpt2-bin") cases = "gpt2";
    if (cases == "llama-sharded") cases = "llama";
    CAPTURE(name);
    check_decoder_or_encoder(name, cases);
  }
}

TEST_CASE("linear layout: the embedded default model (stories260K) matches transformers") {
  const int64_t before = models::onednn_products();
  test::check_all_cases(test::shared_dir() / "models" / "stories260K", test::reference_cases("stories260K"), onednn());
  if (models::linear_layout_available()) CHECK(models::onednn_products() > before);
}

TEST_CASE("linear layout: encoder-decoders (T5, BART) match transformers") {
  for (const char* name : {"t5", "bart"}) {
    CAPTURE(name);
    const int64_t before = models::onednn_products();
    test::check_all_encdec_cases(test::reference_model(name), test::reference_cases(name), onednn());
    if (models::linear_layout_available()) CHECK(models::onednn_products() > before);
  }
}

TEST_CASE("linear layout: LoRA adapters are merged before the weights are transposed") {
  for (const auto& [model, adapter] : {std::pair<const char*, const char*>{"llama", "llama-lora"}, {"gpt2", "gpt2-lora"}}) {
    CAPTURE(model);
    models::LoadOptions o = onednn();
    o.adapters = {test::reference_model(adapter)};
    test::check_all_cases(test::reference_model(model), test::reference_cases(adapter), o);
  }
}

TEST_CASE("linear layout: off by default and with autograd; the products are then at::linear") {
  models::Inputs inputs;
  inputs.input_ids = at::arange(1, 9, at::kLong).unsqueeze(0);
  for (bool autograd : {false, true}) {
    CAPTURE(autograd);
    models::LoadOptions o;
    o.autograd = autograd;
    o.linear_layout = autograd;  // asked for, but attribution needs ordinary weights and at::linear
    auto model = models::load_model(test::reference_model("llama"), o);
    test::RecordingTaps taps;
    const int64_t before = models::onednn_products();
    model->forward(inputs, taps, true);
    CHECK(models::onednn_products() == before);
  }
}
