#pragma once
// adapter_config.json of a PEFT LoRA adapter, parsed and validated without LibTorch (so the fuzz
// target for it, tests/fuzz, links no model code). lora.hpp builds the merge on top of it.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace atlas::models {

struct AdapterConfig {
  std::string peft_type = "LORA";
  int64_t r = 0;
  double lora_alpha = 0;
  double scaling = 0;                      // lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora
  bool use_rslora = false;
  bool fan_in_fan_out = false;
  std::vector<std::string> target_modules; // as listed; a regex string is one entry
  bool target_regex = false;               // target_modules was a string: PEFT fullmatches it as a regex
  std::string bias = "none";
  std::string base_model_name_or_path;     // "" when the config has none
};

/// Validates the parsed adapter_config.json `json` read from `file` (named in errors). ConfigError
/// naming the file and key for a missing key, an unsupported peft_type or an unsupported option
/// (DoRA, rank/alpha patterns, trained biases, modules_to_save, layer replication).
AdapterConfig parse_adapter_config(const nlohmann::json& json, const std::filesystem::path& file);

/// Reads `file` and parses it as above; a JSON syntax error is a ConfigError naming the file.
AdapterConfig read_adapter_config(const std::filesystem::path& file);

}  // namespace atlas::models
