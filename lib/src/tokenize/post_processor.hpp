#pragma once
// Post-processors: offsets trimming (byte-level) and special-token templates (internal). Types and
// JSON spelling follow Hugging Face tokenizers' `post_processor` section.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "atlas/tokenize/tokenizer.hpp"

namespace atlas::tokenize::detail {

/// One sequence before post-processing; offsets are bytes of its own text.
struct Part {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;
  std::vector<std::pair<int64_t, int64_t>> offsets;
};

/// A special token a template inserts (several ids are allowed, as in tokenizers).
struct SpecialPiece {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  /// Adjusts byte offsets (ByteLevel/RoBERTa trim_offsets); runs with or without special tokens.
  virtual void trim_offsets(Part&) const {}
  /// Joins the sequences (offsets already in code points), adding special tokens when asked.
  virtual Encoding assemble(const Part& a, const Part* b, bool add_special_tokens) const;
};

/// Appends a sequence with a type id and no special mark.
void append_sequence(Encoding& e, const Part& p, int64_t type_id);
/// Appends a template-added special token ([0,0] offsets, special_mask 1).
void append_special(Encoding& e, const SpecialPiece& s, int64_t type_id);

/// nullptr-equivalent (the plain concatenation) for a JSON null.
std::unique_ptr<PostProcessor> post_processor_from_json(const nlohmann::json& j);
std::unique_ptr<PostProcessor> make_default_post_processor();
/// `<s> A </s>` / `<s> A </s></s> B </s>` with byte-level offset trimming.
std::unique_ptr<PostProcessor> make_roberta_processing(SpecialPiece cls, SpecialPiece sep, bool trim_offsets,
                                                       bool add_prefix_space);
/// `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]` with type ids 0 / 1.
std::unique_ptr<PostProcessor> make_bert_processing(SpecialPiece cls, SpecialPiece sep);
/// Optional prefix / suffix tokens around each sequence (slow Llama, T5, GPT-2 add_bos_token).
/// A suffix is skipped when the sequence already ends with it and `skip_present_suffix` (T5).
std::unique_ptr<PostProcessor> make_affix_processing(std::optional<SpecialPiece> prefix,
                                                     std::optional<SpecialPiece> suffix, bool skip_present_suffix,
                                                     bool pair_type_ids);

}  // namespace atlas::tokenize::detail
