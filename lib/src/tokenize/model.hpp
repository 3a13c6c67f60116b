#pragma once
// Tokenization models: turn one pre-tokenized word into vocabulary ids (internal).
#include <nlohmann/json_fwd.hpp>

#include "atlas/core/error.hpp"

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

using Vocab = std::unordered_map<std::string, int64_t>;

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


/// A model over a string -> id vocabulary (BPE, WordPiece): the id <-> token lookups they share.
class VocabModel : public Model {
 public:
  /// ConfigError when an id is negative or so far past the vocabulary's size that the id -> token
  /// table could not be held (ids index that table; real vocabularies are dense).
  explicit VocabModel(Vocab vocab) : vocab_(std::move(vocab)) {
    const int64_t limit = static_cast<int64_t>(vocab_.size()) + kMaxIdGap;
    for (const auto& [token, id] : vocab_) {
      ATLAS_CHECK(id >= 0 && id < limit, ConfigError,
                  "vocabulary token '{}' has id {}, expected 0 <= id < {} (the vocabulary holds {} tokens)", token,
                  id, limit, vocab_.size());
      if (id >= static_cast<int64_t>(vocab_r_.size())) vocab_r_.resize(id + 1);
      vocab_r_[id] = token;
    }
  }
  static constexpr int64_t kMaxIdGap = int64_t{1} << 20;
  std::optional<int64_t> token_to_id(std::string_view token) const override {
    const auto it = vocab_.find(std::string(token));
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> id_to_token(int64_t id) const override {
    if (id < 0 || id >= static_cast<int64_t>(vocab_r_.size())) return std::nullopt;
    return vocab_r_[id];
  }
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.size()); }

 protected:
  Vocab vocab_;
  std::vector<std::string> vocab_r_;  // id -> token
};

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
/// Unigram (sentencepiece's unigram models as tokenizers runs them): `vocab` is (piece, log
/// probability) by id; byte_fallback maps unknown pieces to <0xNN> tokens where it can.
std::unique_ptr<Model> make_unigram(std::vector<std::pair<std::string, double>> vocab, std::optional<int64_t> unk_id,
                                    bool byte_fallback);
/// The `model` section of tokenizer.json (BPE, WordPiece, Unigram).
std::unique_ptr<Model> model_from_json(const nlohmann::json& j);

}  // namespace atlas::tokenize::detail
