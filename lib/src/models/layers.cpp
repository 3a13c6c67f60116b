#include "models/layers.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#if ATLAS_ONEDNN_GEMM
#include <oneapi/dnnl/dnnl.h>
#endif

#include <atomic>
#include <cmath>
#include <limits>

#include "atlas/core/error.hpp"

namespace atlas::models {

Activation parse_activation(const ConfigReader& config, const std::string& key, const std::string& fallback) {
  const std::string name = config.choice(
      key, fallback, {"gelu", "gelu_new", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu", "swish"});
  if (name == "gelu") return Activation::Gelu;
  if (name == "gelu_new") return Activation::GeluNew;
  if (name == "gelu_pytorch_tanh") return Activation::GeluPytorchTanh;
  if (name == "quick_gelu") return Activation::QuickGelu;
  if (name == "relu") return Activation::Relu;
  return Activation::Silu;
}

at::Tensor activate(Activation act, const at::Tensor& x) {
  switch (act) {
    case Activation::Gelu:
      return at::gelu(x);
    case Activation::GeluNew:  // NewGELUActivation, spelled as transformers does
      return 0.5 * x * (1.0 + at::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * at::pow(x, 3.0))));
    case Activation::GeluPytorchTanh:
      return at::gelu(x, "tanh");
    case Activation::QuickGelu:
      return x * at::sigmoid(1.702 * x);
    case Activation::Relu:
      return at::relu(x);
    case Activation::Silu:
      return at::silu(x);
  }
  ATLAS_FAIL(Error, "unknown activation {}", static_cast<int>(act));
}

namespace {
std::atomic<int64_t> onednn_product_count{0};
}  // namespace

int64_t onednn_products() { return onednn_product_count.load(); }

#if ATLAS_ONEDNN_GEMM
namespace {

bool onednn_gemm_applies(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (weight.dim() != 2 || !weight.is_cpu() || weight.scalar_type() != at::kFloat) return false;
  const int64_t n = weight.size(0), k = weight.size(1);
  if (n < 2 || weight.stride(0) != 1 || weight.stride(1) != n) return false;  // not the stored-transposed layout
  if (x.dim() < 1 || x.size(-1) != k || !x.is_cpu() || x.scalar_type() != at::kFloat) return false;
  if (x.requires_grad() || weight.requires_grad() || at::autocast::is_cpu_enabled()) return false;
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != n || bias.scalar_type() != at::kFloat ||
                         !bias.is_cpu() || bias.requires_grad()))
    return false;
  return true;
}

}  // namespace
#endif

at::Tensor project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
#if ATLAS_ONEDNN_GEMM
  if (onednn_gemm_applies(x, weight, bias)) {
    const int64_t n = weight.size(0), k = weight.size(1);
    const at::Tensor a = x.reshape({-1, k}).contiguous();  // [M,K] row-major
    const int64_t m = a.size(0);
    std::vector<int64_t> out_shape = x.sizes().vec();
    out_shape.back() = n;
    // C starts as the bias rows (beta 1) or uninitialised (beta 0): C = A @ W^T (+ bias). A copy,
    // never expand().contiguous(): with one row that is the bias itself (read-only mapped weights).
    at::Tensor out = at::empty({m, n}, a.options());
    if (bias.defined()) out.copy_(bias.expand({m, n}));
    if (m > 0 && k > 0) {
      at::internal::lazy_init_num_threads();  // this thread's OpenMP team size = at::get_num_threads()
      const dnnl_status_t status =
          dnnl_sgemm('N', 'N', m, n, k, 1.0f, a.data_ptr<float>(), k, weight.data_ptr<float>(), n,
                     bias.defined() ? 1.0f : 0.0f, out.data_ptr<float>(), n);
      ATLAS_CHECK(status == dnnl_success, Error, "oneDNN sgemm [{}x{}] x [{}x{}] failed (status {})", m, k, k, n,
                  static_cast<int>(status));
      onednn_product_count.fetch_add(1, std::memory_order_relaxed);
    } else if (!bias.defined()) {
      out.zero_();
    }
    return out.view(out_shape);
  }
#endif
  return at::linear(x, weight, bias);
}

bool linear_layout_available() {
#if ATLAS_ONEDNN_GEMM
  return true;
#else
  return false;
#endif
}

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps) {
  return at::layer_norm(x, {x.size(-1)}, weight, bias, eps);
}

at::Tensor last_logits(const at::Tensor& hidden_states, const at::Tensor& lm_head_weight) {
  const int64_t t = hidden_states.size(1);
  const at::Tensor last = hidden_states.narrow(1, t - 1, 1);   // [B,1,D]
  if (last.size(0) == 1 && lm_head_weight.dim() == 2 && lm_head_weight.scalar_type() == last.scalar_type())
    return at::mv(lm_head_weight, last.reshape({-1})).view({1, 1, -1});
  return at::linear(last, lm_head_weight);
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor hidden_states = x.to(at::kFloat);
  at::Tensor variance = hidden_states.pow(2).mean(-1, /*keepdim=*/true);  // [B,T,1]
  hidden_states = hidden_states * at::rsqrt(variance + eps);
  return weight * hidden_states.to(x.scalar_type());
}

float mask_min() { return std::numeric_limits<float>::lowest(); }

at::Tensor additive_padding_mask(const at::Tensor& attention_mask) {
  at::Tensor extended =
      attention_mask
          .index({at::indexing::Slice(), at::indexing::None, at::indexing::None, at::indexing::Slice()})
          .to(at::kFloat);  // [B,1,1,T]
  return (1.0 - extended) * mask_min();
}

int64_t KVCache::length() const { return keys.empty() || !keys.front().defined() ? 0 : keys.front().size(2); }

void KVCache::truncate(int64_t n) {
  ATLAS_CHECK(n >= 0 && n <= length(), InputError, "KVCache::truncate: expected 0 <= n <= {}, got {}", length(), n);
  if (n == 0) {
    clear();
    return;
  }
  if (n == length()) return;
  for (auto* v : {&keys, &values})
    for (at::Tensor& x : *v) x = x.narrow(2, 0, n).contiguous();
}

at::Tensor append_past(KVCache* past, bool keys, int64_t layer, const at::Tensor& fresh) {
  if (!past) return fresh;
  std::vector<at::Tensor>& v = keys ? past->keys : past->values;
  const auto l = static_cast<size_t>(layer);
  if (v.size() <= l) v.resize(l + 1);
  v[l] = v[l].defined() ? at::cat({v[l], fresh}, 2) : fresh.contiguous();
  return v[l];
}

at::Tensor causal_visible(int64_t t, int64_t past, const at::TensorOptions& options) {
  at::Tensor query = at::arange(past, past + t, options.dtype(at::kLong)).unsqueeze(1);  // [T,1]
  at::Tensor key = at::arange(past + t, options.dtype(at::kLong)).unsqueeze(0);          // [1,past+T]
  return key.le(query);                                                                  // [T,past+T]
}

at::Tensor causal_mask(const at::Tensor& attention_mask, int64_t t, int64_t sliding_window,
                       const at::TensorOptions& float_options, int64_t past) {
  at::Tensor query = at::arange(past, past + t, float_options.dtype(at::kLong)).unsqueeze(1);  // [T,1]
  at::Tensor key = at::arange(past + t, float_options.dtype(at::kLong)).unsqueeze(0);          // [1,past+T]
  at::Tensor visible = key.le(query);  // [T,past+T]
  if (sliding_window > 0) visible = at::logical_and(visible, key.gt(query - sliding_window));
  visible = visible.unsqueeze(0).unsqueeze(0);  // [1,1,T,T]
  if (attention_mask.defined())
    visible = at::logical_and(visible, attention_mask.ne(0).view({attention_mask.size(0), 1, 1, past + t}));  // [B,1,T,T]
  return at::where(visible, at::scalar_tensor(0.0f, float_options), at::scalar_tensor(mask_min(), float_options));
}

at::Tensor repeat_kv(const at::Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  const int64_t b = x.size(0), kv = x.size(1), t = x.size(2), d = x.size(3);
  return x.unsqueeze(2).expand({b, kv, n_rep, t, d}).reshape({b, kv * n_rep, t, d});
}

at::Tensor value_norms(const at::Tensor& value, const at::Tensor& o_weight, bool conv1d_weight) {
  const int64_t h = value.size(1), d = value.size(3);
  at::Tensor w = conv1d_weight ? o_weight : o_weight.t();                    // [H*d, D]
  w = w.reshape({h, d, w.size(1)});                                          // [H,d,D]
  at::Tensor fx = at::matmul(value.to(at::kFloat), w.to(at::kFloat).unsqueeze(0));  // [B,H,T,D]
  return fx.norm(2, -1);                                                     // [B,H,T]
}

at::Tensor split_heads(const at::Tensor& x, int64_t num_heads) {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2) / num_heads;
  return x.view({b, t, num_heads, d}).permute({0, 2, 1, 3});
}

at::Tensor merge_heads(const at::Tensor& x) {
  const int64_t b = x.size(0), h = x.size(1), t = x.size(2), d = x.size(3);
  return x.permute({0, 2, 1, 3}).contiguous().view({b, t, h * d});
}

namespace {

at::Tensor checked_ids(const at::Tensor& t, const char* what, const at::Tensor& like) {
  ATLAS_CHECK(!at::isFloatingType(t.scalar_type()) && t.scalar_type() != at::kBool, InputError,
              "{}: expected an integer tensor, got {}", what, c10::toString(t.scalar_type()));
  ATLAS_CHECK(t.sizes() == like.sizes(), InputError, "{}: expected shape {}, got {}", what,
              c10::str(like.sizes()), c10::str(t.sizes()));
  return t.to(at::kLong);
}

}  // namespace

Inputs checked_inputs(const Inputs& inputs, const ModelInfo& info, c10::Device device) {
  const at::Tensor& ids = inputs.input_ids;
  ATLAS_CHECK(ids.defined() && ids.dim() == 2, InputError, "input_ids: expected shape [B,T], got {}",
              ids.defined() ? c10::str(ids.sizes()) : std::string("nothing"));
  ATLAS_CHECK(ids.size(0) > 0 && ids.size(1) > 0, InputError,
              "input_ids: expected at least one token, got shape {}", c10::str(ids.sizes()));
  Inputs out;
  out.input_ids = checked_ids(ids, "input_ids", ids);
  const int64_t lo = out.input_ids.min().item<int64_t>(), hi = out.input_ids.max().item<int64_t>();
  ATLAS_CHECK(lo >= 0 && hi < info.vocab_size, InputError, "input_ids: expected ids in [0, {}), got [{}, {}]",
              info.vocab_size, lo, hi);
  int64_t past = 0;
  if (inputs.past) {
    ATLAS_CHECK(info.kv_cache, InputError,
                "past keys/values: {} ({}) has no key/value cache path (the llama family, gpt2, gpt_neox, phi and opt have)",
                info.model_class, info.model_type);
    ATLAS_CHECK(ids.size(0) == 1, InputError, "past keys/values: expected a batch of 1, got {}", ids.size(0));
    ATLAS_CHECK(!inputs.attention_mask.defined() && !inputs.inputs_embeds.defined() && !inputs.autograd, InputError,
                "past keys/values: not with attention_mask, inputs_embeds or autograd");
    const KVCache& c = *inputs.past;
    past = c.length();
    ATLAS_CHECK(past == 0 || (static_cast<int64_t>(c.keys.size()) == info.num_layers &&
                              c.values.size() == c.keys.size()),
                InputError, "past keys/values: expected {} layers, got {}", info.num_layers, c.keys.size());
  }
  ATLAS_CHECK(info.max_positions <= 0 || past + ids.size(1) <= info.max_positions, InputError,
              "input_ids: {} ({}) takes at most {} tokens, got {}", info.model_class, info.model_type,
              info.max_positions, past + ids.size(1));
  if (inputs.attention_mask.defined()) {
    out.attention_mask = checked_ids(inputs.attention_mask, "attention_mask", ids);
    ATLAS_CHECK(at::logical_or(out.attention_mask == 0, out.attention_mask == 1).all().item<bool>(),
                InputError, "attention_mask: expected only 0 and 1, got other values");
    out.attention_mask = out.attention_mask.to(device);
  }
  if (inputs.token_type_ids.defined())
    out.token_type_ids = checked_ids(inputs.token_type_ids, "token_type_ids", ids).to(device);
  out.input_ids = out.input_ids.to(device);
  out.autograd = inputs.autograd;
  out.past = inputs.past;
  out.last_logits_only = inputs.last_logits_only;
  if (inputs.inputs_embeds.defined()) {
    const at::Tensor& e = inputs.inputs_embeds;
    ATLAS_CHECK(e.dim() == 3 && e.size(0) == ids.size(0) && e.size(1) == ids.size(1) && e.size(2) == info.hidden_size,
                InputError, "inputs_embeds: expected shape [{}, {}, {}], got {}", ids.size(0), ids.size(1),
                info.hidden_size, c10::str(e.sizes()));
    out.inputs_embeds = e.to(device);
  }
  if (inputs.head_mask.defined()) {
    at::Tensor m = inputs.head_mask;
    if (m.dim() == 2) m = m.unsqueeze(0);
    ATLAS_CHECK(m.dim() == 3 && (m.size(0) == 1 || m.size(0) == ids.size(0)) && m.size(1) == info.num_layers &&
                    m.size(2) == info.num_heads,
                InputError, "head_mask: expected shape [{}, {}] or [{}, {}, {}], got {}", info.num_layers,
                info.num_heads, ids.size(0), info.num_layers, info.num_heads, c10::str(inputs.head_mask.sizes()));
    out.head_mask = m.to(device);
  }
  ATLAS_CHECK(info.is_encoder_decoder || !inputs.decoder_input_ids.defined(), InputError,
              "decoder_input_ids: {} ({}) is not an encoder-decoder, it takes no decoder input", info.model_class,
              info.model_type);
  if (info.is_encoder_decoder) {
    const at::Tensor& dec = inputs.decoder_input_ids;
    if (dec.defined()) {
      ATLAS_CHECK(dec.dim() == 2 && dec.size(0) == ids.size(0) && dec.size(1) > 0, InputError,
                  "decoder_input_ids: expected shape [{}, T_dec] with T_dec > 0, got {}", ids.size(0),
                  c10::str(dec.sizes()));
      out.decoder_input_ids = checked_ids(dec, "decoder_input_ids", dec);
    } else {
      ATLAS_CHECK(info.decoder_start_token_id >= 0, InputError,
                  "decoder_input_ids: none given and {} has no decoder_start_token_id in its config",
                  info.model_class);
      out.decoder_input_ids = at::full({ids.size(0), 1}, info.decoder_start_token_id, at::kLong);
    }
    const int64_t dlo = out.decoder_input_ids.min().item<int64_t>(),
                  dhi = out.decoder_input_ids.max().item<int64_t>();
    ATLAS_CHECK(dlo >= 0 && dhi < info.vocab_size, InputError,
                "decoder_input_ids: expected ids in [0, {}), got [{}, {}]", info.vocab_size, dlo, dhi);
    ATLAS_CHECK(info.max_positions <= 0 || out.decoder_input_ids.size(1) <= info.max_positions, InputError,
                "decoder_input_ids: {} ({}) takes at most {} tokens, got {}", info.model_class, info.model_type,
                info.max_positions, out.decoder_input_ids.size(1));
    if (inputs.decoder_attention_mask.defined()) {
      out.decoder_attention_mask =
          checked_ids(inputs.decoder_attention_mask, "decoder_attention_mask", out.decoder_input_ids);
      ATLAS_CHECK(at::logical_or(out.decoder_attention_mask == 0, out.decoder_attention_mask == 1).all().item<bool>(),
                  InputError, "decoder_attention_mask: expected only 0 and 1, got other values");
      out.decoder_attention_mask = out.decoder_attention_mask.to(device);
    }
    out.decoder_input_ids = out.decoder_input_ids.to(device);
  } else {
    ATLAS_CHECK(!inputs.decoder_attention_mask.defined(), InputError,
                "decoder_attention_mask: {} ({}) is not an encoder-decoder", info.model_class, info.model_type);
  }
  return out;
}

at::Tensor apply_head_mask(const at::Tensor& probs, const Inputs& inputs, int64_t layer) {
  if (!inputs.head_mask.defined()) return probs;
  const at::Tensor m = inputs.head_mask.select(1, layer).to(probs.scalar_type());  // [B|1,H]
  return probs * m.view({m.size(0), m.size(1), 1, 1});
}

at::Tensor word_embeddings(const at::Tensor& table, const Inputs& inputs, Taps& taps) {
  at::Tensor e = inputs.inputs_embeds.defined() ? inputs.inputs_embeds.to(table.scalar_type())
                                                : at::embedding(table, inputs.input_ids);
  emit_if(taps, kInputEmbeds, 0, e);
  return e;
}

void require_lm_head(const ModelInfo& info) {
  ATLAS_CHECK(info.has_lm_head, InputError,
              "logits unavailable: the checkpoint is the base model {} ({}) without an LM head",
              info.model_class, info.model_type);
}

}  // namespace atlas::models
