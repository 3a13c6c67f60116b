#pragma once
// Added tokens (specials such as [CLS], <|endoftext|>, <extra_id_0>): matched in the text before the
// model sees it, leftmost-longest, with tokenizers' lstrip / rstrip / single_word / normalized flags.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenize/normalized_string.hpp"

namespace atlas::tokenize::detail {

class Normalizer;

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool lstrip = false, rstrip = false, normalized = false, special = true, single_word = false;
};

/// A piece of the text: either a matched added token (`id` set) or text for the model.
struct Piece {
  NormalizedString text;
  std::optional<int64_t> id;
};

class AddedVocabulary {
 public:
  /// `normalizer` (may be null) rewrites the content of tokens flagged `normalized`, so that they
  /// are found in normalized text (e.g. "<s>" becomes "▁<s>" under Llama's Prepend normalizer).
  void add(const AddedToken& token, const Normalizer* normalizer);
  /// Splits every id-less piece by the tokens of one class (normalized or not); drops empty pieces.
  void split(std::vector<Piece>& pieces, bool normalized_class) const;
  std::optional<int64_t> token_to_id(const std::string& content) const;
  std::optional<std::string> id_to_token(int64_t id) const;
  bool empty() const { return tokens_.empty(); }
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  struct Pattern {
    std::string text;
    size_t token;  // index into tokens_
  };
  std::vector<AddedToken> tokens_;
  std::vector<Pattern> raw_, normalized_;  // sorted longest first
  std::unordered_map<std::string, int64_t> by_content_;
  std::unordered_map<int64_t, std::string> by_id_;
};

}  // namespace atlas::tokenize::detail
