// The whole extract path (tokenizer -> model -> NPZ) against Hugging Face transformers: for each text
// case of the reference pack the stored attention must equal the reference within 2e-5, and the ids
// must be those of the slow tokenizer. Id cases also load the .bin and sharded checkpoints.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "atlas/extract/extract.hpp"
#include "atlas/io/npz.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using atlas::io::NpzReader;

namespace {

struct Case {
  std::string model;   // folder under reference/models, or "stories260K"
  std::string ref;     // file under reference/attention
};

fs::path model_dir(const std::string& model) {
  if (model == "stories260K") return atlas::test::source_dir() / "examples/models/stories260K";
  return atlas::test::shared_dir() / "reference/models" / model;
}

/// Runs extract and returns the largest attention difference over all layers and heads.
double run_and_compare(const Case& c, bool use_ids) {
  const fs::path ref_path = atlas::test::shared_dir() / "reference/attention" / c.ref;
  NpzReader ref(ref_path);
  auto meta = nlohmann::json::parse(ref.get("meta").to_string());
  atlas::extract::ExtractOptions o;
  o.model_dir = model_dir(c.model);
  o.output = atlas::test::scratch_dir("extract_golden") / "out.npz";
  o.threads = 2;
  o.logits = ref.contains("logits");
  if (use_ids) {
    o.ids = ref.get("input_ids").to_int64();
  } else {
    o.text = meta.at("text").get<std::string>();
    if (meta.contains("text_pair") && meta["text_pair"].is_string()) o.text_pair = meta["text_pair"].get<std::string>();
  }
  atlas::extract::ExtractSummary s = atlas::extract::run_extract(o);

  NpzReader out(o.output);
  CHECK(out.get("input_ids").to_int64() == ref.get("input_ids").to_int64());
  atlas::io::NdArray attention = out.get("attention");
  const auto& shape = attention.shape();
  REQUIRE(shape.size() == 4);
  const int64_t layers = shape[0], heads = shape[1], q = shape[2];
  CHECK(layers == s.num_layers);
  std::vector<float> a = attention.to_float();
  double worst = 0;
  for (int64_t l = 0; l < layers; ++l) {
    std::vector<float> r = ref.get(fmt::format("attn_L{}", l)).to_float();
    REQUIRE(static_cast<int64_t>(r.size()) == heads * q * q);
    for (size_t i = 0; i < r.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(a[l * heads * q * q + i] - r[i])));
    }
  }
  if (o.logits) {
    std::vector<float> lo = out.get("logits").to_float(), lr = ref.get("logits").to_float();
    REQUIRE(lo.size() == lr.size());
    double lw = 0;
    for (size_t i = 0; i < lr.size(); ++i) lw = std::max(lw, static_cast<double>(std::fabs(lo[i] - lr[i])));
    MESSAGE(c.model << " " << c.ref << ": max |logits diff| " << lw);
    CHECK(lw <= 1e-4);
  }
  MESSAGE(c.model << " " << c.ref << std::string(use_ids ? " (ids)" : " (text)") << ": max |attention diff| " << worst);
  return worst;
}

}  // namespace

TEST_CASE("extract from text equals transformers for every text case") {
  const std::vector<Case> cases = {
      {"gpt2", "gpt2/d_text.npz"},         {"bert", "bert/d_text.npz"},
      {"bert", "bert/e_pair.npz"},         {"distilbert", "distilbert/d_text.npz"},
      {"roberta", "roberta/d_text.npz"},   {"llama", "llama/d_text.npz"},
      {"stories260K", "stories260K/s1_pronoun.npz"}, {"stories260K", "stories260K/s2_story.npz"},
      {"stories260K", "stories260K/s3_two_referents.npz"},
  };
  for (const auto& c : cases) {
    SUBCASE(c.ref.c_str()) { CHECK(run_and_compare(c, false) <= 2e-5); }
  }
}

TEST_CASE("extract from ids loads .bin and sharded checkpoints") {
  const std::vector<Case> cases = {
      {"gpt2-bin", "gpt2/c_len60.npz"},
      {"bert-bin", "bert/c_len60.npz"},
      {"llama-sharded", "llama/c_len60.npz"},
  };
  for (const auto& c : cases) {
    SUBCASE(c.model.c_str()) { CHECK(run_and_compare(c, true) <= 2e-5); }
  }
}
