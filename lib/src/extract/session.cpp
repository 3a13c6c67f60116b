#include "extract/session.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/InferenceMode.h>

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/memory.hpp"
#include "atlas/core/utf8.hpp"
#include "atlas/io/checkpoint.hpp"
#include "atlas/io/hub.hpp"

namespace atlas::extract {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void check_model_dir(const fs::path& dir) {
  std::error_code ec;
  ATLAS_CHECK(fs::exists(dir, ec), InputError, "model directory '{}' does not exist", dir.string());
  if (models::is_torchscript_file(dir)) return;   // a custom model (docs/custom-models.md)
  ATLAS_CHECK(fs::is_directory(dir, ec), InputError, "model path '{}' is not a directory", dir.string());
  ATLAS_CHECK(fs::exists(dir / "config.json", ec) || fs::exists(dir / "adapter_config.json", ec), InputError,
              "model directory '{}' has no config.json (expected a Hugging Face model folder or a PEFT adapter)",
              dir.string());
}

RunOptions with_hub_models(RunOptions o) {
  io::HubOptions hub;
  o.model_dir = io::resolve_model(o.model_dir.string(), hub);
  if (!o.tokenizer_dir.empty()) o.tokenizer_dir = io::resolve_model(o.tokenizer_dir.string(), hub);
  return o;
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

/// Receives one attention kind as the model emits it: the selected heads of each selected layer,
/// cut to every document's own query / key lengths, converted to the storage dtype (or reduced to
/// top-k), and either streamed into one document's member or kept per document in `target`.
class Collector final : public models::Taps {
 public:
  /// What to collect: the tap name, the selection of its stack, where buffered layers go.
  struct Kind {
    const char* tap = models::kAttnProbs;
    const std::vector<int64_t>* layers = nullptr;
    const std::vector<int64_t>* heads = nullptr;
    int64_t num_heads = 0;
    std::vector<LayerBlock> DocumentResult::*target = &DocumentResult::layers;
  };

  Collector(const Session& session, Kind kind, std::vector<int64_t> q_lengths, std::vector<int64_t> k_lengths,
            format::DocumentWriter::AttentionStream* stream, bool want_mean, std::vector<DocumentResult>& results)
      : kind_(kind), q_lengths_(std::move(q_lengths)), k_lengths_(std::move(k_lengths)), stream_(stream),
        want_mean_(want_mean), results_(results) {
    all_heads_ = static_cast<int64_t>(kind_.heads->size()) == kind_.num_heads;
    store_ = storage_type(session.options().dtype);
    topk_ = session.options().topk;
    row_chunk_ = session.options().row_chunk;
  }
  Collector(const Session& session, std::vector<int64_t> lengths, format::DocumentWriter::AttentionStream* stream,
            bool want_mean, std::vector<DocumentResult>& results)
      : Collector(session, Kind{models::kAttnProbs, &session.layers(), &session.heads(), session.info().num_heads},
                  lengths, lengths, stream, want_mean, results) {}

  bool wants(const std::string& name, int64_t layer) const override {
    const auto& l = *kind_.layers;
    return name == kind_.tap && std::binary_search(l.begin(), l.end(), layer);
  }

  void emit(const std::string& name, int64_t layer, const at::Tensor& value) override {
    if (!wants(name, layer)) return;
    const auto& l = *kind_.layers;
    ATLAS_CHECK(next_ < l.size() && l[next_] == layer, Error, "internal: {} of layer {} emitted out of order",
                kind_.tap, layer);
    ++next_;
    if (!all_heads_ && !head_index_.defined()) head_index_ = at::tensor(*kind_.heads, at::kLong).to(value.device());
    for (size_t b = 0; b < q_lengths_.size(); ++b) {
      at::Tensor p = value.select(0, static_cast<int64_t>(b));                       // [H,Q,K]
      if (!all_heads_) p = p.index_select(0, head_index_);                             // [H_sel,Q,K]
      const int64_t nq = q_lengths_[b], nk = k_lengths_[b];
      if (nq != p.size(1)) p = p.narrow(1, 0, nq);
      if (nk != p.size(2)) p = p.narrow(2, 0, nk);                                    // [H_sel,nq,nk]
      DocumentResult& r = results_[b];
      if (want_mean_) {
        at::Tensor m = p.to(at::kFloat).mean(0).to(at::kCPU);
        r.mean = r.mean.defined() ? r.mean + m : m;
      }
      if (topk_ > 0) {
        auto [values, indices] = at::topk(p.to(at::kFloat), std::min(topk_, nk), -1);  // [H_sel,nq,k]
        LayerBlock block{values.to(store_).to(at::kCPU).contiguous(), indices.to(at::kInt).to(at::kCPU).contiguous()};
        if (stream_) {
          stream_->write_layer(block.values.data_ptr(), block.values.nbytes());
          stream_->write_layer_indices(block.indices.data_ptr<int32_t>(), static_cast<size_t>(block.indices.numel()));
        } else {
          (r.*kind_.target).push_back(std::move(block));
        }
      } else if (stream_) {
        write_streamed(p);
      } else {
        (r.*kind_.target).push_back({p.to(store_).to(at::kCPU).contiguous(), {}});
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

  Kind kind_;
  std::vector<int64_t> q_lengths_, k_lengths_;
  format::DocumentWriter::AttentionStream* stream_;
  bool want_mean_;
  std::vector<DocumentResult>& results_;
  bool all_heads_ = true;
  at::Tensor head_index_;
  at::ScalarType store_ = at::kFloat;
  int64_t topk_ = 0, row_chunk_ = 0;
  size_t next_ = 0;
};

/// Collects --value-norms: ‖f_h(x_j)‖ [H,T] of the selected layers and heads of one document.
class ValueNormCollector final : public models::Taps {
 public:
  ValueNormCollector(const std::vector<int64_t>& layers, const std::vector<int64_t>& heads, int64_t num_heads,
                     int64_t length)
      : layers_(layers), heads_(heads), all_heads_(static_cast<int64_t>(heads.size()) == num_heads), length_(length) {}
  bool wants(const std::string& name, int64_t layer) const override {
    return name == models::kValueNorms && std::binary_search(layers_.begin(), layers_.end(), layer);
  }
  void emit(const std::string& name, int64_t layer, const at::Tensor& value) override {
    if (!wants(name, layer)) return;
    at::Tensor n = value.select(0, 0).to(at::kCPU, at::kFloat);                       // [H,T]
    if (!all_heads_) n = n.index_select(0, at::tensor(heads_, at::kLong));
    blocks_.push_back(n.narrow(1, 0, length_).contiguous());
  }
  size_t layers_seen() const { return blocks_.size(); }
  at::Tensor stacked() const { return at::stack(blocks_).contiguous(); }           // [L_sel,H_sel,T]

 private:
  const std::vector<int64_t>& layers_;
  const std::vector<int64_t>& heads_;
  bool all_heads_;
  int64_t length_;
  std::vector<at::Tensor> blocks_;
};

/// The attention of a run with a key/value cache (Session::run_cached), assembled in memory as one
/// float32 [L_sel,H_sel,T,T] array: each selected layer's new rows [H_sel,T_new,T] (rounded through
/// the storage dtype) under the `reused` rows kept from the previous run's document.
class CachedCollector final : public models::Taps {
 public:
  CachedCollector(const Session& session, int64_t reused, int64_t total, const format::AttentionData* previous,
                  BufferPool& pool)
      : layers_(session.layers()), heads_(session.heads()), reused_(reused), total_(total), previous_(previous) {
    all_heads_ = static_cast<int64_t>(heads_.size()) == session.info().num_heads;
    store_ = storage_type(session.options().dtype);
    ATLAS_CHECK(reused_ == 0 || (previous_ && previous_->q >= reused_ &&
                                 previous_->num_layers == static_cast<int64_t>(layers_.size()) &&
                                 previous_->num_heads == static_cast<int64_t>(heads_.size())),
                Error, "internal: the cached document does not cover the {} reused tokens", reused_);
    // Room for up to 64 more tokens, so that a buffer let go can hold the next, longer text.
    const size_t per_token2 = layers_.size() * heads_.size();
    const size_t room = static_cast<size_t>((total_ + 63) / 64 * 64);
    attention = pool.take(per_token2 * static_cast<size_t>(total_ * total_), per_token2 * room * room);
  }
  bool wants(const std::string& name, int64_t layer) const override {
    return name == models::kAttnProbs && std::binary_search(layers_.begin(), layers_.end(), layer);
  }
  void emit(const std::string& name, int64_t layer, const at::Tensor& value) override {
    if (!wants(name, layer)) return;
    const size_t j = layers_seen++;
    ATLAS_CHECK(j < layers_.size() && layers_[j] == layer, Error, "internal: attention of layer {} emitted out of order",
                layer);
    at::Tensor p = value.select(0, 0);                                   // [H,T_new,T]
    if (!all_heads_) {
      if (!head_index_.defined()) head_index_ = at::tensor(heads_, at::kLong).to(value.device());
      p = p.index_select(0, head_index_);                                // [H_sel,T_new,T]
    }
    const int64_t fresh = total_ - reused_;
    ATLAS_CHECK(p.size(1) == fresh && p.size(2) == total_, Error,
                "internal: attention of layer {} has shape {}, expected [*, {}, {}]", layer, c10::str(p.sizes()),
                fresh, total_);
    // The values a file in the storage dtype holds, as float32.
    const at::Tensor rows = p.to(store_).to(at::kCPU).to(at::kFloat).contiguous();
    const float* src = rows.data_ptr<float>();
    const int64_t heads = static_cast<int64_t>(heads_.size()), t = total_;
    float* base = attention.data() + static_cast<size_t>(j) * static_cast<size_t>(heads * t * t);
    for (int64_t h = 0; h < heads; ++h) {
      float* m = base + h * t * t;
      if (reused_ > 0) {
        // Kept rows: columns < P of the previous document (the rest stays 0: causal).
        const int64_t tp = previous_->q;
        const float* prev = previous_->matrix(static_cast<int64_t>(j), h);
        for (int64_t i = 0; i < reused_; ++i)
          std::memcpy(m + i * t, prev + i * tp, static_cast<size_t>(reused_) * sizeof(float));
      }
      std::memcpy(m + reused_ * t, src + h * fresh * t, static_cast<size_t>(fresh * t) * sizeof(float));
    }
  }
  std::vector<float> attention;   // [L_sel,H_sel,T,T]
  size_t layers_seen = 0;

 private:
  const std::vector<int64_t>& layers_;
  const std::vector<int64_t>& heads_;
  int64_t reused_, total_;
  const format::AttentionData* previous_;
  bool all_heads_ = true;
  at::Tensor head_index_;
  at::ScalarType store_ = at::kFloat;
};

/// Hands each tap to every collector (encoder-decoders: one per attention kind).
class FanOut final : public models::Taps {
 public:
  explicit FanOut(std::vector<models::Taps*> taps) : taps_(std::move(taps)) {}
  bool wants(const std::string& name, int64_t layer) const override {
    return std::any_of(taps_.begin(), taps_.end(), [&](const models::Taps* t) { return t->wants(name, layer); });
  }
  void emit(const std::string& name, int64_t layer, const at::Tensor& value) override {
    for (models::Taps* t : taps_) t->emit(name, layer, value);
  }

 private:
  std::vector<models::Taps*> taps_;
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

Session::Session(const RunOptions& given) : options_(with_hub_models(given)) {
  const RunOptions& o = options_;   // --model / --tokenizer as folders (a Hub model id resolved)
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
  ATLAS_CHECK(o.gemm == "openblas" || o.gemm == "onednn", InputError, "unknown --gemm '{}' (expected openblas or onednn)",
              o.gemm);
  ATLAS_CHECK(o.gemm != "onednn" || models::linear_layout_available(), InputError,
              "--gemm onednn: this build has no oneDNN (install libdnnl-dev and rebuild), use --gemm openblas");
  ATLAS_CHECK(o.topk >= 0, InputError, "--topk must be positive, got {}", o.topk);
  ATLAS_CHECK(o.row_chunk >= 0, InputError, "--row-chunk must be positive, got {}", o.row_chunk);
  check_model_dir(o.model_dir);

  threads_ = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads_);

  models::LoadOptions load;
  load.device = o.device;
  load.adapters = o.adapters;
  load.base = o.base_dir;
  load.no_adapter = o.no_adapter;
  load.autograd = o.autograd;
  // oneDNN's sgemm serves float32 on the CPU only (bf16 runs under autocast, CUDA has cuBLAS).
  load.linear_layout = o.gemm == "onednn" && o.compute_dtype == "float32" && !cuda && !o.autograd;
  linear_layout_ = load.linear_layout && !models::is_torchscript_file(o.model_dir);  // a TorchScript module runs its own code
  model_ = models::load_model(o.model_dir, load);
  try {
    tokenizer_ = tokenize::load_tokenizer(o.tokenizer_dir.empty() ? o.model_dir : o.tokenizer_dir);
  } catch (const Error&) {
    if (!o.tokenizer_dir.empty()) throw;   // asked for by name: its failure is the job's
    tokenizer_.reset();   // id input works without one; prepare_text() reloads to report why
    // An adapter folder given as the model need not hold the tokenizer: its base's.
    if (!info().model_dir.empty() && info().model_dir != o.model_dir) {
      try {
        tokenizer_ = tokenize::load_tokenizer(info().model_dir);
      } catch (const Error&) {
      }
    }
  }
  layers_ = parse_index_list(o.layers, info().num_layers, "layer");
  heads_ = parse_index_list(o.heads, info().num_heads, "head");
  if (info().is_encoder_decoder) {
    // --layers / --heads apply to each stack: "-1" is the last encoder and the last decoder layer.
    const models::StackInfo& dec = info().stacks.at(1);
    decoder_layers_ = parse_index_list(o.layers, dec.num_layers, "decoder layer");
    decoder_heads_ = parse_index_list(o.heads, dec.num_heads, "decoder head");
  }
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
    // vocab_size 0: unknown (a TorchScript module without logits or a vocab_size attribute).
    ATLAS_CHECK(id >= 0 && (id < info().vocab_size || info().vocab_size <= 0), InputError,
                "token id {} is outside the model's vocabulary (expected 0 <= id < {}); does the tokenizer belong "
                "to this model?", id, info().vocab_size);
  }
  return p;
}

// Models often have more embedding rows than the tokenizer has tokens (padded vocabularies: Qwen2,
// Phi-2, Llama 3): such ids run fine and are labelled "[id]", as without a tokenizer.
std::string Session::token_of(int64_t id) const {
  if (tokenizer_ && id < tokenizer_->vocab_size()) {
    try {
      return tokenizer_->id_to_token(id);
    } catch (const Error&) {
    }
  }
  return fmt::format("[{}]", id);
}

std::string Session::label_of(int64_t id) const {
  if (tokenizer_ && id < tokenizer_->vocab_size()) {
    try {
      return tokenizer_->display(id);
    } catch (const Error&) {
    }
  }
  return fmt::format("[{}]", id);
}

Prepared Session::prepare_ids(const std::vector<int64_t>& ids) const {
  ATLAS_CHECK(!ids.empty(), InputError, "the id list is empty");
  Prepared p;
  p.source = "ids";
  p.sha256 = sha256_hex(join_ids(ids));
  format::TokenArrays& t = p.tokens;
  t.input_ids = ids;
  for (int64_t id : ids) {
    // vocab_size 0: unknown (a TorchScript module without logits or a vocab_size attribute).
    ATLAS_CHECK(id >= 0 && (id < info().vocab_size || info().vocab_size <= 0), InputError,
                "input id {} is outside the vocabulary (expected 0 <= id < {})", id, info().vocab_size);
    t.tokens.push_back(token_of(id));
    t.token_labels.push_back(label_of(id));
    t.offsets.push_back(-1);
    t.offsets.push_back(-1);
    t.special.push_back(0);
  }
  return p;
}

void Session::prepare_decoder(Prepared& p, const std::optional<std::string>& text,
                              const std::optional<std::vector<int64_t>>& ids) const {
  if (!is_encoder_decoder()) {
    ATLAS_CHECK(!text && !ids, InputError,
                "--decoder-text / --decoder-ids: {} ({}) is not an encoder-decoder model, it has no decoder input",
                info().model_class, info().model_type);
    return;
  }
  ATLAS_CHECK(!(text && ids), InputError, "give at most one decoder input: --decoder-text STR or --decoder-ids 1,2,3");
  const int64_t start = info().decoder_start_token_id;
  format::TokenArrays& t = p.decoder_tokens;
  t = {};
  auto push = [&](int64_t id, int64_t begin, int64_t end, bool special) {
    t.input_ids.push_back(id);
    t.tokens.push_back(token_of(id));
    t.token_labels.push_back(label_of(id));
    t.offsets.push_back(begin);
    t.offsets.push_back(end);
    t.special.push_back(special ? 1 : 0);
  };
  if (ids) {
    // Taken verbatim: transformers' decoder_input_ids, which start with decoder_start_token_id.
    ATLAS_CHECK(!ids->empty(), InputError, "the decoder id list (--decoder-ids) is empty");
    p.decoder_source = "ids";
    for (size_t i = 0; i < ids->size(); ++i) {
      const int64_t id = (*ids)[i];
      // vocab_size 0: unknown (a TorchScript module without logits or a vocab_size attribute).
    ATLAS_CHECK(id >= 0 && (id < info().vocab_size || info().vocab_size <= 0), InputError,
                  "decoder input id {} is outside the vocabulary (expected 0 <= id < {})", id, info().vocab_size);
      push(id, -1, -1, i == 0 && id == start);
    }
  } else {
    ATLAS_CHECK(start >= 0 && start < info().vocab_size, InputError,
                "{} has no usable decoder_start_token_id in '{}' (got {}); give --decoder-ids", info().model_class,
                (options_.model_dir / "config.json").string(), start);
    push(start, -1, -1, true);
    p.decoder_source = "start_token";
    if (text) {
      // As transformers' references: the decoder text without special tokens, after the start token.
      ATLAS_CHECK(!text->empty(), InputError, "the decoder text (--decoder-text) is empty");
      ATLAS_CHECK(utf8::valid(*text), InputError, "the decoder text (--decoder-text) is not valid UTF-8");
      if (!tokenizer_) (void)tokenize::load_tokenizer(options_.model_dir);   // throws the reason
      tokenize::Encoding enc = tokenizer_->encode(*text, false);
      for (size_t i = 0; i < enc.size(); ++i) {
        const bool sp = enc.special_mask[i] != 0;
        ATLAS_CHECK(enc.ids[i] >= 0 && enc.ids[i] < info().vocab_size, InputError,
                    "decoder token id {} is outside the model's vocabulary (expected 0 <= id < {})", enc.ids[i],
                    info().vocab_size);
        push(enc.ids[i], sp ? -1 : enc.offsets[i].first, sp ? -1 : enc.offsets[i].second, sp);
      }
      p.decoder_source = "text";
      p.decoder_text = text;
    }
  }
  ATLAS_CHECK(info().max_positions <= 0 || p.decoder_size() <= info().max_positions, InputError,
              "the decoder input has {} tokens but the model accepts at most {} (max_position_embeddings in '{}')",
              p.decoder_size(), info().max_positions, (options_.model_dir / "config.json").string());
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

format::AttentionShape Session::decoder_shape_for(const Prepared& doc, bool cross) const {
  format::AttentionShape s = shape_for(doc);
  s.layers = static_cast<int64_t>(decoder_layers_.size());
  s.heads = static_cast<int64_t>(decoder_heads_.size());
  s.q = doc.decoder_size();
  s.k = cross ? doc.size() : doc.decoder_size();
  return s;
}

models::Inputs Session::single_inputs(const Prepared& doc) const {
  const at::Device device(options_.device);
  models::Inputs inputs;
  inputs.input_ids = at::tensor(doc.tokens.input_ids, at::kLong).unsqueeze(0).to(device);   // [1,Q]
  if (!doc.tokens.token_type_ids.empty())
    inputs.token_type_ids = at::tensor(doc.tokens.token_type_ids, at::kLong).unsqueeze(0).to(device);
  return inputs;
}

DocumentResult Session::run_streaming(const Prepared& doc, format::DocumentWriter& writer, bool want_mean) {
  if (doc.size() >= 1024) {
    // Long texts: each layer's [H,T,T] maps are hundreds of MB. With glibc's dynamic mmap threshold
    // a freed map raises the threshold and the next one comes from the heap, which keeps ~100 MB
    // more resident; a fixed threshold returns every large block to the system when freed.
    static const bool fixed_threshold = mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1;
    (void)fixed_threshold;
  }
  if (is_encoder_decoder()) {
    ATLAS_CHECK(!options_.value_norms, InputError,
                "--value-norms: encoder-decoder models ('{}') are not supported yet", info().model_type);
    return run_encoder_decoder(doc, writer, want_mean);
  }
  std::vector<DocumentResult> results(1);
  auto stream = writer.begin_attention(format::kSelfAttention, shape_for(doc));
  Collector collector(*this, {doc.size()}, &stream, want_mean, results);
  ValueNormCollector norms(layers_, heads_, info().num_heads, doc.size());
  FanOut both({&collector, &norms});
  models::Taps& taps = options_.value_norms ? static_cast<models::Taps&>(both) : collector;
  at::Tensor logits = forward(single_inputs(doc), taps);
  ATLAS_CHECK(collector.layers_seen() == layers_.size(), Error, "internal: the model emitted {} of {} selected layers",
              collector.layers_seen(), layers_.size());
  if (options_.value_norms) {
    ATLAS_CHECK(norms.layers_seen() == layers_.size(), InputError,
                "--value-norms: model_type '{}' ({}) does not report value-vector norms; supported: the llama "
                "(llama, mistral, qwen2, gemma), gpt2 and bert (bert, roberta, xlm-roberta) families",
                info().model_type, info().model_class);
    results[0].value_norms = norms.stacked();
  }
  stream.finish();
  if (logits.defined()) results[0].logits = logits.select(0, 0).to(at::kCPU, at::kFloat).contiguous();   // [Q,V]
  if (results[0].mean.defined()) results[0].mean = results[0].mean / static_cast<double>(layers_.size());
  return std::move(results[0]);
}

bool Session::can_run_cached() const {
  const models::ModelInfo& i = info();
  return i.kv_cache && i.causal && !i.is_encoder_decoder && options_.topk == 0 && !options_.value_norms &&
         options_.compute_dtype == "float32";
}

std::vector<float> BufferPool::take(size_t n, size_t rounded) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = spare_.begin(); it != spare_.end(); ++it)
      if (it->capacity() >= n) {
        std::vector<float> v = std::move(*it);
        spare_.erase(it);
        v.assign(n, 0.0f);   // within capacity: the pages are there
        return v;
      }
  }
  std::vector<float> v;
  v.reserve(std::max(n, rounded));
  advise_huge_pages(v.data(), v.capacity() * sizeof(float));
  v.resize(n);
  return v;
}

void BufferPool::give(std::vector<float> buffer) {
  if (buffer.capacity() * sizeof(float) < (size_t{8} << 20)) return;   // small ones are cheap to make
  std::lock_guard<std::mutex> lock(mutex_);
  spare_.push_back(std::move(buffer));
  if (spare_.size() > kKeep) {
    // Keep the largest.
    auto smallest = std::min_element(spare_.begin(), spare_.end(),
                                     [](const auto& a, const auto& b) { return a.capacity() < b.capacity(); });
    spare_.erase(smallest);
  }
}

std::shared_ptr<const format::AttentionData> Session::pooled_document(const Prepared& doc, std::vector<float> attention,
                                                                     const format::AttentionMeta& meta,
                                                                     const std::shared_ptr<BufferPool>& pool,
                                                                     const fs::path& path) const {
  format::AttentionShape shape = shape_for(doc);
  shape.dtype = io::DType::F32;
  auto* made = new format::AttentionData(
      format::document_data(std::move(attention), shape, layers_, heads_, doc.tokens, meta, path));
  // The buffer goes back to the pool when the last holder lets the document go.
  return std::shared_ptr<const format::AttentionData>(made, [pool](const format::AttentionData* d) {
    auto* owned = const_cast<format::AttentionData*>(d);   // this deleter owns it now
    pool->give(std::move(owned->attention));
    delete owned;
  });
}

bool Session::can_run_in_memory() const {
  return !is_encoder_decoder() && options_.topk == 0 && !options_.value_norms;
}

CachedRun Session::run_in_memory(const Prepared& doc, const std::shared_ptr<BufferPool>& pool, const fs::path& path) {
  ATLAS_CHECK(can_run_in_memory(), Error, "internal: run_in_memory() on {} ({}) with --topk, --value-norms or an "
              "encoder-decoder", info().model_class, info().model_type);
  CachedCollector collector(*this, 0, doc.size(), nullptr, *pool);
  models::Inputs inputs = single_inputs(doc);
  inputs.last_logits_only = true;   // honoured by the kv_cache models; the others give every position's
  const at::Tensor logits = forward(inputs, collector);
  ATLAS_CHECK(collector.layers_seen == layers_.size(), Error, "internal: the model emitted {} of {} selected layers",
              collector.layers_seen, layers_.size());
  CachedRun run;
  run.meta = meta_for(doc);
  run.data = pooled_document(doc, std::move(collector.attention), run.meta, pool, path);
  if (logits.defined())
    run.logits = logits.select(0, 0).narrow(0, logits.size(1) - 1, 1).to(at::kCPU, at::kFloat).contiguous();
  return run;
}

CachedRun Session::run_cached(const Prepared& doc, RunCache& cache, const fs::path& path) {
  ATLAS_CHECK(can_run_cached(), Error, "internal: run_cached() on {} ({}), which has no key/value cache path",
              info().model_class, info().model_type);
  const std::vector<int64_t>& ids = doc.tokens.input_ids;
  const int64_t t = doc.size();
  int64_t p = 0;
  const int64_t common = static_cast<int64_t>(std::min(cache.ids.size(), ids.size()));
  while (p < common && cache.ids[static_cast<size_t>(p)] == ids[static_cast<size_t>(p)]) ++p;
  p = std::min(p, t - 1);   // the last token always runs (its logits are the next-token distribution)
  if (!cache.data || cache.data->q < p || cache.kv.length() < p) p = 0;
  try {
    if (p == 0) {
      cache.clear();
    } else {
      cache.kv.truncate(p);   // a changed token at P and everything after it is recomputed
    }
    cache.ids.clear();
    CachedRun run;
    CachedCollector collector(*this, p, t, cache.data.get(), *cache.pool);
    const at::Device device(options_.device);
    models::Inputs inputs;
    inputs.input_ids = at::tensor(std::vector<int64_t>(ids.begin() + p, ids.end()), at::kLong).unsqueeze(0).to(device);
    inputs.past = &cache.kv;
    inputs.last_logits_only = true;
    at::Tensor logits = forward(inputs, collector);
    ATLAS_CHECK(collector.layers_seen == layers_.size(), Error, "internal: the model emitted {} of {} selected layers",
                collector.layers_seen, layers_.size());
    ATLAS_CHECK(cache.kv.length() == t, Error, "internal: the key/value cache holds {} positions after a run of {}",
                cache.kv.length(), t);
    run.meta = meta_for(doc);
    run.data = pooled_document(doc, std::move(collector.attention), run.meta, cache.pool, path);
    cache.data = run.data;
    cache.ids = ids;
    if (logits.defined())
      run.logits = logits.select(0, 0).narrow(0, logits.size(1) - 1, 1).to(at::kCPU, at::kFloat).contiguous();
    run.reused = p;
    return run;
  } catch (...) {
    cache.clear();
    throw;
  }
}

void Session::write_cached(format::DocumentWriter& writer, const Prepared& doc, const CachedRun& run) const {
  const format::AttentionData& d = *run.data;
  const format::AttentionShape shape = shape_for(doc);
  ATLAS_CHECK(shape.layers == d.num_layers && shape.heads == d.num_heads && shape.q == d.q && shape.k == d.k, Error,
              "internal: write_cached of a document of another shape");
  auto stream = writer.begin_attention(format::kSelfAttention, shape);
  const at::ScalarType store = storage_type(options_.dtype);
  const int64_t per_layer = d.num_heads * d.q * d.k;
  for (int64_t l = 0; l < d.num_layers; ++l) {
    const float* block = d.attention.data() + l * per_layer;
    if (store == at::kFloat) {
      stream.write_part(block, static_cast<size_t>(per_layer) * sizeof(float));
    } else {
      const at::Tensor v = at::from_blob(const_cast<float*>(block), {per_layer}, at::kFloat).to(store).contiguous();
      stream.write_part(v.data_ptr(), v.nbytes());
    }
  }
  stream.finish();
  write_rest(writer, doc, DocumentResult(), &run.meta);
}

DocumentResult Session::run_encoder_decoder(const Prepared& doc, format::DocumentWriter& writer, bool want_mean) {
  // NPZ members are written one at a time. The encoder runs to its end before the decoder starts,
  // so its member streams layer by layer as usual; the decoder's self- and cross-attention of each
  // layer come interleaved and are buffered (the decoder input is short: T_dec x (T_dec + S) per
  // head and layer) and written after the forward pass.
  ATLAS_CHECK(doc.decoder_size() > 0, Error, "internal: no decoder input prepared");
  std::vector<DocumentResult> results(1);
  const models::StackInfo& enc = info().stacks.at(0);
  const models::StackInfo& dec = info().stacks.at(1);
  const int64_t s = doc.size(), t = doc.decoder_size();
  auto stream = writer.begin_attention(format::kEncoderAttention, shape_for(doc));
  Collector encoder(*this, {models::kEncoderAttnProbs, &layers_, &heads_, enc.num_heads, &DocumentResult::layers},
                    {s}, {s}, &stream, want_mean, results);
  Collector decoder(*this,
                    {models::kDecoderAttnProbs, &decoder_layers_, &decoder_heads_, dec.num_heads,
                     &DocumentResult::decoder_layers},
                    {t}, {t}, nullptr, false, results);
  Collector cross(*this,
                  {models::kCrossAttnProbs, &decoder_layers_, &decoder_heads_, dec.num_heads,
                   &DocumentResult::cross_layers},
                  {t}, {s}, nullptr, false, results);
  FanOut taps({&encoder, &decoder, &cross});
  const at::Device device(options_.device);
  models::Inputs inputs;
  inputs.input_ids = at::tensor(doc.tokens.input_ids, at::kLong).unsqueeze(0).to(device);                  // [1,S]
  inputs.decoder_input_ids = at::tensor(doc.decoder_tokens.input_ids, at::kLong).unsqueeze(0).to(device);  // [1,T]
  at::Tensor logits = forward(inputs, taps);
  ATLAS_CHECK(encoder.layers_seen() == layers_.size() && decoder.layers_seen() == decoder_layers_.size() &&
                  cross.layers_seen() == decoder_layers_.size(),
              Error, "internal: the model emitted {}/{}/{} of {}/{}/{} selected encoder/decoder/cross layers",
              encoder.layers_seen(), decoder.layers_seen(), cross.layers_seen(), layers_.size(),
              decoder_layers_.size(), decoder_layers_.size());
  stream.finish();
  DocumentResult& r = results[0];
  write_decoder_attention(writer, doc, r);
  if (logits.defined()) r.logits = logits.select(0, 0).to(at::kCPU, at::kFloat).contiguous();   // [T,V]
  if (r.mean.defined()) r.mean = r.mean / static_cast<double>(layers_.size());
  return std::move(r);
}

void Session::write_decoder_attention(format::DocumentWriter& w, const Prepared& doc, DocumentResult& r) const {
  for (const bool is_cross : {false, true}) {
    std::vector<LayerBlock>& blocks = is_cross ? r.cross_layers : r.decoder_layers;
    auto stream = w.begin_attention(is_cross ? format::kCrossAttention : format::kDecoderAttention,
                                    decoder_shape_for(doc, is_cross));
    for (const LayerBlock& block : blocks) {
      stream.write_layer(block.values.data_ptr(), block.values.nbytes());
      if (block.indices.defined())
        stream.write_layer_indices(block.indices.data_ptr<int32_t>(), static_cast<size_t>(block.indices.numel()));
    }
    stream.finish();
    blocks.clear();
  }
}

std::vector<DocumentResult> Session::run_batch(const std::vector<const Prepared*>& docs) {
  ATLAS_CHECK(!is_encoder_decoder(), InputError,
              "batched runs of encoder-decoder models ({}) are not supported yet; extract one document at a time "
              "with --text/--ids and --decoder-text/--decoder-ids",
              info().model_class);
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
  if (!i.model_dir.empty()) m.model.path = fs::absolute(i.model_dir).lexically_normal().string();
  for (const models::AdapterInfo& a : i.adapters)
    m.adapters.push_back({fs::absolute(a.dir).lexically_normal().string(), a.weight_file.filename().string(), a.sha256,
                          a.peft_type, a.r, a.lora_alpha, a.scaling, a.use_rslora, a.fan_in_fan_out,
                          a.target_modules, static_cast<int64_t>(a.merged_tensors.size())});
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
  if (linear_layout_) m.gemm = "onednn";
  m.device = options_.device;
  m.threads = threads_;
  if (options_.topk > 0) m.topk = options_.topk;
  if (i.is_encoder_decoder) {
    // model.num_layers / num_heads describe the encoder; the decoder stack and its input here.
    const models::StackInfo& dec = i.stacks.at(1);
    nlohmann::json d = {{"num_layers", dec.num_layers},
                        {"num_heads", dec.num_heads},
                        {"decoder_start_token_id", i.decoder_start_token_id},
                        {"source", doc.decoder_source}};
    if (doc.decoder_text) d["text"] = *doc.decoder_text;
    m.extra["decoder"] = d;
  }
  return m;
}

void Session::write_rest(format::DocumentWriter& w, const Prepared& doc, const DocumentResult& r,
                         const format::AttentionMeta* meta) const {
  w.write_selection(layers_, heads_);
  if (is_encoder_decoder()) {
    w.write_array("decoder_layers", io::NdArray::from<int64_t>({static_cast<int64_t>(decoder_layers_.size())}, decoder_layers_));
    w.write_array("decoder_heads", io::NdArray::from<int64_t>({static_cast<int64_t>(decoder_heads_.size())}, decoder_heads_));
  }
  w.write_tokens(doc.tokens);
  if (is_encoder_decoder()) w.write_tokens(doc.decoder_tokens, "decoder_");
  if (r.logits.defined()) {
    io::NdArray arr(io::DType::F32, {r.logits.size(0), r.logits.size(1)});
    std::memcpy(arr.mutable_data(), r.logits.data_ptr(), r.logits.nbytes());
    w.write_array("logits", arr);
  }
  if (r.value_norms.defined()) {
    io::NdArray arr(io::DType::F32, {r.value_norms.size(0), r.value_norms.size(1), r.value_norms.size(2)});
    std::memcpy(arr.mutable_data(), r.value_norms.data_ptr(), r.value_norms.nbytes());
    w.write_array("value_norms", arr);
  }
  w.write_meta(meta ? *meta : meta_for(doc));
}

void Session::write_document(format::DocumentWriter& w, const Prepared& doc, const DocumentResult& r) const {
  ATLAS_CHECK(!is_encoder_decoder(), Error, "internal: write_document of an encoder-decoder");
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
