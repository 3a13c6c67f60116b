#pragma once
/// `atlas process` operations: attention document in, attention document out, in the layout of
/// docs/formats/attention-npz.md, so every other subcommand reads the result. An aggregated axis is
/// kept with size 1 (its index stored as -1) and every operation appends a step to `meta.process`.
/// Definitions, formulas and sources: docs/metrics.md, "process".
#include <cstdint>
#include <filesystem>
#include <functional>
#include <tuple>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "atlas/format/attention.hpp"

namespace atlas::process {

/// The index stored for an axis that an operation collapsed (head mean, layer max ...).
inline constexpr int64_t kAggregated = -1;

/// A processed document and the `meta.process` step that made it.
struct Result {
  format::AttentionData data;
  nlohmann::json step;                  ///< {"op": ..., parameters}
  int64_t topk = 0;                     ///< >0: write sparse, the k largest of each row
  /// Arrays written besides the layout's own (e.g. `word_of_token`), in order.
  std::vector<std::pair<std::string, io::NdArray>> extra;
};

/// Reads `spec` (an NPZ, STORE:DOC, or a one-document store) for processing: self-attention kinds
/// only (`attention`, `encoder_attention`); InputError otherwise.
format::AttentionData load(const std::string& spec, const std::string& kind = "");

enum class Over { Heads, Layers, Both };
enum class How { Mean, Max };
Over parse_over(const std::string& s);
How parse_how(const std::string& s);

/// Mean or max over heads ([L,1,Q,K]), layers ([1,H,Q,K]) or both ([1,1,Q,K]).
Result aggregate(const format::AttentionData& d, Over over, How how);

/// Subword -> word attention (words.hpp); writes `word_of_token` [Q_tokens] (the word of each
/// source token) and marks the file word-level in meta.process.
Result words(const format::AttentionData& d);

/// The per-layer matrices rollout and flow use: head mean, with the residual 0.5·A + 0.5·I, rows
/// re-normalised to 1. [L, Q, Q] in double.
std::vector<double> residual_matrices(const format::AttentionData& d, bool residual);

/// Attention rollout (Abnar & Zuidema 2020): R_0 = Â_0, R_l = Â_l · R_{l-1}; attention[l] = R_l.
/// The stored layers must be consecutive. [L,1,Q,Q].
Result rollout(const format::AttentionData& d, bool residual = true);

struct FlowOptions {
  std::string layers = "-1";            ///< output layers (model indices, select_indices syntax)
  bool residual = true;
  int threads = 0;                      ///< 0: hardware concurrency
};
/// Attention flow (Abnar & Zuidema 2020): for output layer l, the max-flow from node (l+1, i) to
/// input node (0, j) of the layered graph whose edges (k+1, p) -> (k, q) have capacity Â_k[p][q]
/// (the residual_matrices). Exact (Dinic), parallel over output positions i. [len(layers),1,Q,Q].
Result flow(const format::AttentionData& d, const FlowOptions& options);

/// Max-flow of one small graph, for tests and the benchmark: nodes 0..n-1, edges (from, to, cap).
double max_flow(int64_t nodes, const std::vector<std::tuple<int64_t, int64_t, double>>& edges, int64_t source,
                int64_t sink);

/// A − B. Both documents must have the same tokens (or, with `by_words`, the same words: both
/// are taken to word level first), layers and heads: InputError naming both files and what differs.
Result diff(const format::AttentionData& a, const format::AttentionData& b, bool by_words);

struct SliceOptions {
  std::string layers = "all", heads = "all";   ///< select_indices syntax over the stored indices
  std::string tokens;                          ///< "a:b" (Python slice, negatives from the end); "" = all
};
/// A sub-document: the chosen layers, heads and token range (rows of a sliced range no longer sum to 1).
Result slice(const format::AttentionData& d, const SliceOptions& options);

/// Keeps the k largest entries of each row, stored sparse (`attention_topk_*`, densified by every reader).
Result topk(const format::AttentionData& d, int64_t k);

/// Norm-based attention (Kobayashi et al. 2020): attention[l,h,i,j] = α_ij · ‖f_h(x_j)‖ with
/// ‖f_h(x_j)‖ the `value_norms` [L,H,K] that `atlas extract --value-norms` stores (read from
/// `spec`); `normalize`: rows re-scaled to sum to 1.
Result value_norm(const format::AttentionData& d, const std::string& spec, bool normalize);

/// Writes `r` as an attention NPZ at `output` (temp file + rename): meta of the input with
/// `r.step` appended to meta.process (plus "command_line", "version", "created", "input").
void write_result(const Result& r, const std::filesystem::path& output, const std::string& command_line);
/// The same into an open document (a store's).
void write_result(const Result& r, format::DocumentWriter& w, const std::string& command_line);

struct StoreSummary {
  size_t documents = 0, failed = 0;
  std::vector<std::string> failures;    ///< "id: error" of each failed input document
};
/// Applies `op` to every document of the store `input` and writes the store `output` (which must
/// not hold a store): failed input documents stay failed (manifest line kept, counted), `step` is
/// appended to store.json's run.process.
StoreSummary process_store(const std::filesystem::path& input, const std::filesystem::path& output,
                           const std::string& kind, const std::function<Result(const format::AttentionData&)>& op,
                           const nlohmann::json& step, const std::string& command_line);

}  // namespace atlas::process
