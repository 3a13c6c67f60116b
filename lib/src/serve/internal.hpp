#pragma once
// Pieces of the serve module that tests reach directly (tests/unit/serve).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "atlas/analyze/heads.hpp"
#include "atlas/format/attention.hpp"

namespace atlas::serve {

/// The per-head table of /api/heads (docs/serve.md): `atlas analyze heads` on this one document
/// (analyze::HeadStats with the same lexicon, so every number equals the CLI's JSON report), as
/// {"layers", "heads" (head indices), "metrics" (names), one [L][H] array per metric name (null where
/// no query row counts), "queries" [L][H], "lexicon"}, plus the page's older keys "sink" (=
/// sink_mass) and "previous" (= prev_token). InputError for attention that is not square.
nlohmann::json head_metrics(const format::AttentionData& data, const analyze::Lexicon& lexicon);

/// `s` (valid UTF-8) as a JSON string literal, byte for byte what nlohmann::json::dump() writes for
/// it (ensure_ascii off): the inline SVG of /api/render, escaped without building a json value.
std::string json_string(const std::string& s);

struct GenderSwap {
  std::string text;
  int replacements = 0;
  std::vector<std::string> words;   ///< "he→she" for each replacement, in order
};
/// Swaps gendered English words (he/she, his/her, him/her, man/woman ... ; case kept) at word
/// boundaries. "her" becomes "his" (its object use "him" cannot be told apart without a parser).
GenderSwap gender_swap(const std::string& text);

}  // namespace atlas::serve
