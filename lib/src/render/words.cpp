// Word level for every figure kind: documents converted with atlas/process/words.hpp (Clark et al.
// 2019: attention to a word summed over its pieces, from a word averaged), and --focus / --target
// resolved to words.
#include <algorithm>
#include <cctype>

#include "atlas/core/error.hpp"
#include "atlas/process/words.hpp"
#include "render/draw.hpp"
#include "render/figures.hpp"

namespace atlas::render {

// A file from `atlas process words` says so in meta.process; a document converted here gets the
// same step, so it is never converted twice.
bool is_word_level(const AttentionData& d) {
  if (!d.meta || !d.meta->process.is_array()) return false;
  for (const auto& step : d.meta->process)
    if (step.is_object() && step.value("op", "") == "words") return true;
  return false;
}

AttentionData word_level_document(const AttentionData& d) {
  if (is_word_level(d)) return d;
  AttentionData w = process::to_word_level(d);
  if (!w.meta) w.meta.emplace();
  if (!is_word_level(w)) w.meta->process.push_back({{"op", "words"}, {"by", "atlas visualize --words"}});
  return w;
}

std::vector<std::string> word_keys(const AttentionData& d) {
  std::vector<std::string> keys;
  for (int64_t i = 0; i < d.q; ++i) keys.push_back(d.special[i] ? d.tokens[i] : process::word_key(d.token_labels[i]));
  return keys;
}

std::vector<int64_t> find_positions(const AttentionData& d, const std::string& spec, const char* flag) {
  const bool number = !spec.empty() && std::all_of(spec.begin(), spec.end(), [](unsigned char c) { return std::isdigit(c); });
  if (number || spec.find('#') == std::string::npos) {
    // A token index or a token's own label first: what --focus always meant.
    if (number) return {find_token(d, spec, flag)};
    for (int64_t i = 0; i < d.q; ++i)
      if (display_label(d.token_labels[i], 0) == display_label(spec, 0) || d.tokens[i] == spec) return {i};
  }
  const auto words = process::segment_words(d);
  int64_t w = 0;
  try {
    w = process::find_word(words, spec, fmt::format("'{}'", d.source));
  } catch (const InputError& e) {
    throw InputError(fmt::format("--{}: {}", flag, e.what()));  // name the flag that asked
  }
  // At word level every word is one position of its own, so this is the word itself.
  return words[size_t(w)].tokens;
}

}  // namespace atlas::render
