#include "models/adapter_config.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>

#include "atlas/core/error.hpp"
#include "atlas/core/json.hpp"
#include "models/config_reader.hpp"

namespace atlas::models {

namespace {

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

AdapterConfig parse_adapter_config(const nlohmann::json& json_in, const std::filesystem::path& file) {
  ATLAS_CHECK(json_in.is_object(), ConfigError, "'{}': expected a JSON object, got {}", file.string(),
              json_in.type_name());
  ConfigReader config(json_in, file);
  AdapterConfig a;
  a.peft_type = config.string("peft_type");
  if (a.peft_type != "LORA") config.reject("peft_type", "'LORA'", fmt::format("'{}'", a.peft_type));
  a.r = config.integer("r");
  ATLAS_CHECK(a.r > 0, ConfigError, "'{}': key 'r': expected a positive rank, got {}", file.string(), a.r);
  a.lora_alpha = config.number("lora_alpha");
  ATLAS_CHECK(std::isfinite(a.lora_alpha), ConfigError, "'{}': key 'lora_alpha': expected a finite number, got {}",
              file.string(), a.lora_alpha);
  a.use_rslora = config.boolean("use_rslora", false);
  a.fan_in_fan_out = config.boolean("fan_in_fan_out", false);
  a.scaling = a.use_rslora ? a.lora_alpha / std::sqrt(static_cast<double>(a.r))
                           : a.lora_alpha / static_cast<double>(a.r);
  const auto& json = config.json();
  auto targets = json.find("target_modules");
  if (targets == json.end() || targets->is_null())
    config.reject("target_modules", "a list of module names or a regex string", "no such key");
  if (targets->is_string()) {
    a.target_regex = true;
    a.target_modules.push_back(targets->get<std::string>());
  } else if (targets->is_array() && !targets->empty()) {
    for (const auto& t : *targets) {
      if (!t.is_string()) config.reject("target_modules", "a list of strings", targets->dump());
      a.target_modules.push_back(t.get<std::string>());
    }
  } else {
    config.reject("target_modules", "a non-empty list of module names or a regex string", targets->dump());
  }
  a.bias = config.string("bias", "none");
  if (a.bias != "none")
    config.reject("bias", "'none' (trained biases are not supported)", fmt::format("'{}'", a.bias));
  require_empty(config, "modules_to_save", "fully trained modules are not supported");
  require_empty(config, "rank_pattern", "per-module ranks are not supported");
  require_empty(config, "alpha_pattern", "per-module alphas are not supported");
  require_empty(config, "layer_replication", "not supported");
  if (config.boolean("use_dora", false)) config.reject("use_dora", "false (DoRA is not supported)", "true");
  if (json.contains("base_model_name_or_path") && json["base_model_name_or_path"].is_string())
    a.base_model_name_or_path = json["base_model_name_or_path"].get<std::string>();
  return a;
}

AdapterConfig read_adapter_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  ATLAS_CHECK(in.good(), IoError, "cannot open '{}'", file.string());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json json;
  try {
    json = parse_json(text, "'" + file.string() + "'");
  } catch (const nlohmann::json::exception& e) {
    ATLAS_FAIL(ConfigError, "'{}': expected JSON, got a parse error: {}", file.string(), e.what());
  } catch (const FormatError& e) {
    ATLAS_FAIL(ConfigError, "{}", e.what());
  }
  return parse_adapter_config(json, file);
}

}  // namespace atlas::models
