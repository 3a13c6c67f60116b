#pragma once
// Readable token labels for figures: the inverse of the byte-level / metaspace / WordPiece
// spellings, one token at a time (internal).
#include <string>

namespace atlas::tokenize::detail {

struct DisplayStyle {
  bool byte_level = false;       // "Ġ" -> ' ', "Ċ" -> '\n' (bytes back through GPT-2's table)
  bool metaspace = false;        // "▁" -> ' '
  std::string wordpiece_prefix;  // "##" dropped
  bool byte_fallback = true;     // "<0x41>" -> "A" when printable
};

/// Never empty: a token that decodes to nothing (or to invisible text) keeps its vocabulary form.
std::string display_token(const std::string& token, const DisplayStyle& style);

}  // namespace atlas::tokenize::detail
