// tokenizer.json -> PipelineTokenizer: one section per pipeline stage.
#include <nlohmann/json.hpp>

#include <fstream>

#include "atlas/core/json.hpp"
#include "atlas/core/error.hpp"
#include "tokenize/pipeline.hpp"

namespace atlas::tokenize::detail {
namespace {

bool mentions_type(const nlohmann::json& j, const std::string& type) {
  if (j.is_object()) {
    if (j.value("type", "") == type) return true;
    for (const auto& [k, v] : j.items()) {
      if ((v.is_object() || v.is_array()) && mentions_type(v, type)) return true;
    }
  } else if (j.is_array()) {
    for (const auto& v : j) {
      if (mentions_type(v, type)) return true;
    }
  }
  return false;
}

bool mentions_metaspace(const nlohmann::json& decoder) {
  return mentions_type(decoder, "Metaspace") || decoder.dump().find("\\u2581") != std::string::npos ||
         decoder.dump().find("\xE2\x96\x81") != std::string::npos;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::filesystem::path& file) {
  std::ifstream in(file);
  ATLAS_CHECK(in, IoError, "cannot open '{}'", file.string());
  nlohmann::json j;
  try {
    j = parse_json(in, "'" + file.string() + "'");
  } catch (const nlohmann::json::parse_error& e) {
    // One line: the parser's message may quote the file's bytes ("last read: ..."), newlines included.
    std::string why = e.what();
    for (char& c : why) {
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    if (why.size() > 300) why = why.substr(0, 300) + "...";
    ATLAS_FAIL(FormatError, "'{}' is not valid JSON (byte offset {}{}): {}", file.string(), e.byte,
               in.bad() ? ", read error" : "", why);
  } catch (const nlohmann::json::exception& e) {
    ATLAS_FAIL(FormatError, "'{}' is not valid JSON: {}", file.string(), e.what());
  }
  ATLAS_CHECK(j.is_object(), FormatError, "'{}' is not a tokenizer.json: expected a JSON object, got {}", file.string(),
              j.type_name());
  try {
    PipelineParts parts;
    parts.kind = "tokenizer.json";
    parts.normalizer = normalizer_from_json(j.value("normalizer", nlohmann::json()));
    parts.pre_tokenizer = pre_tokenizer_from_json(j.value("pre_tokenizer", nlohmann::json()));
    ATLAS_CHECK(j.contains("model"), FormatError, "'{}' has no 'model' section", file.string());
    parts.model = model_from_json(j["model"]);
    parts.post_processor = post_processor_from_json(j.value("post_processor", nlohmann::json()));
    if (j.contains("added_tokens")) {
      for (const auto& t : j["added_tokens"]) {
        AddedToken a;
        a.content = t.at("content").get<std::string>();
        a.id = t.at("id").get<int64_t>();
        a.lstrip = t.value("lstrip", false);
        a.rstrip = t.value("rstrip", false);
        a.normalized = t.value("normalized", false);
        a.special = t.value("special", false);
        a.single_word = t.value("single_word", false);
        parts.added.add(a, parts.normalizer.get());
      }
    }
    const auto decoder = j.value("decoder", nlohmann::json());
    parts.display.byte_level = mentions_type(j.value("pre_tokenizer", nlohmann::json()), "ByteLevel") ||
                               mentions_type(decoder, "ByteLevel");
    parts.display.metaspace = mentions_metaspace(decoder) ||
                              mentions_metaspace(j.value("normalizer", nlohmann::json()));
    parts.display.wordpiece_prefix = parts.model->continuing_prefix();
    return std::make_unique<PipelineTokenizer>(std::move(parts));
  } catch (const nlohmann::json::exception& e) {
    ATLAS_FAIL(FormatError, "'{}': unexpected layout: {}", file.string(), e.what());
  } catch (const Error& e) {
    // Name the file in every message that comes from a stage.
    const std::string msg = e.what();
    if (msg.find(file.string()) != std::string::npos) throw;
    if (dynamic_cast<const ConfigError*>(&e)) ATLAS_FAIL(ConfigError, "'{}': {}", file.string(), msg);
    ATLAS_FAIL(FormatError, "'{}': {}", file.string(), msg);
  }
}

}  // namespace atlas::tokenize::detail
