#include "extract/session.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/utf8.hpp"
#include "atlas/io/checkpoint.hpp"

namespace atlas::extract {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void check_model_dir(const fs::path& dir) {
  std::error_code ec;
  ATLAS_CHECK(fs::exists(dir, ec), InputError, "model directory '{}' does not exist", dir.string());
  ATLAS_CHECK(fs::is_directory(dir, ec), InputError, "model path '{}' is not a directory", dir.string());
  ATLAS_CHECK(fs::exists(dir / "config.json", ec), InputError,
              "model directory '{}' has no config.json (expected a Hugging Face model folder)", dir.string());
}

at::ScalarType storage_type(const std::string& dtype) { return dtype == "float16" ? at::kHalf : at::kFloat; }
io::DType storage_np(const std::string& dtype) { return dtype == "float16" ? io::DType::F16 : io::DType::F32; }

/// Lower-precision compute through autocast: matrix products run in `dtype` (oneDNN on CPU), the
/// rest as the model code says (softmax of Llama in float32, as transformers does).
class AutocastScope {
 public:
  AutocastScope(const std::string& compute_dtype, bool cuda) {
    if (compute_dtype == "float32") return;
    const at::ScalarType t = compute_dtype == "bfloat16" ? at::kBFloat16 : at::kHalf;
    active_ = true;
    cuda_ = cuda;
    if (cuda) {
      prev_enabled_ = at::autocast::is_enabled();
      prev_dtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_autocast_gpu_dtype(t);
      at::autocast::set_enabled(true);
    } else {
      prev_enabled_ = at::autocast::is_cpu_enabled();
      prev_dtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_autocast_cpu_dtype(t);
      at::autocast::set_cpu_enabled(true);
    }
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!active_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    if (cuda_) {
      at::autocast::set_enabled(prev_enabled_);
      at::autocast::set_autocast_gpu_dtype(prev_dtype_);
    } else {
      at::autocast::set_cpu_enabled(prev_enabled_);
      at::autocast::set_autocast_cpu_dtype(prev_dtype_);
    }
  }

 private:
  bool active_ = false, cuda_ = false, prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kFloat;
};

/// Receives attention as the model emits it: the selected heads of each selected layer, cut to
/// every document's own length, converted to the storage dtype (or reduced to top-k), and either
/// streamed into one document's member or kept per document.
class Collector final : public models::Taps {
 public:
  Collector(const Session& session, std::vector<int64_t> lengths, format::DocumentWriter::AttentionStream* stream,
            bool want_mean, std::vector<DocumentResult>& results)
      : session_(session), lengths_(std::move(lengths)), stream_(stream), want_mean_(want_mean), results_(results) {
    const auto& heads = session.heads();
    all_heads_ = static_cast<int64_t>(heads.size()) == session.info().num_heads;
    store_ = storage_type(session.options().dtype);
    topk_ = session.options().topk;
    row_chunk_ = session.options().row_chunk;
  }

  bool wants(const std::string& name, int64_t layer) const override {
    const auto& l = session_.layers();
    return name == "attn_probs" && std::binary_search(l.begin(), l.end(), layer);
  }

  void emit(const std::string& name, int64_t layer, const at::Tensor& value) override {
    if (!wants(name, layer)) return;
    const auto& l = session_.layers();
    ATLAS_CHECK(next_ < l.size() && l[next_] == layer, Error, "internal: attention of layer {} emitted out of order",
                layer);
    ++next_;
    if (!all_heads_ && !head_index_.defined())
      head_index_ = at::tensor(session_.heads(), at::kLong).to(value.device());
    for (size_t b = 0; b < lengths_.size(); ++b) {
      at::Tensor p = value.select(0, static_cast<int64_t>(b));                       // [H,T,T]
      if (!all_heads_) p = p.index_select(0, head_index_);                             // [H_sel,T,T]
      const int64_t n = lengths_[b];
      if (n != p.size(1)) p = p.narrow(1, 0, n).narrow(2, 0, n);                      // [H_sel,n,n]
      DocumentResult& r = results_[b];
      if (want_mean_) {
        at::Tensor m = p.to(at::kFloat).mean(0).to(at::kCPU);
        r.mean = r.mean.defined() ? r.mean + m : m;
      }
      if (topk_ > 0) {
        auto [values, indices] = at::topk(p.to(at::kFloat), std::min(topk_, n), -1);  // [H_sel,n,k]
        LayerBlock block{values.to(store_).to(at::kCPU).contiguous(), indices.to(at::kInt).to(at::kCPU).contiguous()};
        if (stream_) {
          stream_->write_layer(block.values.data_ptr(), block.values.nbytes());
          stream_->write_layer_indices(block.indices.data_ptr<int32_t>(), static_cast<size_t>(block.indices.numel()));
        } else {
          r.layers.push_back(std::move(block));
        }
      } else if (stream_) {
        write_streamed(p);
      } else {
        r.layers.push_back({p.to(store_).to(at::kCPU).contiguous(), {}});
      }
    }
  }

  size_t layers_seen() const { return next_; }

 private:
  /// One head (or --row-chunk rows of it) at a time, so the converted copy stays small.
  void write_streamed(const at::Tensor& p) {
    if (p.device().is_cpu() && p.scalar_type() == store_ && p.is_contiguous()) {
      stream_->write_part(p.data_ptr(), p.nbytes());
      return;
    }
    const int64_t rows = p.size(1);
    const int64_t chunk = row_chunk_ > 0 ? std::min(row_chunk_, rows) : rows;
    for (int64_t h = 0; h < p.size(0); ++h) {
      for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        at::Tensor block = p.select(0, h).narrow(0, r0, std::min(chunk, rows - r0)).to(store_).to(at::kCPU).contiguous();
        stream_->write_part(block.data_ptr(), block.nbytes());
      }
    }
  }

  const Session& session_;
  std::vector<int64_t> lengths_;
  format::DocumentWriter::AttentionStream* stream_;
  bool want_mean_;
  std::vector<DocumentResult>& results_;
  bool all_heads_ = true;
  at::Tensor head_index_;
  at::ScalarType store_ = at::kFloat;
  int64_t topk_ = 0, row_chunk_ = 0;
  size_t next_ = 0;
};

std::string join_ids(const std::vector<int64_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

}  // namespace

Session::Session(const RunOptions& o) : options_(o) {
  const auto t0 = Clock::now();
  ATLAS_CHECK(o.dtype == "float32" || o.dtype == "float16", InputError,
              "unknown --dtype '{}' (expected float32 or float16)", o.dtype);
  const bool cuda = o.device.rfind("cuda", 0) == 0;
  ATLAS_CHECK(o.device == "cpu" || cuda, InputError, "unknown --device '{}' (expected cpu, cuda or cuda:N)", o.device);
  if (cuda) {
    ATLAS_CHECK(o.compute_dtype == "float32" || o.compute_dtype == "bfloat16" || o.compute_dtype == "float16",
                InputError, "unknown --compute-dtype '{}' (expected float32, bfloat16 or float16)", o.compute_dtype);
  } else {
    ATLAS_CHECK(o.compute_dtype != "float16", InputError,
                "--compute-dtype float16 needs --device cuda: LibTorch has no float16 matrix product on CPU "
                "(use bfloat16)");
    ATLAS_CHECK(o.compute_dtype == "float32" || o.compute_dtype == "bfloat16", InputError,
                "unknown --compute-dtype '{}' (expected float32 or bfloat16)", o.compute_dtype);
  }
  ATLAS_CHECK(o.topk >= 0, InputError, "--topk must be positive, got {}", o.topk);
  ATLAS_CHECK(o.row_chunk >= 0, InputError, "--row-chunk must be positive, got {}", o.row_chunk);
  check_model_dir(o.model_dir);

  threads_ = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads_);

  models::LoadOptions load;
  load.device = o.device;
  model_ = models::load_model(o.model_dir, load);
  try {
    tokenizer_ = tokenize::load_tokenizer(o.tokenizer_dir.empty() ? o.model_dir : o.tokenizer_dir);
  } catch (const Error&) {
    if (!o.tokenizer_dir.empty()) throw;   // asked for by name: its failure is the job's
    tokenizer_.reset();   // id input works without one; prepare_text() reloads to report why
  }
  layers_ = parse_index_list(o.layers, info().num_layers, "layer");
  heads_ = parse_index_list(o.heads, info().num_heads, "head");
  checkpoint_sha256_ = io::checkpoint_hash(info().checkpoint_files);
  seconds_load_ = seconds_since(t0);
}

Session::~Session() = default;

std::string Session::tokenizer_kind() const { return tokenizer_ ? tokenizer_->kind() : "none"; }

Prepared Session::prepare_text(const std::string& text, const std::optional<std::string>& pair) const {
  ATLAS_CHECK(!text.empty(), InputError, "the input text is empty");
  const size_t bad = utf8::first_invalid(text);
  ATLAS_CHECK(bad == std::string::npos, InputError,
              "the input text is not valid UTF-8 (bad byte 0x{:02x} at byte offset {})",
              static_cast<unsigned char>(text[bad]), bad);
  if (pair) {
    ATLAS_CHECK(!pair->empty(), InputError, "the second text (--pair) is empty");
    ATLAS_CHECK(utf8::valid(*pair), InputError, "the second text (--pair) is not valid UTF-8");
  }
  if (!tokenizer_) (void)tokenize::load_tokenizer(options_.model_dir);   // throws the reason (no --tokenizer)
  const tokenize::Tokenizer& tok = *tokenizer_;
  tokenize::Encoding enc = pair ? tok.encode_pair(text, *pair, options_.add_special_tokens)
                                : tok.encode(text, options_.add_special_tokens);
  ATLAS_CHECK(enc.size() > 0, InputError, "the input text produced no tokens");
  Prepared p;
  p.source = "text";
  p.text = text;
  p.text_pair = pair;
  p.sha256 = sha256_hex(pair ? text + '\0' + *pair : text);
  format::TokenArrays& t = p.tokens;
  t.input_ids = enc.ids;
  t.tokens = enc.tokens;
  t.special = enc.special_mask;
  if (pair) t.token_type_ids = enc.type_ids;
  for (size_t i = 0; i < enc.size(); ++i) {
    const bool sp = enc.special_mask[i] != 0;
    t.offsets.push_back(sp ? -1 : enc.offsets[i].first);
    t.offsets.push_back(sp ? -1 : enc.offsets[i].second);
    t.token_labels.push_back(tok.display(enc.ids[i]));
  }
  for (int64_t id : t.input_ids) {
    ATLAS_CHECK(id >= 0 && id < info().vocab_size, InputError,
                "token id {} is outside the model's vocabulary (expected 0 <= id < {}); does the tokenizer belong "
                "to this model?", id, info().vocab_size);
  }
  return p;
}

Prepared Session::prepare_ids(const std::vector<int64_t>& ids) const {
  ATLAS_CHECK(!ids.empty(), InputError, "the id list is empty");
  Prepared p;
  p.source = "ids";
  p.sha256 = sha256_hex(join_ids(ids));
  format::TokenArrays& t = p.tokens;
  t.input_ids = ids;
  for (int64_t id : ids) {
    ATLAS_CHECK(id >= 0 && id < info().vocab_size, InputError,
                "input id {} is outside the vocabulary (expected 0 <= id < {})", id, info().vocab_size);
    t.tokens.push_back(tokenizer_ ? tokenizer_->id_to_token(id) : fmt::format("[{}]", id));
    t.token_labels.push_back(tokenizer_ ? tokenizer_->display(id) : fmt::format("[{}]", id));
    t.offsets.push_back(-1);
    t.offsets.push_back(-1);
    t.special.push_back(0);
  }
  return p;
}

std::vector<Prepared> Session::split_windows(const Prepared& p, int64_t window, int64_t stride) const {
  const int64_t n = p.size();
  if (window <= 0 || n <= window) return {p};
  if (stride <= 0) stride = std::max<int64_t>(1, window / 2);
  std::vector<int64_t> starts;
  for (int64_t s = 0; s + window < n; s += stride) starts.push_back(s);
  if (starts.empty() || starts.back() + window < n) starts.push_back(n - window);
  std::vector<Prepared> out;
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t s = starts[k];
    Prepared w = p;
    w.id = fmt::format("{}#w{}", p.id, k);
    w.source_id = p.id;
    w.window_index = static_cast<int64_t>(k);
    w.window_offset = s;
    auto cut = [&](auto& v, int64_t per) {
      using V = std::decay_t<decltype(v)>;
      if (v.empty()) return;
      v = V(v.begin() + s * per, v.begin() + (s + window) * per);
    };
    cut(w.tokens.input_ids, 1);
    cut(w.tokens.tokens, 1);
    cut(w.tokens.token_labels, 1);
    cut(w.tokens.offsets, 2);
    cut(w.tokens.special, 1);
    cut(w.tokens.token_type_ids, 1);
    out.push_back(std::move(w));
  }
  return out;
}

at::Tensor Session::forward(const models::Inputs& inputs, models::Taps& taps) {
  c10::InferenceMode guard;
  AutocastScope autocast(options_.compute_dtype, options_.device != "cpu");
  const auto t0 = Clock::now();
  at::Tensor logits = model_->forward(inputs, taps, options_.logits);
  seconds_model_ += seconds_since(t0);
  return logits;
}

format::AttentionShape Session::shape_for(const Prepared& doc) const {
  format::AttentionShape s;
  s.layers = static_cast<int64_t>(layers_.size());
  s.heads = static_cast<int64_t>(heads_.size());
  s.q = s.k = doc.size();
  s.dtype = storage_np(options_.dtype);
  s.topk = options_.topk;
  return s;
}

DocumentResult Session::run_streaming(const Prepared& doc, format::DocumentWriter& writer, bool want_mean) {
  std::vector<DocumentResult> results(1);
  auto stream = writer.begin_attention(format::kSelfAttention, shape_for(doc));
  Collector collector(*this, {doc.size()}, &stream, want_mean, results);
  const at::Device device(options_.device);
  models::Inputs inputs;
  inputs.input_ids = at::tensor(doc.tokens.input_ids, at::kLong).unsqueeze(0).to(device);   // [1,Q]
  if (!doc.tokens.token_type_ids.empty())
    inputs.token_type_ids = at::tensor(doc.tokens.token_type_ids, at::kLong).unsqueeze(0).to(device);
  at::Tensor logits = forward(inputs, collector);
  ATLAS_CHECK(collector.layers_seen() == layers_.size(), Error, "internal: the model emitted {} of {} selected layers",
              collector.layers_seen(), layers_.size());
  stream.finish();
  if (logits.defined()) results[0].logits = logits.select(0, 0).to(at::kCPU, at::kFloat).contiguous();   // [Q,V]
  if (results[0].mean.defined()) results[0].mean = results[0].mean / static_cast<double>(layers_.size());
  return std::move(results[0]);
}

std::vector<DocumentResult> Session::run_batch(const std::vector<const Prepared*>& docs) {
  std::vector<DocumentResult> results(docs.size());
  if (docs.empty()) return results;
  int64_t t = 0;
  std::vector<int64_t> lengths;
  for (const Prepared* d : docs) {
    lengths.push_back(d->size());
    t = std::max(t, d->size());
  }
  const auto b = static_cast<int64_t>(docs.size());
  // Right padding: real tokens keep their positions, and padded keys are masked, so every
  // document's attention equals its unbatched attention.
  at::Tensor ids = at::zeros({b, t}, at::kLong), mask = at::zeros({b, t}, at::kLong);
  const bool types = !docs[0]->tokens.token_type_ids.empty();
  at::Tensor type_ids = types ? at::zeros({b, t}, at::kLong) : at::Tensor();
  const int64_t pad = info().pad_token_id >= 0 ? info().pad_token_id : 0;
  ids.fill_(pad);
  for (int64_t i = 0; i < b; ++i) {
    const auto& tk = docs[static_cast<size_t>(i)]->tokens;
    const int64_t n = tk.size();
    ids[i].narrow(0, 0, n).copy_(at::tensor(tk.input_ids, at::kLong));
    mask[i].narrow(0, 0, n).fill_(1);
    if (types && !tk.token_type_ids.empty()) type_ids[i].narrow(0, 0, n).copy_(at::tensor(tk.token_type_ids, at::kLong));
  }
  const at::Device device(options_.device);
  models::Inputs inputs;
  inputs.input_ids = ids.to(device);
  inputs.attention_mask = mask.to(device);
  if (types) inputs.token_type_ids = type_ids.to(device);
  Collector collector(*this, lengths, nullptr, false, results);
  at::Tensor logits = forward(inputs, collector);
  ATLAS_CHECK(collector.layers_seen() == layers_.size(), Error, "internal: the model emitted {} of {} selected layers",
              collector.layers_seen(), layers_.size());
  if (logits.defined()) {
    for (int64_t i = 0; i < b; ++i)
      results[static_cast<size_t>(i)].logits =
          logits.select(0, i).narrow(0, 0, lengths[static_cast<size_t>(i)]).to(at::kCPU, at::kFloat).contiguous();
  }
  return results;
}

format::AttentionMeta Session::meta_for(const Prepared& doc) const {
  format::AttentionMeta m = format::AttentionMeta::now();
  m.command_line = options_.command_line;
  const models::ModelInfo& i = info();
  m.model.path = fs::absolute(options_.model_dir).lexically_normal().string();
  m.model.model_type = i.model_type;
  m.model.model_class = i.model_class;
  m.model.num_layers = i.num_layers;
  m.model.num_heads = i.num_heads;
  m.model.num_kv_heads = i.num_kv_heads;
  m.model.vocab_size = i.vocab_size;
  m.model.causal = i.causal;
  m.model.checkpoint_format = i.checkpoint_format;
  m.model.checkpoint_sha256 = checkpoint_sha256_;
  m.tokenizer = tokenizer_kind();
  m.input.source = doc.source;
  m.input.text = doc.text;
  m.input.text_pair = doc.text_pair;
  m.input.add_special_tokens = options_.add_special_tokens;
  if (!doc.id.empty()) m.input.document_id = doc.id;
  m.input.window_index = doc.window_index;
  m.input.window_offset = doc.window_offset;
  m.dtype = options_.dtype;
  m.compute_dtype = options_.compute_dtype;
  m.device = options_.device;
  m.threads = threads_;
  if (options_.topk > 0) m.topk = options_.topk;
  return m;
}

void Session::write_rest(format::DocumentWriter& w, const Prepared& doc, const DocumentResult& r) const {
  w.write_selection(layers_, heads_);
  w.write_tokens(doc.tokens);
  if (r.logits.defined()) {
    io::NdArray arr(io::DType::F32, {r.logits.size(0), r.logits.size(1)});
    std::memcpy(arr.mutable_data(), r.logits.data_ptr(), r.logits.nbytes());
    w.write_array("logits", arr);
  }
  w.write_meta(meta_for(doc));
}

void Session::write_document(format::DocumentWriter& w, const Prepared& doc, const DocumentResult& r) const {
  auto stream = w.begin_attention(format::kSelfAttention, shape_for(doc));
  for (const LayerBlock& block : r.layers) {
    stream.write_layer(block.values.data_ptr(), block.values.nbytes());
    if (block.indices.defined())
      stream.write_layer_indices(block.indices.data_ptr<int32_t>(), static_cast<size_t>(block.indices.numel()));
  }
  stream.finish();
  write_rest(w, doc, r);
}

}  // namespace atlas::extract
