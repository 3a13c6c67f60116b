#pragma once
// A loaded model + tokenizer that runs many documents: the engine under `atlas extract` (one text)
// and corpus runs (many). ATen inside: include only from extract/ sources.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "atlas/extract/extract.hpp"
#include "atlas/format/attention.hpp"
#include "atlas/models/model.hpp"
#include "atlas/tokenize/tokenizer.hpp"

namespace atlas::extract {

/// One token sequence ready to run, with everything stored next to its attention.
struct Prepared {
  std::string id;                          // corpus document id (empty for a single text)
  int64_t ordinal = 0, line = 0;
  std::optional<std::string> source_id;    // --window: the record this window came from
  std::optional<int64_t> window_index, window_offset;
  format::TokenArrays tokens;
  std::string source = "text";             // "text" | "ids"
  std::optional<std::string> text, text_pair;
  std::string sha256;                      // of the input record
  // Encoder-decoders: the decoder input (decoder_input_ids, ...), starting with
  // decoder_start_token_id; empty for other models.
  format::TokenArrays decoder_tokens;
  std::string decoder_source;              // "start_token" | "text" | "ids"
  std::optional<std::string> decoder_text;
  int64_t size() const { return tokens.size(); }
  int64_t decoder_size() const { return decoder_tokens.size(); }
};

/// Attention of one document in storage form, layer by layer: dense [H,Q,K] in the storage dtype,
/// or top-k values [H,Q,k] + int32 indices.
struct LayerBlock {
  at::Tensor values;
  at::Tensor indices;
};

struct DocumentResult {
  std::vector<LayerBlock> layers;          // buffered (batches of several documents)
  std::vector<LayerBlock> decoder_layers;  // encoder-decoders: decoder self-attention, buffered
  std::vector<LayerBlock> cross_layers;    // encoder-decoders: cross-attention, buffered
  at::Tensor logits;                       // [Q,V] float32 CPU, when asked
  at::Tensor mean;                         // [Q,K] mean over stored layers and heads, when asked
  at::Tensor value_norms;                  // [L_sel,H_sel,Q] float32 CPU, with --value-norms
};

/// What `atlas serve` keeps of a model's last run to compute an extended text incrementally
/// (Session::run_cached): its token ids, the key/value cache and the document it produced (the
/// attention of the selected layers as float32, shared with whoever keeps the result). Memory:
/// 2 x layers x kv_heads x T x head_dim floats of keys/values on the model's device plus
/// layers_sel x heads_sel x T x T floats on the CPU.
/// The attention buffers of documents the server has let go, kept for the next run_cached(): on a
/// VM, first touching the pages of a fresh 146 MB buffer (500 tokens, GPT-2 small) cost more than
/// the forward pass of a 4-token extension. Thread-safe (documents die on any thread).
class BufferPool {
 public:
  /// n zeros, in a spare buffer whose capacity holds them when there is one (else a new buffer
  /// with room for a few more tokens: capacity for `rounded` elements).
  std::vector<float> take(size_t n, size_t rounded);
  void give(std::vector<float> buffer);

 private:
  std::mutex mutex_;
  std::vector<std::vector<float>> spare_;
  static constexpr size_t kKeep = 2;
};

struct RunCache {
  std::vector<int64_t> ids;
  models::KVCache kv;
  std::shared_ptr<const format::AttentionData> data;
  std::shared_ptr<BufferPool> pool = std::make_shared<BufferPool>();   // survives clear()
  void clear() {
    ids.clear();
    kv.clear();
    data.reset();
  }
};

/// A run_cached() result: the document in memory (what load_attention() reads from the NPZ that
/// write_cached() writes), the last position's logits, and how many leading tokens were reused.
struct CachedRun {
  std::shared_ptr<const format::AttentionData> data;
  format::AttentionMeta meta;
  at::Tensor logits;   // [1,V] float32 CPU (causal LM heads with logits on), else undefined
  int64_t reused = 0;
};

class Session {
 public:
  explicit Session(const RunOptions& options);
  ~Session();

  const models::ModelInfo& info() const { return model_->info(); }
  const std::vector<int64_t>& layers() const { return layers_; }
  const std::vector<int64_t>& heads() const { return heads_; }
  /// Encoder-decoders: the --layers / --heads selection applied to the decoder stack (used for
  /// decoder self-attention and cross-attention); empty for other models.
  const std::vector<int64_t>& decoder_layers() const { return decoder_layers_; }
  const std::vector<int64_t>& decoder_heads() const { return decoder_heads_; }
  bool is_encoder_decoder() const { return info().is_encoder_decoder; }
  const std::string& checkpoint_sha256() const { return checkpoint_sha256_; }
  bool has_tokenizer() const { return tokenizer_ != nullptr; }
  std::string tokenizer_kind() const;
  double seconds_load() const { return seconds_load_; }
  int threads() const { return threads_; }
  /// Whether the linear layers run through oneDNN's sgemm (--gemm onednn took effect).
  bool onednn_gemm() const { return linear_layout_; }
  const RunOptions& options() const { return options_; }
  /// Serve: compute logits from now on (for next-token probabilities), and readable id labels.
  void set_logits(bool on) { options_.logits = on; }
  std::string label(int64_t id) const { return label_of(id); }

  /// Tokenizes and validates (InputError: empty, invalid UTF-8, no tokens, an id outside the
  /// vocabulary, too long for the model).
  Prepared prepare_text(const std::string& text, const std::optional<std::string>& pair = std::nullopt) const;
  Prepared prepare_ids(const std::vector<int64_t>& ids) const;
  /// Sets the decoder input of an encoder-decoder: `ids` verbatim, or `text` tokenized without
  /// special tokens after decoder_start_token_id, or (neither) [decoder_start_token_id].
  /// InputError for a model that is not an encoder-decoder when either is given.
  void prepare_decoder(Prepared& p, const std::optional<std::string>& text,
                       const std::optional<std::vector<int64_t>>& ids) const;
  /// Splits a sequence longer than `window` into windows starting every `stride` tokens (the last
  /// one ends at the sequence end); each is a document "<id>#w<k>" with its global offset.
  std::vector<Prepared> split_windows(const Prepared& p, int64_t window, int64_t stride) const;
  /// The model's position limit (0: none).
  int64_t max_tokens() const { return info().max_positions; }

  /// Runs one sequence and streams its attention into `writer` (begun by the caller) as the model
  /// emits each layer; only one layer is ever held.
  DocumentResult run_streaming(const Prepared& doc, format::DocumentWriter& writer, bool want_mean);
  /// Whether run_cached() applies: a model with a key/value cache path (ModelInfo::kv_cache),
  /// dense attention (no --topk), no --value-norms, float32 compute.
  bool can_run_cached() const;
  /// run_streaming() reusing `cache`, into memory: the longest common prefix P of doc's ids and
  /// cache.ids (at most T-1: the last token always runs) is not recomputed: only ids[P:] run, with
  /// the cached keys/values of positions < P, and the attention rows < P come from cache.data
  /// (columns < P; the rest is 0, causal). The document equals a full run's within float32
  /// rounding (values rounded through the storage dtype, as a file would hold them); `path` is the
  /// file it names (where write_cached() would put it). Logits: the last position only. Afterwards
  /// the cache holds this document (cleared if the run fails).
  CachedRun run_cached(const Prepared& doc, RunCache& cache, const std::filesystem::path& path);
  /// Whether run_in_memory() applies: self-attention (not an encoder-decoder), dense attention (no
  /// --topk), no --value-norms.
  bool can_run_in_memory() const;
  /// run_streaming() into memory, computed in full (any model can_run_in_memory() accepts, with or
  /// without a key/value cache path): the document as load_attention() reads the NPZ that
  /// write_cached() writes; the attention buffer comes from and returns to `pool`. Logits: the last
  /// position only. `reused` is 0.
  CachedRun run_in_memory(const Prepared& doc, const std::shared_ptr<BufferPool>& pool,
                          const std::filesystem::path& path);
  /// Writes a run_cached() document as run_streaming() + write_rest() would have (the attention in
  /// the storage dtype, no logits).
  void write_cached(format::DocumentWriter& writer, const Prepared& doc, const CachedRun& run) const;
  /// Runs a padded batch; every document's attention is kept in storage form.
  std::vector<DocumentResult> run_batch(const std::vector<const Prepared*>& docs);

  /// Writes everything but the attention, after it: layers, heads, token arrays, logits, meta.
  /// `meta`: the one to write (default: meta_for(doc), made now).
  void write_rest(format::DocumentWriter& writer, const Prepared& doc, const DocumentResult& result,
                  const format::AttentionMeta* meta = nullptr) const;
  /// Writes a buffered result completely.
  void write_document(format::DocumentWriter& writer, const Prepared& doc, const DocumentResult& result) const;
  format::AttentionMeta meta_for(const Prepared& doc) const;
  format::AttentionShape shape_for(const Prepared& doc) const;
  /// Encoder-decoders: the shape of the decoder self-attention / cross-attention member.
  format::AttentionShape decoder_shape_for(const Prepared& doc, bool cross) const;

  double seconds_model() const { return seconds_model_; }
  /// The loaded model and tokenizer (null when none loaded), for jobs that run the model
  /// themselves (attribution).
  models::Model& model() { return *model_; }
  const tokenize::Tokenizer* tokenizer() const { return tokenizer_.get(); }

 private:
  std::string token_of(int64_t id) const;
  std::string label_of(int64_t id) const;
  at::Tensor forward(const models::Inputs& inputs, models::Taps& taps);
  /// The model inputs of one sequence (a batch of 1): its ids and, when it has them, token types.
  models::Inputs single_inputs(const Prepared& doc) const;
  DocumentResult run_encoder_decoder(const Prepared& doc, format::DocumentWriter& writer, bool want_mean);
  void write_decoder_attention(format::DocumentWriter& writer, const Prepared& doc, DocumentResult& result) const;
  /// The in-memory document of run_cached() / run_in_memory(): its buffer goes back to `pool`.
  std::shared_ptr<const format::AttentionData> pooled_document(const Prepared& doc, std::vector<float> attention,
                                                               const format::AttentionMeta& meta,
                                                               const std::shared_ptr<BufferPool>& pool,
                                                               const std::filesystem::path& path) const;
  RunOptions options_;
  std::unique_ptr<models::Model> model_;
  std::unique_ptr<tokenize::Tokenizer> tokenizer_;
  std::vector<int64_t> layers_, heads_, decoder_layers_, decoder_heads_;
  std::string checkpoint_sha256_;
  int threads_ = 1;
  bool linear_layout_ = false;   // the linear layers run through oneDNN (--gemm onednn, float32, CPU)
  double seconds_load_ = 0, seconds_model_ = 0;
};

}  // namespace atlas::extract
