#include "models/rope.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "atlas/core/error.hpp"

namespace atlas::models {

namespace {

using Type = RopeScaling::Type;

/// The keys each type reads (transformers' rope_config_validation); anything else is rejected.
const std::map<std::string, std::vector<std::string>>& keys_by_type() {
  static const std::map<std::string, std::vector<std::string>> kKeys = {
      {"default", {}},
      {"linear", {"factor"}},
      {"dynamic", {"factor"}},
      {"llama3", {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}},
      // "finetuned" (YaRN's own configs) is metadata: transformers never reads it.
      {"yarn",
       {"factor", "original_max_position_embeddings", "attention_factor", "beta_fast", "beta_slow", "mscale",
        "mscale_all_dim", "truncate", "finetuned"}},
  };
  return kKeys;
}

/// YaRN's get_mscale.
double get_mscale(double scale, double mscale = 1.0) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

/// 1 / base^(2i/dim), i = 0..dim/2-1, in float32 as transformers computes it.
at::Tensor default_inv_freq(const at::Tensor& base, int64_t dim) {
  at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);  // [d/2]
  return at::reciprocal(at::pow(base, exponents));
}
at::Tensor default_inv_freq(double base, int64_t dim) {
  at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);  // [d/2]
  return at::reciprocal(at::pow(base, exponents));
}

}  // namespace

RotaryEmbedding RotaryEmbedding::from_hf_json(const ConfigReader& c, int64_t dim, double base,
                                              int64_t max_position_embeddings) {
  ATLAS_CHECK(dim > 0 && dim % 2 == 0, ConfigError, "'{}': rotary dimensions: expected a positive even number, got {}",
              c.file().string(), dim);
  RotaryEmbedding r;
  r.dim = dim;
  r.base = base;
  r.max_position_embeddings = max_position_embeddings;
  if (!c.has("rope_scaling")) return r;
  const nlohmann::json& rs = c.json().at("rope_scaling");
  if (!rs.is_object()) c.reject("rope_scaling", "null or an object", rs.dump());

  auto text = [&](const char* key) -> std::string {
    auto it = rs.find(key);
    if (it == rs.end() || it->is_null()) return {};
    if (!it->is_string()) c.reject(fmt::format("rope_scaling.{}", key), "a string", it->dump());
    return it->get<std::string>();
  };
  std::string type = text("type");
  const std::string rope_type = text("rope_type");
  if (!type.empty() && !rope_type.empty() && type != rope_type)
    c.reject("rope_scaling.rope_type", fmt::format("the same as rope_scaling.type '{}'", type),
             fmt::format("'{}'", rope_type));
  if (type.empty()) type = rope_type.empty() ? "default" : rope_type;
  const auto known = keys_by_type().find(type);
  if (known == keys_by_type().end())
    c.reject("rope_scaling.type", "one of 'default', 'linear', 'dynamic', 'llama3', 'yarn' (other RoPE scalings "
             "are not implemented)", fmt::format("'{}'", type));
  for (const auto& [key, value] : rs.items()) {
    if (key == "type" || key == "rope_type") continue;
    const auto& allowed = known->second;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      c.reject(fmt::format("rope_scaling.{}", key),
               fmt::format("no such key (rope_scaling type '{}' reads {})", type,
                           allowed.empty() ? std::string("none") : fmt::format("{}", fmt::join(allowed, ", "))),
               value.dump());
  }
  // A number key; null or absent gives `fallback` (NaN: required).
  auto number = [&](const char* key, double fallback) {
    auto it = rs.find(key);
    if (it == rs.end() || it->is_null()) {
      if (std::isnan(fallback))
        c.reject(fmt::format("rope_scaling.{}", key), fmt::format("a number (rope_scaling type '{}')", type),
                 "no such key");
      return fallback;
    }
    if (!it->is_number() || it->is_boolean())
      c.reject(fmt::format("rope_scaling.{}", key), "a number", it->dump());
    return it->get<double>();
  };
  auto positive = [&](const char* key, double fallback) {
    const double v = number(key, fallback);
    if (!(v > 0)) c.reject(fmt::format("rope_scaling.{}", key), "a positive number", fmt::format("{}", v));
    return v;
  };
  const double kRequired = std::nan("");
  RopeScaling& s = r.scaling;
  if (type == "default") return r;
  s.factor = positive("factor", kRequired);
  if (type == "linear") {
    s.type = Type::Linear;
  } else if (type == "dynamic") {
    s.type = Type::Dynamic;
  } else if (type == "llama3") {
    s.type = Type::Llama3;
    s.low_freq_factor = positive("low_freq_factor", kRequired);
    s.high_freq_factor = positive("high_freq_factor", kRequired);
    s.original_max_position_embeddings =
        static_cast<int64_t>(positive("original_max_position_embeddings", kRequired));
    if (!(s.high_freq_factor > s.low_freq_factor))
      c.reject("rope_scaling.high_freq_factor", fmt::format("more than low_freq_factor {}", s.low_freq_factor),
               fmt::format("{}", s.high_freq_factor));
  } else {  // yarn: transformers' _compute_yarn_parameters
    s.type = Type::Yarn;
    // `or 32` / `or 1`: null and 0 both mean the paper's defaults.
    s.beta_fast = number("beta_fast", 0.0);
    if (s.beta_fast == 0.0) s.beta_fast = 32.0;
    s.beta_slow = number("beta_slow", 0.0);
    if (s.beta_slow == 0.0) s.beta_slow = 1.0;
    auto truncate = rs.find("truncate");
    if (truncate != rs.end() && !truncate->is_null()) {
      if (!truncate->is_boolean()) c.reject("rope_scaling.truncate", "true or false", truncate->dump());
      s.truncate = truncate->get<bool>();
    }
    s.original_max_position_embeddings = max_position_embeddings;
    if (rs.contains("original_max_position_embeddings") && !rs["original_max_position_embeddings"].is_null()) {
      s.original_max_position_embeddings =
          static_cast<int64_t>(positive("original_max_position_embeddings", kRequired));
      // Recent transformers replace factor by max_position_embeddings / original_max_position_embeddings
      // when the latter is given, earlier ones use factor and max_position_embeddings: only the case
      // where both readings agree is unambiguous.
      const double ratio = static_cast<double>(max_position_embeddings) /
                           static_cast<double>(s.original_max_position_embeddings);
      if (std::abs(ratio - s.factor) > 1e-12 * s.factor)
        c.reject("rope_scaling.original_max_position_embeddings",
                 fmt::format("max_position_embeddings / factor = {} (transformers versions disagree on YaRN "
                             "otherwise)",
                             static_cast<double>(max_position_embeddings) / s.factor),
                 std::to_string(s.original_max_position_embeddings));
    }
    const double mscale = number("mscale", 0.0), mscale_all_dim = number("mscale_all_dim", 0.0);
    if (rs.contains("attention_factor") && !rs["attention_factor"].is_null()) {
      s.attention_factor = positive("attention_factor", kRequired);
    } else if (mscale != 0.0 && mscale_all_dim != 0.0) {
      s.attention_factor = get_mscale(s.factor, mscale) / get_mscale(s.factor, mscale_all_dim);
    } else {
      s.attention_factor = get_mscale(s.factor);
    }
  }
  return r;
}

at::Tensor RotaryEmbedding::inv_freq(int64_t seq_len) const {
  const RopeScaling& s = scaling;
  switch (s.type) {
    case Type::Default:
    case Type::Linear:
      return default_inv_freq(base, dim);
    case Type::Dynamic: {
      if (seq_len <= max_position_embeddings) return default_inv_freq(base, dim);
      const double exponent = static_cast<double>(dim) / static_cast<double>(dim - 2);
      if (dynamic_base_in_float32) {
        at::Tensor seq = at::scalar_tensor(seq_len, at::kLong).to(at::kFloat);
        at::Tensor new_base =
            base * at::pow(s.factor * seq / static_cast<double>(max_position_embeddings) - (s.factor - 1.0),
                           exponent);  // [] float32
        return default_inv_freq(new_base, dim);
      }
      const double new_base =
          base * std::pow(s.factor * static_cast<double>(seq_len) / static_cast<double>(max_position_embeddings) -
                              (s.factor - 1.0),
                          exponent);
      return default_inv_freq(new_base, dim);
    }
    case Type::Llama3: {  // _compute_llama3_parameters
      at::Tensor inv = default_inv_freq(base, dim);
      const double old_context_len = static_cast<double>(s.original_max_position_embeddings);
      const double low_freq_wavelen = old_context_len / s.low_freq_factor;
      const double high_freq_wavelen = old_context_len / s.high_freq_factor;
      at::Tensor wavelen = at::reciprocal(inv) * (2 * M_PI);
      at::Tensor inv_freq_llama = at::where(wavelen > low_freq_wavelen, inv / s.factor, inv);
      at::Tensor smooth_factor = (at::reciprocal(wavelen) * old_context_len - s.low_freq_factor) /
                                 (s.high_freq_factor - s.low_freq_factor);
      at::Tensor smoothed_inv_freq =
          (1 - smooth_factor) * inv_freq_llama / s.factor + smooth_factor * inv_freq_llama;
      at::Tensor is_medium_freq = at::logical_and(wavelen >= high_freq_wavelen, wavelen <= low_freq_wavelen);
      return at::where(is_medium_freq, smoothed_inv_freq, inv_freq_llama);
    }
    case Type::Yarn: {  // _compute_yarn_parameters
      const double d = static_cast<double>(dim);
      auto find_correction_dim = [&](double num_rotations) {
        return (d * std::log(static_cast<double>(s.original_max_position_embeddings) /
                             (num_rotations * 2 * M_PI))) /
               (2 * std::log(base));
      };
      double low = find_correction_dim(s.beta_fast), high = find_correction_dim(s.beta_slow);
      if (s.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, d - 1);
      if (low == high) high += 0.001;  // prevents a division by zero, as transformers does
      at::Tensor pos_freqs = at::pow(base, at::arange(0, dim, 2, at::kLong).to(at::kFloat) / d);  // [d/2]
      at::Tensor inv_freq_extrapolation = at::reciprocal(pos_freqs);
      at::Tensor inv_freq_interpolation = at::reciprocal(s.factor * pos_freqs);
      at::Tensor ramp = at::clamp((at::arange(dim / 2, at::kFloat) - low) / (high - low), 0, 1);
      at::Tensor inv_freq_extrapolation_factor = 1 - ramp;
      return inv_freq_interpolation * (1 - inv_freq_extrapolation_factor) +
             inv_freq_extrapolation * inv_freq_extrapolation_factor;
    }
  }
  ATLAS_FAIL(Error, "unknown rope_scaling type {}", static_cast<int>(s.type));
}

std::pair<at::Tensor, at::Tensor> RotaryEmbedding::cos_sin(int64_t seq_len, c10::Device device) const {
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor positions = at::arange(seq_len, options.dtype(at::kLong)).to(at::kFloat);  // [T]
  if (scaling.type == Type::Linear) positions = positions / scaling.factor;
  at::Tensor freqs = at::outer(positions, inv_freq(seq_len).to(device));  // [T,d/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1);                           // [T,d]
  at::Tensor cos = emb.cos(), sin = emb.sin();
  if (scaling.attention_factor != 1.0) {
    cos = cos * scaling.attention_factor;
    sin = sin * scaling.attention_factor;
  }
  return {cos.unsqueeze(0).unsqueeze(0), sin.unsqueeze(0).unsqueeze(0)};  // [1,1,T,d]
}

std::pair<at::Tensor, at::Tensor> RotaryEmbedding::cos_sin(int64_t past, int64_t t, c10::Device device) const {
  auto [cos, sin] = cos_sin(past + t, device);
  if (past == 0) return {cos, sin};
  return {cos.narrow(2, past, t), sin.narrow(2, past, t)};
}

int64_t RotaryEmbedding::max_positions() const {
  return scaling.type == Type::Dynamic ? 0 : max_position_embeddings;
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t r = cos.size(-1), d = x.size(-1);
  if (r == d) return x * cos + rotate_half(x) * sin;
  at::Tensor x_rot = x.narrow(-1, 0, r);
  return at::cat({x_rot * cos + rotate_half(x_rot) * sin, x.narrow(-1, r, d - r)}, -1);
}

}  // namespace atlas::models
