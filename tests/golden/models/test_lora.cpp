// PEFT LoRA adapters merged into the weights, against transformers with the adapter merged
// (reference/attention/<arch>-lora), plus the error paths of adapter loading.
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "atlas/core/error.hpp"
#include "golden_support.hpp"

using namespace atlas;
namespace fs = std::filesystem;

namespace {

models::LoadOptions with_adapter(const std::string& name) {
  models::LoadOptions o;
  o.adapters = {test::reference_model(name)};
  return o;
}

template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("expected another exception type, got: " << e.what());
  }
  FAIL("expected an exception");
  return "";
}

/// A copy of an adapter folder whose adapter_config.json is edited by `edit`.
fs::path edited_adapter(const std::string& name, const std::string& tag,
                        const std::function<void(nlohmann::json&)>& edit) {
  const fs::path src = test::reference_model(name);
  const fs::path dir = fs::temp_directory_path() / fmt::format("atlas-lora-{}-{}-{}", name, tag, ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(src / "adapter_model.safetensors", dir / "adapter_model.safetensors");
  std::ifstream in(src / "adapter_config.json");
  nlohmann::json j = nlohmann::json::parse(in);
  edit(j);
  std::ofstream(dir / "adapter_config.json") << j.dump(2);
  return dir;
}

}  // namespace

TEST_CASE("llama-lora: llama with the LoRA adapter merged matches transformers") {
  auto d = test::check_all_cases(test::reference_model("llama"), test::reference_cases("llama-lora"),
                                 with_adapter("llama-lora"));
  CHECK(d.cases == 2);
}

TEST_CASE("gpt2-lora: GPT-2 (Conv1D, fan_in_fan_out) with the LoRA adapter merged matches transformers") {
  auto d = test::check_all_cases(test::reference_model("gpt2"), test::reference_cases("gpt2-lora"),
                                 with_adapter("gpt2-lora"));
  CHECK(d.cases == 2);
}

TEST_CASE("lora: an adapter folder given as the model loads its base; the info records the adapter") {
  models::LoadOptions o;
  o.base = test::reference_model("llama");
  auto model = models::load_model(test::reference_model("llama-lora"), o);
  const auto& info = model->info();
  REQUIRE(info.adapters.size() == 1);
  CHECK(info.adapters[0].r == 8);
  CHECK(info.adapters[0].scaling == doctest::Approx(2.0));
  CHECK(info.adapters[0].merged_tensors.size() == 4);
  CHECK(info.adapters[0].sha256.size() == 64);
  CHECK(info.model_dir == test::reference_model("llama"));
  // base_model_name_or_path "reference/models/llama" is found above the adapter folder.
  auto by_name = models::load_model(test::reference_model("llama-lora"));
  REQUIRE(by_name->info().notes.size() == 1);
  CHECK(by_name->info().notes[0].find("base_model_name_or_path") != std::string::npos);
  // The same numbers as with --adapter.
  test::check_all_cases(test::reference_model("llama-lora"), test::reference_cases("llama-lora"));
}

TEST_CASE("lora: the merged weights are new tensors; the base model loaded afterwards is unchanged") {
  test::check_all_cases(test::reference_model("llama"), test::reference_cases("llama-lora"), with_adapter("llama-lora"));
  test::check_all_cases(test::reference_model("llama"), test::reference_cases("llama"));
}

TEST_CASE("lora: errors name the tensor or key") {
  const fs::path llama = test::reference_model("llama");
  const fs::path gpt2 = test::reference_model("gpt2");
  // Adapter for another base: llama's adapter on gpt2 -> unknown module; gpt2's on llama likewise.
  std::string msg = error_of<CheckpointError>([&] { models::load_model(gpt2, with_adapter("llama-lora")); });
  CHECK(msg.find("unknown target module") != std::string::npos);
  CHECK(msg.find("model.layers.0.self_attn.q_proj") != std::string::npos);

  // A shape mismatch: llama's adapter with its tensors claiming fan_in_fan_out.
  fs::path dir = edited_adapter("llama-lora", "fif", [](nlohmann::json& j) { j["fan_in_fan_out"] = true; });
  models::LoadOptions o;
  o.adapters = {dir};
  msg = error_of<CheckpointError>([&] { models::load_model(llama, o); });
  CHECK(msg.find("another base model") != std::string::npos);
  CHECK(msg.find("[64, 32]") != std::string::npos);   // v_proj delta transposed
  CHECK(msg.find("[32, 64]") != std::string::npos);   // the base v_proj weight
  fs::remove_all(dir);

  dir = edited_adapter("llama-lora", "ia3", [](nlohmann::json& j) { j["peft_type"] = "IA3"; });
  o.adapters = {dir};
  msg = error_of<ConfigError>([&] { models::load_model(llama, o); });
  CHECK(msg.find("peft_type") != std::string::npos);
  CHECK(msg.find("IA3") != std::string::npos);
  fs::remove_all(dir);

  dir = edited_adapter("llama-lora", "nor", [](nlohmann::json& j) { j.erase("r"); });
  o.adapters = {dir};
  msg = error_of<ConfigError>([&] { models::load_model(llama, o); });
  CHECK(msg.find("'r'") != std::string::npos);
  fs::remove_all(dir);

  dir = edited_adapter("llama-lora", "target", [](nlohmann::json& j) { j["target_modules"] = {"q_proj"}; });
  o.adapters = {dir};
  msg = error_of<CheckpointError>([&] { models::load_model(llama, o); });
  CHECK(msg.find("v_proj") != std::string::npos);
  CHECK(msg.find("target_modules") != std::string::npos);
  fs::remove_all(dir);

  dir = edited_adapter("llama-lora", "save", [](nlohmann::json& j) { j["modules_to_save"] = {"lm_head"}; });
  o.adapters = {dir};
  msg = error_of<ConfigError>([&] { models::load_model(llama, o); });
  CHECK(msg.find("modules_to_save") != std::string::npos);
  fs::remove_all(dir);

  dir = edited_adapter("llama-lora", "hub", [](nlohmann::json& j) { j["base_model_name_or_path"] = "meta-llama/x"; });
  msg = error_of<ConfigError>([&] { models::load_model(dir); });
  CHECK(msg.find("base_model_name_or_path") != std::string::npos);
  CHECK(msg.find("--base") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("lora: a regex target_modules and use_rslora follow PEFT") {
  const fs::path dir = edited_adapter("llama-lora", "rs", [](nlohmann::json& j) {
    j["target_modules"] = R"(.*\.(q|v)_proj)";
    j["use_rslora"] = true;
  });
  models::LoadOptions o;
  o.adapters = {dir};
  auto model = models::load_model(test::reference_model("llama"), o);
  CHECK(model->info().adapters.at(0).scaling == doctest::Approx(16.0 / std::sqrt(8.0)));
  CHECK(model->info().adapters.at(0).merged_tensors.size() == 4);
  fs::remove_all(dir);
}
