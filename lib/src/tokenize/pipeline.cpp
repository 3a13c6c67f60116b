#include "tokenize/pipeline.hpp"

#include "atlas/core/error.hpp"
#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {

PipelineTokenizer::PipelineTokenizer(PipelineParts parts) : p_(std::move(parts)) {
  if (!p_.post_processor) p_.post_processor = make_default_post_processor();
}

Part PipelineTokenizer::encode_part(std::string_view text) const {
  check_utf8(text, "text");
  std::vector<Piece> pieces{{NormalizedString::from_original(text), std::nullopt}};
  p_.added.split(pieces, /*normalized_class=*/false);
  for (auto& piece : pieces) {
    if (!piece.id && p_.normalizer) p_.normalizer->normalize(piece.text);
  }
  p_.added.split(pieces, /*normalized_class=*/true);

  Part part;
  std::vector<ModelToken> tokens;
  for (const auto& piece : pieces) {
    if (piece.text.empty()) continue;
    if (piece.id) {
      const auto r = piece.text.original_range(0, piece.text.text.size());
      part.ids.push_back(*piece.id);
      part.tokens.push_back(piece.text.text);
      part.offsets.emplace_back(r.first, r.second);
      continue;
    }
    std::vector<NormalizedString> words{piece.text};
    if (p_.pre_tokenizer) p_.pre_tokenizer->pre_tokenize(words);
    for (const auto& word : words) {
      tokens.clear();
      p_.model->tokenize(word.text, tokens);
      for (auto& t : tokens) {
        const auto r = word.original_range(t.begin, t.end);
        part.ids.push_back(t.id);
        part.tokens.push_back(std::move(t.value));
        part.offsets.emplace_back(r.first, r.second);
      }
    }
  }
  p_.post_processor->trim_offsets(part);
  // Byte offsets -> code points of the user's text.
  const auto chars = byte_to_char_index(text);
  for (auto& [b, e] : part.offsets) {
    b = chars[static_cast<size_t>(b)];
    e = chars[static_cast<size_t>(e)];
  }
  return part;
}

Encoding PipelineTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return p_.post_processor->assemble(encode_part(text), nullptr, add_special_tokens);
}

Encoding PipelineTokenizer::encode_pair(std::string_view a, std::string_view b, bool add_special_tokens) const {
  const Part pa = encode_part(a), pb = encode_part(b);
  return p_.post_processor->assemble(pa, &pb, add_special_tokens);
}

int64_t PipelineTokenizer::vocab_size() const {
  int64_t n = p_.model->vocab_size();
  for (const auto& t : p_.added.tokens()) {
    if (!p_.model->id_to_token(t.id)) ++n;
  }
  return n;
}

std::optional<int64_t> PipelineTokenizer::token_to_id(std::string_view token) const {
  if (auto id = p_.added.token_to_id(std::string(token))) return id;
  return p_.model->token_to_id(token);
}

std::string PipelineTokenizer::id_to_token(int64_t id) const {
  if (auto t = p_.added.id_to_token(id)) return *t;
  if (auto t = p_.model->id_to_token(id)) return *t;
  ATLAS_FAIL(InputError, "token id {} is outside the vocabulary (size {})", id, vocab_size());
}

std::string PipelineTokenizer::display(int64_t id) const {
  if (auto t = p_.added.id_to_token(id)) return *t;
  return display_token(id_to_token(id), p_.display);
}

}  // namespace atlas::tokenize::detail
