#pragma once
// Rotary position embeddings (Su et al. 2021) in transformers' rotate_half convention, with the
// rope_scaling variants of config.json. Every RoPE architecture reads its tables from here, so
// `rope_scaling` has one parser and one meaning.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <utility>

#include "models/config_reader.hpp"

namespace atlas::models {

/// config.json "rope_scaling" ("type" or "rope_type" names the variant).
struct RopeScaling {
  enum class Type { Default, Linear, Dynamic, Llama3, Yarn };
  Type type = Type::Default;
  double factor = 1.0;
  // llama3
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 0;  // llama3, yarn (yarn: max_position_embeddings if absent)
  // yarn
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  bool truncate = true;
  double attention_factor = 1.0;  // cos and sin are multiplied by it (yarn; 1 otherwise)
};

struct RotaryEmbedding {
  int64_t dim = 0;  // rotated dimensions of each head (head_dim, or its partial_rotary_factor share)
  double base = 10000.0;
  int64_t max_position_embeddings = 0;
  RopeScaling scaling;
  /// Dynamic NTK: transformers 4.40's Llama-family classes compute the enlarged base with float32
  /// tensors (seq_len is a tensor there); GPT-NeoX and Phi compute it from a Python int, in double.
  bool dynamic_base_in_float32 = true;

  /// Reads "rope_scaling" (null or absent: plain RoPE). Types: linear, dynamic, llama3, yarn; any
  /// other type, a missing required key or a key the type does not define is a ConfigError.
  static RotaryEmbedding from_hf_json(const ConfigReader& c, int64_t dim, double base,
                                      int64_t max_position_embeddings);

  /// inv_freq for a sequence of `seq_len` positions (only dynamic NTK depends on it): [dim/2] float32, CPU.
  at::Tensor inv_freq(int64_t seq_len) const;
  /// cos and sin [1,1,T,dim] (float32) for positions 0..T-1, times scaling.attention_factor.
  std::pair<at::Tensor, at::Tensor> cos_sin(int64_t seq_len, c10::Device device) const;
  /// The rows of positions past .. past+t-1 of cos_sin(past + t): [1,1,t,dim] each, what a forward
  /// over t new tokens after a key/value cache of `past` positions uses (the numbers of a full run:
  /// only dynamic NTK depends on the length, and it has no cache path).
  std::pair<at::Tensor, at::Tensor> cos_sin(int64_t past, int64_t t, c10::Device device) const;
  /// The longest input to accept: max_position_embeddings, or 0 (unbounded) for dynamic NTK scaling,
  /// which exists to run past it.
  int64_t max_positions() const;
};

/// cat(-x2, x1) of the two halves of the last dimension.
at::Tensor rotate_half(const at::Tensor& x);
/// x * cos + rotate_half(x) * sin on the first cos.size(-1) dimensions of x [B,H,T,d]; the others
/// pass unchanged (partial rotary embeddings).
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace atlas::models
