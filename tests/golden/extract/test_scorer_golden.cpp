// The scoring runs of bias audits (extract/scorer.hpp) against Hugging Face transformers: the
// log-probabilities the scorer returns must equal log_softmax of the reference logits (b_len7 cases,
// which store logits) within 2e-4, alone and in a padded batch with a shorter sequence.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "atlas/extract/scorer.hpp"
#include "atlas/io/npz.hpp"
#include "test_support.hpp"

namespace {

void check_model(const std::string& arch, bool causal) {
  const auto ref_path = atlas::test::shared_dir() / "reference/attention" / arch / "b_len7.npz";
  atlas::io::NpzReader ref(ref_path);
  const std::vector<int64_t> ids = ref.get("input_ids").to_int64();
  const atlas::io::NdArray logits_arr = ref.get("logits");
  const std::vector<float> logits = logits_arr.to_float();
  const int64_t t = static_cast<int64_t>(ids.size()), v = logits_arr.shape().back();
  auto ref_lp = [&](int64_t pos, int64_t tok) {
    double m = -1e300, s = 0;
    for (int64_t j = 0; j < v; ++j) m = std::max(m, static_cast<double>(logits[static_cast<size_t>(pos * v + j)]));
    for (int64_t j = 0; j < v; ++j) s += std::exp(logits[static_cast<size_t>(pos * v + j)] - m);
    return logits[static_cast<size_t>(pos * v + tok)] - m - std::log(s);
  };
  atlas::extract::RunOptions o;
  o.model_dir = atlas::test::shared_dir() / "reference/models" / arch;
  o.threads = 2;
  auto scorer = atlas::extract::open_scorer(o);
  CHECK(scorer->info().causal == causal);
  atlas::extract::ScoreQuery q;
  q.ids = ids;
  for (int64_t p = 0; p + (causal ? 1 : 0) < t; ++p)
    q.picks.emplace_back(p, causal ? ids[static_cast<size_t>(p + 1)] : ids[static_cast<size_t>(p)]);
  atlas::extract::ScoreQuery shorter;
  shorter.ids.assign(ids.begin(), ids.begin() + 3);
  shorter.picks.emplace_back(1, 5);
  for (int64_t batch : {1, 2}) {
    const auto r = scorer->log_probs({shorter, q}, batch);
    REQUIRE(r.size() == 2);
    REQUIRE(r[1].size() == q.picks.size());
    double worst = 0;
    for (size_t i = 0; i < q.picks.size(); ++i)
      worst = std::max(worst, std::fabs(r[1][i] - ref_lp(q.picks[i].first, q.picks[i].second)));
    MESSAGE(arch, " batch ", batch, ": largest log-prob difference ", worst);
    CHECK(worst < 2e-4);
    if (causal) CHECK(std::fabs(r[0][0] - ref_lp(1, 5)) < 2e-4);   // a prefix sees the same context
  }
  const auto att = scorer->attention({ids}, 1);
  REQUIRE(att.size() == 1);
  const std::vector<float> a0 = ref.get("attn_L0").to_float();
  double worst = 0;
  for (int64_t h = 0; h < att[0].heads; ++h)
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = 0; j < t; ++j)
        worst = std::max(worst, std::fabs(static_cast<double>(att[0].at(0, h, i, j)) - a0[static_cast<size_t>((h * t + i) * t + j)]));
  CHECK(worst < 2e-5);
}

}  // namespace

TEST_CASE("scorer log-probabilities equal log_softmax of transformers' logits: gpt2") { check_model("gpt2", true); }
TEST_CASE("scorer log-probabilities equal log_softmax of transformers' logits: llama") { check_model("llama", true); }
TEST_CASE("scorer log-probabilities equal log_softmax of transformers' logits: bert") { check_model("bert", false); }
