#pragma once
// tokenizer_config.json + special_tokens_map.json + added_tokens.json of a classic tokenizer folder
// (internal). Missing files are fine: slow tokenizers have defaults for everything.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "tokenize/added_vocabulary.hpp"

namespace atlas::tokenize::detail {

struct ClassicConfig {
  nlohmann::json json = nlohmann::json::object();  // tokenizer_config.json
  nlohmann::json special_map = nlohmann::json::object();
  std::string tokenizer_class;
  std::vector<AddedToken> added_tokens;  // added_tokens_decoder + added_tokens.json

  static ClassicConfig read(const std::filesystem::path& dir);
  bool flag(const char* key, bool fallback) const;
  /// A special token's content ("bos_token" ...), from tokenizer_config then special_tokens_map.
  std::string token(const char* key, const std::string& fallback = "") const;
  /// Every special token named in either file (bos, eos, unk, sep, pad, cls, mask, additional).
  std::vector<std::string> special_token_strings() const;
};

}  // namespace atlas::tokenize::detail
