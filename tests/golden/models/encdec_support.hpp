#pragma once
// Golden checks of encoder-decoder models (T5, BART) against transformers' outputs: encoder
// self-attention (attn_L{l}), decoder self-attention (dec_self_L{l}), cross-attention (cross_L{l}),
// logits, and the hidden states of both stacks (hidden_L{i}, dec_hidden_L{i}). Every key is
// required: a reference file without one fails the test.
#include "golden_support.hpp"

namespace atlas::test {

/// Largest differences over one encoder-decoder's cases, per attention kind.
struct EncDecDifferences {
  double encoder = 0, decoder = 0, cross = 0, logits = 0, hidden = 0;
  int cases = 0;
};

inline void check_encdec_case(models::Model& model, const std::filesystem::path& npz, EncDecDifferences& total,
                              bool drop_decoder_ids = false) {
  io::NpzReader reader(npz);
  const std::string name = npz.parent_path().filename().string() + "/" + npz.stem().string();
  auto need = [&](const std::string& key) {
    REQUIRE_MESSAGE(reader.contains(key), name, ": the reference has no '", key, "'");
    return to_tensor(reader.get(key));
  };
  auto batched = [](at::Tensor t) { return t.dim() == 1 ? t.unsqueeze(0) : t; };
  models::Inputs inputs;
  inputs.input_ids = batched(need("input_ids"));
  if (!drop_decoder_ids) inputs.decoder_input_ids = batched(need("decoder_input_ids"));
  if (reader.contains("attention_mask")) inputs.attention_mask = batched(need("attention_mask"));
  if (reader.contains("decoder_attention_mask")) inputs.decoder_attention_mask = batched(need("decoder_attention_mask"));
  const bool is_batch = reader.get("input_ids").ndim() == 2;

  RecordingTaps taps;
  at::Tensor logits = model.forward(inputs, taps, true);
  auto unbatch = [is_batch](const at::Tensor& t) { return is_batch ? t : t.squeeze(0); };

  const auto stacks = models::model_stacks(model.info());
  REQUIRE(stacks.size() == 2);
  const int64_t enc_layers = stacks[0].num_layers, dec_layers = stacks[1].num_layers;
  auto compare = [&](const char* tap, int64_t layer, const std::string& key) {
    REQUIRE_MESSAGE(taps.values.count({tap, layer}), name, ": the model emitted no ", tap, " for layer ", layer);
    const at::Tensor got = unbatch(taps.values.at({tap, layer}));
    const at::Tensor want = need(key);
    const double diff = max_abs_diff(got, want, name + " " + key);
    const at::Tensor zeros = want.eq(0);
    if (std::string(tap).find("attn_probs") != std::string::npos && zeros.any().item<bool>())
      CHECK_MESSAGE(got.masked_select(zeros).abs().max().item<float>() == 0.0f, name, " ", key,
                    ": probabilities that are exactly 0 in the reference are not 0");
    return diff;
  };
  double encoder = 0, decoder = 0, cross = 0, hidden = 0;
  for (int64_t l = 0; l < enc_layers; ++l)
    encoder = std::max(encoder, compare(models::kEncoderAttnProbs, l, fmt::format("attn_L{}", l)));
  for (int64_t l = 0; l < dec_layers; ++l) {
    decoder = std::max(decoder, compare(models::kDecoderAttnProbs, l, fmt::format("dec_self_L{}", l)));
    cross = std::max(cross, compare(models::kCrossAttnProbs, l, fmt::format("cross_L{}", l)));
  }
  for (int64_t i = 0; i <= enc_layers; ++i)
    hidden = std::max(hidden, compare("encoder_hidden", i, fmt::format("hidden_L{}", i)));
  for (int64_t i = 0; i <= dec_layers; ++i)
    hidden = std::max(hidden, compare("decoder_hidden", i, fmt::format("dec_hidden_L{}", i)));
  REQUIRE(logits.defined());
  const double logit = max_abs_diff(unbatch(logits.to(at::kCPU)), need("logits"), name + " logits");

  MESSAGE(fmt::format("{}{}: max |diff| encoder {:.3g}, decoder {:.3g}, cross {:.3g}, logits {:.3g}, hidden {:.3g}",
                      name, drop_decoder_ids ? " (default decoder input)" : "", encoder, decoder, cross, logit,
                      hidden));
  CHECK(encoder <= kAttentionTolerance);
  CHECK(decoder <= kAttentionTolerance);
  CHECK(cross <= kAttentionTolerance);
  CHECK(logit <= kLogitsTolerance);
  CHECK(hidden <= kHiddenTolerance);
  total.encoder = std::max(total.encoder, encoder);
  total.decoder = std::max(total.decoder, decoder);
  total.cross = std::max(total.cross, cross);
  total.logits = std::max(total.logits, logit);
  total.hidden = std::max(total.hidden, hidden);
  ++total.cases;
}

inline EncDecDifferences check_all_encdec_cases(const std::filesystem::path& model_dir,
                                                const std::filesystem::path& cases_dir,
                                                const models::LoadOptions& options = {}) {
  at::set_num_threads(2);
  auto model = models::load_model(model_dir, options);
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(cases_dir))
    if (entry.path().extension() == ".npz") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE_MESSAGE(!files.empty(), "no reference cases in ", cases_dir.string());
  EncDecDifferences total;
  for (const auto& f : files) check_encdec_case(*model, f, total);
  MESSAGE(fmt::format("{} over {} cases: max |diff| encoder {:.3g}, decoder {:.3g}, cross {:.3g}, logits {:.3g}, "
                      "hidden {:.3g}",
                      model_dir.filename().string(), total.cases, total.encoder, total.decoder, total.cross,
                      total.logits, total.hidden));
  return total;
}

}  // namespace atlas::test
