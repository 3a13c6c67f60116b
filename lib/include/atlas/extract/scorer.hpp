#pragma once
/// Scoring runs: a model and its tokenizer loaded once, then many sentences run in padded batches for
/// the log-probabilities of chosen tokens (CrowS-Pairs, StereoSet, WinoBias ... in atlas/bias/) and
/// for their attention maps. The metric code is torch-free and only sees log-probabilities; this is
/// the one place that runs the model for it. Torch-free header; the implementation lives in the model
/// runtime (libatlas_torch.so) and is reached through Backend::open_scorer.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "atlas/extract/extract.hpp"
#include "atlas/tokenize/tokenizer.hpp"

namespace atlas::extract {

struct ScorerInfo {
  std::string model_type, model_class;
  std::string model_path;            // the folder the weights came from
  std::string checkpoint_sha256;
  std::string tokenizer_kind;
  bool causal = false;               // decoder-only LM: token t is scored from position t-1
  bool masked = false;               // encoder with an LM head: pseudo-log-likelihood with mask_id
  int64_t num_layers = 0, num_heads = 0, vocab_size = 0, max_positions = 0;
  int64_t bos_id = -1;               // causal: config bos_token_id, else the tokenizer's bos_token
                                     // / "<|endoftext|>"; -1 when the model has none
  int64_t mask_id = -1;              // masked: the tokenizer's mask_token ("[MASK]", "<mask>")
  bool do_lower_case = false;        // tokenizer_config.json do_lower_case (uncased models)
  int threads = 1;
};

/// One forward pass: the token ids (a [MASK] already in place where one is wanted) and the
/// (position, token id) pairs whose log-probability log_softmax(logits[position])[token] is wanted.
struct ScoreQuery {
  std::vector<int64_t> ids;
  std::vector<std::pair<int64_t, int64_t>> picks;
};

/// Attention of one sequence: [layers][heads][T][T] row-major float32, all layers and heads.
struct SequenceAttention {
  int64_t layers = 0, heads = 0, tokens = 0;
  std::vector<float> values;
  float at(int64_t l, int64_t h, int64_t q, int64_t k) const {
    return values[static_cast<size_t>(((l * heads + h) * tokens + q) * tokens + k)];
  }
};

/// Called after each batch with (queries done, queries in all).
using ScoreProgress = std::function<void(int64_t, int64_t)>;

class Scorer {
 public:
  virtual ~Scorer() = default;
  virtual const ScorerInfo& info() const = 0;
  /// The model's tokenizer (InputError naming the folder when it has none).
  virtual tokenize::Encoding encode(const std::string& text, bool add_special_tokens) const = 0;
  virtual std::string token_text(int64_t id) const = 0;
  /// Runs every query (sorted by length into padded batches of at most `batch_size` sequences) and
  /// returns, per query and in its order, the log-probabilities of its picks (natural log).
  /// InputError for an empty query, an id outside the vocabulary or a position outside the sequence.
  virtual std::vector<std::vector<double>> log_probs(const std::vector<ScoreQuery>& queries, int64_t batch_size,
                                                     const ScoreProgress& progress = {}) = 0;
  /// The attention of every layer and head of each sequence (eager softmax, as transformers).
  virtual std::vector<SequenceAttention> attention(const std::vector<std::vector<int64_t>>& sequences,
                                                   int64_t batch_size) = 0;
};

/// Loads the model and tokenizer of `options` (model_dir, tokenizer_dir, adapters, device, threads,
/// compute_dtype are used). ConfigError when the model has no LM head.
std::unique_ptr<Scorer> open_scorer(const RunOptions& options);

}  // namespace atlas::extract
