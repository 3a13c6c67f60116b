#include "tokenize/classic_config.hpp"

#include <fstream>

#include "atlas/core/json.hpp"
#include "atlas/core/error.hpp"

namespace atlas::tokenize::detail {
namespace {

nlohmann::json read_json_if_present(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return nlohmann::json::object();
  std::ifstream in(path);
  ATLAS_CHECK(in, IoError, "cannot open '{}'", path.string());
  try {
    return parse_json(in, "'" + path.string() + "'");
  } catch (const nlohmann::json::exception& e) {
    ATLAS_FAIL(FormatError, "'{}' is not valid JSON: {}", path.string(), e.what());
  }
}

std::string content_of(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return "";
}

}  // namespace

ClassicConfig ClassicConfig::read(const std::filesystem::path& dir) {
  ClassicConfig c;
  c.json = read_json_if_present(dir / "tokenizer_config.json");
  c.special_map = read_json_if_present(dir / "special_tokens_map.json");
  if (c.json.contains("tokenizer_class") && c.json["tokenizer_class"].is_string()) {
    c.tokenizer_class = c.json["tokenizer_class"].get<std::string>();
  }
  if (c.json.contains("added_tokens_decoder")) {
    for (const auto& [id, t] : c.json["added_tokens_decoder"].items()) {
      AddedToken a;
      a.id = std::stoll(id);
      a.content = t.at("content").get<std::string>();
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      a.normalized = t.value("normalized", false);
      a.special = t.value("special", true);
      a.single_word = t.value("single_word", false);
      c.added_tokens.push_back(a);
    }
  }
  const auto added = read_json_if_present(dir / "added_tokens.json");
  for (const auto& [content, id] : added.items()) {
    AddedToken a;
    a.content = content;
    a.id = id.get<int64_t>();
    c.added_tokens.push_back(a);
  }
  return c;
}

bool ClassicConfig::flag(const char* key, bool fallback) const {
  if (json.contains(key) && json[key].is_boolean()) return json[key].get<bool>();
  return fallback;
}

std::string ClassicConfig::token(const char* key, const std::string& fallback) const {
  if (json.contains(key)) {
    const std::string s = content_of(json[key]);
    if (!s.empty()) return s;
    if (json[key].is_null()) return fallback;
  }
  if (special_map.contains(key)) {
    const std::string s = content_of(special_map[key]);
    if (!s.empty()) return s;
  }
  return fallback;
}

std::vector<std::string> ClassicConfig::special_token_strings() const {
  std::vector<std::string> out;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    const std::string s = token(key);
    if (!s.empty()) out.push_back(s);
  }
  for (const auto* src : {&json, &special_map}) {
    if (src->contains("additional_special_tokens") && (*src)["additional_special_tokens"].is_array()) {
      for (const auto& v : (*src)["additional_special_tokens"]) {
        const std::string s = content_of(v);
        if (!s.empty()) out.push_back(s);
      }
    }
  }
  return out;
}

}  // namespace atlas::tokenize::detail
