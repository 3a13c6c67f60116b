#pragma once
/// The model interface. Each architecture is one file in lib/src/models/ registered by one line in
/// registry.cpp. The forward pass hands every named intermediate to a tap, so extraction is not a
/// special case of the model code. This header pulls in ATen: include it only from models/ and
/// extract/ sources, never from widely included headers.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace atlas::models {

/// One transformer stack of a model. Decoder-only and encoder-only models have one (named "model");
/// encoder-decoders have "encoder" and "decoder", and the decoder's layers also cross-attend.
struct StackInfo {
  std::string name;              // "model", "encoder" or "decoder"
  int64_t num_layers = 0;
  int64_t num_heads = 0;         // query heads of its self-attention (and of its cross-attention)
  int64_t num_kv_heads = 0;
  bool causal = false;
  bool cross_attention = false;  // true for the decoder of an encoder-decoder
};

/// A LoRA adapter merged into the weights (PEFT format, models/lora.hpp).
struct AdapterInfo {
  std::filesystem::path dir;             // the adapter folder
  std::filesystem::path weight_file;     // adapter_model.safetensors or adapter_model.bin
  std::string sha256;                    // of weight_file
  std::string peft_type = "LORA";
  int64_t r = 0;
  double lora_alpha = 0;
  double scaling = 0;                    // lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora
  bool use_rslora = false;
  bool fan_in_fan_out = false;
  std::vector<std::string> target_modules;   // as listed; a regex string is one entry
  std::vector<std::string> merged_tensors;   // base tensors it changed
};

struct ModelInfo {
  std::string model_type;        // config.json "model_type": "gpt2", "bert", "llama", ...
  std::string model_class;       // config.json architectures[0], e.g. "LlamaForCausalLM"
  int64_t num_layers = 0;
  int64_t num_heads = 0;         // query heads (attention maps have this many heads)
  int64_t num_kv_heads = 0;
  int64_t hidden_size = 0;
  int64_t vocab_size = 0;
  int64_t max_positions = 0;     // 0 when unbounded (relative positions)
  bool causal = false;
  int64_t pad_token_id = -1;     // -1 when the config has none
  bool has_lm_head = true;       // false for a bare base model (e.g. BertModel): no logits
  bool kv_cache = false;         // forward() takes Inputs::past (KVCache): llama family, gpt2, gpt_neox, phi, opt
  // Encoder-decoders (T5, BART): the top-level layer/head fields above describe the encoder,
  // `stacks` holds {encoder, decoder}. Empty for single-stack models: use model_stacks().
  bool is_encoder_decoder = false;
  int64_t decoder_start_token_id = -1;  // config.json; the decoder input starts with it
  std::vector<StackInfo> stacks;
  std::string checkpoint_format;                        // "safetensors" or "pytorch_bin"
  std::vector<std::filesystem::path> checkpoint_files;  // for provenance (io::checkpoint_hash)
  std::filesystem::path model_dir;                      // the folder the base weights came from
  std::vector<AdapterInfo> adapters;                    // merged into the weights, in order
  std::vector<std::string> notes;                       // for the user (the library never prints)
};

/// The stacks of `info`: `info.stacks`, or for a single-stack model one "model" stack made of the
/// top-level fields.
inline std::vector<StackInfo> model_stacks(const ModelInfo& info) {
  if (!info.stacks.empty()) return info.stacks;
  return {StackInfo{"model", info.num_layers, info.num_heads, info.num_kv_heads, info.causal, false}};
}

/// The key/value cache of a causal decoder-only model (ModelInfo::kv_cache: the llama family --
/// llama, mistral, qwen2, gemma -- gpt2, gpt_neox, phi and opt; not with dynamic RoPE scaling):
/// per layer, the keys and values of the first length() positions as the attention reads them:
/// llama family and phi [1,KV,T_past,d] after RoPE and before the grouped-query repeat, gpt_neox
/// [1,H,T_past,d] after its (partial) RoPE, gpt2 and opt [1,H,T_past,d]. With Inputs::past set, forward() runs input_ids as
/// the positions length() .. length()+T_new-1, each new query attends to the past and the new keys
/// (causal, Mistral's sliding window as in a full run), and the new keys and values are appended
/// to the cache; an empty cache is filled by an ordinary full run. Batch 1 without attention_mask,
/// inputs_embeds or autograd only (InputError otherwise). The tensors live on the model's device.
struct KVCache {
  std::vector<at::Tensor> keys, values;   // per layer; empty: nothing cached
  int64_t length() const;                 // T_past
  /// Keeps the first `n` positions (0 <= n <= length()).
  void truncate(int64_t n);
  void clear() {
    keys.clear();
    values.clear();
  }
};

/// Inputs of every kind of transformer. Encoder-only and decoder-only models read input_ids,
/// attention_mask and token_type_ids; encoder-decoders read input_ids / attention_mask as the
/// encoder input and decoder_input_ids / decoder_attention_mask as the decoder input (when
/// decoder_input_ids is undefined the decoder input is [decoder_start_token_id] for each row).
struct Inputs {
  at::Tensor input_ids;               // [B,T] int64 (encoder-decoders: [B,S] encoder input)
  at::Tensor attention_mask;          // [B,T] int64 (1 = real token); undefined means all ones
  at::Tensor token_type_ids;          // [B,T] int64; undefined means zeros
  at::Tensor decoder_input_ids;       // [B,T_dec] int64, encoder-decoders only
  at::Tensor decoder_attention_mask;  // [B,T_dec] int64; undefined means all ones
  // Attribution (extract/attribution.cpp); llama-, gpt2- and bert-family models only, others
  // refuse them (InputError).
  bool autograd = false;              // run without InferenceMode, recording autograd (needs a model
                                      // loaded with LoadOptions::autograd)
  at::Tensor inputs_embeds;           // [B,T,D] float: used instead of the word-embedding lookup of
                                      // input_ids (positions, token types, scaling still added), as
                                      // transformers' inputs_embeds
  at::Tensor head_mask;               // [L,H] or [B,L,H] float: multiplies each head's attention
                                      // probabilities before they weight V (0 = the head's output is
                                      // zeroed before the output projection), as transformers' head_mask
  // Incremental decoding (ModelInfo::kv_cache models; others refuse a cache with an InputError).
  KVCache* past = nullptr;            // see KVCache: read, and appended to, by forward()
  bool last_logits_only = false;      // logits of the last position only, [B,1,V]; kv_cache models
                                      // honour it, others may return every position (take the last row)
};

/// Tap names for attention, keyed by attention kind; every one is the softmax output (eager
/// attention, before dropout) of layer l of its stack.
inline constexpr const char* kAttnProbs = "attn_probs";                 // [B,H,T,T] single-stack models
                                                                        // ([B,H,T_new,T_past+T_new] with a KVCache)
inline constexpr const char* kEncoderAttnProbs = "encoder_attn_probs";  // [B,H,S_enc,S_enc]
inline constexpr const char* kDecoderAttnProbs = "decoder_attn_probs";  // [B,H,T_dec,T_dec] (causal)
inline constexpr const char* kCrossAttnProbs = "cross_attn_probs";      // [B,H,T_dec,S_enc]
/// ‖f_h(x_j)‖ (Kobayashi et al. 2020): norm of each value vector after its head's slice of the
/// output projection (bias excluded). [B,H,T] float32; llama-, gpt2- and bert-family models.
inline constexpr const char* kValueNorms = "value_norms";
/// The word embeddings of input_ids ([B,T,D], before positions are added; inputs_embeds when given),
/// layer 0. llama-, gpt2- and bert-family models.
inline constexpr const char* kInputEmbeds = "input_embeds";

/// Receives named intermediates. Names (with Inputs::past: T is the T_new new positions, and
/// "attn_probs" is [B,H,T_new,T_past+T_new], the new queries against every key):
///   "attn_probs" layer l  [B,H,T,T] self-attention of a decoder-only or encoder-only model
///   "encoder_attn_probs" layer l  [B,H,T,T] encoder self-attention of an encoder-decoder (T = S_enc)
///   "decoder_attn_probs" layer l  [B,H,T_dec,T_dec] decoder self-attention (causal)
///   "cross_attn_probs"   layer l  [B,H,T_dec,S_enc] decoder-to-encoder cross-attention
///   "value_norms" layer l  [B,H,T] ‖(x_j W_V^h + b_V^h) W_O^h‖ of a single-stack model (kValueNorms)
///   "hidden"     layer i  [B,T,D] input of layer i; i = num_layers is the final output (after the
///                         final norm for pre-LN models), as transformers' output_hidden_states
///   "encoder_hidden" / "decoder_hidden" layer i  the same for each stack of an encoder-decoder
///                         ([B,S_enc,D] / [B,T_dec,D])
class Taps {
 public:
  virtual ~Taps() = default;
  /// Lets the model skip work nobody asked for.
  virtual bool wants(const std::string& name, int64_t layer) const = 0;
  virtual void emit(const std::string& name, int64_t layer, const at::Tensor& value) = 0;
};

/// A tap that keeps nothing.
class NullTaps final : public Taps {
 public:
  bool wants(const std::string&, int64_t) const override { return false; }
  void emit(const std::string&, int64_t, const at::Tensor&) override {}
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  /// Runs the model in inference mode. Returns logits [B,T,V] when `compute_logits` (encoder-
  /// decoders: [B,T_dec,V], over the decoder positions), else an undefined tensor (the LM head is
  /// skipped).
  virtual at::Tensor forward(const Inputs& inputs, Taps& taps, bool compute_logits) = 0;
};

struct LoadOptions {
  std::string device = "cpu";    // "cpu", "cuda", "cuda:1"
  /// LoRA adapter folders merged into the weights in this order (after the adapter of the model
  /// folder itself, if it holds one).
  std::vector<std::filesystem::path> adapters;
  /// The base model when `dir` is an adapter folder (default: its base_model_name_or_path).
  std::filesystem::path base;
  /// Do not apply the adapter files that the model folder itself holds.
  bool no_adapter = false;
  /// Load the weights as ordinary tensors (not inference tensors), so a forward with
  /// Inputs::autograd can record gradients (attribution).
  bool autograd = false;
  /// Store the weights of linear layers transposed so that CPU float32 forwards run them through
  /// oneDNN's sgemm (faster than OpenBLAS on small batches; a copy of those weights instead of
  /// views of the checkpoint's mapping). Ignored with autograd, on CUDA, and in a build without
  /// oneDNN (linear_layout_available()). Outputs agree with the default within float32 rounding.
  bool linear_layout = false;
};

/// Whether this build has oneDNN's sgemm (LoadOptions::linear_layout takes effect).
bool linear_layout_available();
/// Linear-layer products run through oneDNN's sgemm since start, all threads (tests, benchmarks).
int64_t onednn_products();

/// Reads config.json, picks the architecture by model_type, loads weights strictly (a missing
/// tensor, a wrong shape or an unclaimed tensor is a CheckpointError naming tensor, file, expected
/// and got). Unknown model_type: ConfigError listing the supported ones. `dir` may also be a PEFT
/// adapter folder (its base is options.base or base_model_name_or_path); a model folder that holds
/// adapter_config.json gets that adapter merged (a note in info().notes) unless options.no_adapter.
std::unique_ptr<Model> load_model(const std::filesystem::path& dir, const LoadOptions& options = {});

/// Whether load_model() treats `path` as a TorchScript module (a .pt, .pth, .ts or .torchscript
/// file saved with torch.jit.save whose forward returns its attention: docs/custom-models.md).
bool is_torchscript_file(const std::filesystem::path& path);

/// model_type values load_model accepts.
std::vector<std::string> supported_model_types();

}  // namespace atlas::models
