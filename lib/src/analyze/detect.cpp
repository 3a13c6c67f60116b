// Previous-token, duplicate-token and induction head detectors on repeated random tokens.
#include "atlas/analyze/detect.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>

#include "atlas/analyze/documents.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/json.hpp"

namespace atlas::analyze {
namespace fs = std::filesystem;

std::vector<int64_t> repeated_random_tokens(int64_t length, int64_t vocab, const std::vector<int64_t>& prefix,
                                            const std::vector<int64_t>& exclude, uint64_t seed) {
  ATLAS_CHECK(length >= 2, InputError, "--length must be at least 2, got {}", length);
  const std::set<int64_t> skip(exclude.begin(), exclude.end());
  std::vector<int64_t> pool;
  for (int64_t id = 0; id < vocab; ++id)
    if (skip.count(id) == 0) pool.push_back(id);
  ATLAS_CHECK(!pool.empty(), InputError, "no token ids to draw from (vocabulary of {})", vocab);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  std::vector<int64_t> half;
  for (int64_t i = 0; i < length; ++i) half.push_back(pool[pick(rng)]);
  std::vector<int64_t> out = prefix;
  out.insert(out.end(), half.begin(), half.end());
  out.insert(out.end(), half.begin(), half.end());
  return out;
}

void DetectScores::reset(std::vector<int64_t> layers, std::vector<int64_t> heads) {
  layers_ = std::move(layers);
  heads_ = std::move(heads);
  acc_.assign(layers_.size() * heads_.size(), Acc{});
}

void DetectScores::add(const format::AttentionData& doc, int64_t prefix, int64_t length) {
  ATLAS_CHECK(doc.q == prefix + 2 * length && doc.q == doc.k, InputError,
              "{}: expected {} tokens ({} + 2 x {}), got {}", doc.source, prefix + 2 * length, prefix, length, doc.q);
  if (acc_.empty()) reset(doc.layers, doc.heads);
  ATLAS_CHECK(doc.layers == layers_ && doc.heads == heads_, InputError, "{}: layers / heads differ from the first sequence",
              doc.source);
  for (int64_t li = 0; li < doc.num_layers; ++li)
    for (int64_t hi = 0; hi < doc.num_heads; ++hi) add_matrix(li, hi, doc.matrix(li, hi), doc.q, prefix, length);
}

void DetectScores::add_matrix(int64_t li, int64_t hi, const float* a, int64_t n, int64_t prefix, int64_t length) {
  ATLAS_CHECK(n == prefix + 2 * length, InputError, "detect: a {}-token matrix for prefix {} and length {}", n, prefix,
              length);
  Acc& acc = acc_[size_t(li * int64_t(heads_.size()) + hi)];
  for (int64_t i = 1; i < n; ++i) {
    acc.prev += a[i * n + i - 1];
    ++acc.n_prev;
  }
  for (int64_t i = prefix + length; i < n; ++i) {
    acc.dup += a[i * n + (i - length)];
    acc.ind += a[i * n + (i - length + 1)];
    ++acc.n_second;
  }
}

namespace {
double ratio(double s, int64_t n) { return n > 0 ? s / double(n) : std::numeric_limits<double>::quiet_NaN(); }
}  // namespace

double DetectScores::prev_token(int64_t li, int64_t hi) const {
  const Acc& a = acc_[size_t(li * int64_t(heads_.size()) + hi)];
  return ratio(a.prev, a.n_prev);
}
double DetectScores::duplicate(int64_t li, int64_t hi) const {
  const Acc& a = acc_[size_t(li * int64_t(heads_.size()) + hi)];
  return ratio(a.dup, a.n_second);
}
double DetectScores::induction(int64_t li, int64_t hi) const {
  const Acc& a = acc_[size_t(li * int64_t(heads_.size()) + hi)];
  return ratio(a.ind, a.n_second);
}

nlohmann::json DetectScores::to_json() const {
  nlohmann::json heads = nlohmann::json::array();
  struct Best {
    double v = -1;
    int64_t layer = -1, head = -1;
  } best_prev, best_dup, best_ind;
  auto keep = [](Best& b, double v, int64_t l, int64_t h) {
    if (!std::isnan(v) && v > b.v) b = {v, l, h};
  };
  for (size_t li = 0; li < layers_.size(); ++li)
    for (size_t hi = 0; hi < heads_.size(); ++hi) {
      const double p = prev_token(int64_t(li), int64_t(hi)), d = duplicate(int64_t(li), int64_t(hi)),
                   ind = induction(int64_t(li), int64_t(hi));
      heads.push_back({{"layer", layers_[li]}, {"head", heads_[hi]}, {"prev_token", number_or_null(p)},
                       {"duplicate_token", number_or_null(d)}, {"induction", number_or_null(ind)}});
      keep(best_prev, p, layers_[li], heads_[hi]);
      keep(best_dup, d, layers_[li], heads_[hi]);
      keep(best_ind, ind, layers_[li], heads_[hi]);
    }
  auto best = [](const Best& b) {
    return nlohmann::json{{"layer", b.layer}, {"head", b.head}, {"score", number_or_null(b.v)}};
  };
  return {{"heads", heads},
          {"top", {{"prev_token", best(best_prev)}, {"duplicate_token", best(best_dup)}, {"induction", best(best_ind)}}}};
}

nlohmann::json run_detect(const DetectOptions& options) {
  ATLAS_CHECK(options.sequences >= 1, InputError, "--sequences must be at least 1, got {}", options.sequences);
  const fs::path config_path = options.run.model_dir / "config.json";
  ATLAS_CHECK(fs::is_regular_file(config_path), InputError,
              "analyze detect needs the model's config.json for its vocabulary: '{}' does not exist", config_path.string());
  const nlohmann::json config = parse_json(read_file(config_path), config_path.string());
  const nlohmann::json& text_config = config.contains("text_config") ? config["text_config"] : config;
  ATLAS_CHECK(text_config.contains("vocab_size") && text_config["vocab_size"].is_number_integer(), InputError,
              "{}: no integer 'vocab_size'", config_path.string());
  const int64_t vocab = text_config["vocab_size"].get<int64_t>();
  std::vector<int64_t> exclude, prefix;
  for (const char* key : {"bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "decoder_start_token_id"}) {
    auto it = text_config.find(key);
    if (it != text_config.end() && it->is_number_integer()) exclude.push_back(it->get<int64_t>());
  }
  // Random tokens after BOS, as TransformerLens' generate_repeated_tokens does, when the model has one.
  auto bos = text_config.find("bos_token_id");
  if (bos != text_config.end() && bos->is_number_integer()) prefix.push_back(bos->get<int64_t>());

  std::vector<ModelInput> inputs;
  for (int64_t s = 0; s < options.sequences; ++s)
    inputs.push_back({fmt::format("seq{}", s), std::nullopt,
                      repeated_random_tokens(options.length, vocab, prefix, exclude, options.seed + uint64_t(s))});
  extract::RunOptions run = options.run;
  run.layers = "all";
  run.heads = "all";
  run.add_special_tokens = false;
  DetectScores scores;
  const SourceSummary summary = run_model_batch(run, inputs, [&](const format::AttentionData& doc, const std::string&) {
    scores.add(doc, int64_t(prefix.size()), options.length);
  });
  require_documents(summary);
  ATLAS_CHECK(summary.skipped.empty(), InputError, "analyze detect: sequence '{}' failed: {}", summary.skipped.front().id,
              summary.skipped.front().error);
  const nlohmann::json model = summary.model;
  nlohmann::json report = scores.to_json();
  report["model"] = model.value("name", "");
  report["model_info"] = model;
  report["length"] = options.length;
  report["sequences"] = options.sequences;
  report["seed"] = options.seed;
  report["prefix"] = prefix;
  return report;
}

}  // namespace atlas::analyze
