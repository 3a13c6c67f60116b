#include "tokenize/added_vocabulary.hpp"

#include <algorithm>

#include "tokenize/normalizer.hpp"
#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {
namespace {

bool is_word_char(char32_t c) { return c == '_' || is_alphanumeric(c); }

char32_t last_char(const std::string& s, size_t end) {
  size_t p = end - 1;
  while (p > 0 && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
  return next_char(s, p);
}

}  // namespace

void AddedVocabulary::add(const AddedToken& token, const Normalizer* normalizer) {
  if (by_content_.count(token.content)) return;
  const size_t index = tokens_.size();
  tokens_.push_back(token);
  by_content_[token.content] = token.id;
  by_id_[token.id] = token.content;
  if (token.content.empty()) return;
  if (token.normalized) {
    NormalizedString ns = NormalizedString::from_original(token.content);
    if (normalizer) normalizer->normalize(ns);
    if (!ns.text.empty()) normalized_.push_back({ns.text, index});
  } else {
    raw_.push_back({token.content, index});
  }
  for (auto* list : {&raw_, &normalized_}) {
    std::stable_sort(list->begin(), list->end(),
                     [](const Pattern& a, const Pattern& b) { return a.text.size() > b.text.size(); });
  }
}

void AddedVocabulary::split(std::vector<Piece>& pieces, bool normalized_class) const {
  const auto& patterns = normalized_class ? normalized_ : raw_;
  std::vector<Piece> out;
  for (auto& piece : pieces) {
    if (piece.id || patterns.empty()) {
      if (!piece.text.empty()) out.push_back(std::move(piece));
      continue;
    }
    const std::string& s = piece.text.text;
    size_t emitted = 0;  // end of the last piece pushed
    size_t pos = 0;
    while (pos < s.size()) {
      const Pattern* hit = nullptr;
      for (const auto& p : patterns) {  // longest first: the first hit is the longest at `pos`
        if (s.compare(pos, p.text.size(), p.text) == 0) {
          hit = &p;
          break;
        }
      }
      if (!hit) {
        pos += utf8_len(static_cast<unsigned char>(s[pos]));
        continue;
      }
      const AddedToken& token = tokens_[hit->token];
      size_t start = pos, stop = pos + hit->text.size();
      if (token.single_word) {
        const bool start_ok = start == 0 || !is_word_char(last_char(s, start));
        size_t q = stop;
        const bool stop_ok = stop == s.size() || !is_word_char(next_char(s, q));
        if (!start_ok || !stop_ok) {
          pos += utf8_len(static_cast<unsigned char>(s[pos]));
          continue;
        }
      }
      if (token.lstrip) {
        while (start > emitted && is_whitespace(last_char(s, start))) {
          size_t p = start - 1;
          while (p > 0 && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
          start = p;
        }
      }
      if (token.rstrip) {
        while (stop < s.size()) {
          size_t q = stop;
          if (!is_whitespace(next_char(s, q))) break;
          stop = q;
        }
      }
      if (emitted < start) out.push_back({piece.text.slice(emitted, start), std::nullopt});
      out.push_back({piece.text.slice(start, stop), token.id});
      emitted = pos = stop;
    }
    if (emitted < s.size()) out.push_back({piece.text.slice(emitted, s.size()), std::nullopt});
  }
  pieces = std::move(out);
}

std::optional<int64_t> AddedVocabulary::token_to_id(const std::string& content) const {
  const auto it = by_content_.find(content);
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> AddedVocabulary::id_to_token(int64_t id) const {
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

}  // namespace atlas::tokenize::detail
