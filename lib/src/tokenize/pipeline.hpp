#pragma once
// The Hugging Face pipeline: added tokens | normalizer | pre-tokenizer | model | post-processor,
// assembled from tokenizer.json or from classic vocabulary files (internal).
#include <memory>
#include <string>

#include "atlas/tokenize/tokenizer.hpp"
#include "tokenize/added_vocabulary.hpp"
#include "tokenize/decoder.hpp"
#include "tokenize/model.hpp"
#include "tokenize/normalizer.hpp"
#include "tokenize/post_processor.hpp"
#include "tokenize/pre_tokenizer.hpp"

namespace atlas::tokenize::detail {

struct PipelineParts {
  std::string kind;
  AddedVocabulary added;
  std::unique_ptr<Normalizer> normalizer;       // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;  // may be null
  std::unique_ptr<Model> model;
  std::unique_ptr<PostProcessor> post_processor;
  DisplayStyle display;
};

class PipelineTokenizer final : public Tokenizer {
 public:
  explicit PipelineTokenizer(PipelineParts parts);
  Encoding encode(std::string_view text, bool add_special_tokens) const override;
  Encoding encode_pair(std::string_view a, std::string_view b, bool add_special_tokens) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int64_t id) const override;
  std::string display(int64_t id) const override;
  std::string kind() const override { return p_.kind; }

 private:
  Part encode_part(std::string_view text) const;
  PipelineParts p_;
};

/// Loads a tokenizer.json file.
std::unique_ptr<Tokenizer> load_tokenizer_json(const std::filesystem::path& file);
/// vocab.json + merges.txt (GPT-2 / RoBERTa / Qwen2 slow tokenizers, by tokenizer_config's class).
std::unique_ptr<Tokenizer> load_byte_level_bpe_files(const std::filesystem::path& dir);
/// vocab.txt (BertTokenizer, with tokenizer_config.json's do_lower_case).
std::unique_ptr<Tokenizer> load_wordpiece_files(const std::filesystem::path& dir);
/// tokenizer.model / spiece.model through libatlas_spm (LlamaTokenizer / T5Tokenizer behaviour).
std::unique_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& dir, const std::filesystem::path& model);

}  // namespace atlas::tokenize::detail
