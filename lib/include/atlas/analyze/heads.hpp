#pragma once
/// `atlas analyze heads`: per layer and head statistics of attention, accumulated over documents
/// (streaming: one document's matrices at a time). Definitions, formulas and sources:
/// docs/metrics.md ("analyze heads").
#include <array>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "atlas/format/attention.hpp"

namespace atlas::analyze {

/// Function words of a language (configs/lexicons/<lang>.txt: one lower-case word a line, `#`
/// comments).
struct Lexicon {
  std::string language;
  std::filesystem::path path;
  std::set<std::string> function_words;
  bool contains(const std::string& key) const { return function_words.count(key) > 0; }
};
/// `language` "en", "de", ...: configs/lexicons/<language>.txt, looked up in the source tree and next
/// to the installed binary; `path` when given wins. InputError listing the lexicons there otherwise.
Lexicon load_lexicon(const std::string& language, const std::filesystem::path& path = {});

/// What each token of a document is, for the focus metrics.
struct TokenClasses {
  std::vector<uint8_t> special;    ///< template tokens (<s>, [CLS], [SEP])
  std::vector<uint8_t> punct;      ///< tokens whose text is only punctuation
  std::vector<uint8_t> function;   ///< tokens of a word in the lexicon
  std::vector<uint8_t> content;    ///< tokens of other words (not special, not only punctuation)
  std::vector<int32_t> sentence;   ///< 0-based sentence index of each token
};
/// Words come from atlas/process/words.hpp (offsets + text); sentences end after a word ending in
/// . ! ? (or their full-width forms) and at a special token that closes a segment ([SEP], </s>).
TokenClasses classify_tokens(const format::AttentionData& doc, const Lexicon& lexicon);

/// The per-head metrics, in report order (the JSON keys).
enum HeadMetric : int {
  kEntropy,              ///< normalised entropy of a query row, H(a_i) / log(n_i)
  kMeanDistance,         ///< sum_j a_ij |i - j|
  kMeanDistanceNoFirst,  ///< the same without key 0, row renormalised
  kSinkMass,             ///< a_i0
  kSelf,                 ///< a_ii
  kPrevToken,            ///< a_i,i-1
  kLongRange,            ///< sum over |i - j| >= 5
  kMeanConfidence,       ///< max_j a_ij, averaged
  kMaxConfidence,        ///< max_j a_ij, the largest over queries
  kSparsity,             ///< mass in the top 10 % of valid keys
  kSpecialMass,          ///< mass on special tokens
  kPunctMass,            ///< mass on punctuation
  kFunctionMass,         ///< mass on function words
  kContentMass,          ///< mass on content words
  kInterSentenceMass,    ///< mass on keys of another sentence
  kNumHeadMetrics
};
/// "entropy", "mean_distance", "mean_distance_no_first", "sink_mass", ...
const std::array<const char*, kNumHeadMetrics>& head_metric_names();

/// Long-range threshold |i - j| >= kLongRange, share of keys for sparsity, sentences in the matrix.
inline constexpr int64_t kLongRangeDistance = 5;
inline constexpr double kSparsityShare = 0.10;
inline constexpr int64_t kMaxSentences = 8;

class HeadStats {
 public:
  /// Accumulates documents with these model layers and heads (the first document's when empty).
  HeadStats() = default;

  /// Adds every stored layer x head matrix of `doc`. InputError when its layers / heads differ from
  /// the documents added before, or the attention is not square self-attention.
  void add(const format::AttentionData& doc, const TokenClasses& classes);
  /// Adds one [n, n] matrix (tests use this directly): `li`, `hi` index layers() / heads().
  void add_matrix(int64_t li, int64_t hi, const float* a, int64_t n, bool causal, const TokenClasses& classes);
  /// For add_matrix without add(): fixes the layers and heads.
  void reset(std::vector<int64_t> layers, std::vector<int64_t> heads);

  const std::vector<int64_t>& layers() const { return layers_; }
  const std::vector<int64_t>& heads() const { return heads_; }
  /// Mean of metric `m` for head (li, hi); NaN when no query contributed.
  double value(int64_t li, int64_t hi, int m) const;
  int64_t queries(int64_t li, int64_t hi) const;
  /// [L][S][S]: head-mean attention mass from sentence s to sentence t (s, t < kMaxSentences).
  std::vector<std::vector<std::vector<double>>> sentence_matrix() const;

  /// {"layers": [...], "heads": [{"layer", "head", <metric>..., "queries"}], "sentence_matrix": ...}
  nlohmann::json to_json() const;
  /// [L*H*M] float32 in the order of head_metric_names().
  std::vector<float> table() const;

 private:
  struct Acc {
    std::array<double, kNumHeadMetrics> sum{};
    std::array<int64_t, kNumHeadMetrics> count{};
    double max_conf = 0;
  };
  Acc& at(int64_t li, int64_t hi) { return acc_[size_t(li * int64_t(heads_.size()) + hi)]; }
  const Acc& at(int64_t li, int64_t hi) const { return acc_[size_t(li * int64_t(heads_.size()) + hi)]; }
  std::vector<int64_t> layers_, heads_;
  std::vector<Acc> acc_;
  // [L][S][S] sums and [L][S] query counts for the sentence matrix.
  std::vector<double> sent_sum_, sent_count_;
};

/// Writes the metrics NPZ (docs/formats/head-metrics.md): `metrics` float32 [L, H, M],
/// `metric_names` [M], `layers`, `heads`, `queries` int64 [L, H], `meta` (JSON: the report without
/// the heads array).
void write_metrics_npz(const std::filesystem::path& path, const HeadStats& stats, const nlohmann::json& report);

/// One CSV line per head: layer,head,<metrics>,queries.
std::string heads_csv(const HeadStats& stats);

}  // namespace atlas::analyze
