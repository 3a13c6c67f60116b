#pragma once
/// The typed `meta` member of every attention NPZ and store document (docs/formats/attention-npz.md).
/// Readers keep keys they do not know in `extra`, so a file written by a newer atlas round-trips.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace atlas::format {

/// The model a file was computed with: enough to tell months later what produced it.
struct ModelMeta {
  std::string path;                 ///< absolute model folder
  std::string model_type;           ///< config.json model_type
  std::string model_class;          ///< config.json architectures[0]
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t vocab_size = 0;
  bool causal = false;
  std::string checkpoint_format;    ///< "safetensors" | "pytorch_bin"
  std::string checkpoint_sha256;
};

/// A LoRA adapter merged into the model's weights (PEFT format), in the order applied.
struct AdapterMeta {
  std::string path;                 ///< absolute adapter folder
  std::string weight_file;          ///< adapter_model.safetensors | adapter_model.bin
  std::string sha256;               ///< of the weight file
  std::string peft_type = "LORA";
  int64_t r = 0;
  double lora_alpha = 0;
  double scaling = 0;               ///< lora_alpha / r (use_rslora: lora_alpha / sqrt(r))
  bool use_rslora = false;
  bool fan_in_fan_out = false;
  std::vector<std::string> target_modules;
  int64_t merged_tensors = 0;       ///< base tensors it changed
};

/// Where the token sequence came from.
struct InputMeta {
  std::string source = "text";              ///< "text" | "ids" | "corpus"
  std::optional<std::string> text;          ///< the text the offsets index (absent for ids)
  std::optional<std::string> text_pair;     ///< second segment of a sentence pair
  bool add_special_tokens = true;
  std::optional<std::string> document_id;   ///< corpus documents: the id in the store's manifest
  std::optional<int64_t> window_offset;     ///< --window: index of this window's first token in the
                                            ///< whole document's token sequence
  std::optional<int64_t> window_index;      ///< --window: 0-based window number
};

struct AttentionMeta {
  std::string format = "atlas.attention";
  int format_version = 1;
  std::string tool = "atlas";
  std::string version, git_revision, command_line, created;
  ModelMeta model;
  std::vector<AdapterMeta> adapters;        ///< written as "adapters" when non-empty
  std::string tokenizer = "none";
  InputMeta input;
  std::string dtype = "float32";            ///< storage dtype of the attention members
  std::string compute_dtype = "float32";    ///< dtype the forward pass ran in
  /// "onednn" when the float32 linear layers ran through oneDNN's sgemm (`--gemm onednn`); absent
  /// (the default, OpenBLAS through at::linear) otherwise. Written when set.
  std::optional<std::string> gemm;
  std::string device = "cpu";
  int threads = 0;
  std::optional<int64_t> topk;              ///< attention stored sparse: the k largest per query row
  /// `atlas process` steps that made this file, oldest first, each {"op": ..., parameters}; a step
  /// appends, never replaces (docs/formats/attention-npz.md). Written when non-empty.
  nlohmann::json process = nlohmann::json::array();
  nlohmann::json extra = nlohmann::json::object();   ///< every other key, kept as read

  nlohmann::json to_json() const;
  /// `where` names the file (and document) in errors: FormatError for a key of the wrong type.
  static AttentionMeta from_json(const nlohmann::json& json, const std::string& where);
  /// The tool's version, git revision and the current UTC time filled in.
  static AttentionMeta now();
};

/// "2026-11-24T03:10:00Z"
std::string utc_now_iso();

}  // namespace atlas::format
