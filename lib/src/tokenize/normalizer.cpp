#include "tokenize/normalizer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "atlas/core/error.hpp"
#include "tokenize/regex.hpp"
#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {
namespace {

/// Canonical decomposition and accent removal are per character, so they keep exact alignments.
void strip_accents(NormalizedString& s) {
  s.map_chars([](char32_t c, std::string& out) {
    if (c < 0x80) {
      out += static_cast<char>(c);
      return;
    }
    const std::string nfd = normalize_utf8(to_utf8(c), NormForm::NFD);
    size_t pos = 0;
    while (pos < nfd.size()) {
      const char32_t d = next_char(nfd, pos);
      if (!is_nonspacing_mark(d)) append_utf8(out, d);
    }
  });
}

void lowercase(NormalizedString& s) {
  s.map_chars([](char32_t c, std::string& out) { out += lowercase_char(c); });
}

class BertNormalizer final : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool chinese, std::optional<bool> strip, bool lower)
      : clean_text_(clean_text), chinese_(chinese), strip_accents_(strip.value_or(lower)), lowercase_(lower) {}
  void normalize(NormalizedString& s) const override {
    if (clean_text_) {
      s.map_chars([](char32_t c, std::string& out) {
        if (c == 0 || c == 0xFFFD || is_control_char(c)) return;
        if (is_whitespace(c)) {
          out += ' ';
        } else {
          append_utf8(out, c);
        }
      });
    }
    if (chinese_) {
      s.map_chars([](char32_t c, std::string& out) {
        if (is_chinese_char(c)) {
          out += ' ';
          append_utf8(out, c);
          out += ' ';
        } else {
          append_utf8(out, c);
        }
      });
    }
    if (strip_accents_) strip_accents(s);
    if (lowercase_) lowercase(s);
  }

 private:
  bool clean_text_, chinese_, strip_accents_, lowercase_;
};

/// Composition works across characters, so each starter with its following combining marks is
/// normalized as one unit and every output character is aligned to that whole unit.
class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormForm form) : form_(form) {}
  void normalize(NormalizedString& s) const override {
    NormalizedString out;
    size_t pos = 0;
    while (pos < s.text.size()) {
      const size_t start = pos;
      next_char(s.text, pos);
      while (pos < s.text.size()) {
        size_t look = pos;
        const char32_t c = next_char(s.text, look);
        if (combining_class(c) == 0) break;
        pos = look;
      }
      const std::string_view unit(s.text.data() + start, pos - start);
      const bool ascii = std::all_of(unit.begin(), unit.end(), [](char ch) { return (ch & 0x80) == 0; });
      const std::string norm = ascii ? std::string(unit) : normalize_utf8(unit, form_);
      const ByteRange a{s.align[start].first, s.align[pos - 1].second};
      out.text += norm;
      if (ascii || norm == unit) {  // unchanged: keep exact per-character alignments
        out.align.insert(out.align.end(), s.align.begin() + static_cast<std::ptrdiff_t>(start),
                         s.align.begin() + static_cast<std::ptrdiff_t>(pos));
      } else {
        out.align.insert(out.align.end(), norm.size(), a);
      }
    }
    s = std::move(out);
  }
 private:
  NormForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override { lowercase(s); }
};

class StripAccentsNormalizer final : public Normalizer {
 public:
  // tokenizers' StripAccents only drops Mn marks; decomposition is a separate NFD step.
  void normalize(NormalizedString& s) const override {
    s.map_chars([](char32_t c, std::string& out) {
      if (!is_nonspacing_mark(c)) append_utf8(out, c);
    });
  }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(NormalizedString& s) const override {
    size_t b = 0, e = s.text.size();
    if (left_) {
      while (b < e) {
        size_t p = b;
        if (!is_whitespace(next_char(s.text, p))) break;
        b = p;
      }
    }
    if (right_) {
      while (e > b) {
        size_t p = e - 1;
        while (p > b && (static_cast<unsigned char>(s.text[p]) & 0xC0) == 0x80) --p;
        size_t q = p;
        if (!is_whitespace(next_char(s.text, q))) break;
        e = p;
      }
    }
    s = s.slice(b, e);
  }

 private:
  bool left_, right_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(NormalizedString& s) const override { s.prepend(prefix_); }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string literal, std::unique_ptr<Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}
  void normalize(NormalizedString& s) const override {
    auto matches = regex_ ? regex_->find_all(s.text) : find_all_literal(s.text, literal_);
    // Right to left, so that earlier byte positions stay valid.
    for (auto it = matches.rbegin(); it != matches.rend(); ++it) s.replace_range(it->first, it->second, content_);
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(NormalizedString& s) const override {
    for (const auto& p : parts_) p->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

std::unique_ptr<Normalizer> normalizer_from_json(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& n : j.at("normalizers")) {
      if (auto p = normalizer_from_json(n)) parts.push_back(std::move(p));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "BertNormalizer") {
    std::optional<bool> strip;
    if (j.contains("strip_accents") && !j["strip_accents"].is_null()) strip = j["strip_accents"].get<bool>();
    return make_bert_normalizer(j.value("clean_text", true), j.value("handle_chinese_chars", true), strip,
                                j.value("lowercase", true));
  }
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormForm::NFKD);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Strip") return std::make_unique<StripNormalizer>(j.value("strip_left", true), j.value("strip_right", true));
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(j.at("prepend").get<std::string>());
  if (type == "Precompiled") {
    const auto& charsmap = j.contains("precompiled_charsmap") ? j["precompiled_charsmap"] : nlohmann::json();
    ATLAS_CHECK(charsmap.is_string(), FormatError, "tokenizer.json: Precompiled normalizer: precompiled_charsmap is {}, "
                "expected a base64 string", charsmap.is_null() ? std::string("missing") : charsmap.dump());
    return make_precompiled(charsmap.get<std::string>());
  }
  if (type == "Replace") {
    const auto& pattern = j.at("pattern");
    const std::string content = j.at("content").get<std::string>();
    if (pattern.contains("Regex")) {
      return std::make_unique<ReplaceNormalizer>("", std::make_unique<Regex>(pattern["Regex"].get<std::string>()), content);
    }
    return std::make_unique<ReplaceNormalizer>(pattern.at("String").get<std::string>(), nullptr, content);
  }
  ATLAS_FAIL(ConfigError, "tokenizer.json: normalizer type '{}' is not supported (supported: Sequence, "
             "BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Prepend, Replace, Precompiled)",
             type.empty() ? std::string("(none)") : type);
}

std::unique_ptr<Normalizer> make_bert_normalizer(bool clean_text, bool handle_chinese_chars,
                                                 std::optional<bool> strip_accents, bool lowercase) {
  return std::make_unique<BertNormalizer>(clean_text, handle_chinese_chars, strip_accents, lowercase);
}

std::unique_ptr<Normalizer> make_nfc_normalizer() { return std::make_unique<UnicodeNormalizer>(NormForm::NFC); }

}  // namespace atlas::tokenize::detail
