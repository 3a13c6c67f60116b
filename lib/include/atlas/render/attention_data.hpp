#pragma once
/// The parts of an attention NPZ (docs/formats/attention-npz.md) that figures need, read through
/// atlas::io::NpzReader and checked against each other (shapes, lengths) with errors naming the file.
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace atlas::render {

struct AttentionData {
  std::filesystem::path path;
  int64_t num_layers = 0, num_heads = 0, q = 0, k = 0;
  std::vector<float> attention;             ///< [L, H, Q, K], float32 (float16 files are widened)
  std::vector<int64_t> layers, heads;       ///< model index of each stored layer / head
  std::vector<std::string> tokens;          ///< vocabulary strings
  std::vector<std::string> token_labels;    ///< readable labels (falls back to tokens)
  std::vector<std::array<int64_t, 2>> offsets;  ///< [start, end) in code points; empty if absent
  std::vector<uint8_t> special;             ///< 1 for template tokens; all 0 if absent
  // From `meta` (empty when absent).
  std::string model_name;        ///< last component of meta.model.path, else model_type
  std::string model_path, checkpoint_sha256, command_line, text, created, version;
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

/// Reads `path`; FormatError / InputError naming the file and array when `attention`, `tokens` or
/// consistent shapes are missing.
AttentionData load_attention(const std::filesystem::path& path);

}  // namespace atlas::render
