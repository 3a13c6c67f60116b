#include "models/lora.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "atlas/core/error.hpp"
#include "models/adapter_config.hpp"

namespace atlas::models {

namespace fs = std::filesystem;

bool is_adapter_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "adapter_config.json", ec);
}

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
  const AdapterConfig config = read_adapter_config(config_file);
  LoraAdapter a;
  a.info.dir = dir;
  a.info.peft_type = config.peft_type;
  a.info.r = config.r;
  a.info.lora_alpha = config.lora_alpha;
  a.info.use_rslora = config.use_rslora;
  a.info.fan_in_fan_out = config.fan_in_fan_out;
  a.info.scaling = config.scaling;
  a.info.target_modules = config.target_modules;
  a.target_regex = config.target_regex;
  a.base_model_name_or_path = config.base_model_name_or_path;
  const std::string& bias = config.bias;

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
