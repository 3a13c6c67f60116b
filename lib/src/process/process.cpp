#include "atlas/process/process.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "atlas/core/error.hpp"
#include "atlas/core/index_list.hpp"
#include "atlas/core/version.hpp"
#include "atlas/format/meta.hpp"
#include "atlas/format/store.hpp"
#include "atlas/io/npz.hpp"
#include "atlas/process/words.hpp"

namespace atlas::process {
namespace {

using format::AttentionData;

// A copy of `d` with room for [layers, heads, q, k] of new values and the given indices.
AttentionData reshaped(const AttentionData& d, std::vector<int64_t> layers, std::vector<int64_t> heads) {
  AttentionData out = d;
  out.attention.clear();
  out.num_layers = static_cast<int64_t>(layers.size());
  out.num_heads = static_cast<int64_t>(heads.size());
  out.layers = std::move(layers);
  out.heads = std::move(heads);
  out.attention.assign(static_cast<size_t>(out.num_layers * out.num_heads * out.q * out.k), 0.0f);
  out.topk = 0;
  return out;
}

float* matrix_of(AttentionData& d, int64_t l, int64_t h) { return d.attention.data() + ((l * d.num_heads + h) * d.q) * d.k; }

void require_square(const AttentionData& d, const char* op) {
  ATLAS_CHECK(d.q == d.k, InputError, "{}: {} needs square self-attention; '{}' is [{}, {}]", d.source, op, d.kind,
              d.q, d.k);
}

// Rows × columns of T×T doubles: c = a · b.
void matmul(const double* a, const double* b, double* c, int64_t t) {
  std::fill(c, c + t * t, 0.0);
  for (int64_t i = 0; i < t; ++i)
    for (int64_t m = 0; m < t; ++m) {
      const double x = a[i * t + m];
      if (x == 0.0) continue;
      const double* br = b + m * t;
      double* cr = c + i * t;
      for (int64_t j = 0; j < t; ++j) cr[j] += x * br[j];
    }
}

std::string describe_tokens(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.size() != b.size()) return fmt::format("{} vs {} positions", a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return fmt::format("position {} is '{}' vs '{}'", i, a[i], b[i]);
  return "";
}

}  // namespace

format::AttentionData load(const std::string& spec, const std::string& kind) {
  AttentionData d = format::load_attention(spec, kind);
  ATLAS_CHECK(d.kind == format::kSelfAttention || d.kind == format::kEncoderAttention, InputError,
              "{}: atlas process works on self-attention ('attention', 'encoder_attention'); '{}' is not supported yet",
              d.source, d.kind);
  for (size_t i = 0; i < d.attention.size(); ++i)
    if (!std::isfinite(d.attention[i])) {
      const int64_t per_layer = d.num_heads * d.q * d.k;
      const int64_t l = static_cast<int64_t>(i) / per_layer, h = (static_cast<int64_t>(i) % per_layer) / (d.q * d.k);
      ATLAS_FAIL(InputError, "{}: '{}' holds {} at layer {} head {}", d.source, d.kind, d.attention[i], d.layers[l],
                 d.heads[h]);
    }
  return d;
}

Over parse_over(const std::string& s) {
  if (s == "heads") return Over::Heads;
  if (s == "layers") return Over::Layers;
  if (s == "both") return Over::Both;
  ATLAS_FAIL(InputError, "--over '{}': expected heads, layers or both", s);
}

How parse_how(const std::string& s) {
  if (s == "mean") return How::Mean;
  if (s == "max") return How::Max;
  ATLAS_FAIL(InputError, "--how '{}': expected mean or max", s);
}

Result aggregate(const AttentionData& d, Over over, How how) {
  const bool heads = over != Over::Layers, layers = over != Over::Heads;
  Result r;
  r.data = reshaped(d, layers ? std::vector<int64_t>{kAggregated} : d.layers,
                    heads ? std::vector<int64_t>{kAggregated} : d.heads);
  AttentionData& o = r.data;
  const int64_t n = d.q * d.k;
  const double count = static_cast<double>((layers ? d.num_layers : 1) * (heads ? d.num_heads : 1));
  for (int64_t ol = 0; ol < o.num_layers; ++ol)
    for (int64_t oh = 0; oh < o.num_heads; ++oh) {
      std::vector<double> acc(static_cast<size_t>(n), how == How::Max ? -INFINITY : 0.0);
      for (int64_t l = layers ? 0 : ol; l < (layers ? d.num_layers : ol + 1); ++l)
        for (int64_t h = heads ? 0 : oh; h < (heads ? d.num_heads : oh + 1); ++h) {
          const float* m = d.matrix(l, h);
          for (int64_t e = 0; e < n; ++e) acc[e] = how == How::Max ? std::max(acc[e], double(m[e])) : acc[e] + m[e];
        }
      float* out = matrix_of(o, ol, oh);
      for (int64_t e = 0; e < n; ++e) out[e] = static_cast<float>(how == How::Max ? acc[e] : acc[e] / count);
    }
  r.step = {{"op", "aggregate"},
            {"over", over == Over::Heads ? "heads" : over == Over::Layers ? "layers" : "both"},
            {"how", how == How::Mean ? "mean" : "max"},
            {"layers", d.layers},
            {"heads", d.heads}};
  return r;
}

Result words(const AttentionData& d) {
  require_square(d, "words");
  const std::vector<Word> ws = segment_words(d);
  Result r;
  r.data = to_word_level(d);
  r.step = {{"op", "words"}, {"level", "word"}, {"source_tokens", d.q}, {"words", static_cast<int64_t>(ws.size())}};
  r.extra.emplace_back("word_of_token", io::NdArray::from<int64_t>({d.q}, word_of_token(ws, d.q)));
  return r;
}

std::vector<double> residual_matrices(const AttentionData& d, bool residual) {
  require_square(d, residual ? "rollout / flow" : "rollout / flow --no-residual");
  const int64_t t = d.q;
  std::vector<double> out(static_cast<size_t>(d.num_layers * t * t), 0.0);
  for (int64_t l = 0; l < d.num_layers; ++l) {
    double* a = out.data() + l * t * t;
    for (int64_t h = 0; h < d.num_heads; ++h) {
      const float* m = d.matrix(l, h);
      for (int64_t e = 0; e < t * t; ++e) a[e] += m[e];
    }
    for (int64_t e = 0; e < t * t; ++e) a[e] /= static_cast<double>(d.num_heads);
    if (residual)
      for (int64_t i = 0; i < t; ++i) {
        for (int64_t j = 0; j < t; ++j) a[i * t + j] *= 0.5;
        a[i * t + i] += 0.5;
      }
    for (int64_t i = 0; i < t; ++i) {
      double s = 0;
      for (int64_t j = 0; j < t; ++j) s += a[i * t + j];
      if (s > 0)
        for (int64_t j = 0; j < t; ++j) a[i * t + j] /= s;
    }
  }
  return out;
}

static void require_consecutive(const AttentionData& d, const char* op) {
  for (size_t i = 1; i < d.layers.size(); ++i)
    ATLAS_CHECK(d.layers[i] == d.layers[i - 1] + 1, InputError,
                "{}: {} multiplies consecutive layers, but the file stores layers {} (extract all layers, or "
                "--layers a-b)",
                d.source, op, fmt::join(d.layers, ","));
}

Result rollout(const AttentionData& d, bool residual) {
  require_consecutive(d, "rollout");
  const int64_t t = d.q;
  std::vector<double> a = residual_matrices(d, residual);
  Result r;
  r.data = reshaped(d, d.layers, {kAggregated});
  std::vector<double> cur(a.begin(), a.begin() + t * t), next(static_cast<size_t>(t * t));
  for (int64_t l = 0; l < d.num_layers; ++l) {
    if (l > 0) {
      matmul(a.data() + l * t * t, cur.data(), next.data(), t);
      cur.swap(next);
    }
    float* out = matrix_of(r.data, l, 0);
    for (int64_t e = 0; e < t * t; ++e) out[e] = static_cast<float>(cur[e]);
  }
  r.step = {{"op", "rollout"}, {"residual", residual}, {"layers", d.layers}, {"heads", d.heads}};
  return r;
}

Result diff(const AttentionData& a_in, const AttentionData& b_in, bool by_words) {
  AttentionData a = by_words ? to_word_level(a_in) : a_in;
  AttentionData b = by_words ? to_word_level(b_in) : b_in;
  nlohmann::json differing = nlohmann::json::array();
  if (by_words) {
    // Aligned by position: the same number of words; their texts may differ (she / he).
    ATLAS_CHECK(a.tokens.size() == b.tokens.size(), InputError,
                "diff --words: {} and {} have different words: {} vs {} words ({} vs {})", a.source, b.source,
                a.tokens.size(), b.tokens.size(), fmt::join(a.tokens, " "), fmt::join(b.tokens, " "));
    for (size_t i = 0; i < a.tokens.size(); ++i)
      if (a.tokens[i] != b.tokens[i]) {
        differing.push_back({static_cast<int64_t>(i), a.tokens[i], b.tokens[i]});
        a.token_labels[i] = a.tokens[i] + "/" + b.tokens[i];
      }
    a.key_token_labels = a.token_labels;
  } else {
    std::string why = describe_tokens(a.tokens, b.tokens);
    ATLAS_CHECK(why.empty(), InputError,
                "diff: {} and {} have different tokens: {} (--words aligns texts with the same number of words)",
                a.source, b.source, why);
  }
  ATLAS_CHECK(a.layers == b.layers, InputError, "diff: {} stores layers {}, {} layers {}", a.source,
              fmt::join(a.layers, ","), b.source, fmt::join(b.layers, ","));
  ATLAS_CHECK(a.heads == b.heads, InputError, "diff: {} stores heads {}, {} heads {}", a.source,
              fmt::join(a.heads, ","), b.source, fmt::join(b.heads, ","));
  ATLAS_CHECK(a.kind == b.kind, InputError, "diff: {} is '{}', {} is '{}'", a.source, a.kind, b.source, b.kind);
  Result r;
  r.data = a;
  r.data.topk = 0;
  for (size_t i = 0; i < a.attention.size(); ++i) r.data.attention[i] = a.attention[i] - b.attention[i];
  r.step = {{"op", "diff"}, {"b", b.source}, {"by_words", by_words}};
  if (by_words) r.step["differing_words"] = differing;   // [position, word of A, word of B]
  if (b.meta) r.step["b_command_line"] = b.meta->command_line;
  if (by_words) r.step["level"] = "word";
  return r;
}

Result slice(const AttentionData& d, const SliceOptions& o) {
  const std::string owner = "'" + d.source + "'";
  std::vector<int64_t> lp = select_indices(o.layers, d.layers, {"--layers", "layer", owner});
  std::vector<int64_t> hp = select_indices(o.heads, d.heads, {"--heads", "head", owner});
  int64_t begin = 0, end = d.q;
  if (!o.tokens.empty()) {
    size_t colon = o.tokens.find(':');
    ATLAS_CHECK(colon != std::string::npos, InputError, "--tokens '{}': expected a:b (Python slice, e.g. 1:5, :-1)",
                o.tokens);
    auto bound = [&](const std::string& s, int64_t dflt) -> int64_t {
      if (s.empty()) return dflt;
      size_t pos = 0;
      int64_t v = 0;
      try {
        v = std::stoll(s, &pos);
      } catch (const std::exception&) {
        pos = 0;
      }
      ATLAS_CHECK(pos == s.size() && pos > 0, InputError, "--tokens '{}': '{}' is not an integer", o.tokens, s);
      if (v < 0) v += d.q;
      return std::clamp<int64_t>(v, 0, d.q);
    };
    begin = bound(o.tokens.substr(0, colon), 0);
    end = bound(o.tokens.substr(colon + 1), d.q);
    ATLAS_CHECK(begin < end, InputError, "--tokens '{}' selects no token of {} ({} tokens)", o.tokens, d.source, d.q);
  }
  const bool cut_keys = d.q == d.k;   // a square matrix: the same range of keys
  std::vector<int64_t> layers, heads;
  for (int64_t p : lp) layers.push_back(d.layers[p]);
  for (int64_t p : hp) heads.push_back(d.heads[p]);
  Result r;
  AttentionData base = d;
  base.q = end - begin;
  if (cut_keys) base.k = end - begin;
  r.data = reshaped(base, layers, heads);
  AttentionData& o2 = r.data;
  const int64_t kb = cut_keys ? begin : 0;
  for (size_t li = 0; li < lp.size(); ++li)
    for (size_t hi = 0; hi < hp.size(); ++hi) {
      const float* m = d.matrix(lp[li], hp[hi]);
      float* out = matrix_of(o2, static_cast<int64_t>(li), static_cast<int64_t>(hi));
      for (int64_t i = 0; i < o2.q; ++i)
        for (int64_t j = 0; j < o2.k; ++j) out[i * o2.k + j] = m[(begin + i) * d.k + kb + j];
    }
  auto cut = [&](auto& v) {
    if (static_cast<int64_t>(v.size()) == d.q) v = {v.begin() + begin, v.begin() + end};
  };
  cut(o2.tokens);
  cut(o2.token_labels);
  cut(o2.offsets);
  cut(o2.special);
  cut(o2.input_ids);
  cut(o2.token_type_ids);
  if (cut_keys) {
    cut(o2.key_tokens);
    cut(o2.key_token_labels);
    cut(o2.key_special);
  }
  r.step = {{"op", "slice"}, {"layers", layers}, {"heads", heads}, {"tokens", {begin, end}}};
  return r;
}

Result topk(const AttentionData& d, int64_t k) {
  ATLAS_CHECK(k > 0, InputError, "topk: K must be positive, got {}", k);
  Result r;
  r.data = d;
  r.topk = std::min(k, d.k);
  r.step = {{"op", "topk"}, {"k", k}};
  return r;
}

Result value_norm(const AttentionData& d, const std::string& spec, bool normalize) {
  // The norms live next to the attention of the same document.
  std::string file = spec, prefix;
  io::NdArray norms;
  {
    std::error_code ec;
    if (std::filesystem::is_regular_file(spec, ec)) {
      io::NpzReader npz(spec);
      ATLAS_CHECK(npz.contains("value_norms"), InputError,
                  "{}: no 'value_norms' (extract with `atlas extract --value-norms` to store ‖f(x)‖ per head)", spec);
      norms = npz.get("value_norms");
    } else {
      ATLAS_FAIL(InputError, "value-norm reads 'value_norms' from an NPZ file; '{}' is not one (for a store, "
                 "`atlas process cat STORE DOC -o doc.npz` first)", spec);
    }
  }
  const auto& shape = norms.shape();
  ATLAS_CHECK(shape.size() == 3 && shape[0] == d.num_layers && shape[1] == d.num_heads && shape[2] == d.k, FormatError,
              "{}: 'value_norms' must be [L, H, K] = [{}, {}, {}], got [{}]", file, d.num_layers, d.num_heads, d.k,
              fmt::join(shape, ", "));
  std::vector<float> n = norms.to_float();
  Result r;
  r.data = d;
  r.data.topk = 0;
  for (int64_t l = 0; l < d.num_layers; ++l)
    for (int64_t h = 0; h < d.num_heads; ++h) {
      float* m = matrix_of(r.data, l, h);
      const float* nv = n.data() + (l * d.num_heads + h) * d.k;
      for (int64_t i = 0; i < d.q; ++i) {
        double s = 0;
        for (int64_t j = 0; j < d.k; ++j) s += (m[i * d.k + j] *= nv[j]);
        if (normalize && s > 0)
          for (int64_t j = 0; j < d.k; ++j) m[i * d.k + j] = static_cast<float>(m[i * d.k + j] / s);
      }
    }
  r.step = {{"op", "value-norm"}, {"normalize", normalize}};
  return r;
}

void write_result(const Result& r, format::DocumentWriter& w, const std::string& command_line) {
  const AttentionData& d = r.data;
  format::AttentionMeta meta = d.meta ? *d.meta : format::AttentionMeta::now();
  nlohmann::json step = r.step;
  step["input"] = d.source;
  step["command_line"] = command_line;
  step["version"] = atlas::version();
  step["git_revision"] = atlas::git_revision();
  step["created"] = format::utc_now_iso();
  meta.process.push_back(step);
  meta.dtype = "float32";
  if (r.topk > 0) {
    meta.topk = r.topk;
  } else {
    meta.topk.reset();
  }

  format::AttentionShape shape;
  shape.layers = d.num_layers;
  shape.heads = d.num_heads;
  shape.q = d.q;
  shape.k = d.k;
  shape.dtype = io::DType::F32;
  shape.topk = r.topk;
  auto stream = w.begin_attention(d.kind, shape);
  const int64_t per_layer = d.num_heads * d.q * d.k;
  if (r.topk == 0) {
    for (int64_t l = 0; l < d.num_layers; ++l)
      stream.write_layer(d.attention.data() + l * per_layer, static_cast<size_t>(per_layer) * sizeof(float));
  } else {
    const int64_t k = r.topk;
    std::vector<float> values(static_cast<size_t>(d.num_heads * d.q * k));
    std::vector<int32_t> indices(values.size());
    std::vector<int32_t> order(static_cast<size_t>(d.k));
    for (int64_t l = 0; l < d.num_layers; ++l) {
      for (int64_t row = 0; row < d.num_heads * d.q; ++row) {
        const float* m = d.attention.data() + l * per_layer + row * d.k;
        std::iota(order.begin(), order.end(), 0);
        // Largest first; ties by lower key index, so the result does not depend on the sort.
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int32_t x, int32_t y) { return m[x] > m[y] || (m[x] == m[y] && x < y); });
        for (int64_t c = 0; c < k; ++c) {
          values[row * k + c] = m[order[c]];
          indices[row * k + c] = order[c];
        }
      }
      stream.write_layer(values.data(), values.size() * sizeof(float));
      stream.write_layer_indices(indices.data(), indices.size());
    }
  }
  stream.finish();
  w.write_selection(d.layers, d.heads);
  format::TokenArrays t;
  t.tokens = d.tokens;
  t.token_labels = d.token_labels;
  for (const auto& o : d.offsets) {
    t.offsets.push_back(o[0]);
    t.offsets.push_back(o[1]);
  }
  if (t.offsets.empty()) t.offsets.assign(static_cast<size_t>(2 * d.q), -1);
  t.special = d.special;
  if (t.special.empty()) t.special.assign(static_cast<size_t>(d.q), 0);
  t.input_ids = d.input_ids;
  if (t.input_ids.empty()) t.input_ids.assign(static_cast<size_t>(d.q), -1);
  t.token_type_ids = d.token_type_ids;
  w.write_tokens(t);
  for (const auto& [name, array] : r.extra) w.write_array(name, array);
  w.write_meta(meta);
}

void write_result(const Result& r, const std::filesystem::path& output, const std::string& command_line) {
  io::NpzWriter npz(output);
  format::DocumentWriter w(npz);
  write_result(r, w, command_line);
  npz.close();
}

StoreSummary process_store(const std::filesystem::path& input, const std::filesystem::path& output,
                           const std::string& kind, const std::function<Result(const format::AttentionData&)>& op,
                           const nlohmann::json& step, const std::string& command_line) {
  format::StoreReader in(input);
  format::StoreInfo info = in.info();
  info.command_line = command_line;
  info.created = format::utc_now_iso();
  nlohmann::json steps = info.run.contains("process") ? info.run["process"] : nlohmann::json::array();
  steps.push_back(step);
  info.run["process"] = steps;
  info.extra["processed_from"] = std::filesystem::absolute(input).string();
  format::StoreWriterOptions wo;
  wo.resume = false;
  format::StoreWriter out(output, info, wo);
  StoreSummary s;
  for (const format::ManifestEntry& e : in.entries()) {
    if (!e.ok()) {
      // Kept as failed, with its error, so the output counts it as the input did.
      format::ManifestEntry f = e;
      out.record_failure(f);
      ++s.failed;
      s.failures.push_back(e.id + ": " + e.error);
      continue;
    }
    format::AttentionData d = load(input.string() + ":" + e.id, kind);
    Result r = op(d);
    format::DocumentWriter& w = out.begin_document(e.id);
    write_result(r, w, command_line);
    format::ManifestEntry done = e;
    done.tokens = r.data.q;
    out.end_document(done);
    ++s.documents;
  }
  out.close();
  return s;
}

}  // namespace atlas::process
