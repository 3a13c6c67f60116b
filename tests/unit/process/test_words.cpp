// Word segmentation and word-level attention, on real tokenizer output (`atlas tokenize --json` of
// ../shared/reference/tokenizers/* and ../shared/models/stories260K, pasted below).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "atlas/core/error.hpp"
#include "atlas/process/words.hpp"

using namespace atlas;
using namespace atlas::process;
using S = std::vector<std::string>;

namespace {

const char* kText = "Mom told Lucy that she could have a cookie, 小猫 ok.";

TokenAxis axis_from(const std::string& json, const std::string& text, bool with_offsets = true) {
  auto j = nlohmann::json::parse(json);
  TokenAxis a;
  a.tokens = j["tokens"].get<S>();
  for (auto& o : j["offsets"]) a.offsets.push_back({with_offsets ? o[0].get<int64_t>() : -1, with_offsets ? o[1].get<int64_t>() : -1});
  for (auto& s : j["special_mask"]) a.special.push_back(s.get<int>() ? 1 : 0);
  a.text = text;
  return a;
}

S texts(const std::vector<Word>& words) {
  S out;
  for (const auto& w : words) out.push_back(w.text);
  return out;
}

// llama-2 tokenizer.json (sentencepiece BPE with byte fallback): 猫 is three byte pieces.
const char* kLlama2 = R"({"offsets":[[-1,-1],[0,1],[1,3],[3,8],[8,13],[13,18],[18,22],[22,28],[28,33],[33,35],[35,42],[42,43],[43,44],[44,45],[45,46],[45,46],[45,46],[46,49],[49,50]],"special_mask":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"tokens":["<s>","▁M","om","▁told","▁Lucy","▁that","▁she","▁could","▁have","▁a","▁cookie",",","▁","小","<0xE7>","<0x8C>","<0xAB>","▁ok","."]})";
// stories260K (llama2.c's 512-piece sentencepiece): both characters are byte pieces.
const char* kStories = R"({"offsets":[[-1,-1],[0,1],[1,3],[3,6],[6,8],[8,10],[10,11],[11,12],[12,13],[13,18],[18,22],[22,24],[24,28],[28,31],[31,33],[33,35],[35,37],[37,39],[39,40],[40,41],[41,42],[42,43],[43,44],[44,45],[44,45],[44,45],[45,46],[45,46],[45,46],[46,48],[48,49],[49,50]],"special_mask":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"tokens":["<s>","▁M","om","▁to","ld","▁L","u","c","y","▁that","▁she","▁c","ould","▁ha","ve","▁a","▁c","oo","k","i","e",",","▁","<0xE5>","<0xB0>","<0x8F>","<0xE7>","<0x8C>","<0xAB>","▁o","k","."]})";
// GPT-2 byte-level BPE: "Ġå" covers the space and the first byte of 小.
const char* kGpt2 = R"({"offsets":[[0,3],[3,8],[8,13],[13,18],[18,22],[22,28],[28,33],[33,35],[35,42],[42,43],[43,45],[44,45],[44,45],[45,46],[45,46],[45,46],[46,49],[49,50]],"special_mask":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"tokens":["Mom","Ġtold","ĠLucy","Ġthat","Ġshe","Ġcould","Ġhave","Ġa","Ġcookie",",","Ġå","°","ı","ç","Į","«","Ġok","."]})";
// bert-base-uncased WordPiece.
const char* kBert = R"({"offsets":[[-1,-1],[0,12],[13,18],[18,25],[25,26],[27,30],[31,35],[35,36],[-1,-1]],"special_mask":[1,0,0,0,0,0,0,0,1],"tokens":["[CLS]","unbelievable","token","##ization",",","she","said",".","[SEP]"]})";
const char* kBertText = "Unbelievable tokenization, she said.";

const S kExpected{"<s>", "Mom", "told", "Lucy", "that", "she", "could", "have", "a", "cookie,", "小", "猫", "ok."};

}  // namespace

TEST_CASE("words: llama-2 sentencepiece with byte fallback") {
  auto words = segment_words(axis_from(kLlama2, kText));
  REQUIRE(texts(words) == kExpected);
  CHECK(words[0].special);
  CHECK(words[0].begin == -1);
  CHECK(words[1].tokens == std::vector<int64_t>{1, 2});
  CHECK(words[9].tokens == std::vector<int64_t>{10, 11});
  CHECK(words[10].tokens == std::vector<int64_t>{12, 13});      // the lone "▁" joins 小
  CHECK(words[11].tokens == std::vector<int64_t>{14, 15, 16});  // <0xE7><0x8C><0xAB> = 猫
  CHECK(words[11].begin == 45);
  CHECK(words[11].end == 46);
  CHECK(words[3].begin == 9);   // "Lucy" without the space its token's offsets include
  CHECK(words[3].end == 13);
}

TEST_CASE("words: stories260K byte pieces become readable characters") {
  auto words = segment_words(axis_from(kStories, kText));
  REQUIRE(texts(words) == kExpected);
  CHECK(words[3].tokens == std::vector<int64_t>{5, 6, 7, 8});   // ▁L u c y
  CHECK(words[10].tokens == std::vector<int64_t>{22, 23, 24, 25});
  CHECK(words[11].tokens == std::vector<int64_t>{26, 27, 28});
}

TEST_CASE("words: GPT-2 byte-level, a piece spanning the space and part of a character") {
  auto words = segment_words(axis_from(kGpt2, kText));
  S expected(kExpected.begin() + 1, kExpected.end());
  REQUIRE(texts(words) == expected);
  CHECK(words[9].tokens == std::vector<int64_t>{10, 11, 12});
  CHECK(words[10].tokens == std::vector<int64_t>{13, 14, 15});
}

TEST_CASE("words: WordPiece ## pieces and punctuation") {
  auto words = segment_words(axis_from(kBert, kBertText));
  CHECK(texts(words) == S{"[CLS]", "Unbelievable", "tokenization,", "she", "said.", "[SEP]"});
  CHECK(words[2].tokens == std::vector<int64_t>{2, 3, 4});
  CHECK(words[5].special);
}

TEST_CASE("words: without offsets the token strings decide") {
  CHECK(texts(segment_words(axis_from(kLlama2, kText, false))) ==
        S{"<s>", "Mom", "told", "Lucy", "that", "she", "could", "have", "a", "cookie,", "小", "猫", "ok."});
  CHECK(texts(segment_words(axis_from(kStories, kText, false))) ==
        S{"<s>", "Mom", "told", "Lucy", "that", "she", "could", "have", "a", "cookie,", "小", "猫", "ok."});
  CHECK(texts(segment_words(axis_from(kGpt2, kText, false))) ==
        S{"Mom", "told", "Lucy", "that", "she", "could", "have", "a", "cookie,", "小", "猫", "ok."});
  CHECK(texts(segment_words(axis_from(kBert, kBertText, false))) ==
        S{"[CLS]", "unbelievable", "tokenization,", "she", "said.", "[SEP]"});
}

TEST_CASE("words: sentence pairs are segmented per text") {
  TokenAxis a;
  a.tokens = {"[CLS]", "the", "cat", "[SEP]", "a", "dog", "##s", "[SEP]"};
  a.offsets = {{-1, -1}, {0, 3}, {4, 7}, {-1, -1}, {0, 1}, {2, 5}, {5, 6}, {-1, -1}};
  a.special = {1, 0, 0, 1, 0, 0, 0, 1};
  a.token_type_ids = {0, 0, 0, 0, 1, 1, 1, 1};
  a.text = "the cat";
  a.text_pair = "a dogs";
  auto words = segment_words(a);
  REQUIRE(texts(words) == S{"[CLS]", "the", "cat", "[SEP]", "a", "dogs", "[SEP]"});
  CHECK(words[5].segment == 1);
  CHECK(words[5].begin == 2);
  CHECK(words[5].tokens == std::vector<int64_t>{5, 6});
  CHECK(words[6].segment == 1);
}

TEST_CASE("find_word: first match, #n occurrences, case and punctuation ignored") {
  TokenAxis a = axis_from(R"({"offsets":[[0,1],[1,4],[4,9],[9,13],[13,19],[19,22],[22,23],[23,27],[27,34],[34,35]],"special_mask":[0,0,0,0,0,0,0,0,0,0],"tokens":["L","ily","Ġsaid","Ġshe","Ġlikes","Ġit",".","ĠShe","Ġsmiled","."]})",
                          "Lily said she likes it. She smiled.");
  auto words = segment_words(a);
  CHECK(find_word(words, "Lily") == 0);
  CHECK(find_word(words, "she") == 2);
  CHECK(find_word(words, "it") == 4);   // "it." by key
  CHECK(find_word(words, "She") == 5);
  CHECK(find_word(words, "she#2") == find_word(words, "She"));
  CHECK(words[find_word(words, "She")].occurrence == 2);
  CHECK_THROWS_WITH_AS(find_word(words, "Lucy"), doctest::Contains("word 'Lucy' is not in the text (words: Lily"), InputError);
  CHECK_THROWS_AS(find_word(words, "she#3"), InputError);
}

TEST_CASE("word_matrix: to a word summed, from a word averaged; rows keep their sums") {
  // Tokens: [A1 A2 B]; words A = {0,1}, B = {2}.
  std::vector<Word> words(2);
  words[0].tokens = {0, 1};
  words[1].tokens = {2};
  const float m[9] = {1.0f, 0.0f, 0.0f,  //
                      0.5f, 0.5f, 0.0f,  //
                      0.2f, 0.3f, 0.5f};
  float out[4];
  word_matrix(m, 3, 3, words, words, out);
  CHECK(out[0] == doctest::Approx(1.0));        // (1+0 + 0.5+0.5) / 2
  CHECK(out[1] == doctest::Approx(0.0));
  CHECK(out[2] == doctest::Approx(0.5));        // 0.2 + 0.3
  CHECK(out[3] == doctest::Approx(0.5));
  CHECK(out[0] + out[1] == doctest::Approx(1.0));
  CHECK(out[2] + out[3] == doctest::Approx(1.0));
}

TEST_CASE("to_word_level: a document becomes a word-level document") {
  format::AttentionData d;
  d.num_layers = 1;
  d.num_heads = 1;
  d.q = d.k = 3;
  d.attention = {1.0f, 0.0f, 0.0f, 0.5f, 0.5f, 0.0f, 0.2f, 0.3f, 0.5f};
  d.tokens = {"▁Lu", "cy", "▁ran"};
  d.token_labels = d.tokens;
  d.offsets = {{0, 2}, {2, 4}, {4, 8}};
  d.special = {0, 0, 0};
  d.input_ids = {7, 8, 9};
  d.text = "Lucy ran";
  d.key_tokens = d.tokens;
  auto w = to_word_level(d);
  CHECK(w.q == 2);
  CHECK(w.k == 2);
  CHECK(w.tokens == S{"Lucy", "ran"});
  CHECK(w.input_ids == std::vector<int64_t>{7, 9});
  CHECK(w.offsets[1] == std::array<int64_t, 2>{5, 8});
  CHECK(w.attention[2] == doctest::Approx(0.5));
}
