#include "models/config_reader.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "atlas/core/error.hpp"

namespace atlas::models {

ConfigReader::ConfigReader(nlohmann::json json, std::filesystem::path file)
    : json_(std::move(json)), file_(std::move(file)) {}

bool ConfigReader::has(const std::string& key) const {
  auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

void ConfigReader::reject(const std::string& key, const std::string& expected, const std::string& got) const {
  ATLAS_FAIL(ConfigError, "'{}': key '{}': expected {}, got {}", file_.string(), key, expected, got);
}

const nlohmann::json& ConfigReader::value(const std::string& key, const char* expected) const {
  if (!has(key)) reject(key, expected, "no such key");
  return json_.at(key);
}

int64_t ConfigReader::integer(const std::string& key) const {
  const auto& v = value(key, "an integer");
  if (!v.is_number_integer()) reject(key, "an integer", v.dump());
  return v.get<int64_t>();
}

int64_t ConfigReader::integer(const std::string& key, int64_t fallback) const {
  return has(key) ? integer(key) : fallback;
}

double ConfigReader::number(const std::string& key) const {
  const auto& v = value(key, "a number");
  if (!v.is_number()) reject(key, "a number", v.dump());
  return v.get<double>();
}

double ConfigReader::number(const std::string& key, double fallback) const {
  return has(key) ? number(key) : fallback;
}

bool ConfigReader::boolean(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = json_.at(key);
  if (!v.is_boolean()) reject(key, "true or false", v.dump());
  return v.get<bool>();
}

std::string ConfigReader::string(const std::string& key) const {
  const auto& v = value(key, "a string");
  if (!v.is_string()) reject(key, "a string", v.dump());
  return v.get<std::string>();
}

std::string ConfigReader::string(const std::string& key, const std::string& fallback) const {
  return has(key) ? string(key) : fallback;
}

std::string ConfigReader::choice(const std::string& key, const std::string& fallback,
                                 const std::vector<std::string>& allowed) const {
  std::string got = string(key, fallback);
  for (const auto& a : allowed)
    if (a == got) return got;
  reject(key, fmt::format("one of {}", fmt::join(allowed, ", ")), fmt::format("'{}'", got));
}

void ConfigReader::require_equal(const std::string& key, const nlohmann::json& expected) const {
  if (!has(key)) return;
  const auto& v = json_.at(key);
  if (v != expected) reject(key, fmt::format("{} (the only value supported)", expected.dump()), v.dump());
}

}  // namespace atlas::models
