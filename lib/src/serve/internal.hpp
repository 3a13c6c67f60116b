#pragma once
// Pieces of the serve module that tests reach directly (tests/unit/serve).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "atlas/format/attention.hpp"

namespace atlas::serve {

/// Per-head summary of one document, every stored layer x head (docs/serve.md, /api/heads):
///   entropy   mean over query rows of -sum p log p (nats), over the keys a row may attend to
///   sink      mean attention on the first token (key 0)
///   previous  mean attention of token i on token i-1 (i >= 1)
///   self      mean attention of token i on itself
nlohmann::json head_metrics(const format::AttentionData& data);

struct GenderSwap {
  std::string text;
  int replacements = 0;
  std::vector<std::string> words;   ///< "he→she" for each replacement, in order
};
/// Swaps gendered English words (he/she, his/her, him/her, man/woman ... ; case kept) at word
/// boundaries. "her" becomes "his" (its object use "him" cannot be told apart without a parser).
GenderSwap gender_swap(const std::string& text);

}  // namespace atlas::serve
