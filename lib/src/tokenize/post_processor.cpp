#include "tokenize/post_processor.hpp"

#include <nlohmann/json.hpp>

#include <map>

#include "atlas/core/error.hpp"
#include "tokenize/pre_tokenizer.hpp"
#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {

void append_sequence(Encoding& e, const Part& p, int64_t type_id) {
  e.ids.insert(e.ids.end(), p.ids.begin(), p.ids.end());
  e.tokens.insert(e.tokens.end(), p.tokens.begin(), p.tokens.end());
  e.offsets.insert(e.offsets.end(), p.offsets.begin(), p.offsets.end());
  e.special_mask.insert(e.special_mask.end(), p.ids.size(), 0);
  e.type_ids.insert(e.type_ids.end(), p.ids.size(), type_id);
}

void append_special(Encoding& e, const SpecialPiece& s, int64_t type_id) {
  for (size_t i = 0; i < s.ids.size(); ++i) {
    e.ids.push_back(s.ids[i]);
    e.tokens.push_back(i < s.tokens.size() ? s.tokens[i] : std::string());
    e.offsets.emplace_back(0, 0);
    e.special_mask.push_back(1);
    e.type_ids.push_back(type_id);
  }
}

Encoding PostProcessor::assemble(const Part& a, const Part* b, bool) const {
  Encoding e;
  append_sequence(e, a, 0);
  if (b) append_sequence(e, *b, 1);
  return e;
}

namespace {

/// tokenizers' byte_level::process_offsets: leading/trailing spaces ("Ġ" or whitespace) of a token
/// are removed from its offsets.
void trim_byte_level_offsets(Part& p, bool add_prefix_space) {
  static const std::string kSpaceChar = to_utf8(byte_to_char(' '));
  for (size_t i = 0; i < p.tokens.size(); ++i) {
    const std::string& t = p.tokens[i];
    std::vector<char32_t> chars;
    for (size_t pos = 0; pos < t.size();) chars.push_back(next_char(t, pos));
    auto is_space = [](char32_t c) { return c == byte_to_char(' ') || is_whitespace(c); };
    size_t leading = 0, trailing = 0;
    while (leading < chars.size() && is_space(chars[leading])) ++leading;
    while (trailing < chars.size() && is_space(chars[chars.size() - 1 - trailing])) ++trailing;
    auto& [start, end] = p.offsets[i];
    if (leading > 0) {
      const bool is_first = i == 0 || start == 0;
      if (is_first && add_prefix_space && leading == 1) leading = 0;
      start = std::min<int64_t>(start + static_cast<int64_t>(leading), end);
    }
    if (trailing > 0 && end >= static_cast<int64_t>(trailing)) {
      end = std::max<int64_t>(end - static_cast<int64_t>(trailing), start);
    }
  }
}

class ByteLevelProcessing final : public PostProcessor {
 public:
  ByteLevelProcessing(bool trim, bool add_prefix_space) : trim_(trim), add_prefix_space_(add_prefix_space) {}
  void trim_offsets(Part& p) const override {
    if (trim_) trim_byte_level_offsets(p, add_prefix_space_);
  }

 private:
  bool trim_, add_prefix_space_;
};

class RobertaProcessing final : public PostProcessor {
 public:
  RobertaProcessing(SpecialPiece cls, SpecialPiece sep, bool trim, bool add_prefix_space)
      : cls_(std::move(cls)), sep_(std::move(sep)), trim_(trim), add_prefix_space_(add_prefix_space) {}
  void trim_offsets(Part& p) const override {
    if (trim_) trim_byte_level_offsets(p, add_prefix_space_);
  }
  Encoding assemble(const Part& a, const Part* b, bool add_special) const override {
    if (!add_special) return PostProcessor::assemble(a, b, false);
    Encoding e;
    append_special(e, cls_, 0);
    append_sequence(e, a, 0);
    append_special(e, sep_, 0);
    if (b) {
      // tokenizers' RobertaProcessing gives the second segment type id 1 (RoBERTa itself has one type).
      append_special(e, sep_, 1);
      append_sequence(e, *b, 1);
      append_special(e, sep_, 1);
    }
    return e;
  }

 private:
  SpecialPiece cls_, sep_;
  bool trim_, add_prefix_space_;
};

class BertProcessing final : public PostProcessor {
 public:
  BertProcessing(SpecialPiece cls, SpecialPiece sep) : cls_(std::move(cls)), sep_(std::move(sep)) {}
  Encoding assemble(const Part& a, const Part* b, bool add_special) const override {
    if (!add_special) return PostProcessor::assemble(a, b, false);
    Encoding e;
    append_special(e, cls_, 0);
    append_sequence(e, a, 0);
    append_special(e, sep_, 0);
    if (b) {
      append_sequence(e, *b, 1);
      append_special(e, sep_, 1);
    }
    return e;
  }

 private:
  SpecialPiece cls_, sep_;
};

struct TemplateItem {
  bool is_sequence;   // else a special token
  std::string name;   // "A"/"B" or the special token's key
  int64_t type_id;
};

class TemplateProcessing final : public PostProcessor {
 public:
  TemplateProcessing(std::vector<TemplateItem> single, std::vector<TemplateItem> pair,
                     std::map<std::string, SpecialPiece> specials)
      : single_(std::move(single)), pair_(std::move(pair)), specials_(std::move(specials)) {}
  Encoding assemble(const Part& a, const Part* b, bool add_special) const override {
    if (!add_special) return PostProcessor::assemble(a, b, false);
    Encoding e;
    for (const auto& item : b ? pair_ : single_) {
      if (item.is_sequence) {
        append_sequence(e, item.name == "A" ? a : *b, item.type_id);
      } else {
        append_special(e, specials_.at(item.name), item.type_id);
      }
    }
    return e;
  }

 private:
  std::vector<TemplateItem> single_, pair_;
  std::map<std::string, SpecialPiece> specials_;
};

class AffixProcessing final : public PostProcessor {
 public:
  AffixProcessing(std::optional<SpecialPiece> prefix, std::optional<SpecialPiece> suffix, bool skip_present,
                  bool pair_type_ids)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)), skip_present_(skip_present),
        pair_type_ids_(pair_type_ids) {}
  Encoding assemble(const Part& a, const Part* b, bool add_special) const override {
    if (!add_special) return PostProcessor::assemble(a, b, false);
    Encoding e;
    auto add = [&](const Part& p, int64_t type_id) {
      if (prefix_) append_special(e, *prefix_, type_id);
      append_sequence(e, p, type_id);
      if (suffix_) {
        const bool present = skip_present_ && !p.ids.empty() && p.ids.back() == suffix_->ids.back();
        if (!present) append_special(e, *suffix_, type_id);
      }
    };
    add(a, 0);
    if (b) add(*b, pair_type_ids_ ? 1 : 0);
    return e;
  }

 private:
  std::optional<SpecialPiece> prefix_, suffix_;
  bool skip_present_, pair_type_ids_;
};

std::vector<TemplateItem> parse_template(const nlohmann::json& j) {
  std::vector<TemplateItem> items;
  for (const auto& piece : j) {
    if (piece.contains("Sequence")) {
      const std::string id = piece["Sequence"].at("id").get<std::string>();
      ATLAS_CHECK(id == "A" || id == "B", FormatError,
                  "tokenizer.json: post_processor template Sequence id: expected \"A\" or \"B\", got \"{}\"", id);
      items.push_back({true, id, piece["Sequence"].value("type_id", int64_t{0})});
    } else if (piece.contains("SpecialToken")) {
      items.push_back({false, piece["SpecialToken"].at("id").get<std::string>(),
                       piece["SpecialToken"].value("type_id", int64_t{0})});
    } else {
      ATLAS_FAIL(FormatError, "tokenizer.json: template piece {} is neither Sequence nor SpecialToken", piece.dump());
    }
  }
  return items;
}

SpecialPiece pair_piece(const nlohmann::json& j) {
  // RobertaProcessing / BertProcessing spell a special token as ["<s>", 0].
  return SpecialPiece{{j.at(1).get<int64_t>()}, {j.at(0).get<std::string>()}};
}

}  // namespace

std::unique_ptr<PostProcessor> make_default_post_processor() { return std::make_unique<PostProcessor>(); }

std::unique_ptr<PostProcessor> make_roberta_processing(SpecialPiece cls, SpecialPiece sep, bool trim_offsets,
                                                       bool add_prefix_space) {
  return std::make_unique<RobertaProcessing>(std::move(cls), std::move(sep), trim_offsets, add_prefix_space);
}

std::unique_ptr<PostProcessor> make_bert_processing(SpecialPiece cls, SpecialPiece sep) {
  return std::make_unique<BertProcessing>(std::move(cls), std::move(sep));
}

std::unique_ptr<PostProcessor> make_affix_processing(std::optional<SpecialPiece> prefix,
                                                     std::optional<SpecialPiece> suffix, bool skip_present_suffix,
                                                     bool pair_type_ids) {
  return std::make_unique<AffixProcessing>(std::move(prefix), std::move(suffix), skip_present_suffix, pair_type_ids);
}

std::unique_ptr<PostProcessor> post_processor_from_json(const nlohmann::json& j) {
  if (j.is_null()) return make_default_post_processor();
  const std::string type = j.value("type", "");
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelProcessing>(j.value("trim_offsets", true), j.value("add_prefix_space", true));
  }
  if (type == "RobertaProcessing") {
    return make_roberta_processing(pair_piece(j.at("cls")), pair_piece(j.at("sep")), j.value("trim_offsets", true),
                                   j.value("add_prefix_space", true));
  }
  if (type == "BertProcessing") return make_bert_processing(pair_piece(j.at("cls")), pair_piece(j.at("sep")));
  if (type == "TemplateProcessing") {
    std::map<std::string, SpecialPiece> specials;
    for (const auto& [key, value] : j.at("special_tokens").items()) {
      specials[key] = SpecialPiece{value.at("ids").get<std::vector<int64_t>>(),
                                   value.at("tokens").get<std::vector<std::string>>()};
    }
    auto single = parse_template(j.at("single"));
    auto pair = parse_template(j.at("pair"));
    for (const auto* tmpl : {&single, &pair}) {
      for (const auto& item : *tmpl) {
        ATLAS_CHECK(item.is_sequence || specials.count(item.name), FormatError,
                    "tokenizer.json: post_processor {} template uses special token '{}' that special_tokens does not "
                    "define", tmpl == &single ? "single" : "pair", item.name);
        // A single sequence has no B to place (transformers' tokenizers panics there).
        ATLAS_CHECK(tmpl != &single || !item.is_sequence || item.name == "A", FormatError,
                    "tokenizer.json: post_processor single template: expected only Sequence \"A\", got \"B\"");
      }
    }
    return std::make_unique<TemplateProcessing>(std::move(single), std::move(pair), std::move(specials));
  }
  if (type == "Sequence") {
    // Only the common Llama-3 style [ByteLevel, TemplateProcessing] combination: trimming then template.
    std::unique_ptr<PostProcessor> trim, tmpl;
    for (const auto& p : j.at("processors")) {
      auto q = post_processor_from_json(p);
      (p.value("type", "") == "ByteLevel" ? trim : tmpl) = std::move(q);
    }
    struct Seq final : PostProcessor {
      std::unique_ptr<PostProcessor> trim, tmpl;
      void trim_offsets(Part& p) const override {
        if (trim) trim->trim_offsets(p);
      }
      Encoding assemble(const Part& a, const Part* b, bool add) const override {
        return tmpl ? tmpl->assemble(a, b, add) : PostProcessor::assemble(a, b, add);
      }
    };
    auto seq = std::make_unique<Seq>();
    seq->trim = std::move(trim);
    seq->tmpl = std::move(tmpl);
    return seq;
  }
  ATLAS_FAIL(ConfigError, "tokenizer.json: post_processor type '{}' is not supported (supported: ByteLevel, "
             "RobertaProcessing, BertProcessing, TemplateProcessing, Sequence)", type);
}

}  // namespace atlas::tokenize::detail
