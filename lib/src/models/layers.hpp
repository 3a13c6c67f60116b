#pragma once
// Building blocks shared by the architectures, written as plain ATen ops that mirror the
// transformers code they must match (eager attention, float32).
#include <ATen/core/Tensor.h>

#include <string>

#include "atlas/models/model.hpp"
#include "models/config_reader.hpp"

namespace atlas::models {

/// The activation functions transformers' ACT2FN names.
enum class Activation { Gelu, GeluNew, GeluPytorchTanh, QuickGelu, Relu, Silu };
/// Reads an activation key ("hidden_act", "activation_function", ...); ConfigError for other names.
Activation parse_activation(const ConfigReader& config, const std::string& key, const std::string& fallback);
at::Tensor activate(Activation act, const at::Tensor& x);

/// A linear layer, x @ weight^T + bias with weight [out, in] (bias may be undefined). A CPU float32
/// weight stored transposed (WeightStore::take_linear with the linear layout: strides {1, out})
/// runs as oneDNN's sgemm on the stored [in, out] rows: on 2 cores BERT-base's 72 products on 64
/// tokens take 57 ms instead of 93-98 ms, a whole forward pass ~1.3x less (bench/bench_serve.py
/// --gemm both); anything else
/// (CUDA, bf16 or autocast, autograd, a contiguous weight, a build without oneDNN) is at::linear.
/// Named project, not linear: an unqualified linear() would find at::linear by argument lookup.
at::Tensor project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps);
/// LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * weight, computed in float32.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);
/// The LM head on the last position only, [B,T,D] -> [B,1,V]: `last_logits_only` runs (serve's
/// incremental path). One row is a matrix-vector product (BLAS gemv reads the V x D weights once;
/// gemm packed all of them first: 29 -> 11 ms for GPT-2's 50257 x 768 on 2 cores).
at::Tensor last_logits(const at::Tensor& hidden_states, const at::Tensor& lm_head_weight);

/// torch.finfo(float32).min: transformers masks with it (not -inf), so masked probabilities
/// underflow to exactly 0 and a fully masked row still has no NaN.
float mask_min();
/// (1 - attention_mask[:, None, None, :]) * finfo.min  // [B,1,1,T]
at::Tensor additive_padding_mask(const at::Tensor& attention_mask);

/// The additive mask of transformers' decoders: 0 where query i sees key j (j <= i; with
/// sliding_window > 0 also i - sliding_window < j, as Mistral's mask; key j not padding), finfo.min
/// elsewhere. [B,1,T,T] with an attention mask, else [1,1,T,T]. With `past` > 0 (a KVCache) the
/// queries are positions past .. past+T-1 and the keys 0 .. past+T-1: [1,1,T,past+T] (no
/// attention mask then).
at::Tensor causal_mask(const at::Tensor& attention_mask, int64_t t, int64_t sliding_window,
                       const at::TensorOptions& float_options, int64_t past = 0);
/// The boolean form: true where query past+i sees key j (j <= past+i). [T,past+T]
at::Tensor causal_visible(int64_t t, int64_t past, const at::TensorOptions& options);

/// Appends this forward's keys or values [B,KV,T_new,d] of `layer` to the cache (when `past` is
/// set) and returns past + new along the positions; without a cache, `fresh` itself.
at::Tensor append_past(KVCache* past, bool keys, int64_t layer, const at::Tensor& fresh);

/// [B,KV,T,d] -> [B,KV*n_rep,T,d]; query head h reads kv head h / n_rep (grouped-query attention).
at::Tensor repeat_kv(const at::Tensor& x, int64_t n_rep);

/// ‖f_h(x_j)‖ of Kobayashi et al. 2020: value vectors [B,H,T,d] times their head's slice of the
/// output projection, whose weight is [D, H*d] as at::linear takes it (`conv1d_weight`: GPT-2's
/// Conv1D [H*d, D]); the output bias is not part of f. -> [B,H,T] float32.
at::Tensor value_norms(const at::Tensor& value, const at::Tensor& o_weight, bool conv1d_weight = false);

/// [B,T,H*d] -> [B,H,T,d]
at::Tensor split_heads(const at::Tensor& x, int64_t num_heads);
/// [B,H,T,d] -> [B,T,H*d]
at::Tensor merge_heads(const at::Tensor& x);

/// Inputs validated against the model and moved to its device: ids int64 [B,T] within the
/// vocabulary, T within max_positions, mask / token types of the same shape (undefined if absent).
/// Inputs::past: InputError unless info.kv_cache; then batch 1 without attention_mask,
/// inputs_embeds or autograd, T_past + T within max_positions, the cache empty or one entry per layer.
Inputs checked_inputs(const Inputs& inputs, const ModelInfo& info, c10::Device device);
/// Attention probabilities [B,H,T,T] of `layer` times inputs.head_mask (undefined: unchanged).
at::Tensor apply_head_mask(const at::Tensor& probs, const Inputs& inputs, int64_t layer);
/// The word embeddings of a forward: inputs.inputs_embeds when given, else embedding(table, ids);
/// emitted as kInputEmbeds.
at::Tensor word_embeddings(const at::Tensor& table, const Inputs& inputs, Taps& taps);
/// InputError when logits are asked of a checkpoint without an LM head.
void require_lm_head(const ModelInfo& info);

inline void emit_if(Taps& taps, const char* name, int64_t layer, const at::Tensor& value) {
  if (taps.wants(name, layer)) taps.emit(name, layer, value);
}

}  // namespace atlas::models
