#pragma once
/// The attention document: the one writer and the one reader of the arrays `atlas extract` stores
/// for one token sequence (docs/formats/attention-npz.md). A document lives either alone in an NPZ
/// (member prefix "") or inside a store shard (member prefix "<id>/", docs/formats/store.md); both
/// are read and written here, so every subcommand sees the same layout.
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "atlas/format/meta.hpp"
#include "atlas/io/npz.hpp"

namespace atlas::format {

/// Attention kinds are named members: `attention` (self-attention of decoder-only and encoder-only
/// models); encoder-decoders add `encoder_attention`, `decoder_attention`, `cross_attention`.
inline constexpr const char* kSelfAttention = "attention";
inline constexpr const char* kEncoderAttention = "encoder_attention";  ///< [L_enc, H, S, S]
inline constexpr const char* kDecoderAttention = "decoder_attention";  ///< [L_dec, H, T, T]
inline constexpr const char* kCrossAttention = "cross_attention";      ///< [L_dec, H, T, S]

/// Everything a document stores besides its attention matrices.
struct TokenArrays {
  std::vector<int64_t> input_ids;
  std::vector<std::string> tokens;         ///< vocabulary strings
  std::vector<std::string> token_labels;   ///< readable labels
  std::vector<int64_t> offsets;            ///< [Q*2] code-point [start, end), -1 -1 for special tokens
  std::vector<uint8_t> special;            ///< 1 for template tokens
  std::vector<int64_t> token_type_ids;     ///< empty: not a sentence pair
  int64_t size() const { return static_cast<int64_t>(input_ids.size()); }
};

/// Shape and storage of one attention member: [layers, heads, q, k] dense, or the `topk` largest
/// entries of each query row stored sparse as `<kind>_topk_values` [L,H,Q,k] and
/// `<kind>_topk_indices` [L,H,Q,k] (int32 key positions) plus `<kind>_topk_shape` = [L,H,Q,K].
struct AttentionShape {
  int64_t layers = 0, heads = 0, q = 0, k = 0;
  io::DType dtype = io::DType::F32;          ///< F32 or F16
  int64_t topk = 0;                          ///< 0: dense
  int64_t stored_k() const { return topk > 0 ? std::min(topk, k) : k; }
};

/// Writes one document's members into an open NPZ, in the order every reader and `process cat`
/// rely on: attention kinds, layers, heads, input_ids, tokens, token_labels, offsets, special,
/// [token_type_ids], [extra arrays such as logits], meta.
class DocumentWriter {
 public:
  DocumentWriter(io::NpzWriter& npz, std::string prefix = "");

  /// Streams attention layer by layer. Each write_layer() call passes one layer's [H,Q,k] block in
  /// the storage dtype (dense: k = K; topk: values then indices). Dense layers go straight into the
  /// member; top-k blocks are kept (small) and written by finish().
  class AttentionStream {
   public:
    /// Dense, or topk values: `data` holds heads*q*stored_k elements of the storage dtype.
    void write_layer(const void* data, size_t nbytes);
    /// Dense only: part of a layer (rows of heads in C order), for --row-chunk writes.
    void write_part(const void* data, size_t nbytes);
    /// Top-k only: the int32 key indices of the layer just written.
    void write_layer_indices(const int32_t* indices, size_t count);
    void finish();
    const AttentionShape& shape() const { return shape_; }

   private:
    friend class DocumentWriter;
    AttentionStream(DocumentWriter& owner, std::string kind, AttentionShape shape);
    DocumentWriter* owner_;
    std::string kind_;
    AttentionShape shape_;
    std::optional<io::NpzWriter::Stream> dense_;
    std::vector<uint8_t> values_;
    std::vector<int32_t> indices_;
    bool finished_ = false;
  };

  AttentionStream begin_attention(const std::string& kind, const AttentionShape& shape);
  void write_selection(const std::vector<int64_t>& layers, const std::vector<int64_t>& heads);
  /// `name_prefix` "decoder_" writes an encoder-decoder's decoder input as decoder_input_ids,
  /// decoder_tokens, decoder_token_labels, decoder_offsets, decoder_special.
  void write_tokens(const TokenArrays& tokens, const std::string& name_prefix = "");
  void write_array(const std::string& name, const io::NdArray& array);
  void write_meta(const AttentionMeta& meta);

  /// Full member names written so far (with prefix).
  const std::vector<std::string>& members() const { return members_; }
  io::NpzWriter& npz() { return npz_; }

 private:
  std::string name(const std::string& member) const { return prefix_ + member; }
  io::NpzWriter& npz_;
  std::string prefix_;
  std::vector<std::string> members_;
};

/// One document read back, attention densified to float32 whatever the storage.
struct AttentionData {
  std::filesystem::path path;               ///< file (or store shard)
  std::string source;                       ///< what to name in messages: "file.npz" or "STORE:DOC"
  std::string kind = kSelfAttention;        ///< which attention member was read
  int64_t num_layers = 0, num_heads = 0, q = 0, k = 0;
  std::vector<float> attention;             ///< [L, H, Q, K], float32 (float16 / top-k widened)
  std::vector<int64_t> layers, heads;       ///< model index of each stored layer / head
  std::vector<int64_t> input_ids;           ///< empty if absent
  std::vector<std::string> tokens;          ///< vocabulary strings
  std::vector<std::string> token_labels;    ///< readable labels (falls back to tokens)
  std::vector<std::array<int64_t, 2>> offsets;  ///< [start, end) in code points; empty if absent
  std::vector<uint8_t> special;             ///< 1 for template tokens; all 0 if absent
  std::vector<int64_t> token_type_ids;      ///< segment of each query token; empty unless a sentence pair
  /// Tokens of the key axis: the query tokens for self-attention; for `cross_attention` the
  /// encoder's tokens (the query axis, `tokens` above, then holds the decoder's).
  std::vector<std::string> key_tokens, key_token_labels;
  std::vector<uint8_t> key_special;
  bool keys_differ() const { return kind == kCrossAttention; }
  int64_t topk = 0;                         ///< >0: the file stored only the k largest per row
  std::optional<AttentionMeta> meta;
  // From `meta` (empty when absent), for figure captions.
  std::string model_name;        ///< last component of meta.model.path, else model_type
  std::string model_path, checkpoint_sha256, command_line, text, created, version;
  std::string text_pair;         ///< meta.input.text_pair: what second-segment offsets index
  std::optional<bool> causal;    ///< meta.model.causal

  /// Matrix of stored layer `li`, stored head `hi` (indices into layers/heads), row-major [Q, K].
  const float* matrix(int64_t li, int64_t hi) const {
    return attention.data() + ((li * num_heads + hi) * q) * k;
  }
  /// Position of model layer / head `index` in `layers` / `heads`; InputError listing what the file
  /// has otherwise.
  int64_t layer_position(int64_t index) const;
  int64_t head_position(int64_t index) const;
  /// True when query i cannot attend to key j: a causal model (meta says so, or every entry above
  /// the diagonal is exactly 0) and j > i.
  bool is_masked(int64_t i, int64_t j) const { return causal_mask_ && j > i; }
  bool causal_mask() const { return causal_mask_; }

  bool causal_mask_ = false;
};

/// Reads a document: `spec` is an attention NPZ, or `STORE:DOC` (a store folder and a document id),
/// or a store folder holding exactly one document. `kind` is a member name (`attention`,
/// `encoder_attention`, `decoder_attention`, `cross_attention`), a short name (`encoder`, `decoder`,
/// `cross`), or "" for the default: `attention`, else `encoder_attention`. The decoder and cross
/// kinds read their query tokens from `decoder_tokens`, ... and their layers from `decoder_layers`. FormatError / InputError naming the file, the
/// document and the array when members are missing or shapes disagree.
AttentionData load_attention(const std::string& spec, const std::string& kind = kSelfAttention);
/// Reads the document whose members start with `prefix` from an open NPZ; `source` names it.
AttentionData read_document(const io::NpzReader& npz, const std::string& prefix, const std::string& source,
                            const std::string& kind = kSelfAttention);

/// The document that load_attention() reads back from the NPZ `path` once a DocumentWriter has
/// written these parts there (dense self-attention [L, H, T, T] as float32, the selection, the token
/// arrays, `meta`), built without the file (`atlas serve` writes that file only when asked for it).
AttentionData document_data(std::vector<float> attention, const AttentionShape& shape,
                            const std::vector<int64_t>& layers, const std::vector<int64_t>& heads,
                            const TokenArrays& tokens, const AttentionMeta& meta, const std::filesystem::path& path);

/// Names of the members a document has, without prefix, in the order DocumentWriter writes them.
std::vector<std::string> document_members(const io::NpzReader& npz, const std::string& prefix);

}  // namespace atlas::format
