// WordPiece as BERT: greedy longest-match-first; a word with an unmatchable rest becomes one [UNK].
#include <nlohmann/json.hpp>

#include <algorithm>

#include "atlas/core/error.hpp"
#include "tokenize/model.hpp"
#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {
namespace {

class WordPiece final : public VocabModel {
 public:
  WordPiece(Vocab vocab, std::string unk, std::string prefix, size_t max_chars)
      : VocabModel(std::move(vocab)), unk_(std::move(unk)), prefix_(std::move(prefix)), max_chars_(max_chars) {
    for (const auto& [token, id] : vocab_) max_token_bytes_ = std::max(max_token_bytes_, token.size());
    const auto it = vocab_.find(unk_);
    ATLAS_CHECK(it != vocab_.end(), ConfigError, "WordPiece: unk token '{}' is not in the vocabulary", unk_);
    unk_id_ = it->second;
  }

  void tokenize(std::string_view word, std::vector<ModelToken>& out) const override {
    if (word.empty()) return;
    size_t chars = 0;
    for (size_t p = 0; p < word.size(); p += utf8_len(static_cast<unsigned char>(word[p]))) ++chars;
    if (chars > max_chars_) {
      out.push_back(ModelToken{unk_id_, unk_, 0, word.size()});
      return;
    }
    std::vector<ModelToken> sub;
    size_t start = 0;
    std::string candidate;
    while (start < word.size()) {
      // No vocabulary entry is longer than max_token_bytes_, so start the search there.
      size_t end = std::min(word.size(), start + max_token_bytes_);
      while (end < word.size() && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
      bool found = false;
      while (end > start) {
        candidate.assign(start > 0 ? prefix_ : std::string());
        candidate.append(word.substr(start, end - start));
        const auto it = vocab_.find(candidate);
        if (it != vocab_.end()) {
          sub.push_back(ModelToken{it->second, candidate, start, end});
          found = true;
          break;
        }
        do {
          --end;
        } while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
      }
      if (!found) {
        out.push_back(ModelToken{unk_id_, unk_, 0, word.size()});
        return;
      }
      start = end;
    }
    out.insert(out.end(), sub.begin(), sub.end());
  }

  std::string continuing_prefix() const override { return prefix_; }

 private:
  std::string unk_, prefix_;
  size_t max_chars_;
  size_t max_token_bytes_ = 1;
  int64_t unk_id_ = 0;
};

std::string optional_string(const nlohmann::json& j, const char* key, const std::string& fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  return j[key].get<std::string>();
}

}  // namespace

std::unique_ptr<Model> make_wordpiece(Vocab vocab, std::string unk_token, std::string prefix,
                                      size_t max_input_chars_per_word) {
  return std::make_unique<WordPiece>(std::move(vocab), std::move(unk_token), std::move(prefix),
                                     max_input_chars_per_word);
}

std::unique_ptr<Model> model_from_json(const nlohmann::json& j) {
  std::string type = j.value("type", "");
  if (type.empty() && j.contains("merges")) type = "BPE";  // older files omit the type
  if (type.empty() && j.contains("vocab") && j["vocab"].is_array()) type = "Unigram";
  Vocab vocab;
  if (j.contains("vocab") && j["vocab"].is_object()) {
    for (const auto& [token, id] : j["vocab"].items()) vocab.emplace(token, id.get<int64_t>());
  }
  if (type == "BPE") {
    std::vector<std::pair<std::string, std::string>> merges;
    for (const auto& m : j.at("merges")) {
      if (m.is_array()) {
        merges.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
      } else {
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ', 1);
        ATLAS_CHECK(space != std::string::npos, FormatError, "tokenizer.json: BPE merge '{}' has no space", s);
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      }
    }
    BpeOptions o;
    if (j.contains("unk_token") && !j["unk_token"].is_null()) o.unk_token = j["unk_token"].get<std::string>();
    o.continuing_subword_prefix = optional_string(j, "continuing_subword_prefix", "");
    o.end_of_word_suffix = optional_string(j, "end_of_word_suffix", "");
    o.fuse_unk = j.value("fuse_unk", false);
    o.byte_fallback = j.value("byte_fallback", false);
    o.ignore_merges = j.value("ignore_merges", false);
    ATLAS_CHECK(j.value("dropout", nlohmann::json()).is_null(), ConfigError,
                "tokenizer.json: BPE dropout is not supported (tokenization must be deterministic)");
    return make_bpe(std::move(vocab), merges, std::move(o));
  }
  if (type == "WordPiece") {
    return make_wordpiece(std::move(vocab), optional_string(j, "unk_token", "[UNK]"),
                          optional_string(j, "continuing_subword_prefix", "##"),
                          j.value("max_input_chars_per_word", size_t{100}));
  }
  if (type == "Unigram") {
    std::vector<std::pair<std::string, double>> pieces;
    for (const auto& entry : j.at("vocab")) {
      ATLAS_CHECK(entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_number(), FormatError,
                  "tokenizer.json: Unigram vocab entry #{} is {}, expected [piece, score]", pieces.size(),
                  entry.dump());
      pieces.emplace_back(entry[0].get<std::string>(), entry[1].get<double>());
    }
    std::optional<int64_t> unk_id;
    if (j.contains("unk_id") && !j["unk_id"].is_null()) unk_id = j["unk_id"].get<int64_t>();
    return make_unigram(std::move(pieces), unk_id, j.value("byte_fallback", false));
  }
  ATLAS_FAIL(ConfigError, "tokenizer.json: model type '{}' is not supported (supported: BPE, WordPiece, Unigram)",
             type.empty() ? std::string("(none)") : type);
}

}  // namespace atlas::tokenize::detail
