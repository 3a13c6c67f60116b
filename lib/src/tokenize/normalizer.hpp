#pragma once
// Normalizers: rewrite the text before pre-tokenization while keeping alignments (internal).
// The types and their JSON spelling follow Hugging Face tokenizers' `normalizer` section.
#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <optional>
#include <string>

#include "tokenize/normalized_string.hpp"

namespace atlas::tokenize::detail {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(NormalizedString& s) const = 0;
};

/// nullptr for a JSON null; ConfigError naming the type for unsupported ones .
std::unique_ptr<Normalizer> normalizer_from_json(const nlohmann::json& j);

/// BertTokenizer's basic cleaning; strip_accents unset means "follow lowercase", as in BERT.
std::unique_ptr<Normalizer> make_bert_normalizer(bool clean_text, bool handle_chinese_chars,
                                                 std::optional<bool> strip_accents, bool lowercase);
/// sentencepiece's precompiled_charsmap (base64, as tokenizer.json stores it); FormatError when corrupt.
std::unique_ptr<Normalizer> make_precompiled(const std::string& base64_charsmap);
/// Unicode NFC (Qwen2).
std::unique_ptr<Normalizer> make_nfc_normalizer();

}  // namespace atlas::tokenize::detail
