// Token classes for the focus metrics: special, punctuation, function / content words, sentences.
#include <doctest/doctest.h>

#include "atlas/analyze/heads.hpp"
#include "atlas/core/error.hpp"

using namespace atlas;
using namespace atlas::analyze;

namespace {
// "<s> The cat sat. It ran!" as a sentencepiece model tokenizes it (offsets in code points).
format::AttentionData doc() {
  format::AttentionData d;
  d.text = "The cat sat. It ran!";
  d.tokens = {"<s>", "\u2581The", "\u2581cat", "\u2581sat", ".", "\u2581It", "\u2581ran", "!"};
  d.token_labels = {"<s>", " The", " cat", " sat", ".", " It", " ran", "!"};
  d.offsets = {{-1, -1}, {0, 3}, {3, 7}, {7, 11}, {11, 12}, {12, 15}, {15, 19}, {19, 20}};
  d.special = {1, 0, 0, 0, 0, 0, 0, 0};
  d.input_ids = {1, 2, 3, 4, 5, 6, 7, 8};
  d.q = d.k = 8;
  return d;
}
}  // namespace

TEST_CASE("special, punctuation, function and content tokens; sentences end after . ! ?") {
  const Lexicon lex = load_lexicon("en");
  CHECK(lex.contains("the"));
  CHECK(lex.contains("it"));
  CHECK_FALSE(lex.contains("cat"));
  const TokenClasses c = classify_tokens(doc(), lex);
  CHECK(c.special == std::vector<uint8_t>{1, 0, 0, 0, 0, 0, 0, 0});
  CHECK(c.punct == std::vector<uint8_t>{0, 0, 0, 0, 1, 0, 0, 1});
  CHECK(c.function == std::vector<uint8_t>{0, 1, 0, 0, 0, 1, 0, 0});
  CHECK(c.content == std::vector<uint8_t>{0, 0, 1, 1, 0, 0, 1, 0});
  CHECK(c.sentence == std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1});
}

TEST_CASE("lexicons: every shipped language loads; an unknown one lists what there is") {
  for (const char* l : {"en", "de", "fr", "es"}) CHECK(load_lexicon(l).function_words.size() > 50);
  try {
    (void)load_lexicon("xx");
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("have: de, en, es, fr") != std::string::npos);
  }
}
