// Classic (pre-tokenizer.json) vocabulary files, assembled into the same pipeline the fast
// converters of transformers build: vocab.json + merges.txt (GPT2Tokenizer, RobertaTokenizer,
// Qwen2Tokenizer) and vocab.txt (BertTokenizer / DistilBertTokenizer).
#include <nlohmann/json.hpp>

#include <fstream>

#include "atlas/core/json.hpp"
#include "atlas/core/utf8.hpp"
#include "atlas/core/error.hpp"
#include "tokenize/classic_config.hpp"
#include "tokenize/pipeline.hpp"

namespace atlas::tokenize::detail {
namespace {

SpecialPiece special_piece(const Vocab& vocab, const std::string& token, const std::filesystem::path& dir) {
  const auto it = vocab.find(token);
  ATLAS_CHECK(it != vocab.end(), ConfigError, "'{}': special token '{}' is not in the vocabulary", dir.string(), token);
  return SpecialPiece{{it->second}, {token}};
}

/// Slow tokenizers split every added / special token out of the raw text before anything else.
void add_specials(PipelineParts& parts, const ClassicConfig& cfg, const Vocab& vocab) {
  for (auto t : cfg.added_tokens) {
    t.normalized = false;
    parts.added.add(t, nullptr);
  }
  for (const auto& content : cfg.special_token_strings()) {
    const auto it = vocab.find(content);
    if (it == vocab.end()) continue;
    AddedToken t;
    t.content = content;
    t.id = it->second;
    // RobertaTokenizer's <mask> swallows the space before it.
    t.lstrip = (cfg.tokenizer_class == "RobertaTokenizer" || cfg.tokenizer_class == "BartTokenizer") &&
               content == cfg.token("mask_token");
    parts.added.add(t, nullptr);
  }
}

}  // namespace

std::unique_ptr<Tokenizer> load_byte_level_bpe_files(const std::filesystem::path& dir) {
  const ClassicConfig cfg = ClassicConfig::read(dir);
  Vocab vocab;
  {
    const auto path = dir / "vocab.json";
    std::ifstream in(path);
    ATLAS_CHECK(in, IoError, "cannot open '{}'", path.string());
    try {
      const auto j = parse_json(in, "'" + path.string() + "'");  // kept alive: items() only views it
      for (const auto& [token, id] : j.items()) vocab.emplace(token, id.get<int64_t>());
    } catch (const nlohmann::json::exception& e) {
      ATLAS_FAIL(FormatError, "'{}' is not a JSON object of token -> id: {}", path.string(), e.what());
    }
  }
  std::vector<std::pair<std::string, std::string>> merges;
  {
    const auto path = dir / "merges.txt";
    std::ifstream in(path);
    ATLAS_CHECK(in, IoError, "cannot open '{}'", path.string());
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
      const size_t bad = utf8::first_invalid(line);
      ATLAS_CHECK(bad == std::string::npos, FormatError, "'{}' line {}: not valid UTF-8 (byte {})", path.string(),
                  line_no, bad);
      const size_t space = line.find(' ');
      ATLAS_CHECK(space != std::string::npos && space > 0, FormatError, "'{}' line {}: expected 'left right', got '{}'",
                  path.string(), line_no, line);
      merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    }
  }
  PipelineParts parts;
  parts.kind = "vocab.json+merges.txt";
  parts.display.byte_level = true;
  add_specials(parts, cfg, vocab);
  const bool add_prefix_space = cfg.flag("add_prefix_space", false);
  if (cfg.tokenizer_class.rfind("Qwen2Tokenizer", 0) == 0) {
    parts.normalizer = make_nfc_normalizer();
    std::vector<std::unique_ptr<PreTokenizer>> seq;
    seq.push_back(make_regex_split(kQwen2Pattern, SplitBehavior::Isolated, false));
    seq.push_back(make_byte_level(false, false));
    parts.pre_tokenizer = make_sequence(std::move(seq));
  } else {
    parts.pre_tokenizer = make_byte_level(add_prefix_space, true);
  }
  // BartTokenizer is RobertaTokenizer's template (<s> A </s>, pairs <s> A </s></s> B </s>).
  if (cfg.tokenizer_class.rfind("RobertaTokenizer", 0) == 0 || cfg.tokenizer_class.rfind("BartTokenizer", 0) == 0) {
    parts.post_processor = make_roberta_processing(special_piece(vocab, cfg.token("cls_token", "<s>"), dir),
                                                   special_piece(vocab, cfg.token("sep_token", "</s>"), dir), true,
                                                   add_prefix_space);
  } else if (cfg.flag("add_bos_token", false) && !cfg.token("bos_token").empty()) {
    parts.post_processor =
        make_affix_processing(special_piece(vocab, cfg.token("bos_token"), dir), std::nullopt, false, true);
  }
  parts.model = make_bpe(std::move(vocab), merges, BpeOptions{});
  return std::make_unique<PipelineTokenizer>(std::move(parts));
}

std::unique_ptr<Tokenizer> load_wordpiece_files(const std::filesystem::path& dir) {
  const ClassicConfig cfg = ClassicConfig::read(dir);
  Vocab vocab;
  {
    const auto path = dir / "vocab.txt";
    std::ifstream in(path);
    ATLAS_CHECK(in, IoError, "cannot open '{}'", path.string());
    std::string line;
    int64_t id = 0;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const size_t bad = utf8::first_invalid(line);
      ATLAS_CHECK(bad == std::string::npos, FormatError, "'{}' line {}: not valid UTF-8 (byte {})", path.string(),
                  id + 1, bad);
      vocab.emplace(line, id++);
    }
    ATLAS_CHECK(id > 0, FormatError, "'{}' is empty", path.string());
  }
  PipelineParts parts;
  parts.kind = "vocab.txt";
  add_specials(parts, cfg, vocab);
  std::optional<bool> strip_accents;
  if (cfg.json.contains("strip_accents") && cfg.json["strip_accents"].is_boolean()) {
    strip_accents = cfg.json["strip_accents"].get<bool>();
  }
  parts.normalizer = make_bert_normalizer(true, cfg.flag("tokenize_chinese_chars", true), strip_accents,
                                          cfg.flag("do_lower_case", true));
  parts.pre_tokenizer = make_bert_pre_tokenizer();
  parts.post_processor = make_bert_processing(special_piece(vocab, cfg.token("cls_token", "[CLS]"), dir),
                                              special_piece(vocab, cfg.token("sep_token", "[SEP]"), dir));
  parts.display.wordpiece_prefix = "##";
  parts.model = make_wordpiece(std::move(vocab), cfg.token("unk_token", "[UNK]"));
  return std::make_unique<PipelineTokenizer>(std::move(parts));
}

}  // namespace atlas::tokenize::detail
