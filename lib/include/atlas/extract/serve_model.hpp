#pragma once
/// A model kept loaded between requests (`atlas serve`): the extract session behind one handle that
/// runs one text (or id list) at a time and writes the attention NPZ exactly as `atlas extract`
/// does. Opened through torch_backend().open_model; torch-free header.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "atlas/extract/extract.hpp"
#include "atlas/format/attention.hpp"

namespace atlas::extract {

struct ServeModelInfo {
  std::string model_type, model_class;
  int64_t num_layers = 0, num_heads = 0;
  int64_t max_tokens = 0;      ///< position limit (0: none)
  bool causal = false;
  bool next_token = false;     ///< a causal LM head: run() reports next-token probabilities
  bool encoder_decoder = false;
  bool kv_cache = false;       ///< run() reuses the previous run's keys/values for a shared token prefix
  bool in_memory = false;      ///< run() can keep the document in memory (ServeRequest::in_memory)
  bool onednn_gemm = false;    ///< its linear layers run through oneDNN's sgemm (--gemm onednn took effect)
  double seconds_load = 0;
};

struct ServeRequest {
  std::optional<std::string> text;               ///< exactly one of text / ids
  std::optional<std::vector<int64_t>> ids;
  std::filesystem::path output;                  ///< the attention NPZ (temp file + rename)
  /// Keep the document in memory (ServeResult::data) and write `output` only when
  /// ServeResult::write_npz is called (models with ServeModelInfo::in_memory: every self-attention
  /// model unless --topk or --value-norms is set). Other models write `output` as usual.
  bool in_memory = false;
  int64_t max_tokens = 0;                        ///< >0: InputError when the input is longer
  int64_t top_next = 10;                         ///< next-token candidates reported
};

struct TokenProbability {
  int64_t id = 0;
  std::string label;
  double probability = 0;
};

struct ServeResult {
  int64_t tokens = 0;
  double seconds_model = 0;
  /// Leading tokens whose keys/values and attention rows came from the previous run of this model
  /// (the longest common prefix of the token ids, at most tokens - 1); 0: computed from scratch.
  int64_t reused_tokens = 0;
  /// Causal LMs: the distribution after the last token (softmax of its logits), complete, and the
  /// `top_next` most likely tokens. Empty otherwise.
  std::vector<float> next_probabilities;
  std::vector<TokenProbability> next_top;
  /// With ServeRequest::in_memory (ServeModelInfo::in_memory models): the document, equal to load_attention() of
  /// the NPZ that write_npz(path) writes (the request's `output`: call it with that path); the file
  /// is then written exactly as without in_memory. Both empty when the NPZ was written at once.
  std::shared_ptr<const format::AttentionData> data;
  std::function<void(const std::filesystem::path&)> write_npz;
};

class ServeModel {
 public:
  virtual ~ServeModel() = default;
  virtual const ServeModelInfo& info() const = 0;
  /// Runs one input. The caller holds one lock per model (the handle also locks itself): a causal
  /// model keeps the keys/values of its last run, so an input that extends it runs incrementally.
  virtual ServeResult run(const ServeRequest& request) = 0;
  /// Readable label of a vocabulary id (as token_labels writes it).
  virtual std::string label(int64_t id) const = 0;
};

/// Loads the model and its tokenizer once (`options` as for extract: dtype, device, threads ...).
std::shared_ptr<ServeModel> open_serve_model(const RunOptions& options);

}  // namespace atlas::extract
