// Classic tokenizer files (no tokenizer.json) of the tiny reference models: the ids must equal what
// transformers' slow tokenizers produced for the attention reference cases (d_text, e_pair).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "atlas/io/npz.hpp"
#include "atlas/tokenize/tokenizer.hpp"
#include "test_support.hpp"

namespace {

const char* const kText = "The doctor hired the nurse because she was overworked.";
const char* const kPairA = "The doctor hired the nurse.";
const char* const kPairB = "She was overworked.";
const char* const kT5Text = "translate English to German: The house is wonderful.";
// XLM-R's d_text (fairseq ids: <s> 0 ... </s> 2, <unk> 3 for the Chinese the tiny model lacks).
const char* const kXlmText =
    "The doctor hired the nurse because she was overworked. \xE5\xB0\x8F\xE7\xBA\xA2\xE8\xAF\xB4\xE5\xA5\xB9"
    "\xE6\x98\x8E\xE5\xA4\xA9\xE4\xBC\x9A\xE6\x9D\xA5\xE3\x80\x82";

std::filesystem::path model_dir(const std::string& arch) { return atlas::test::shared_dir() / "reference" / "models" / arch; }

atlas::io::NpzReader reference(const std::string& arch, const std::string& kase) {
  return atlas::io::NpzReader(atlas::test::shared_dir() / "reference" / "attention" / arch / (kase + ".npz"));
}

std::string show(const std::vector<int64_t>& v) { return fmt::format("[{}]", fmt::join(v, ", ")); }

}  // namespace

TEST_CASE("classic files: d_text ids equal the slow tokenizers") {
  struct Expect {
    const char* arch;
    const char* kind;
  };
  for (const auto& [arch, kind] : {Expect{"gpt2", "vocab.json+merges.txt"}, Expect{"roberta", "vocab.json+merges.txt"},
                                   Expect{"qwen2", "vocab.json+merges.txt"}, Expect{"bert", "vocab.txt"},
                                   Expect{"distilbert", "vocab.txt"}, Expect{"llama", "sentencepiece"},
                                   Expect{"t5", "sentencepiece"}, Expect{"xlm_roberta", "sentencepiece"}}) {
    CAPTURE(arch);
    const auto tok = atlas::tokenize::load_tokenizer(model_dir(arch));
    CHECK(tok->kind() == kind);
    const std::string text = std::string(arch) == "t5" ? kT5Text : std::string(arch) == "xlm_roberta" ? kXlmText : kText;
    const auto expected = reference(arch, "d_text").get("input_ids").to_int64();
    const auto got = tok->encode(text, true);
    INFO("expected " << show(expected) << "\n got " << show(got.ids));
    CHECK(got.ids == expected);
    // Template-added tokens are marked, text tokens are not, and offsets stay inside the text.
    const auto tokens = reference(arch, "d_text").get("tokens").to_strings();
    CHECK(got.tokens.size() == tokens.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CHECK(got.offsets[i].first <= got.offsets[i].second);
      CHECK(got.offsets[i].second <= static_cast<int64_t>(text.size()));
    }
  }
}

TEST_CASE("classic files: special tokens per family") {
  const auto bert = atlas::tokenize::load_tokenizer(model_dir("bert"))->encode(kText, true);
  CHECK(bert.tokens.front() == "[CLS]");
  CHECK(bert.tokens.back() == "[SEP]");
  CHECK(bert.special_mask.front() == 1);
  CHECK(bert.special_mask[1] == 0);
  const auto llama = atlas::tokenize::load_tokenizer(model_dir("llama"))->encode(kText, true);
  CHECK(llama.ids.front() == 1);
  CHECK(llama.special_mask.front() == 1);
  const auto llama_plain = atlas::tokenize::load_tokenizer(model_dir("llama"))->encode(kText, false);
  CHECK(llama_plain.size() + 1 == llama.size());
  const auto gpt2 = atlas::tokenize::load_tokenizer(model_dir("gpt2"));
  CHECK(gpt2->encode(kText, true).ids == gpt2->encode(kText, false).ids);
}

TEST_CASE("classic files: e_pair ids and token types equal the slow tokenizers") {
  for (const char* arch : {"bert", "distilbert", "roberta"}) {
    CAPTURE(arch);
    const auto tok = atlas::tokenize::load_tokenizer(model_dir(arch));
    const auto npz = reference(arch, "e_pair");
    const auto expected = npz.get("input_ids").to_int64();
    const auto got = tok->encode_pair(kPairA, kPairB, true);
    INFO("expected " << show(expected) << "\n got " << show(got.ids));
    CHECK(got.ids == expected);
    if (npz.contains("token_type_ids")) CHECK(got.type_ids == npz.get("token_type_ids").to_int64());
  }
}
