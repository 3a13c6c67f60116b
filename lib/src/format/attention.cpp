#include "atlas/core/json.hpp"
#include "atlas/format/attention.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>

#include "atlas/core/error.hpp"
#include "atlas/format/store.hpp"

namespace atlas::format {
namespace fs = std::filesystem;

// ======================================== writer ========================================

DocumentWriter::DocumentWriter(io::NpzWriter& npz, std::string prefix) : npz_(npz), prefix_(std::move(prefix)) {}

DocumentWriter::AttentionStream::AttentionStream(DocumentWriter& owner, std::string kind, AttentionShape shape)
    : owner_(&owner), kind_(std::move(kind)), shape_(shape) {
  ATLAS_CHECK(shape_.dtype == io::DType::F32 || shape_.dtype == io::DType::F16, InputError,
              "attention storage dtype must be float32 or float16, got {}", io::dtype_name(shape_.dtype));
  const std::vector<int64_t> dims{shape_.layers, shape_.heads, shape_.q, shape_.stored_k()};
  if (shape_.topk == 0) {
    dense_.emplace(owner.npz_.begin(owner.name(kind_), shape_.dtype, dims));
    owner.members_.push_back(owner.name(kind_));
  }
}

void DocumentWriter::AttentionStream::write_layer(const void* data, size_t nbytes) {
  const size_t expected = static_cast<size_t>(shape_.heads * shape_.q * shape_.stored_k()) *
                          io::dtype_size(shape_.dtype);
  ATLAS_CHECK(nbytes == expected, FormatError, "internal: an attention layer of '{}' has {} bytes, expected {}",
              kind_, nbytes, expected);
  if (dense_) {
    dense_->write(data, nbytes);
  } else {
    const auto* p = static_cast<const uint8_t*>(data);
    values_.insert(values_.end(), p, p + nbytes);
  }
}

void DocumentWriter::AttentionStream::write_part(const void* data, size_t nbytes) {
  ATLAS_CHECK(dense_.has_value(), FormatError, "internal: write_part on top-k attention");
  dense_->write(data, nbytes);
}

void DocumentWriter::AttentionStream::write_layer_indices(const int32_t* indices, size_t count) {
  ATLAS_CHECK(!dense_, FormatError, "internal: write_layer_indices on dense attention");
  indices_.insert(indices_.end(), indices, indices + count);
}

void DocumentWriter::AttentionStream::finish() {
  if (finished_) return;
  finished_ = true;
  if (dense_) {
    dense_->finish();
    return;
  }
  const std::vector<int64_t> dims{shape_.layers, shape_.heads, shape_.q, shape_.stored_k()};
  const size_t n = static_cast<size_t>(shape_.layers * shape_.heads * shape_.q * shape_.stored_k());
  ATLAS_CHECK(indices_.size() == n && values_.size() == n * io::dtype_size(shape_.dtype), FormatError,
              "internal: top-k attention of '{}' got {} indices and {} value bytes, expected {} each", kind_,
              indices_.size(), values_.size(), n);
  io::NdArray values(shape_.dtype, dims);
  if (n) std::memcpy(values.mutable_data(), values_.data(), values_.size());
  io::NdArray indices = io::NdArray::from<int32_t>(dims, indices_);
  io::NdArray dense_shape =
      io::NdArray::from<int64_t>({4}, std::vector<int64_t>{shape_.layers, shape_.heads, shape_.q, shape_.k});
  for (auto& [suffix, arr] : std::vector<std::pair<std::string, io::NdArray*>>{
           {"_topk_values", &values}, {"_topk_indices", &indices}, {"_topk_shape", &dense_shape}}) {
    owner_->write_array(kind_ + suffix, *arr);
  }
  values_.clear();
  indices_.clear();
}

DocumentWriter::AttentionStream DocumentWriter::begin_attention(const std::string& kind, const AttentionShape& shape) {
  return AttentionStream(*this, kind, shape);
}

void DocumentWriter::write_array(const std::string& member, const io::NdArray& array) {
  npz_.add(name(member), array);
  members_.push_back(name(member));
}

void DocumentWriter::write_selection(const std::vector<int64_t>& layers, const std::vector<int64_t>& heads) {
  write_array("layers", io::NdArray::from<int64_t>({static_cast<int64_t>(layers.size())}, layers));
  write_array("heads", io::NdArray::from<int64_t>({static_cast<int64_t>(heads.size())}, heads));
}

void DocumentWriter::write_tokens(const TokenArrays& t, const std::string& np) {
  const int64_t q = t.size();
  ATLAS_CHECK(static_cast<int64_t>(t.tokens.size()) == q && static_cast<int64_t>(t.token_labels.size()) == q &&
                  static_cast<int64_t>(t.offsets.size()) == 2 * q && static_cast<int64_t>(t.special.size()) == q,
              FormatError, "internal: token arrays of different lengths ({} ids)", q);
  write_array(np + "input_ids", io::NdArray::from<int64_t>({q}, t.input_ids));
  write_array(np + "tokens", io::NdArray::from_strings({q}, t.tokens));
  write_array(np + "token_labels", io::NdArray::from_strings({q}, t.token_labels));
  write_array(np + "offsets", io::NdArray::from<int64_t>({q, 2}, t.offsets));
  io::NdArray special(io::DType::Bool, {q});
  for (int64_t i = 0; i < q; ++i) special.as_mutable<bool>()[i] = t.special[i] != 0;
  write_array(np + "special", special);
  if (!t.token_type_ids.empty()) write_array(np + "token_type_ids", io::NdArray::from<int64_t>({q}, t.token_type_ids));
}

void DocumentWriter::write_meta(const AttentionMeta& meta) {
  write_array("meta", io::NdArray::scalar_string(meta.to_json().dump()));
}

// ======================================== reader ========================================

int64_t AttentionData::layer_position(int64_t index) const {
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i] == index) return static_cast<int64_t>(i);
  ATLAS_FAIL(InputError, "'{}' has no layer {} (stored layers: {})", source, index, fmt::join(layers, ", "));
}

int64_t AttentionData::head_position(int64_t index) const {
  for (size_t i = 0; i < heads.size(); ++i)
    if (heads[i] == index) return static_cast<int64_t>(i);
  ATLAS_FAIL(InputError, "'{}' has no head {} (stored heads: {})", source, index, fmt::join(heads, ", "));
}

std::vector<std::string> document_members(const io::NpzReader& npz, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& n : npz.names()) {
    if (n.size() <= prefix.size() || n.compare(0, prefix.size(), prefix) != 0) continue;
    std::string rest = n.substr(prefix.size());
    if (prefix.empty() && rest.find('/') != std::string::npos) continue;
    out.push_back(rest);
  }
  return out;
}

namespace {

/// Densifies `<kind>_topk_*` into [L,H,Q,K] float32.
std::vector<float> densify_topk(const io::NpzReader& npz, const std::string& base, const std::string& source,
                                std::vector<int64_t>& dims, int64_t& topk) {
  const io::NdArray shape = npz.get(base + "_topk_shape");
  dims = shape.to_int64();
  ATLAS_CHECK(dims.size() == 4 && std::all_of(dims.begin(), dims.end(), [](int64_t d) { return d > 0; }),
              FormatError, "{}: '{}_topk_shape' must hold 4 positive sizes [L, H, Q, K]", source, base);
  const io::NdArray values = npz.get(base + "_topk_values");
  const io::NdArray indices = npz.get(base + "_topk_indices");
  ATLAS_CHECK(values.ndim() == 4 && values.shape() == indices.shape() && values.shape()[0] == dims[0] &&
                  values.shape()[1] == dims[1] && values.shape()[2] == dims[2] && values.shape()[3] <= dims[3],
              FormatError, "{}: '{}_topk_values' [{}] and '{}_topk_indices' [{}] do not fit '{}_topk_shape' [{}]",
              source, base, fmt::join(values.shape(), ", "), base, fmt::join(indices.shape(), ", "), base,
              fmt::join(dims, ", "));
  topk = values.shape()[3];
  const std::vector<float> v = values.to_float();
  const std::vector<int64_t> idx = indices.to_int64();
  std::vector<float> dense(static_cast<size_t>(dims[0] * dims[1] * dims[2] * dims[3]), 0.0f);
  const int64_t rows = dims[0] * dims[1] * dims[2];
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < topk; ++j) {
      const int64_t col = idx[static_cast<size_t>(r * topk + j)];
      ATLAS_CHECK(col >= 0 && col < dims[3], FormatError, "{}: '{}_topk_indices' holds key {} outside [0, {})",
                  source, base, col, dims[3]);
      dense[static_cast<size_t>(r * dims[3] + col)] = v[static_cast<size_t>(r * topk + j)];
    }
  }
  return dense;
}

/// The fields read from the `meta` member (parsed JSON `j`); `file` names it in messages.
void set_meta(AttentionData& d, const nlohmann::json& j, const std::string& file) {
  d.meta = AttentionMeta::from_json(j, "'" + file + "'");
  const AttentionMeta& m = *d.meta;
  d.model_path = m.model.path;
  d.checkpoint_sha256 = m.model.checkpoint_sha256;
  d.command_line = m.command_line;
  d.text = m.input.text.value_or("");
  d.text_pair = m.input.text_pair.value_or("");
  d.created = m.created;
  d.version = m.version;
  std::string p = d.model_path;
  while (!p.empty() && p.back() == '/') p.pop_back();
  d.model_name = p.empty() ? m.model.model_type : fs::path(p).filename().string();
  if (j.contains("model") && j["model"].is_object() && j["model"].contains("causal")) d.causal = m.model.causal;
}

/// causal / causal_mask_ from meta and the kind (or, without meta, from the zeros above the diagonal).
void set_causal_mask(AttentionData& d) {
  const std::string& kind = d.kind;
  // meta.model.causal describes an encoder-decoder's encoder; its decoder is causal, cross is not.
  if (kind == kDecoderAttention) d.causal = true;
  if (kind == kCrossAttention) d.causal = false;
  if (d.causal.has_value()) {
    d.causal_mask_ = *d.causal && d.q == d.k;
  } else if (d.q == d.k && d.q > 1) {
    // No meta: a causal model leaves every entry above the diagonal exactly 0.
    bool all_zero = true;
    for (int64_t m = 0; m < d.num_layers * d.num_heads && all_zero; ++m) {
      const float* a = d.attention.data() + m * d.q * d.k;
      for (int64_t i = 0; i < d.q && all_zero; ++i)
        for (int64_t j = i + 1; j < d.k; ++j)
          if (a[i * d.k + j] != 0.0f) {
            all_zero = false;
            break;
          }
    }
    d.causal_mask_ = all_zero;
  }
}

}  // namespace

AttentionData read_document(const io::NpzReader& npz, const std::string& prefix, const std::string& source,
                            const std::string& kind_in) {
  AttentionData d;
  d.path = npz.path();
  d.source = source;
  const std::string& file = source;
  auto has = [&](const std::string& m) { return npz.contains(prefix + m); };
  auto get = [&](const std::string& m) { return npz.get(prefix + m); };
  auto has_kind = [&](const std::string& k) { return has(k) || has(k + "_topk_values"); };
  std::string kind = kind_in;
  if (kind == "encoder" || kind == "decoder" || kind == "cross") kind += "_attention";
  if (kind.empty()) {
    kind = has_kind(kSelfAttention) || !has_kind(kEncoderAttention) ? kSelfAttention : kEncoderAttention;
  }
  d.kind = kind;
  // Query tokens (and, but for cross-attention, key tokens) of the decoder kinds are the decoder's.
  const bool decoder_side = kind == kDecoderAttention || kind == kCrossAttention;
  const std::string tp = decoder_side ? "decoder_" : "";

  std::vector<int64_t> dims;
  if (has(kind)) {
    io::NdArray att = get(kind);
    ATLAS_CHECK(att.ndim() == 4, FormatError, "'{}': '{}' must be [L, H, Q, K], got {} dimensions", file, kind,
                att.ndim());
    dims = att.shape();
    d.attention = att.to_float();
  } else if (has(kind + "_topk_values")) {
    d.attention = densify_topk(npz, prefix + kind, file, dims, d.topk);
  } else {
    std::vector<std::string> names = document_members(npz, prefix);
    ATLAS_FAIL(FormatError, "'{}' has no array '{}' (has: {}); expected an `atlas extract` NPZ", file, kind,
               fmt::join(names, ", "));
  }
  d.num_layers = dims[0];
  d.num_heads = dims[1];
  d.q = dims[2];
  d.k = dims[3];
  ATLAS_CHECK(d.num_layers > 0 && d.num_heads > 0 && d.q > 0 && d.k > 0, FormatError,
              "'{}': '{}' is empty (shape [{}])", file, kind, fmt::join(dims, ", "));

  auto ints = [&](const std::string& name, int64_t n) {
    std::vector<int64_t> out;
    if (has(name)) {
      out = get(name).to_int64();
      ATLAS_CHECK(static_cast<int64_t>(out.size()) == n, FormatError,
                  "'{}': '{}' has {} entries, expected {} (from '{}')", file, name, out.size(), n, kind);
    } else {
      for (int64_t i = 0; i < n; ++i) out.push_back(i);
    }
    return out;
  };
  d.layers = ints(tp + "layers", d.num_layers);
  d.heads = ints(tp + "heads", d.num_heads);

  // One token axis: `<p>tokens`, `<p>token_labels` and `<p>special` for n positions.
  auto read_tokens = [&](const std::string& p, int64_t n, const char* axis, std::vector<std::string>& tokens,
                         std::vector<std::string>& labels, std::vector<uint8_t>& special) {
    ATLAS_CHECK(has(p + "tokens") || has(p + "token_labels"), FormatError, "'{}' has no array '{}tokens' (has: {})",
                file, p, fmt::join(document_members(npz, prefix), ", "));
    tokens = get(has(p + "tokens") ? p + "tokens" : p + "token_labels").to_strings();
    labels = has(p + "token_labels") ? get(p + "token_labels").to_strings() : tokens;
    ATLAS_CHECK(static_cast<int64_t>(tokens.size()) == n && labels.size() == tokens.size(), FormatError,
                "'{}': '{}tokens' has {} entries and '{}token_labels' {}, expected {} = {} (from '{}')", file, p,
                tokens.size(), p, labels.size(), axis, n, kind);
    special.assign(static_cast<size_t>(n), 0);
    if (has(p + "special")) {
      auto sp = get(p + "special").to_int64();
      ATLAS_CHECK(static_cast<int64_t>(sp.size()) == n, FormatError, "'{}': '{}special' has {} entries, expected {} = {}",
                  file, p, sp.size(), axis, n);
      for (int64_t i = 0; i < n; ++i) special[i] = sp[i] != 0;
    }
  };
  read_tokens(tp, d.q, "Q", d.tokens, d.token_labels, d.special);
  if (d.keys_differ()) {
    read_tokens("", d.k, "K", d.key_tokens, d.key_token_labels, d.key_special);
  } else {
    d.key_tokens = d.tokens;
    d.key_token_labels = d.token_labels;
    d.key_special = d.special;
  }
  if (has(tp + "input_ids")) d.input_ids = get(tp + "input_ids").to_int64();
  if (has(tp + "offsets")) {
    auto off = get(tp + "offsets").to_int64();
    ATLAS_CHECK(static_cast<int64_t>(off.size()) == 2 * d.q, FormatError,
                "'{}': '{}offsets' must be [Q, 2] = [{}, 2], has {} values", file, tp, d.q, off.size());
    for (int64_t i = 0; i < d.q; ++i) d.offsets.push_back({off[2 * i], off[2 * i + 1]});
  }
  if (!decoder_side && has("token_type_ids")) {
    d.token_type_ids = get("token_type_ids").to_int64();
    ATLAS_CHECK(static_cast<int64_t>(d.token_type_ids.size()) == d.q, FormatError,
                "'{}': 'token_type_ids' has {} entries, expected Q = {}", file, d.token_type_ids.size(), d.q);
  }

  if (has("meta")) {
    nlohmann::json j = atlas::parse_json(get("meta").to_string(), "'" + file + "' member 'meta'", false);
    ATLAS_CHECK(!j.is_discarded(), FormatError, "'{}': 'meta' is not valid JSON", file);
    set_meta(d, j, file);
  }
  set_causal_mask(d);
  return d;
}

AttentionData document_data(std::vector<float> attention, const AttentionShape& shape,
                            const std::vector<int64_t>& layers, const std::vector<int64_t>& heads,
                            const TokenArrays& tokens, const AttentionMeta& meta, const fs::path& path) {
  ATLAS_CHECK(shape.topk == 0 && shape.q == shape.k && shape.q == tokens.size() &&
                  static_cast<int64_t>(layers.size()) == shape.layers &&
                  static_cast<int64_t>(heads.size()) == shape.heads &&
                  static_cast<int64_t>(attention.size()) == shape.layers * shape.heads * shape.q * shape.k &&
                  static_cast<int64_t>(tokens.offsets.size()) == 2 * shape.q &&
                  static_cast<int64_t>(tokens.special.size()) == shape.q,
              Error, "internal: document_data of inconsistent parts ({} tokens, shape [{}, {}, {}, {}])", tokens.size(),
              shape.layers, shape.heads, shape.q, shape.k);
  AttentionData d;
  d.path = path;
  d.source = path.string();
  d.kind = kSelfAttention;
  d.num_layers = shape.layers;
  d.num_heads = shape.heads;
  d.q = shape.q;
  d.k = shape.k;
  d.attention = std::move(attention);
  d.layers = layers;
  d.heads = heads;
  d.input_ids = tokens.input_ids;
  d.tokens = tokens.tokens;
  d.token_labels = tokens.token_labels;
  d.special.resize(tokens.special.size());
  for (size_t i = 0; i < tokens.special.size(); ++i) d.special[i] = tokens.special[i] != 0;
  for (int64_t i = 0; i < d.q; ++i) d.offsets.push_back({tokens.offsets[2 * i], tokens.offsets[2 * i + 1]});
  d.token_type_ids = tokens.token_type_ids;
  d.key_tokens = d.tokens;
  d.key_token_labels = d.token_labels;
  d.key_special = d.special;
  // Through JSON, as the reader sees the `meta` member.
  set_meta(d, nlohmann::json::parse(meta.to_json().dump()), d.source);
  set_causal_mask(d);
  return d;
}

AttentionData load_attention(const std::string& spec, const std::string& kind) {
  std::error_code ec;
  const fs::path as_path(spec);
  if (fs::is_regular_file(as_path, ec)) {
    io::NpzReader npz(as_path);
    return read_document(npz, "", spec, kind);
  }
  if (fs::is_directory(as_path, ec) && is_store(as_path)) {
    StoreReader store(as_path);
    std::vector<const ManifestEntry*> ok;
    for (const auto& e : store.entries())
      if (e.ok()) ok.push_back(&e);
    ATLAS_CHECK(ok.size() == 1, InputError,
                "'{}' is a store of {} documents: name one as '{}:DOC' (e.g. '{}:{}')", spec, ok.size(), spec,
                spec, ok.empty() ? std::string("ID") : ok.front()->id);
    return store.read(ok.front()->id, kind);
  }
  // STORE:DOC — the first ':' after which the left part is a store folder.
  for (size_t pos = spec.find(':'); pos != std::string::npos; pos = spec.find(':', pos + 1)) {
    const fs::path dir(spec.substr(0, pos));
    if (fs::is_directory(dir, ec) && is_store(dir)) {
      StoreReader store(dir);
      return store.read(spec.substr(pos + 1), kind);
    }
  }
  ATLAS_FAIL(InputError, "input '{}' does not exist (expected an attention .npz, a store folder, or STORE:DOC)",
             spec);
}

}  // namespace atlas::format
