#pragma once
// Typed access to config.json keys with errors that name the file, the key, expected and got.
// Architectures build their config structs through it so that an unsupported value is rejected
// instead of silently ignored.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace atlas::models {

class ConfigReader {
 public:
  ConfigReader(nlohmann::json json, std::filesystem::path file);

  /// True when the key exists and is not null (transformers writes null for "use the default").
  bool has(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  int64_t integer(const std::string& key, int64_t fallback) const;
  double number(const std::string& key) const;
  double number(const std::string& key, double fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::string string(const std::string& key) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  /// A string key whose value must be one of `allowed`.
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& allowed) const;
  /// A key that, when present, must equal `expected` (features this implementation does not have).
  void require_equal(const std::string& key, const nlohmann::json& expected) const;

  /// Throws ConfigError "'<file>': key '<key>': expected <expected>, got <got>".
  [[noreturn]] void reject(const std::string& key, const std::string& expected, const std::string& got) const;

  const nlohmann::json& json() const { return json_; }
  const std::filesystem::path& file() const { return file_; }

 private:
  const nlohmann::json& value(const std::string& key, const char* expected) const;
  nlohmann::json json_;
  std::filesystem::path file_;
};

}  // namespace atlas::models
