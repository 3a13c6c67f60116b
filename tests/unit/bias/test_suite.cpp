// Suite parsing: counterfactual generation and errors naming file and line; the shipped suites load;
// the attention measures on a fake model with known attention.
#include <doctest/doctest.h>

#include <fstream>

#include "atlas/bias/audit.hpp"
#include "atlas/bias/suite.hpp"
#include "atlas/core/error.hpp"
#include "fake_scorer.hpp"
#include "test_support.hpp"

using namespace atlas;
using namespace atlas::bias;

namespace {
const char* kSuite = R"(name: t
groups: [male, female]
pairs:
  - [he, she]
  - [his, her]
  - [him, her]
  - [himself, herself]
  - [Mr, Ms]
pair_lists:
  name: [[John, Mary]]
lists:
  occupation:
    - {word: nurse, pct_female: 90}
    - doctor
templates:
  - {text: "The {occupation} told Mr Smith that he hurt himself.", target: he, attribute: occupation}
  - {text: "The {occupation} is {name}.", target: name, attribute: occupation}
sentences:
  - {a: "He is a nurse.", b: "She is a nurse.", target: he, attribute: nurse}
thresholds: ["suite.pairs > 100"]
)";

std::string error_of(const std::string& yaml) {
  try {
    (void)parse_suite(yaml, "s.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("swap_words swaps whole words and keeps the first letter's case") {
  const std::vector<std::pair<std::string, std::string>> p{{"he", "she"}, {"his", "her"}, {"Mr", "Ms"}};
  CHECK(swap_words("He said his name; the hero is Mr X.", p) == "She said her name; the hero is Ms X.");
  CHECK(swap_words("she", p, false) == "he");
}

TEST_CASE("templates expand over the slots; group B differs only in the swapped words") {
  const Suite s = parse_suite(kSuite, "s.yaml");
  REQUIRE(s.items.size() == 5);   // 2 occupations x 1 + 2 occupations x 1 name + 1 explicit pair
  const SuiteItem& a = s.items[0];
  CHECK(a.sentence_a == "The nurse told Mr Smith that he hurt himself.");
  CHECK(a.sentence_b == "The nurse told Ms Smith that she hurt herself.");
  CHECK(a.sentence_a.substr(a.target_a.first, a.target_a.second - a.target_a.first) == "he");
  CHECK(a.sentence_b.substr(a.target_b.first, a.target_b.second - a.target_b.first) == "she");
  CHECK(a.sentence_a.substr(a.attribute_a.first, 5) == "nurse");
  CHECK(a.pct_female == 90.0);
  CHECK_FALSE(s.items[1].pct_female.has_value());
  CHECK(s.items[2].sentence_a == "The nurse is John.");
  CHECK(s.items[2].sentence_b == "The nurse is Mary.");
  CHECK(s.items[2].sentence_b.substr(s.items[2].target_b.first, 4) == "Mary");
  CHECK(s.items[4].sentence_b == "She is a nurse.");
  CHECK(s.thresholds == std::vector<std::string>{"suite.pairs > 100"});
}

TEST_CASE("suite errors name the file and line") {
  std::string y = kSuite;
  CHECK(error_of(std::string(y).replace(y.find("{name}."), 7, "{nme}.")).find("s.yaml:17: unknown slot '{nme}'") !=
        std::string::npos);
  CHECK(error_of("lists:\n  occupation: []\ntemplates: []\n").find("s.yaml:2: list 'occupation' is empty") !=
        std::string::npos);
  const std::string bad_pair = std::string(y).replace(y.find("She is a nurse."), 15, "She is a doctor.");
  CHECK(error_of(bad_pair).find("s.yaml:19: the sides of the pair") != std::string::npos);
  CHECK(error_of("name: x\ncolour: red\n").find("s.yaml:2: unknown key 'colour'") != std::string::npos);
  CHECK(error_of("templates: [{text: 'a {x}', target: he, attribute: x}]\nlists: {x: [a]}\n").find("target 'he'") !=
        std::string::npos);
  CHECK(error_of("name: [unclosed\n").find("s.yaml:") != std::string::npos);
  CHECK(error_of("name: x\n").find("no templates") != std::string::npos);
}

TEST_CASE("the shipped suites load") {
  for (const char* name : {"gender-occupation", "gender-occupation-they", "gender-adjectives", "cultural"}) {
    const Suite s = load_suite(test::source_dir() / "configs/bias" / (std::string(name) + ".yaml"));
    CHECK_MESSAGE(s.items.size() > 40, name);
    CHECK(!s.source.empty());
    CHECK(s.sha256.size() == 64);
  }
  const Suite g = load_suite(test::source_dir() / "configs/bias/gender-occupation.yaml");
  CHECK(g.lists.at("occupation").size() == 60);
  CHECK(g.lists.at("occupation")[0].word == "technician");
  CHECK(*g.lists.at("occupation")[0].pct_female == 40.34);
}

TEST_CASE("suite run on a fake model: uniform attention gives no difference and ratio 1 for masked rows") {
  const auto dir = test::scratch_dir("bias_suite_run");
  {
    std::ofstream f(dir / "s.yaml");
    f << "pairs: [[he, she]]\nlists: {occupation: [nurse, doctor]}\n"
         "templates: [{text: 'The {occupation} said he left', target: he, attribute: occupation}]\n";
  }
  test::FakeScorer fake(false);
  AuditOptions o;
  o.suite = dir / "s.yaml";
  o.bootstrap = 200;
  o.permutations = 200;
  const AuditResult r = run_audit(fake, o);
  const auto& s = r.report["suite"];
  CHECK(s["pairs"] == 2);
  CHECK(s["attention"]["heads_tested"] == 4);
  CHECK(s["attention"]["significant_heads"] == 0);
  CHECK(s["attention"]["max_abs_mean_difference"].get<double>() == doctest::Approx(0.0));
  // Uniform rows over 7 tokens ([CLS] The X said he left [SEP]): the one-token attribute gets 1/7,
  // its share of the keys is 1/7, so the ratio is 1.
  CHECK(s["heads"][0]["attention_a"].get<double>() == doctest::Approx(1.0 / 7));
  CHECK(s["attention"]["bias_attention_ratio"]["a"].get<double>() == doctest::Approx(1.0));
  CHECK(r.report["datasets"]["suite"]["sha256"].get<std::string>().size() == 64);
  CHECK(complete_metric_paths("suite.pairs > 1 and crows_pairs.overall > 60", r.report) ==
        "suite.pairs > 1 and crows_pairs.overall > 60");
  nlohmann::json rep = {{"crows_pairs", {{"overall", {{"metric", 61.0}}}}}};
  CHECK(complete_metric_paths("crows_pairs.overall > 60", rep) == "crows_pairs.overall.metric > 60");
  CHECK(complete_metric_paths("max(crows_pairs.overall.metric) > 60", rep) == "max(crows_pairs.overall.metric) > 60");
}
