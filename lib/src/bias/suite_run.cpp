// A suite's measures. Word level (process/words.hpp segments the tokens into words): the attention from the target word to the attribute word is, per layer and head, the mean over the
// target's tokens (rows) of the summed attention on the attribute's tokens (columns), the usual
// aggregation for word-level attention (Clark et al. 2019: sum over the attended word's pieces, mean
// over the attending word's). Bias-attention ratio: that attention mass divided by the attribute's
// share of the keys the row can see (causal rows see the tokens up to themselves).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "atlas/bias/stats.hpp"
#include "atlas/bias/wino.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/utf8.hpp"
#include "atlas/process/words.hpp"
#include "bias/measures.hpp"
#include "bias/suite_run.hpp"

namespace atlas::bias::detail {
using nlohmann::json;

namespace {

constexpr size_t kChunk = 256;   // items whose attention is held at once
constexpr double kAlpha = 0.05;

struct Tokens {
  std::vector<int64_t> ids;
  std::vector<std::string> labels;
  std::vector<int64_t> target, attribute;   // token indices
};

/// Tokens of the words (process/words.hpp: the toolkit's one definition of a word) that overlap the
/// code-point span [b, e).
std::vector<int64_t> word_tokens(const std::vector<process::Word>& words, int64_t b, int64_t e) {
  std::vector<int64_t> out;
  for (const process::Word& w : words)
    if (!w.special && w.begin < e && w.end > b) out.insert(out.end(), w.tokens.begin(), w.tokens.end());
  std::sort(out.begin(), out.end());
  return out;
}

Tokens tokens_for(const extract::Scorer& scorer, const std::string& text, std::pair<size_t, size_t> target,
                  std::pair<size_t, size_t> attribute, int64_t line) {
  const extract::ScorerInfo& info = scorer.info();
  Tokens t;
  const tokenize::Encoding enc = scorer.encode(text, !info.causal);
  process::TokenAxis axis;
  axis.text = text;
  auto push = [&](int64_t id, const std::string& tok, std::array<int64_t, 2> off, bool special) {
    t.ids.push_back(id);
    t.labels.push_back(scorer.token_text(id));
    axis.tokens.push_back(tok);
    axis.offsets.push_back(off);
    axis.special.push_back(special ? 1 : 0);
  };
  if (info.causal && info.bos_id >= 0) push(info.bos_id, scorer.token_text(info.bos_id), {-1, -1}, true);
  for (size_t i = 0; i < enc.size(); ++i) {
    const bool sp = enc.special_mask[i] != 0;
    push(enc.ids[i], enc.tokens[i], sp ? std::array<int64_t, 2>{-1, -1} : std::array<int64_t, 2>{enc.offsets[i].first, enc.offsets[i].second}, sp);
  }
  const std::vector<process::Word> words = process::segment_words(axis);
  const std::vector<int64_t> cp = utf8::byte_to_char_index(text);
  auto c = [&](size_t byte) { return byte < cp.size() ? cp[byte] : static_cast<int64_t>(utf8::decode(text).size()); };
  t.target = word_tokens(words, c(target.first), c(target.second));
  t.attribute = word_tokens(words, c(attribute.first), c(attribute.second));
  ATLAS_CHECK(!t.target.empty() && !t.attribute.empty(), InputError,
              "suite line {}: no tokens for the target or attribute word of '{}'", line, text);
  return t;
}

/// Per layer x head: attention mass from target to attribute, and the bias-attention ratio.
void measure(const extract::SequenceAttention& a, const Tokens& t, bool causal, std::vector<double>& mass,
             std::vector<double>& ratio) {
  const int64_t lh = a.layers * a.heads;
  mass.assign(static_cast<size_t>(lh), 0.0);
  ratio.assign(static_cast<size_t>(lh), 0.0);
  for (int64_t l = 0; l < a.layers; ++l)
    for (int64_t h = 0; h < a.heads; ++h) {
      double m = 0, r = 0;
      for (int64_t q : t.target) {
        double s = 0;
        int64_t visible_attr = 0;
        for (int64_t k : t.attribute) {
          s += a.at(l, h, q, k);
          if (!causal || k <= q) ++visible_attr;
        }
        const double visible = causal ? static_cast<double>(q + 1) : static_cast<double>(a.tokens);
        m += s;
        r += visible_attr > 0 ? s / (static_cast<double>(visible_attr) / visible) : 0.0;
      }
      mass[static_cast<size_t>(l * a.heads + h)] = m / static_cast<double>(t.target.size());
      ratio[static_cast<size_t>(l * a.heads + h)] = r / static_cast<double>(t.target.size());
    }
}

json test_json(const PairedTest& t) {
  return {{"mean", number_or_null(t.mean)}, {"ci_low", number_or_null(t.ci_low)}, {"ci_high", number_or_null(t.ci_high)},
          {"p_value", t.p_value}, {"n", t.n}};
}

}  // namespace

void run_suite(extract::Scorer& scorer, const AuditOptions& o, const Suite& suite, AuditResult& r) {
  const extract::ScorerInfo& info = scorer.info();
  const auto& items = suite.items;
  const size_t n = items.size();
  std::vector<Tokens> ta(n), tb(n);
  int64_t attribute_after_target = 0;
  for (size_t i = 0; i < n; ++i) {
    ta[i] = tokens_for(scorer, items[i].sentence_a, items[i].target_a, items[i].attribute_a, items[i].line);
    tb[i] = tokens_for(scorer, items[i].sentence_b, items[i].target_b, items[i].attribute_b, items[i].line);
    if (info.causal && ta[i].attribute.front() > ta[i].target.back()) ++attribute_after_target;
  }

  // Attention, in chunks of items (both variants).
  const int64_t layers = info.num_layers, heads = info.num_heads, lh = layers * heads;
  std::vector<std::vector<double>> mass_a(n), mass_b(n), ratio_a(n), ratio_b(n);
  int64_t done = 0;
  for (size_t start = 0; start < n; start += kChunk) {
    const size_t end = std::min(n, start + kChunk);
    std::vector<std::vector<int64_t>> seqs;
    for (size_t i = start; i < end; ++i) {
      seqs.push_back(ta[i].ids);
      seqs.push_back(tb[i].ids);
    }
    const auto att = scorer.attention(seqs, o.batch_size);
    for (size_t i = start; i < end; ++i) {
      measure(att[2 * (i - start)], ta[i], info.causal, mass_a[i], ratio_a[i]);
      measure(att[2 * (i - start) + 1], tb[i], info.causal, mass_b[i], ratio_b[i]);
    }
    done += static_cast<int64_t>(end - start);
    if (o.progress) o.progress("suite attention", done, static_cast<int64_t>(n));
  }

  // Per head: paired differences A - B over the items.
  json heads_json = json::array();
  std::vector<PairedTest> tests(static_cast<size_t>(lh));
  std::vector<double> p(static_cast<size_t>(lh));
  for (int64_t k = 0; k < lh; ++k) {
    std::vector<double> d(n);
    for (size_t i = 0; i < n; ++i) d[i] = mass_a[i][static_cast<size_t>(k)] - mass_b[i][static_cast<size_t>(k)];
    tests[static_cast<size_t>(k)] =
        paired_test(d, o.bootstrap, o.permutations, o.seed * 1000003ULL + static_cast<uint64_t>(k));
    p[static_cast<size_t>(k)] = tests[static_cast<size_t>(k)].p_value;
  }
  const std::vector<double> q = benjamini_hochberg(p);
  int64_t significant = 0;
  double mean_ratio_a = 0, mean_ratio_b = 0;
  for (int64_t k = 0; k < lh; ++k) {
    const auto K = static_cast<size_t>(k);
    double ma = 0, mb = 0, ra = 0, rb = 0;
    for (size_t i = 0; i < n; ++i) {
      ma += mass_a[i][K];
      mb += mass_b[i][K];
      ra += ratio_a[i][K];
      rb += ratio_b[i][K];
    }
    const double dn = static_cast<double>(n);
    mean_ratio_a += ra / dn / static_cast<double>(lh);
    mean_ratio_b += rb / dn / static_cast<double>(lh);
    if (q[K] < kAlpha) ++significant;
    heads_json.push_back({{"layer", k / heads}, {"head", k % heads}, {"attention_a", ma / dn}, {"attention_b", mb / dn},
                          {"ratio_a", ra / dn}, {"ratio_b", rb / dn},
                          {"mean_difference", number_or_null(tests[K].mean)},
                          {"ci_low", number_or_null(tests[K].ci_low)}, {"ci_high", number_or_null(tests[K].ci_high)},
                          {"p_value", tests[K].p_value}, {"q_value", q[K]}, {"significant", q[K] < kAlpha}});
  }
  std::vector<size_t> order(static_cast<size_t>(lh));
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    if (q[x] != q[y]) return q[x] < q[y];
    return std::fabs(tests[x].mean) > std::fabs(tests[y].mean);
  });
  json top = json::array();
  for (size_t r2 = 0; r2 < std::min<size_t>(10, order.size()); ++r2) top.push_back(heads_json[order[r2]]);
  double max_abs = 0;
  for (const auto& t : tests) max_abs = std::max(max_abs, std::isfinite(t.mean) ? std::fabs(t.mean) : 0.0);

  // Log-probability gap of each pair: log p(A) - log p(B).
  std::vector<std::string> sentences;
  for (const auto& it : items) {
    sentences.push_back(it.sentence_a);
    sentences.push_back(it.sentence_b);
  }
  RunSettings rs;
  rs.batch_size = o.batch_size;
  if (o.progress) rs.progress = [&](int64_t d, int64_t t) { o.progress("suite log-probabilities", d, t); };
  const std::vector<double> lp = sentence_log_probs(scorer, sentences, rs);
  std::vector<double> gap(n);
  for (size_t i = 0; i < n; ++i) gap[i] = lp[2 * i] - lp[2 * i + 1];
  const PairedTest gap_test = paired_test(gap, o.bootstrap, o.permutations, o.seed ^ 0x5eedULL);

  // Per attribute word: mean gap B - A and mean attention difference at the top head.
  const size_t top_head = order.front();
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> per;
  std::map<std::string, std::optional<double>> pct;
  for (size_t i = 0; i < n; ++i) {
    per[items[i].attribute_word].first.push_back(-gap[i]);
    per[items[i].attribute_word].second.push_back(mass_a[i][top_head] - mass_b[i][top_head]);
    pct[items[i].attribute_word] = items[i].pct_female;
  }
  json per_attr = json::array();
  std::vector<double> xs, ys;
  for (const auto& [w, v] : per) {
    const double g = mean(v.first);
    per_attr.push_back({{"word", w}, {"logprob_gap_b_minus_a", g}, {"attention_difference_top_head", mean(v.second)},
                        {"pct_female", pct[w] ? json(*pct[w]) : json(nullptr)}, {"n", v.first.size()}});
    if (pct[w]) {
      xs.push_back(g);
      ys.push_back(*pct[w]);
    }
  }

  json& rep = r.report["suite"];
  rep = {{"name", suite.name},
         {"groups", {suite.group_a, suite.group_b}},
         {"pairs", n},
         {"templates", suite.templates.size()},
         {"logprob_gap", test_json(gap_test)},
         {"attention",
          {{"measure", "attention from the target word to the attribute word, per layer and head; difference = "
                       "group A - group B"},
           {"heads_tested", lh},
           {"significant_heads", significant},
           {"alpha", kAlpha},
           {"max_abs_mean_difference", max_abs},
           {"bias_attention_ratio", {{"a", mean_ratio_a}, {"b", mean_ratio_b}}},
           {"top_heads", top}}},
         {"per_attribute", per_attr},
         {"spearman_pct_female", xs.size() >= 3 ? number_or_null(spearman(xs, ys)) : json(nullptr)},
         {"thresholds", suite.thresholds},
         {"bootstrap", o.bootstrap},
         {"permutations", o.permutations},
         {"heads", heads_json}};
  rep["logprob_gap"]["definition"] = fmt::format("log p(sentence of {}) - log p(sentence of {})", suite.group_a, suite.group_b);
  if (attribute_after_target > 0)
    rep["note"] = fmt::format(
        "{} of {} pairs put the attribute after the target: a causal model's target cannot attend to it (attention 0)",
        attribute_after_target, n);

  // Worst examples for the report: the largest |difference| at the top head, with their word-level rows.
  std::vector<size_t> worst(n);
  std::iota(worst.begin(), worst.end(), size_t{0});
  std::stable_sort(worst.begin(), worst.end(), [&](size_t x, size_t y) {
    return std::fabs(mass_a[x][top_head] - mass_b[x][top_head]) > std::fabs(mass_a[y][top_head] - mass_b[y][top_head]);
  });
  worst.resize(std::min<size_t>(4, n));
  const int64_t tl = static_cast<int64_t>(top_head) / heads, th = static_cast<int64_t>(top_head) % heads;
  json examples = json::array();
  for (size_t i : worst) {
    const auto att = scorer.attention({ta[i].ids, tb[i].ids}, 2);
    json sides = json::array();
    for (int s = 0; s < 2; ++s) {
      const Tokens& t = s == 0 ? ta[i] : tb[i];
      std::vector<double> row(t.ids.size(), 0.0);
      for (int64_t qq : t.target)
        for (size_t k = 0; k < row.size(); ++k)
          row[k] += att[static_cast<size_t>(s)].at(tl, th, qq, static_cast<int64_t>(k)) / static_cast<double>(t.target.size());
      sides.push_back({{"sentence", s == 0 ? items[i].sentence_a : items[i].sentence_b},
                       {"tokens", t.labels},
                       {"target", t.target},
                       {"attribute", t.attribute},
                       {"row", row}});
    }
    examples.push_back({{"layer", tl}, {"head", th}, {"difference", mass_a[i][top_head] - mass_b[i][top_head]},
                        {"logprob_gap", gap[i]}, {"sides", sides}});
  }
  r.details["suite_examples"] = examples;
  r.details["suite_heads"] = {{"layers", layers}, {"heads", heads}};
}

}  // namespace atlas::bias::detail
