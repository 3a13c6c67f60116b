#pragma once
// PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors / adapter_model.bin), merged
// into the base weights as PEFT's LoraLayer.merge does:
//   W += transpose(B @ A, fan_in_fan_out) * scaling,  scaling = lora_alpha / r (lora_alpha / sqrt(r)
//   with use_rslora).
// Only what the merge needs is supported; every other LoraConfig feature that changes the result
// (DoRA, rank/alpha patterns, trained biases, modules_to_save) is rejected by name.
#include <filesystem>
#include <string>
#include <vector>

#include "atlas/io/checkpoint.hpp"
#include "atlas/models/model.hpp"

namespace atlas::models {

struct LoraAdapter {
  AdapterInfo info;
  std::string base_model_name_or_path;   // "" when the config has none
  bool target_regex = false;             // target_modules was a string: PEFT fullmatches it as a regex
  io::Checkpoint weights;
};

/// Whether `dir` holds a PEFT adapter (adapter_config.json).
bool is_adapter_dir(const std::filesystem::path& dir);

/// Reads and validates adapter_config.json and opens the weight file. ConfigError naming the file
/// and key for a missing key, an unsupported peft_type or an unsupported option.
LoraAdapter read_lora_adapter(const std::filesystem::path& dir);

/// The base tensor a LoRA tensor is merged into ("base_model.model.X.lora_A.weight" -> "X.weight"),
/// or "" when `name` is no lora_A/lora_B weight. `module` gets "X".
std::string lora_base_tensor(const std::string& name, const char* which, std::string* module = nullptr);

}  // namespace atlas::models
