// Checkpoint discovery (single file, shards, .bin), the sharding cross-checks and the hash.
#include "atlas/core/json.hpp"
#include "atlas/io/checkpoint.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "io/dtype_names.hpp"
#include "io/hash_cache.hpp"

namespace atlas::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct DTypeInfo {
  TensorDType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {TensorDType::F64, "F64", 8},   {TensorDType::F32, "F32", 4}, {TensorDType::F16, "F16", 2},
    {TensorDType::BF16, "BF16", 2}, {TensorDType::I64, "I64", 8}, {TensorDType::I32, "I32", 4},
    {TensorDType::I16, "I16", 2},   {TensorDType::I8, "I8", 1},   {TensorDType::U8, "U8", 1},
    {TensorDType::Bool, "BOOL", 1},
};

const DTypeInfo& info_of(TensorDType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d;
  ATLAS_FAIL(Error, "unknown TensorDType {}", static_cast<int>(dtype));
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ATLAS_CHECK(EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) == 1, Error,
              "sha256 failed");
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

json read_index(const fs::path& index) {
  const std::string text = read_file(index);
  json j;
  try {
    j = parse_json(text, "'" + index.string() + "'");
  } catch (const json::parse_error& e) {
    ATLAS_FAIL(CheckpointError, "'{}': invalid JSON at byte {}: {}", index.string(), e.byte, e.what());
  }
  ATLAS_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), CheckpointError,
              "'{}': expected a JSON object with an object 'weight_map' (tensor name -> shard file)",
              index.string());
  return j;
}

// Loads every shard an index names and checks both ways that the index and the shards agree.
void load_sharded(const fs::path& index, bool bin, std::map<std::string, RawTensor>& tensors,
                  std::vector<fs::path>& files) {
  const json j = read_index(index);
  std::map<std::string, std::set<std::string>> by_shard;  // shard file -> tensor names
  for (const auto& [name, shard] : j["weight_map"].items()) {
    ATLAS_CHECK(shard.is_string(), CheckpointError, "'{}': weight_map['{}']: expected a file name, got {}",
                index.string(), name, shard.dump());
    const std::string s = shard.get<std::string>();
    // Shards are siblings of the index: a path that leaves the folder is not a shard.
    ATLAS_CHECK(!s.empty() && s.find('/') == std::string::npos && s.find('\\') == std::string::npos &&
                    s != "." && s != "..",
                CheckpointError,
                "'{}': weight_map['{}']: shard '{}' must be a plain file name in the same folder",
                index.string(), name, s);
    by_shard[s].insert(name);
  }
  ATLAS_CHECK(!by_shard.empty(), CheckpointError, "'{}': weight_map is empty", index.string());
  for (const auto& [shard, names] : by_shard) {
    const fs::path path = index.parent_path() / shard;
    std::error_code ec;  // a name the OS refuses (too long ...) is a missing shard, not an exception
    ATLAS_CHECK(fs::is_regular_file(path, ec), CheckpointError,
                "'{}': shard '{}' (holding tensor '{}' and {} more) does not exist", index.string(),
                path.string(), *names.begin(), names.size() - 1);
    auto part = bin ? read_torch_bin(path) : read_safetensors(path);
    for (const auto& name : names)
      ATLAS_CHECK(part.count(name), CheckpointError,
                  "'{}': tensor '{}' is mapped to shard '{}' but that shard does not contain it",
                  index.string(), name, path.string());
    for (auto& [name, t] : part) {
      ATLAS_CHECK(names.count(name), CheckpointError,
                  "'{}': shard '{}' contains tensor '{}' that the weight_map {}", index.string(),
                  path.string(), name,
                  j["weight_map"].contains(name)
                      ? "assigns to shard '" + j["weight_map"][name].get<std::string>() + "'"
                      : std::string("does not name"));
      tensors.emplace(name, std::move(t));
    }
    files.push_back(path);
  }
}

}  // namespace

std::string tensor_dtype_name(TensorDType dtype) { return info_of(dtype).name; }
size_t tensor_dtype_size(TensorDType dtype) { return info_of(dtype).size; }

std::optional<TensorDType> parse_dtype_name(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return d.dtype;
  return std::nullopt;
}

std::string supported_dtype_names() {
  std::string out;
  for (const auto& d : kDTypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

int64_t RawTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Checkpoint Checkpoint::open(const fs::path& model_dir) {
  ATLAS_CHECK(fs::is_directory(model_dir), CheckpointError,
              "model folder '{}' does not exist or is not a folder", model_dir.string());
  Checkpoint ck;
  if (fs::is_regular_file(model_dir / "model.safetensors")) return open_file(model_dir / "model.safetensors");
  if (fs::is_regular_file(model_dir / "model.safetensors.index.json")) {
    ck.format_ = "safetensors";
    load_sharded(model_dir / "model.safetensors.index.json", false, ck.tensors_, ck.files_);
    return ck;
  }
  if (fs::is_regular_file(model_dir / "pytorch_model.bin")) return open_file(model_dir / "pytorch_model.bin");
  if (fs::is_regular_file(model_dir / "pytorch_model.bin.index.json")) {
    ck.format_ = "pytorch_bin";
    load_sharded(model_dir / "pytorch_model.bin.index.json", true, ck.tensors_, ck.files_);
    return ck;
  }
  ATLAS_FAIL(CheckpointError,
             "model folder '{}' has no weights: looked for model.safetensors, model.safetensors.index.json, "
             "pytorch_model.bin, pytorch_model.bin.index.json",
             model_dir.string());
}

Checkpoint Checkpoint::open_file(const fs::path& file) {
  ATLAS_CHECK(fs::is_regular_file(file), CheckpointError, "checkpoint file '{}' does not exist",
              file.string());
  Checkpoint ck;
  const std::string ext = file.extension().string();
  if (ext == ".safetensors") {
    ck.format_ = "safetensors";
    ck.tensors_ = read_safetensors(file);
  } else if (ext == ".bin" || ext == ".pt" || ext == ".pth") {
    ck.format_ = "pytorch_bin";
    ck.tensors_ = read_torch_bin(file);
  } else {
    ATLAS_FAIL(CheckpointError, "'{}': unknown checkpoint extension '{}' (expected .safetensors or .bin)",
               file.string(), ext);
  }
  ck.files_.push_back(file);
  return ck;
}

const RawTensor& Checkpoint::at(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    std::string where;
    for (const auto& f : files_) where += (where.empty() ? "'" : ", '") + f.string() + "'";
    ATLAS_FAIL(CheckpointError, "tensor '{}' not found in {} ({} tensors)", name, where, tensors_.size());
  }
  return it->second;
}

std::string Checkpoint::hash() const { return checkpoint_hash(files_); }

std::string checkpoint_hash(const std::vector<fs::path>& files) {
  ATLAS_CHECK(!files.empty(), CheckpointError, "checkpoint has no files to hash");
  if (files.size() == 1) return cached_sha256_file(files[0]);
  std::vector<fs::path> sorted = files;
  std::sort(sorted.begin(), sorted.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });
  std::string digests;
  for (const auto& f : sorted) digests += cached_sha256_file(f);
  return sha256_hex(digests);
}

}  // namespace atlas::io
