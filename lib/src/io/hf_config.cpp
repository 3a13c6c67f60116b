// config.json of a Hugging Face model folder.
#include <nlohmann/json.hpp>

#include "atlas/core/json.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/io/checkpoint.hpp"

namespace atlas::io {

nlohmann::json read_config(const std::filesystem::path& model_dir) {
  namespace fs = std::filesystem;
  ATLAS_CHECK(fs::is_directory(model_dir), CheckpointError,
              "model folder '{}' does not exist or is not a folder", model_dir.string());
  const fs::path file = model_dir / "config.json";
  ATLAS_CHECK(fs::is_regular_file(file), CheckpointError, "model folder '{}' has no config.json",
              model_dir.string());
  const std::string text = read_file(file);
  nlohmann::json config;
  try {
    config = parse_json(text, "'" + file.string() + "'");
  } catch (const nlohmann::json::parse_error& e) {
    ATLAS_FAIL(ConfigError, "'{}': invalid JSON at byte {}: {}", file.string(), e.byte, e.what());
  }
  ATLAS_CHECK(config.is_object(), ConfigError, "'{}': expected a JSON object, got {}", file.string(),
              config.type_name());
  return config;
}

}  // namespace atlas::io
