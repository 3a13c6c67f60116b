#pragma once
// Shared by the golden model tests: runs a model on every reference case of an architecture and
// compares attention, logits and hidden states with transformers' outputs
// (/work/shared/reference/README.md: atol 2e-5 attention, 1e-4 logits and hidden states).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "atlas/io/npz.hpp"
#include "atlas/models/model.hpp"
#include "test_support.hpp"

namespace atlas::test {

constexpr double kAttentionTolerance = 2e-5;
constexpr double kLogitsTolerance = 1e-4;
constexpr double kHiddenTolerance = 1e-4;

/// Keeps a copy of everything the model emits.
class RecordingTaps final : public models::Taps {
 public:
  bool wants(const std::string&, int64_t) const override { return true; }
  void emit(const std::string& name, int64_t layer, const at::Tensor& value) override {
    CHECK_MESSAGE(values.count({name, layer}) == 0, "emitted twice: ", name, " ", layer);
    values[{name, layer}] = value.detach().to(at::kCPU).clone();
  }
  std::map<std::pair<std::string, int64_t>, at::Tensor> values;
};

inline at::Tensor to_tensor(const io::NdArray& array) {
  if (array.dtype() == io::DType::I64 || array.dtype() == io::DType::I32) {
    std::vector<int64_t> v = array.to_int64();
    return at::from_blob(v.data(), array.shape(), at::kLong).clone();
  }
  std::vector<float> v = array.to_float();
  return at::from_blob(v.data(), array.shape(), at::kFloat).clone();
}

/// Largest differences over one architecture's cases.
struct Differences {
  double attention = 0, logits = 0, hidden = 0;
  int cases = 0;
};

inline double max_abs_diff(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  REQUIRE_MESSAGE(got.sizes() == want.sizes(), what, ": shape ", c10::str(got.sizes()), " vs reference ",
                  c10::str(want.sizes()));
  return (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
}

/// Runs `model` on one reference file and checks every attn_L{l}, logits and hidden_L{i}.
inline void check_case(models::Model& model, const std::filesystem::path& npz, Differences& total) {
  io::NpzReader reader(npz);
  const std::string name = npz.parent_path().filename().string() + "/" + npz.stem().string();
  auto batched = [](at::Tensor t) { return t.dim() == 1 ? t.unsqueeze(0) : t; };
  models::Inputs inputs;
  inputs.input_ids = batched(to_tensor(reader.get("input_ids")));
  if (reader.contains("attention_mask"))
    inputs.attention_mask = batched(to_tensor(reader.get("attention_mask")));
  if (reader.contains("token_type_ids"))
    inputs.token_type_ids = batched(to_tensor(reader.get("token_type_ids")));
  const bool is_batch = reader.get("input_ids").ndim() == 2;
  const bool want_logits = reader.contains("logits");

  RecordingTaps taps;
  const auto start = std::chrono::steady_clock::now();
  at::Tensor logits = model.forward(inputs, taps, want_logits);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  auto unbatch = [is_batch](const at::Tensor& t) { return is_batch ? t : t.squeeze(0); };

  const int64_t layers = model.info().num_layers;
  double attention = 0, hidden = 0, logit = 0;
  for (int64_t l = 0; l < layers; ++l) {
    const std::string key = fmt::format("attn_L{}", l);
    REQUIRE_MESSAGE(taps.values.count({"attn_probs", l}), name, ": no attn_probs for layer ", l);
    const at::Tensor got = unbatch(taps.values.at({"attn_probs", l}));
    const at::Tensor want = to_tensor(reader.get(key));
    attention = std::max(attention, max_abs_diff(got, want, name + " " + key));
    // transformers masks with finfo.min so masked probabilities are exactly 0; so must ours be.
    const at::Tensor zeros = want.eq(0);
    if (zeros.any().item<bool>())
      CHECK_MESSAGE(got.masked_select(zeros).abs().max().item<float>() == 0.0f, name, " ", key,
                    ": probabilities that are exactly 0 in the reference are not 0");
  }
  for (int64_t i = 0; i <= layers; ++i) {
    const std::string key = fmt::format("hidden_L{}", i);
    if (!reader.contains(key)) continue;
    REQUIRE_MESSAGE(taps.values.count({"hidden", i}), name, ": no hidden state ", i);
    hidden = std::max(hidden, max_abs_diff(unbatch(taps.values.at({"hidden", i})), to_tensor(reader.get(key)),
                                           name + " " + key));
  }
  if (want_logits) {
    REQUIRE(logits.defined());
    logit = max_abs_diff(unbatch(logits.to(at::kCPU)), to_tensor(reader.get("logits")), name + " logits");
  }
  MESSAGE(fmt::format("{}: max |diff| attention {:.3g}, logits {}, hidden {:.3g} ({:.1f} ms forward)", name,
                      attention, want_logits ? fmt::format("{:.3g}", logit) : std::string("-"), hidden, ms));
  CHECK(attention <= kAttentionTolerance);
  CHECK(logit <= kLogitsTolerance);
  CHECK(hidden <= kHiddenTolerance);
  total.attention = std::max(total.attention, attention);
  total.logits = std::max(total.logits, logit);
  total.hidden = std::max(total.hidden, hidden);
  ++total.cases;
}

/// Every reference case under attention/<cases_dir> against the model in `model_dir`.
inline Differences check_all_cases(const std::filesystem::path& model_dir,
                                   const std::filesystem::path& cases_dir,
                                   const models::LoadOptions& options = {}) {
  at::set_num_threads(2);
  auto model = models::load_model(model_dir, options);
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(cases_dir))
    if (entry.path().extension() == ".npz") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE_MESSAGE(!files.empty(), "no reference cases in ", cases_dir.string());
  Differences total;
  for (const auto& f : files) check_case(*model, f, total);
  MESSAGE(fmt::format("{} over {} cases ({}): max |diff| attention {:.3g}, logits {:.3g}, hidden {:.3g}",
                      model_dir.filename().string(), total.cases, cases_dir.filename().string(),
                      total.attention, total.logits, total.hidden));
  return total;
}

/// Fails unless `cases_dir` holds exactly the cases `names` (file stems) and each has input_ids,
/// attn_L0..attn_L{layers-1} and hidden_L0..hidden_L{layers}; `with_logits` cases also logits.
inline void require_reference_keys(const std::filesystem::path& cases_dir, const std::vector<std::string>& names,
                                   int64_t layers, const std::vector<std::string>& with_logits) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(cases_dir))
    if (entry.path().extension() == ".npz") found.push_back(entry.path().stem().string());
  std::sort(found.begin(), found.end());
  std::vector<std::string> want = names;
  std::sort(want.begin(), want.end());
  REQUIRE_MESSAGE(found == want, cases_dir.string(), ": expected the cases ", fmt::format("{}", fmt::join(want, ", ")),
                  ", found ", fmt::format("{}", fmt::join(found, ", ")));
  for (const auto& name : names) {
    io::NpzReader reader(cases_dir / (name + ".npz"));
    std::vector<std::string> keys = {"input_ids"};
    for (int64_t l = 0; l < layers; ++l) keys.push_back(fmt::format("attn_L{}", l));
    for (int64_t i = 0; i <= layers; ++i) keys.push_back(fmt::format("hidden_L{}", i));
    if (std::find(with_logits.begin(), with_logits.end(), name) != with_logits.end()) keys.push_back("logits");
    for (const auto& key : keys)
      CHECK_MESSAGE(reader.contains(key), name, ".npz: reference key '", key, "' is missing");
  }
}

inline std::filesystem::path reference_model(const std::string& name) {
  return shared_dir() / "reference" / "models" / name;
}
inline std::filesystem::path reference_cases(const std::string& name) {
  return shared_dir() / "reference" / "attention" / name;
}

}  // namespace atlas::test
