#pragma once
// Pre-tokenizers: cut a normalized piece into words before the model sees them (internal).
// Types and JSON spelling follow Hugging Face tokenizers' `pre_tokenizer` section.
#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <vector>

#include "tokenize/normalized_string.hpp"

namespace atlas::tokenize::detail {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  /// Replaces `splits` by their sub-splits; `first_piece` is true for the piece that starts the text.
  virtual void pre_tokenize(std::vector<NormalizedString>& splits) const = 0;
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

/// nullptr for a JSON null; ConfigError naming the type for unsupported ones.
std::unique_ptr<PreTokenizer> pre_tokenizer_from_json(const nlohmann::json& j);

/// GPT-2's pattern (what ByteLevel uses when use_regex is true).
extern const char* const kGpt2Pattern;
/// Qwen2's pattern (its slow tokenizer's PRETOKENIZE_REGEX).
extern const char* const kQwen2Pattern;

std::unique_ptr<PreTokenizer> make_byte_level(bool add_prefix_space, bool use_regex);
std::unique_ptr<PreTokenizer> make_regex_split(const std::string& pattern, SplitBehavior behavior, bool invert);
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer();
std::unique_ptr<PreTokenizer> make_sequence(std::vector<std::unique_ptr<PreTokenizer>> parts);

/// The GPT-2 byte-to-character table: printable bytes map to themselves, the others to U+0100...
char32_t byte_to_char(unsigned char b);
/// Inverse of byte_to_char; -1 for characters outside the table.
int char_to_byte(char32_t c);

}  // namespace atlas::tokenize::detail
