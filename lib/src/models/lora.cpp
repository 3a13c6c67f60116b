#include "models/lora.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "atlas/core/error.hpp"
#include "models/config_reader.hpp"

namespace atlas::models {

namespace fs = std::filesystem;

bool is_adapter_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "adapter_config.json", ec);
}

namespace {

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  ATLAS_CHECK(in.good(), IoError, "cannot open '{}'", file.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    ATLAS_FAIL(ConfigError, "'{}': expected JSON, got a parse error: {}", file.string(), e.what());
  }
}

/// A key that may be null or an empty container/string: anything else names a feature we do not
/// implement.
void require_empty(const ConfigReader& config, const std::string& key, const std::string& why) {
  const auto& json = config.json();
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) return;
  if ((it->is_array() || it->is_object() || it->is_string()) && it->empty()) return;
  config.reject(key, fmt::format("null or empty ({})", why), it->dump());
}

}  // namespace

std::string lora_base_tensor(const std::string& name, const char* which, std::string* module) {
  const std::string suffix = fmt::format(".{}.weight", which);
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return "";
  std::string path = name.substr(0, name.size() - suffix.size());
  // get_peft_model_state_dict names tensors by the PeftModel's module path: base_model (the
  // LoraModel) . model (the wrapped transformers model) . <module path in the base model>.
  static const std::string kPrefix = "base_model.model.";
  if (path.compare(0, kPrefix.size(), kPrefix) == 0) path = path.substr(kPrefix.size());
  if (module) *module = path;
  return path + ".weight";
}

LoraAdapter read_lora_adapter(const fs::path& dir) {
  const fs::path config_file = dir / "adapter_config.json";
  ATLAS_CHECK(is_adapter_dir(dir), InputError, "adapter folder '{}' has no adapter_config.json", dir.string());
  ConfigReader config(read_json(config_file), config_file);
  LoraAdapter a;
  a.info.dir = dir;
  a.info.peft_type = config.string("peft_type");
  if (a.info.peft_type != "LORA") config.reject("peft_type", "'LORA'", fmt::format("'{}'", a.info.peft_type));
  a.info.r = config.integer("r");
  ATLAS_CHECK(a.info.r > 0, ConfigError, "'{}': key 'r': expected a positive rank, got {}", config_file.string(),
              a.info.r);
  a.info.lora_alpha = config.number("lora_alpha");
  a.info.use_rslora = config.boolean("use_rslora", false);
  a.info.fan_in_fan_out = config.boolean("fan_in_fan_out", false);
  a.info.scaling = a.info.use_rslora ? a.info.lora_alpha / std::sqrt(static_cast<double>(a.info.r))
                                     : a.info.lora_alpha / static_cast<double>(a.info.r);
  const auto& json = config.json();
  auto targets = json.find("target_modules");
  if (targets == json.end() || targets->is_null())
    config.reject("target_modules", "a list of module names or a regex string", "no such key");
  if (targets->is_string()) {
    a.target_regex = true;
    a.info.target_modules.push_back(targets->get<std::string>());
  } else if (targets->is_array() && !targets->empty()) {
    for (const auto& t : *targets) {
      if (!t.is_string()) config.reject("target_modules", "a list of strings", targets->dump());
      a.info.target_modules.push_back(t.get<std::string>());
    }
  } else {
    config.reject("target_modules", "a non-empty list of module names or a regex string", targets->dump());
  }
  const std::string bias = config.string("bias", "none");
  if (bias != "none")
    config.reject("bias", "'none' (trained biases are not supported)", fmt::format("'{}'", bias));
  require_empty(config, "modules_to_save", "fully trained modules are not supported");
  require_empty(config, "rank_pattern", "per-module ranks are not supported");
  require_empty(config, "alpha_pattern", "per-module alphas are not supported");
  require_empty(config, "layer_replication", "not supported");
  if (config.boolean("use_dora", false)) config.reject("use_dora", "false (DoRA is not supported)", "true");
  if (json.contains("base_model_name_or_path") && json["base_model_name_or_path"].is_string())
    a.base_model_name_or_path = json["base_model_name_or_path"].get<std::string>();

  std::error_code ec;
  for (const char* name : {"adapter_model.safetensors", "adapter_model.bin"}) {
    if (fs::is_regular_file(dir / name, ec)) {
      a.info.weight_file = dir / name;
      break;
    }
  }
  ATLAS_CHECK(!a.info.weight_file.empty(), CheckpointError,
              "adapter folder '{}': expected adapter_model.safetensors or adapter_model.bin, got neither",
              dir.string());
  a.weights = io::Checkpoint::open_file(a.info.weight_file);
  a.info.sha256 = io::checkpoint_hash({a.info.weight_file});
  for (const auto& [name, raw] : a.weights.tensors()) {
    ATLAS_CHECK(!lora_base_tensor(name, "lora_A").empty() || !lora_base_tensor(name, "lora_B").empty(),
                CheckpointError,
                "adapter tensor '{}' in '{}': expected only lora_A / lora_B weights (bias '{}', no modules_to_save)",
                name, a.info.weight_file.string(), bias);
  }
  return a;
}

}  // namespace atlas::models
