// Word level for every figure kind: documents converted with atlas/process/words.hpp (Clark et al.
// 2019: attention to a word summed over its pieces, from a word averaged), and --focus / --target
// resolved to words.
#include <algorithm>
#include <cctype>

#include "atlas/core/error.hpp"
#include "render/figures.hpp"

#if __has_include("atlas/process/words.hpp")
#include "atlas/process/words.hpp"
#define ATLAS_RENDER_HAS_WORDS 1
#endif

namespace atlas::render {

namespace {
bool meta_says_words(const AttentionData& d) {
  if (!d.meta) return false;
  auto has_words_op = [](const nlohmann::json& steps) {
    if (!steps.is_array()) return false;
    for (const auto& s : steps)
      if (s.is_object() && s.value("op", "") == "words") return true;
    return false;
  };
#if defined(ATLAS_RENDER_HAS_WORDS)
  if (has_words_op(d.meta->process)) return true;
#endif
  auto it = d.meta->extra.find("process");
  return it != d.meta->extra.end() && has_words_op(*it);
}
}  // namespace

// A file from `atlas process words` says so in meta.process; a document converted here gets the
// same step, so it is never converted twice.
bool is_word_level(const AttentionData& d) { return meta_says_words(d); }

#if defined(ATLAS_RENDER_HAS_WORDS)
AttentionData word_level_document(const AttentionData& d) {
  if (is_word_level(d)) return d;
  AttentionData w = process::to_word_level(d);
  if (!w.meta) w.meta.emplace();
  if (!meta_says_words(w)) w.meta->process.push_back({{"op", "words"}, {"by", "atlas visualize --words"}});
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
  const int64_t w = process::find_word(words, spec, fmt::format("--{} in '{}'", flag, d.source));
  if (is_word_level(d)) {
    // Word-level documents: one position per word, so the word's index is the position.
    return {std::min<int64_t>(w, d.q - 1)};
  }
  return words[size_t(w)].tokens;
}
#else
AttentionData word_level_document(const AttentionData& d) {
  ATLAS_FAIL(InputError, "'{}': word level needs atlas/process/words.hpp", d.source);
}
std::vector<std::string> word_keys(const AttentionData& d) { return d.token_labels; }
std::vector<int64_t> find_positions(const AttentionData& d, const std::string& spec, const char* flag) {
  return {find_token(d, spec, flag)};
}
#endif

}  // namespace atlas::render
