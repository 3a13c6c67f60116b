#pragma once
/// Attribution of one target token's log-probability to the input tokens and to the heads
/// (`atlas analyze attribution`, docs/metrics.md "Attribution"): gradient × attention (Chefer et
/// al. 2021, simple form), integrated gradients on the input embeddings (Sundararajan et al. 2017)
/// and head ablation (Michel et al. 2019). Runs in the model runtime (Backend::run_attribution).
/// Torch-free header.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "atlas/extract/extract.hpp"
#include "atlas/format/attention.hpp"

namespace atlas::extract {

struct AttributionOptions : RunOptions {
  std::string text;
  /// The target: a token index ("7", "-1" the last) or a word, found by `resolve_word`.
  std::string target;
  /// Word -> token index (the caller's word segmentation, process/words.hpp); InputError listing the
  /// words when the word is not in the text. Unset: only indices are accepted.
  std::function<int64_t(const format::TokenArrays& tokens, const std::string& text, const std::string& word)>
      resolve_word;
  bool grad_attn = true, ig = true, ablation = true;
  int64_t steps = 20;                  ///< integrated-gradients Riemann midpoint steps
  /// Integrated gradients path schedule α = u^p, u at the midpoints (k + ½)/steps (p = 1: the
  /// plain uniform rule). 0: automatic, 1 for models that add position embeddings to the word
  /// embeddings (gpt2, bert family), 4 for the llama family, whose RMSNorm of α·x is singular at
  /// α = 0 (all the change of f lies within α ≲ sqrt(eps)/rms(x)).
  double ig_power = 0;
  /// Integrated gradients baseline: zero word embeddings for the text's tokens; special tokens
  /// (BOS, [CLS], [SEP]) keep theirs unless this is set (then x' = 0 everywhere).
  bool ig_zero_specials = false;
};

struct AttributionResult {
  std::string model_type, model_class;
  bool causal = true;                  ///< causal LM (else masked LM)
  format::TokenArrays tokens;          ///< the input as tokenized (before any masking)
  int64_t target = 0;                  ///< position of the target token
  int64_t query = 0;                   ///< position whose prediction is scored (target - 1 causal, target masked)
  int64_t target_id = 0;
  std::string target_token;
  int64_t mask_id = -1;                ///< masked LMs: the mask token put at `target`
  double logp = 0;                     ///< log p(target token | input)
  int64_t num_layers = 0, num_heads = 0, seq = 0;
  /// Attention of the scored input (masked for masked LMs) [L,H,T,T], for rollout and flow.
  std::vector<float> attention;
  // Gradient × attention: per layer [L,T] mean_h (A ⊙ ∂logp/∂A)[h, query, :], and their layer mean [T].
  std::vector<double> grad_attn_layers, grad_attn;
  /// Σ over all entries of each head's A ⊙ ∂logp/∂A [L,H] (= ∂logp/∂head_mask at 1).
  std::vector<double> grad_attn_head_sums;
  // Integrated gradients [T]; completeness: ig_sum ≈ logp − logp_baseline.
  std::vector<double> ig;
  double ig_sum = 0, logp_baseline = 0;
  int64_t steps = 0;
  double ig_power = 1;
  // Head ablation [L,H]: log-prob with the head zeroed, and minus logp.
  std::vector<double> ablation_logp, ablation_delta;
  bool has_grad_attn = false, has_ig = false, has_ablation = false;
  double seconds = 0;
  std::string checkpoint_sha256;
};

/// Runs the attribution methods asked for. ConfigError for an architecture without attribution
/// support (naming its model_type); InputError for a bad target.
AttributionResult run_attribution(const AttributionOptions& options);

/// model_type values run_attribution supports.
std::vector<std::string> attribution_model_types();

}  // namespace atlas::extract
