// Pipeline pieces through small hand-written tokenizer.json files: normalizers (BERT cleaning,
// accents, CJK), byte-level mapping, metaspace Replace/Prepend alignments, added-token flags,
// offsets in code points, display labels, and the error paths.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "atlas/core/error.hpp"
#include "atlas/tokenize/tokenizer.hpp"
#include "test_support.hpp"

namespace {

using nlohmann::json;
using Offsets = std::vector<std::pair<int64_t, int64_t>>;

std::unique_ptr<atlas::tokenize::Tokenizer> from_json(const std::string& name, const json& j) {
  const auto dir = atlas::test::scratch_dir("tokenize_" + name);
  std::ofstream(dir / "tokenizer.json") << j.dump();
  return atlas::tokenize::load_tokenizer(dir);
}

json wordpiece_vocab() {
  return {{"[UNK]", 0}, {"cafe", 1}, {"\xE4\xB8\xAD", 2}, {"\xE6\x96\x87", 3}, {"hello", 4}, {"!", 5}, {"##s", 6}, {"hello", 4}};
}

json tokenizer_json(json normalizer, json pre, json model, json added = json::array()) {
  return {{"version", "1.0"}, {"added_tokens", added}, {"normalizer", normalizer}, {"pre_tokenizer", pre},
          {"model", model}, {"post_processor", nullptr}, {"decoder", nullptr}};
}

json byte_level_vocab() {
  // Every byte as GPT-2's printable character, ids in byte order.
  json v = json::object();
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const int c = printable ? b : next++;
    std::string s;
    if (c < 0x80) {
      s += static_cast<char>(c);
    } else {
      s += static_cast<char>(0xC0 | (c >> 6));
      s += static_cast<char>(0x80 | (c & 0x3F));
    }
    v[s] = b;
  }
  return v;
}

}  // namespace

TEST_CASE("BertNormalizer: clean text, CJK split, accents stripped, lower-cased; offsets in code points") {
  const auto tok = from_json("bert", tokenizer_json({{"type", "BertNormalizer"}, {"lowercase", true}},
                                                    {{"type", "BertPreTokenizer"}},
                                                    {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"vocab", wordpiece_vocab()}}));
  const auto e = tok->encode("CAF\xC3\x89\t\xE4\xB8\xAD\xE6\x96\x87 Hellos!\x01", false);
  CHECK(e.tokens == std::vector<std::string>{"cafe", "\xE4\xB8\xAD", "\xE6\x96\x87", "hello", "##s", "!"});
  CHECK(e.offsets == Offsets{{0, 4}, {5, 6}, {6, 7}, {8, 13}, {13, 14}, {14, 15}});
  CHECK(tok->display(6) == "s");
  // An unknown word becomes one [UNK] spanning the word.
  const auto u = tok->encode("xyz", false);
  CHECK(u.ids == std::vector<int64_t>{0});
  CHECK(u.offsets == Offsets{{0, 3}});
}

TEST_CASE("ByteLevel: bytes map to GPT-2 characters, all pieces of a character share its offsets") {
  const auto tok = from_json("bytes", tokenizer_json(nullptr, {{"type", "ByteLevel"}, {"add_prefix_space", false}},
                                                     {{"type", "BPE"}, {"vocab", byte_level_vocab()}, {"merges", json::array()}}));
  const auto e = tok->encode("a \xC3\xA9", false);  // "a é"
  CHECK(e.ids == std::vector<int64_t>{'a', ' ', 0xC3, 0xA9});
  CHECK(e.tokens[1] == "\xC4\xA0");  // Ġ
  CHECK(e.offsets == Offsets{{0, 1}, {1, 2}, {2, 3}, {2, 3}});
  CHECK(tok->display(' ') == " ");
  CHECK(tok->display('\n') == "\xE2\x86\xB5");
  CHECK(tok->display(0xC3) == "<0xC3>");
}

TEST_CASE("BPE merges by rank, leftmost first, on long repetitive words") {
  json vocab = {{"a", 0}, {"b", 1}, {"ab", 2}, {"abab", 3}, {"ba", 4}};
  const auto tok = from_json("merges", tokenizer_json(nullptr, nullptr,
                                                      {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b", "ab ab", "b a"}}}));
  CHECK(tok->encode("ababa", false).tokens == std::vector<std::string>{"abab", "a"});
  CHECK(tok->encode("bab", false).tokens == std::vector<std::string>{"b", "ab"});
  const std::string long_word(4000, 'a');  // no merge applies: 4000 single pieces, no blow-up
  CHECK(tok->encode(long_word, false).size() == 4000);
}

TEST_CASE("Prepend + Replace normalizers keep offsets on the original spaces") {
  json vocab = {{"<unk>", 0}, {"\xE2\x96\x81", 1}, {"a", 2}, {"b", 3}, {"\xE2\x96\x81" "a", 4}, {"\xE2\x96\x81" "b", 5}};
  json norm = {{"type", "Sequence"},
               {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}};
  json model = {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"\xE2\x96\x81 a", "\xE2\x96\x81 b"}}, {"unk_token", "<unk>"},
                {"byte_fallback", false}, {"fuse_unk", true}};
  json added = {{{"id", 6}, {"content", "<s>"}, {"special", true}, {"normalized", true}, {"lstrip", false}, {"rstrip", false}}};
  const auto tok = from_json("metaspace", tokenizer_json(norm, nullptr, model, added));
  const auto e = tok->encode("a  b", false);
  CHECK(e.tokens == std::vector<std::string>{"\xE2\x96\x81" "a", "\xE2\x96\x81", "\xE2\x96\x81" "b"});
  CHECK(e.offsets == Offsets{{0, 1}, {1, 2}, {2, 4}});
  CHECK(tok->display(4) == " a");
  // Unknown characters fuse into one <unk>.
  CHECK(tok->encode("xyz", false).ids == std::vector<int64_t>{1, 0});
  // A normalized added token is matched in normalized text ("<s>" -> "▁<s>").
  const auto s = tok->encode("<s> a", false);
  CHECK(s.ids == std::vector<int64_t>{6, 4});
  CHECK(s.offsets == Offsets{{0, 3}, {3, 5}});
}

TEST_CASE("added tokens: lstrip / rstrip absorb whitespace, matched before the model") {
  json vocab = {{"[UNK]", 0}, {"a", 1}};
  json added = {{{"id", 2}, {"content", "<m>"}, {"special", true}, {"normalized", false}, {"lstrip", true}, {"rstrip", true}}};
  const auto tok = from_json("added", tokenizer_json(nullptr, {{"type", "WhitespaceSplit"}},
                                                     {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"vocab", vocab}}, added));
  const auto e = tok->encode("a  <m>  a", false);
  CHECK(e.ids == std::vector<int64_t>{1, 2, 1});
  CHECK(e.offsets == Offsets{{0, 1}, {1, 8}, {8, 9}});
  CHECK(tok->token_to_id("<m>") == 2);
  CHECK(tok->id_to_token(2) == "<m>");
}

TEST_CASE("display labels of real tokenizers") {
  const auto dir = atlas::test::shared_dir() / "reference" / "tokenizers";
  const auto llama = atlas::tokenize::load_tokenizer(dir / "llama2");
  CHECK(llama->display(*llama->token_to_id("<0x41>")) == "A");
  CHECK(llama->display(*llama->token_to_id("<0xE4>")) == "<0xE4>");
  CHECK(llama->display(*llama->token_to_id("\xE2\x96\x81the")) == " the");
  const auto gpt2 = atlas::tokenize::load_tokenizer(dir / "gpt2");
  CHECK(gpt2->display(*gpt2->token_to_id("\xC4\xA0the")) == " the");
  CHECK(gpt2->vocab_size() == 50257);
}

TEST_CASE("errors: bad UTF-8, missing folder, unsupported pipeline stage") {
  const auto dir = atlas::test::shared_dir() / "reference" / "tokenizers";
  const auto bert = atlas::tokenize::load_tokenizer(dir / "bert-base-uncased");
  CHECK_THROWS_AS(bert->encode("ok \xC3", true), atlas::InputError);
  CHECK_THROWS_AS(atlas::tokenize::load_tokenizer("/nonexistent/atlas-tokenizer"), atlas::InputError);
  CHECK_THROWS_AS(bert->id_to_token(1 << 30), atlas::InputError);
  try {
    from_json("bad", tokenizer_json({{"type", "NmtNfkc"}}, nullptr, {{"type", "WordPiece"}, {"vocab", wordpiece_vocab()}}));
    FAIL("expected ConfigError");
  } catch (const atlas::ConfigError& e) {
    CHECK(std::string(e.what()).find("NmtNfkc") != std::string::npos);
    CHECK(std::string(e.what()).find("tokenizer.json") != std::string::npos);
  }
  // Vocabulary ids index the id -> token table: negative or absurdly large ones are refused by name
  // (a fuzzed tokenizer.json with id -10000 wrote outside that table).
  for (const int64_t id : {int64_t{-10000}, int64_t{4'000'000'000'000}}) {
    CAPTURE(id);
    try {
      from_json("badid", tokenizer_json(nullptr, nullptr, {{"type", "WordPiece"}, {"vocab", {{"[UNK]", 0}, {"hello", id}}}}));
      FAIL("expected ConfigError");
    } catch (const atlas::ConfigError& e) {
      CHECK(std::string(e.what()).find("'hello' has id " + std::to_string(id)) != std::string::npos);
    }
  }
}

TEST_CASE("Unigram: Viterbi over scores, fused unknowns, byte fallback, missing unk_id") {
  const json vocab = json::array({json::array({"<unk>", 0.0}), json::array({"\xE2\x96\x81", -2.0}),
                                  json::array({"ab", -1.0}), json::array({"a", -3.0}), json::array({"b", -3.0}),
                                  json::array({"abc", -5.0}), json::array({"c", -1.5}), json::array({"<0x7A>", -8.0})});
  const json meta = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}};
  const auto tok = from_json("unigram", tokenizer_json(nullptr, meta, {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", vocab}}));
  // "abc": ab + c (-2.5) beats abc (-5) and a + b + c (-7.5); "xy" is one fused unknown (the text).
  const auto e = tok->encode("abc xyab", false);
  CHECK(e.tokens == std::vector<std::string>{"\xE2\x96\x81", "ab", "c", "\xE2\x96\x81", "xy", "ab"});
  CHECK(e.ids == std::vector<int64_t>{1, 2, 6, 1, 0, 2});
  CHECK(e.offsets == Offsets{{0, 1}, {0, 2}, {2, 3}, {3, 4}, {4, 6}, {6, 8}});  // "▁" replaced the space
  const auto fb = from_json("unigram_fb", tokenizer_json(nullptr, nullptr,
                                                         {{"type", "Unigram"}, {"unk_id", 0}, {"byte_fallback", true}, {"vocab", vocab}}));
  CHECK(fb->encode("abz", false).tokens == std::vector<std::string>{"ab", "<0x7A>"});
  CHECK(fb->encode("aby", false).ids == std::vector<int64_t>{2, 0});  // no <0x79>: unknown
  const auto no_unk = from_json("unigram_nounk", tokenizer_json(nullptr, nullptr, {{"type", "Unigram"}, {"vocab", vocab}}));
  CHECK_THROWS_AS(no_unk->encode("q", false), atlas::InputError);
  CHECK_THROWS_AS(from_json("unigram_badunk", tokenizer_json(nullptr, nullptr, {{"type", "Unigram"}, {"unk_id", 99}, {"vocab", vocab}})),
                  atlas::ConfigError);
}

TEST_CASE("TemplateProcessing: a Sequence id other than A/B, B in the single template, or an undefined special token in either template is refused") {
  const json model = {{"type", "WordPiece"}, {"vocab", wordpiece_vocab()}};
  auto seq = [](const std::string& id) { return json{{"Sequence", {{"id", id}, {"type_id", 0}}}}; };
  auto special = [](const std::string& id) { return json{{"SpecialToken", {{"id", id}, {"type_id", 0}}}}; };
  const json specials = {{"[CLS]", {{"id", "[CLS]"}, {"ids", {4}}, {"tokens", {"hello"}}}}};
  auto with_template = [&](json single, json pair) {
    json j = tokenizer_json(nullptr, {{"type", "WhitespaceSplit"}}, model);
    j["post_processor"] = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
    return j;
  };
  auto error_of = [&](const json& j) -> std::string {
    try {
      from_json("template", j)->encode("hello", true);
    } catch (const atlas::Error& e) {
      return e.what();
    }
    return "";
  };
  const json good_pair = {special("[CLS]"), seq("A"), seq("B")};
  // A fuzzed tokenizer.json (tests/fuzz/regressions/tokenizer_json/template_unknown_sequence_id.json)
  // had "Aunk_t", which was taken for B and read a second sequence that a single text does not have.
  CHECK(error_of(with_template({special("[CLS]"), seq("Aunk_t")}, good_pair)).find("expected \"A\" or \"B\", got \"Aunk_t\"") !=
        std::string::npos);
  CHECK(error_of(with_template({special("[CLS]"), seq("B")}, good_pair)).find("single template: expected only Sequence \"A\"") !=
        std::string::npos);
  CHECK(error_of(with_template({special("[CLS]"), seq("A")}, {special("[SEP]"), seq("A"), seq("B")}))
            .find("pair template uses special token '[SEP]'") != std::string::npos);
  const auto ok = from_json("template_ok", with_template({special("[CLS]"), seq("A")}, good_pair));
  CHECK(ok->encode("hello", true).ids == std::vector<int64_t>{4, 4});
}
