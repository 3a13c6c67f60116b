// Attribution of a target token's log-probability (docs/metrics.md "Attribution"): gradient ×
// attention, integrated gradients on the input embeddings, head ablation. The model runs with
// autograd (Inputs::autograd, weights loaded as ordinary tensors); the attention probabilities are
// taken from the graph through a tap that retains their gradient.
#include "atlas/extract/attribution.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>

#include "atlas/core/error.hpp"
#include "extract/session.hpp"

namespace atlas::extract {

std::vector<std::string> attribution_model_types() {
  // The architectures whose forward honours Inputs::autograd / inputs_embeds / head_mask.
  return {"llama", "mistral", "qwen2", "gemma", "gpt2", "bert", "roberta", "xlm-roberta"};
}

namespace {

// Keeps the graph tensors (not copies) of the attention probabilities and the word embeddings.
class AttributionTaps final : public models::Taps {
 public:
  bool want_attention = true;
  std::vector<at::Tensor> attention;   // per layer [B,H,T,T]
  at::Tensor embeds;                   // [B,T,D]
  bool wants(const std::string& name, int64_t) const override {
    return (want_attention && name == models::kAttnProbs) || name == models::kInputEmbeds;
  }
  void emit(const std::string& name, int64_t layer, const at::Tensor& value) override {
    if (name == models::kInputEmbeds) {
      embeds = value;
      return;
    }
    if (value.requires_grad()) value.retain_grad();
    if (static_cast<int64_t>(attention.size()) <= layer) attention.resize(static_cast<size_t>(layer + 1));
    attention[static_cast<size_t>(layer)] = value;
  }
};

bool parse_index(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str() || *end != '\0') return false;
  out = v;
  return true;
}

}  // namespace

AttributionResult run_attribution(const AttributionOptions& given) {
  const auto t0 = std::chrono::steady_clock::now();
  ATLAS_CHECK(given.steps >= 1, InputError, "--steps must be at least 1, got {}", given.steps);
  AttributionOptions options = given;
  options.autograd = true;
  Session session(options);
  const models::ModelInfo& info = session.info();
  const auto supported = attribution_model_types();
  ATLAS_CHECK(std::find(supported.begin(), supported.end(), info.model_type) != supported.end(), ConfigError,
              "{}: attribution supports model_type {}, not '{}' ({})", options.model_dir.string(),
              fmt::join(supported, ", "), info.model_type, info.model_class);
  ATLAS_CHECK(info.has_lm_head, InputError,
              "{}: attribution scores a token's log-probability, but the checkpoint is the base model {} ({}) "
              "without an LM head",
              options.model_dir.string(), info.model_class, info.model_type);
  ATLAS_CHECK(!options.text.empty(), InputError, "attribution: --text is empty");
  Prepared doc = session.prepare_text(options.text);

  AttributionResult r;
  r.model_type = info.model_type;
  r.model_class = info.model_class;
  r.causal = info.causal;
  r.tokens = doc.tokens;
  r.checkpoint_sha256 = session.checkpoint_sha256();
  const int64_t n = doc.size();
  r.seq = n;
  r.num_layers = info.num_layers;
  r.num_heads = info.num_heads;

  // The target token.
  int64_t t = 0;
  if (parse_index(options.target, t)) {
    ATLAS_CHECK(t >= -n && t < n, InputError, "--target {}: the text has {} tokens (0..{})", options.target, n, n - 1);
    if (t < 0) t += n;
  } else {
    ATLAS_CHECK(static_cast<bool>(options.resolve_word), InputError,
                "--target '{}': expected a token index", options.target);
    t = options.resolve_word(doc.tokens, options.text, options.target);
    ATLAS_CHECK(t >= 0 && t < n, InputError, "--target '{}': no token of the text", options.target);
  }
  const auto& tokens = doc.tokens;
  auto tok = [&](int64_t i) { return tokens.tokens[static_cast<size_t>(i)]; };
  ATLAS_CHECK(tokens.special.empty() || !tokens.special[static_cast<size_t>(t)], InputError,
              "--target {}: token {} '{}' is a special token; pick a token of the text", options.target, t, tok(t));
  r.target = t;
  r.target_id = tokens.input_ids[static_cast<size_t>(t)];
  r.target_token = tok(t);
  std::vector<int64_t> ids = tokens.input_ids;
  if (r.causal) {
    ATLAS_CHECK(t >= 1, InputError,
                "--target {}: token {} '{}' is the first token; a causal LM predicts a token from the ones before it",
                options.target, t, tok(t));
    r.query = t - 1;
  } else {
    const tokenize::Tokenizer* tk = session.tokenizer();
    std::optional<int64_t> mask;
    if (tk)
      for (const char* m : {"[MASK]", "<mask>"})
        if (!mask) mask = tk->token_to_id(m);
    ATLAS_CHECK(mask.has_value(), InputError, "{}: masked LM without a mask token ([MASK] or <mask>) in its tokenizer",
                options.model_dir.string());
    r.mask_id = *mask;
    ids[static_cast<size_t>(t)] = *mask;
    r.query = t;
  }

  models::Model& model = session.model();
  const at::Tensor ids_tensor = at::tensor(ids, at::kLong).view({1, n});
  at::Tensor token_types;
  if (!tokens.token_type_ids.empty()) token_types = at::tensor(tokens.token_type_ids, at::kLong).view({1, n});
  auto inputs_for = [&](int64_t batch) {
    models::Inputs in;
    in.input_ids = batch == 1 ? ids_tensor : ids_tensor.expand({batch, n}).contiguous();
    if (token_types.defined()) in.token_type_ids = batch == 1 ? token_types : token_types.expand({batch, n}).contiguous();
    return in;
  };
  // log p(target) at the query position of every row: [B].
  auto logp_of = [&](const at::Tensor& logits) {
    return at::log_softmax(logits.select(1, r.query).to(at::kFloat), -1).select(1, r.target_id);
  };

  // Plain forward: log-prob, attention, word embeddings.
  at::Tensor x;   // [1,T,D]
  {
    AttributionTaps taps;
    models::Inputs in = inputs_for(1);
    at::Tensor logits;
    {
      c10::NoGradGuard no_grad;
      in.autograd = false;
      logits = model.forward(in, taps, true);
    }
    r.logp = logp_of(logits).item<double>();
    x = taps.embeds.detach().clone();
    ATLAS_CHECK(static_cast<int64_t>(taps.attention.size()) == r.num_layers, Error,
                "attribution: the model emitted {} attention layers, expected {}", taps.attention.size(), r.num_layers);
    r.attention.reserve(static_cast<size_t>(r.num_layers * r.num_heads * n * n));
    for (const auto& a : taps.attention) {
      at::Tensor c = a.select(0, 0).to(at::kFloat).cpu().contiguous();
      r.attention.insert(r.attention.end(), c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    }
  }

  if (options.grad_attn) {
    AttributionTaps taps;
    models::Inputs in = inputs_for(1);
    in.autograd = true;
    in.inputs_embeds = x.clone().requires_grad_(true);
    at::Tensor lp = logp_of(model.forward(in, taps, true)).sum();
    lp.backward();
    r.grad_attn_layers.assign(static_cast<size_t>(r.num_layers * n), 0.0);
    r.grad_attn_head_sums.assign(static_cast<size_t>(r.num_layers * r.num_heads), 0.0);
    r.grad_attn.assign(static_cast<size_t>(n), 0.0);
    for (int64_t l = 0; l < r.num_layers; ++l) {
      const at::Tensor& a = taps.attention[static_cast<size_t>(l)];
      if (!a.grad().defined()) continue;   // a layer the objective does not reach
      at::Tensor p = (a.detach() * a.grad()).select(0, 0).to(at::kDouble).cpu();   // [H,T,T]
      at::Tensor sums = p.sum({1, 2}).contiguous();
      at::Tensor row = p.select(1, r.query).mean(0).contiguous();                   // [T]
      for (int64_t h = 0; h < r.num_heads; ++h) r.grad_attn_head_sums[static_cast<size_t>(l * r.num_heads + h)] = sums[h].item<double>();
      for (int64_t j = 0; j < n; ++j) {
        const double v = row[j].item<double>();
        r.grad_attn_layers[static_cast<size_t>(l * n + j)] = v;
        r.grad_attn[static_cast<size_t>(j)] += v / static_cast<double>(r.num_layers);
      }
    }
    r.has_grad_attn = true;
  }

  if (options.ig) {
    // Riemann midpoint sum over u of ∂f/∂x along x' + α(u)(x − x'), x' = 0, α = u^p, weighted by
    // dα/du = p u^(p−1): u_k = (k + 1/2) / steps.
    r.steps = options.steps;
    const bool additive_positions = info.model_type == "gpt2" || info.model_type == "bert" ||
                                    info.model_type == "roberta" || info.model_type == "xlm-roberta";
    const double p = options.ig_power > 0 ? options.ig_power : (additive_positions ? 1.0 : 4.0);
    r.ig_power = p;
    at::Tensor grad_sum = at::zeros_like(x.select(0, 0));   // [T,D]
    // The baseline x': zero word embeddings; special tokens (BOS, [CLS] ...) keep theirs unless
    // ig_zero_specials, so their attribution is 0.
    at::Tensor keep = at::zeros({1, n, 1}, x.options());
    if (!options.ig_zero_specials)
      for (int64_t j = 0; j < n; ++j)
        if (!tokens.special.empty() && tokens.special[static_cast<size_t>(j)]) keep.index_put_({0, j, 0}, 1.0);
    const at::Tensor baseline = x * keep, diff = x - baseline;
    constexpr int64_t kChunk = 8;
    for (int64_t k0 = 0; k0 < options.steps; k0 += kChunk) {
      const int64_t b = std::min(kChunk, options.steps - k0);
      at::Tensor u = (at::arange(k0, k0 + b, x.options().dtype(at::kDouble)) + 0.5) / static_cast<double>(options.steps);
      at::Tensor alphas = u.pow(p).to(x.scalar_type());
      at::Tensor weights = (p * u.pow(p - 1.0)).to(x.scalar_type());                    // dα/du
      at::Tensor path = (baseline + alphas.view({b, 1, 1}) * diff).detach().requires_grad_(true);   // [b,T,D]
      AttributionTaps taps;
      taps.want_attention = false;
      models::Inputs in = inputs_for(b);
      in.autograd = true;
      in.inputs_embeds = path;
      logp_of(model.forward(in, taps, true)).sum().backward();
      grad_sum += (path.grad() * weights.view({b, 1, 1})).sum(0);
    }
    at::Tensor ig = (diff.select(0, 0) * grad_sum / static_cast<double>(options.steps)).sum(-1).to(at::kDouble).cpu();
    r.ig.resize(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) r.ig[static_cast<size_t>(j)] = ig[j].item<double>();
    r.ig_sum = ig.sum().item<double>();
    {
      c10::NoGradGuard no_grad;
      AttributionTaps taps;
      taps.want_attention = false;
      models::Inputs in = inputs_for(1);
      in.inputs_embeds = baseline;
      r.logp_baseline = logp_of(model.forward(in, taps, true)).item<double>();
    }
    r.has_ig = true;
  }

  if (options.ablation) {
    c10::InferenceMode guard;
    const int64_t L = r.num_layers, H = r.num_heads;
    r.ablation_logp.resize(static_cast<size_t>(L * H));
    r.ablation_delta.resize(static_cast<size_t>(L * H));
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h) {
        models::Inputs in = inputs_for(1);
        in.head_mask = at::ones({L, H}, at::kFloat);
        in.head_mask.index_put_({l, h}, 0.0);
        models::NullTaps none;
        const double lp = logp_of(model.forward(in, none, true)).item<double>();
        r.ablation_logp[static_cast<size_t>(l * H + h)] = lp;
        r.ablation_delta[static_cast<size_t>(l * H + h)] = lp - r.logp;
      }
    r.has_ablation = true;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace atlas::extract
