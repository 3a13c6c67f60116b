#pragma once
/// Hugging Face checkpoints: config.json, model.safetensors (memory-mapped), sharded safetensors
/// (model.safetensors.index.json), and pytorch_model.bin (zip format) through a restricted unpickler
/// that accepts only the globals a state dict needs and never executes anything.
/// Tensors stay raw bytes here (no LibTorch): models/ turns them into at::Tensor.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace atlas::io {

enum class TensorDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };
std::string tensor_dtype_name(TensorDType dtype);   // "F32", "BF16", ... (safetensors spelling)
size_t tensor_dtype_size(TensorDType dtype);

struct RawTensor {
  TensorDType dtype = TensorDType::F32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;         // contiguous, little-endian, C order; not necessarily
                                           // aligned to the element size (safetensors offsets)
  size_t nbytes = 0;
  std::filesystem::path file;              // where it came from (for error messages)
  std::shared_ptr<const void> owner;       // keeps the mapping / buffer alive
  int64_t numel() const;
};

/// config.json of a model folder, parsed. Throws ConfigError naming the file on bad JSON.
nlohmann::json read_config(const std::filesystem::path& model_dir);

class Checkpoint {
 public:
  /// Finds the weights in `model_dir`: model.safetensors, model.safetensors.index.json (shards),
  /// or pytorch_model.bin (and pytorch_model.bin.index.json). Throws CheckpointError naming the
  /// folder and what was looked for.
  static Checkpoint open(const std::filesystem::path& model_dir);
  /// One file: .safetensors or .bin.
  static Checkpoint open_file(const std::filesystem::path& file);

  const std::map<std::string, RawTensor>& tensors() const { return tensors_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  /// Throws CheckpointError "tensor 'x' not found in <files>" when missing.
  const RawTensor& at(const std::string& name) const;
  const std::vector<std::filesystem::path>& files() const { return files_; }
  /// sha256 over the weight files: the file's own sha256 when there is one; with several (shards),
  /// the sha256 of the concatenated lowercase hex digests of the files in file-name order.
  std::string hash() const;
  /// "safetensors" or "pytorch_bin".
  const std::string& format() const { return format_; }

 private:
  std::map<std::string, RawTensor> tensors_;
  std::vector<std::filesystem::path> files_;
  std::string format_;
};

/// The digest Checkpoint::hash() reports, computed from the weight files alone (no loading). Each
/// file's sha256 is cached across runs in $ATLAS_CACHE_DIR/sha256.json (default
/// $XDG_CACHE_HOME/atlas or ~/.cache/atlas), keyed by canonical path, size and mtime (ns);
/// ATLAS_NO_HASH_CACHE=1 turns the cache off. A broken or unwritable cache never fails the hash.
std::string checkpoint_hash(const std::vector<std::filesystem::path>& files);

/// Lower-level readers (used by Checkpoint::open, exposed for tests).
std::map<std::string, RawTensor> read_safetensors(const std::filesystem::path& file);
std::map<std::string, RawTensor> read_torch_bin(const std::filesystem::path& file);

}  // namespace atlas::io
