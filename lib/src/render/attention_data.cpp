#include "atlas/render/attention_data.hpp"

#include <nlohmann/json.hpp>

#include "atlas/core/error.hpp"
#include "atlas/io/npz.hpp"

namespace atlas::render {

int64_t AttentionData::layer_position(int64_t index) const {
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i] == index) return static_cast<int64_t>(i);
  ATLAS_FAIL(InputError, "'{}' has no layer {} (stored layers: {})", path.string(), index, fmt::join(layers, ", "));
}

int64_t AttentionData::head_position(int64_t index) const {
  for (size_t i = 0; i < heads.size(); ++i)
    if (heads[i] == index) return static_cast<int64_t>(i);
  ATLAS_FAIL(InputError, "'{}' has no head {} (stored heads: {})", path.string(), index, fmt::join(heads, ", "));
}

namespace {

std::string json_string(const nlohmann::json& j, std::initializer_list<const char*> keys) {
  const nlohmann::json* cur = &j;
  for (const char* k : keys) {
    if (!cur->is_object() || !cur->contains(k)) return {};
    cur = &(*cur)[k];
  }
  return cur->is_string() ? cur->get<std::string>() : std::string();
}

}  // namespace

AttentionData load_attention(const std::filesystem::path& path) {
  ATLAS_CHECK(std::filesystem::is_regular_file(path), InputError, "input '{}' does not exist", path.string());
  io::NpzReader npz(path);
  AttentionData d;
  d.path = path;
  const std::string file = path.string();
  ATLAS_CHECK(npz.contains("attention"), FormatError,
              "'{}' has no array 'attention' (has: {}); expected an `atlas extract` NPZ", file,
              fmt::join(npz.names(), ", "));
  io::NdArray att = npz.get("attention");
  ATLAS_CHECK(att.ndim() == 4, FormatError, "'{}': 'attention' must be [L, H, Q, K], got {} dimensions",
              file, att.ndim());
  d.num_layers = att.shape()[0];
  d.num_heads = att.shape()[1];
  d.q = att.shape()[2];
  d.k = att.shape()[3];
  ATLAS_CHECK(d.num_layers > 0 && d.num_heads > 0 && d.q > 0 && d.k > 0, FormatError,
              "'{}': 'attention' is empty (shape [{}])", file, fmt::join(att.shape(), ", "));
  d.attention = att.to_float();

  auto ints = [&](const char* name, int64_t n) {
    std::vector<int64_t> out;
    if (npz.contains(name)) {
      out = npz.get(name).to_int64();
      ATLAS_CHECK(static_cast<int64_t>(out.size()) == n, FormatError,
                  "'{}': '{}' has {} entries, expected {} (from 'attention')", file, name, out.size(), n);
    } else {
      for (int64_t i = 0; i < n; ++i) out.push_back(i);
    }
    return out;
  };
  d.layers = ints("layers", d.num_layers);
  d.heads = ints("heads", d.num_heads);

  ATLAS_CHECK(npz.contains("tokens") || npz.contains("token_labels"), FormatError,
              "'{}' has no array 'tokens' (has: {})", file, fmt::join(npz.names(), ", "));
  d.tokens = npz.get(npz.contains("tokens") ? "tokens" : "token_labels").to_strings();
  d.token_labels = npz.contains("token_labels") ? npz.get("token_labels").to_strings() : d.tokens;
  ATLAS_CHECK(static_cast<int64_t>(d.tokens.size()) == d.q && d.token_labels.size() == d.tokens.size(),
              FormatError, "'{}': 'tokens' has {} entries and 'token_labels' {}, expected Q = {}", file,
              d.tokens.size(), d.token_labels.size(), d.q);
  if (npz.contains("offsets")) {
    auto off = npz.get("offsets").to_int64();
    ATLAS_CHECK(static_cast<int64_t>(off.size()) == 2 * d.q, FormatError,
                "'{}': 'offsets' must be [Q, 2] = [{}, 2], has {} values", file, d.q, off.size());
    for (int64_t i = 0; i < d.q; ++i) d.offsets.push_back({off[2 * i], off[2 * i + 1]});
  }
  d.special.assign(static_cast<size_t>(d.q), 0);
  if (npz.contains("special")) {
    auto sp = npz.get("special").to_int64();
    ATLAS_CHECK(static_cast<int64_t>(sp.size()) == d.q, FormatError,
                "'{}': 'special' has {} entries, expected Q = {}", file, sp.size(), d.q);
    for (int64_t i = 0; i < d.q; ++i) d.special[i] = sp[i] != 0;
  }

  if (npz.contains("meta")) {
    nlohmann::json meta = nlohmann::json::parse(npz.get("meta").to_string(), nullptr, false);
    ATLAS_CHECK(!meta.is_discarded(), FormatError, "'{}': 'meta' is not valid JSON", file);
    d.model_path = json_string(meta, {"model", "path"});
    d.checkpoint_sha256 = json_string(meta, {"model", "checkpoint_sha256"});
    d.command_line = json_string(meta, {"command_line"});
    d.text = json_string(meta, {"input", "text"});
    d.created = json_string(meta, {"created"});
    d.version = json_string(meta, {"version"});
    std::string p = d.model_path;
    while (!p.empty() && p.back() == '/') p.pop_back();
    d.model_name = p.empty() ? json_string(meta, {"model", "model_type"})
                             : std::filesystem::path(p).filename().string();
    if (meta.contains("model") && meta["model"].is_object() && meta["model"].contains("causal") &&
        meta["model"]["causal"].is_boolean())
      d.causal = meta["model"]["causal"].get<bool>();
  }
  if (d.causal.has_value()) {
    d.causal_mask_ = *d.causal && d.q == d.k;
  } else if (d.q == d.k && d.q > 1) {
    // No meta: a causal model leaves every entry above the diagonal exactly 0.
    bool all_zero = true;
    for (int64_t m = 0; m < d.num_layers * d.num_heads && all_zero; ++m) {
      const float* a = d.attention.data() + m * d.q * d.k;
      for (int64_t i = 0; i < d.q && all_zero; ++i)
        for (int64_t j = i + 1; j < d.k; ++j)
          if (a[i * d.k + j] != 0.0f) { all_zero = false; break; }
    }
    d.causal_mask_ = all_zero;
  }
  return d;
}

}  // namespace atlas::render
