#include "tokenize/pre_tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <functional>
#include <utility>

#include "atlas/core/error.hpp"
#include "tokenize/regex.hpp"
#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

const std::array<char32_t, 256>& byte_table() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

using Match = std::pair<std::pair<size_t, size_t>, bool>;  // (byte range, is_match)

/// Turns match ranges into a full cover of the string, as tokenizers' Pattern::find_matches.
std::vector<Match> cover(const std::vector<std::pair<size_t, size_t>>& matches, size_t len) {
  std::vector<Match> out;
  if (len == 0) return {{{0, 0}, false}};
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (prev != b) out.push_back({{prev, b}, false});
    out.push_back({{b, e}, true});
    prev = e;
  }
  if (prev != len) out.push_back({{prev, len}, false});
  return out;
}

/// Each character satisfying `pred` is its own match (tokenizers' char-predicate patterns).
std::vector<std::pair<size_t, size_t>> char_matches(const std::string& s, const std::function<bool(char32_t)>& pred) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t b = pos;
    if (pred(next_char(s, pos))) out.emplace_back(b, pos);
  }
  return out;
}

/// tokenizers' NormalizedString::split with a delimiter behavior.
void split_into(const NormalizedString& s, std::vector<Match> matches, SplitBehavior behavior, bool invert,
                std::vector<NormalizedString>& out) {
  if (invert) {
    for (auto& m : matches) m.second = !m.second;
  }
  std::vector<Match> splits;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (auto& m : matches) splits.push_back({m.first, false});
      break;
    case SplitBehavior::Removed:
      splits = matches;
      break;
    case SplitBehavior::Contiguous: {
      bool previous = false;
      for (auto& m : matches) {
        if (m.second == previous && !splits.empty()) {
          splits.back().first.second = m.first.second;
        } else {
          splits.push_back({m.first, false});
        }
        previous = m.second;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool previous = false;
      for (auto& m : matches) {
        if (m.second && !previous && !splits.empty()) {
          splits.back().first.second = m.first.second;
        } else {
          splits.push_back({m.first, false});
        }
        previous = m.second;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool previous = false;
      for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
        if (it->second && !previous && !splits.empty()) {
          splits.back().first.first = it->first.first;
        } else {
          splits.push_back({it->first, false});
        }
        previous = it->second;
      }
      std::reverse(splits.begin(), splits.end());
      break;
    }
  }
  for (const auto& [range, remove] : splits) {
    if (remove || range.second <= range.first) continue;
    out.push_back(s.slice(range.first, range.second));
  }
}

template <class F>
void for_each_split(std::vector<NormalizedString>& splits, F f) {
  std::vector<NormalizedString> out;
  for (const auto& s : splits) {
    if (!s.empty()) f(s, out);
  }
  splits = std::move(out);
}

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern) : nullptr) {}
  void pre_tokenize(std::vector<NormalizedString>& splits) const override {
    for_each_split(splits, [&](const NormalizedString& in, std::vector<NormalizedString>& out) {
      NormalizedString s = in;
      if (add_prefix_space_ && s.text[0] != ' ') s.prepend(" ");
      std::vector<NormalizedString> words;
      if (regex_) {
        split_into(s, cover(regex_->find_all(s.text), s.text.size()), SplitBehavior::Isolated, false, words);
      } else {
        words.push_back(std::move(s));
      }
      for (auto& w : words) {
        w.map_chars([](char32_t c, std::string& o) {
          const std::string bytes = to_utf8(c);
          for (unsigned char b : bytes) append_utf8(o, byte_table()[b]);
        });
        out.push_back(std::move(w));
      }
    });
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class SplitPattern final : public PreTokenizer {
 public:
  SplitPattern(std::string literal, std::unique_ptr<Regex> regex, SplitBehavior behavior, bool invert)
      : literal_(std::move(literal)), regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<NormalizedString>& splits) const override {
    for_each_split(splits, [&](const NormalizedString& s, std::vector<NormalizedString>& out) {
      const auto m = regex_ ? regex_->find_all(s.text) : find_all_literal(s.text, literal_);
      split_into(s, cover(m, s.text.size()), behavior_, invert_, out);
    });
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class CharSplit final : public PreTokenizer {
 public:
  CharSplit(std::function<bool(char32_t)> pred, SplitBehavior behavior) : pred_(std::move(pred)), behavior_(behavior) {}
  void pre_tokenize(std::vector<NormalizedString>& splits) const override {
    for_each_split(splits, [&](const NormalizedString& s, std::vector<NormalizedString>& out) {
      split_into(s, cover(char_matches(s.text, pred_), s.text.size()), behavior_, false, out);
    });
  }

 private:
  std::function<bool(char32_t)> pred_;
  SplitBehavior behavior_;
};

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(std::string replacement, std::string prepend_scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(std::move(prepend_scheme)), split_(split) {}
  void pre_tokenize(std::vector<NormalizedString>& splits) const override {
    for_each_split(splits, [&](const NormalizedString& in, std::vector<NormalizedString>& out) {
      NormalizedString s = in;
      auto spaces = find_all_literal(s.text, " ");
      for (auto it = spaces.rbegin(); it != spaces.rend(); ++it) s.replace_range(it->first, it->second, replacement_);
      // "first": only the split that starts the original text (tokenizers: offsets_original().0 == 0).
      const bool prepend = scheme_ == "always" || (scheme_ == "first" && in.original_shift == 0);
      if (prepend && s.text.compare(0, replacement_.size(), replacement_) != 0) s.prepend(replacement_);
      if (split_) {
        split_into(s, cover(find_all_literal(s.text, replacement_), s.text.size()), SplitBehavior::MergedWithNext,
                   false, out);
      } else {
        out.push_back(std::move(s));
      }
    });
  }

 private:
  std::string replacement_, scheme_;
  bool split_;
};

class Sequence final : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<NormalizedString>& splits) const override {
    for (const auto& p : parts_) p->pre_tokenize(splits);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

SplitBehavior behavior_from_string(const std::string& s) {
  if (s == "Removed") return SplitBehavior::Removed;
  if (s == "Isolated") return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (s == "Contiguous") return SplitBehavior::Contiguous;
  ATLAS_FAIL(ConfigError, "tokenizer.json: split behavior '{}' is unknown", s);
}

}  // namespace

char32_t byte_to_char(unsigned char b) { return byte_table()[b]; }

int char_to_byte(char32_t c) {
  static const auto inverse = [] {
    std::vector<int> inv(512, -1);
    for (int b = 0; b < 256; ++b) inv[byte_table()[b]] = b;
    return inv;
  }();
  return c < inverse.size() ? inverse[c] : -1;
}

std::unique_ptr<PreTokenizer> make_byte_level(bool add_prefix_space, bool use_regex) {
  return std::make_unique<ByteLevel>(add_prefix_space, use_regex);
}

std::unique_ptr<PreTokenizer> make_regex_split(const std::string& pattern, SplitBehavior behavior, bool invert) {
  return std::make_unique<SplitPattern>("", std::make_unique<Regex>(pattern), behavior, invert);
}

std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer() {
  std::vector<std::unique_ptr<PreTokenizer>> parts;
  parts.push_back(std::make_unique<CharSplit>(is_whitespace, SplitBehavior::Removed));
  parts.push_back(std::make_unique<CharSplit>(is_punctuation, SplitBehavior::Isolated));
  return make_sequence(std::move(parts));
}

std::unique_ptr<PreTokenizer> make_sequence(std::vector<std::unique_ptr<PreTokenizer>> parts) {
  return std::make_unique<Sequence>(std::move(parts));
}

std::unique_ptr<PreTokenizer> pre_tokenizer_from_json(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& p : j.at("pretokenizers")) {
      if (auto q = pre_tokenizer_from_json(p)) parts.push_back(std::move(q));
    }
    return make_sequence(std::move(parts));
  }
  if (type == "ByteLevel") return make_byte_level(j.value("add_prefix_space", true), j.value("use_regex", true));
  if (type == "BertPreTokenizer") return make_bert_pre_tokenizer();
  if (type == "WhitespaceSplit") return std::make_unique<CharSplit>(is_whitespace, SplitBehavior::Removed);
  if (type == "Whitespace") return make_regex_split(R"(\w+|[^\w\s]+)", SplitBehavior::Removed, true);
  if (type == "Punctuation") {
    return std::make_unique<CharSplit>(is_punctuation, behavior_from_string(j.value("behavior", "Isolated")));
  }
  if (type == "Digits") {
    const bool individual = j.value("individual_digits", false);
    return std::make_unique<CharSplit>([](char32_t c) { return c >= '0' && c <= '9'; },
                                       individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  }
  if (type == "Split") {
    const auto& pattern = j.at("pattern");
    const auto behavior = behavior_from_string(j.at("behavior").get<std::string>());
    const bool invert = j.value("invert", false);
    if (pattern.contains("Regex")) return make_regex_split(pattern["Regex"].get<std::string>(), behavior, invert);
    return std::make_unique<SplitPattern>(pattern.at("String").get<std::string>(), nullptr, behavior, invert);
  }
  if (type == "Metaspace") {
    std::string scheme = "always";
    if (j.contains("prepend_scheme")) {
      scheme = j["prepend_scheme"].get<std::string>();
      ATLAS_CHECK(scheme == "always" || scheme == "first" || scheme == "never", ConfigError,
                  "tokenizer.json: Metaspace prepend_scheme '{}' is unknown (expected always, first, never)", scheme);
    } else if (j.contains("add_prefix_space") && !j["add_prefix_space"].get<bool>()) {
      scheme = "never";
    }
    return std::make_unique<Metaspace>(j.value("replacement", std::string("\xE2\x96\x81")), scheme, j.value("split", true));
  }
  ATLAS_FAIL(ConfigError, "tokenizer.json: pre_tokenizer type '{}' is not supported (supported: Sequence, "
             "ByteLevel, BertPreTokenizer, Whitespace, WhitespaceSplit, Punctuation, Digits, Split, Metaspace)", type);
}

}  // namespace atlas::tokenize::detail
