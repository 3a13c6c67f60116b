#pragma once
// Tokenization models: turn one pre-tokenized word into vocabulary ids (internal).
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace atlas::tokenize::detail {

struct ModelToken {
  int64_t id;
  std::string value;
  size_t begin, end;  // bytes within the word
};

class Model {
 public:
  virtual ~Model() = default;
  virtual void tokenize(std::string_view word, std::vector<ModelToken>& out) const = 0;
  virtual std::optional<int64_t> token_to_id(std::string_view token) const = 0;
  virtual std::optional<std::string> id_to_token(int64_t id) const = 0;
  virtual int64_t vocab_size() const = 0;
  /// "##" for WordPiece, empty otherwise (used to make readable labels).
  virtual std::string continuing_prefix() const { return ""; }
};

using Vocab = std::unordered_map<std::string, int64_t>;

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

/// Byte-pair encoding with a merge-rank table and a word cache. `merges` are pairs of vocabulary
/// strings in priority order; ConfigError when a merge names a string missing from the vocabulary.
std::unique_ptr<Model> make_bpe(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                                BpeOptions options);
/// Greedy longest-match-first WordPiece (BERT).
std::unique_ptr<Model> make_wordpiece(Vocab vocab, std::string unk_token, std::string prefix = "##",
                                      size_t max_input_chars_per_word = 100);
/// The `model` section of tokenizer.json (BPE, WordPiece).
std::unique_ptr<Model> model_from_json(const nlohmann::json& j);

}  // namespace atlas::tokenize::detail
