#include "models/weights.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <cstring>
#include <memory>

#include "atlas/core/error.hpp"

namespace atlas::models {

std::string shape_string(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

namespace {

std::string files_string(const io::Checkpoint& checkpoint) {
  std::vector<std::string> names;
  for (const auto& f : checkpoint.files()) names.push_back(f.string());
  return names.size() == 1 ? fmt::format("'{}'", names[0]) : fmt::format("[{}]", fmt::join(names, ", "));
}

}  // namespace

WeightStore::WeightStore(io::Checkpoint checkpoint, c10::Device device)
    : checkpoint_(std::move(checkpoint)), device_(device) {
  for (const auto& [name, raw] : checkpoint_.tensors()) unclaimed_.insert(name);
}

bool WeightStore::has_prefix(const std::string& prefix) const {
  auto it = checkpoint_.tensors().lower_bound(prefix);
  return it != checkpoint_.tensors().end() && it->first.compare(0, prefix.size(), prefix) == 0;
}

at::Tensor WeightStore::convert(const std::string& name, const io::RawTensor& raw) const {
  at::ScalarType type;
  switch (raw.dtype) {
    case io::TensorDType::F32:
      type = at::kFloat;
      break;
    case io::TensorDType::F16:
      type = at::kHalf;
      break;
    case io::TensorDType::BF16:
      type = at::kBFloat16;
      break;
    case io::TensorDType::F64:
      type = at::kDouble;
      break;
    default:
      ATLAS_FAIL(CheckpointError,
                 "tensor '{}' in '{}': expected a floating-point dtype (F32, F16, BF16, F64), got {}", name,
                 raw.file.string(), io::tensor_dtype_name(raw.dtype));
  }
  at::Tensor source;
  const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  const int64_t numel = raw.numel();
  ATLAS_CHECK(static_cast<size_t>(numel) * c10::elementSize(type) == raw.nbytes, CheckpointError,
              "tensor '{}' in '{}': shape {} needs {} bytes, got {}", name, raw.file.string(),
              shape_string(raw.shape), static_cast<size_t>(numel) * c10::elementSize(type), raw.nbytes);
  const bool aligned = reinterpret_cast<uintptr_t>(raw.data) % c10::elementSize(type) == 0;
  if (raw.nbytes != 0 && raw.data != nullptr && raw.owner && aligned) {
    // A view of the checkpoint's bytes (the safetensors mapping, or the buffer the .bin reader
    // inflated a storage into): no copy. The deleter holds the owner, so the bytes live as long as
    // the tensor. The mapping is PROT_READ: an in-place write to a weight crashes instead of
    // silently changing the model (and every weight tied to it).
    std::shared_ptr<const void> owner = raw.owner;
    source = at::from_blob(
        const_cast<std::byte*>(raw.data), raw.shape, [owner](void*) mutable { owner.reset(); }, options);
  } else {
    // safetensors offsets are only a multiple of the element size of the tensors before this one.
    source = at::empty(raw.shape, options);
    if (raw.nbytes) std::memcpy(source.data_ptr(), raw.data, raw.nbytes);
  }
  // A no-op for float32 on the CPU; a converting copy otherwise (F16/BF16/F64, or another device).
  return source.to(device_, at::kFloat);
}

at::Tensor WeightStore::take(const std::string& name, const std::vector<int64_t>& shape) {
  ATLAS_CHECK(checkpoint_.contains(name), CheckpointError,
              "tensor '{}' missing from {} (expected shape {}, got no such tensor)", name,
              files_string(checkpoint_), shape_string(shape));
  const io::RawTensor& raw = checkpoint_.at(name);
  ATLAS_CHECK(raw.shape == shape, CheckpointError, "tensor '{}' in '{}': expected shape {}, got {}", name,
              raw.file.string(), shape_string(shape), shape_string(raw.shape));
  unclaimed_.erase(name);
  return convert(name, raw);
}

at::Tensor WeightStore::take_optional(const std::string& name, const std::vector<int64_t>& shape) {
  return checkpoint_.contains(name) ? take(name, shape) : at::Tensor();
}

void WeightStore::claim_tied_copy(const std::string& name, const std::vector<int64_t>& shape) {
  if (!checkpoint_.contains(name)) return;
  const io::RawTensor& raw = checkpoint_.at(name);
  ATLAS_CHECK(raw.shape == shape, CheckpointError,
              "tensor '{}' in '{}' (a tied copy): expected shape {}, got {}", name, raw.file.string(),
              shape_string(shape), shape_string(raw.shape));
  unclaimed_.erase(name);
}

at::Tensor WeightStore::take_or_tie(const std::string& name, const std::vector<int64_t>& shape, bool tied,
                                   const at::Tensor& tied_to) {
  if (!tied) return take(name, shape);
  claim_tied_copy(name, shape);
  return tied_to;
}

void WeightStore::ignore_buffers(const std::vector<std::string>& suffixes) {
  for (auto it = unclaimed_.begin(); it != unclaimed_.end();) {
    bool drop = false;
    for (const auto& s : suffixes)
      drop = drop || (it->size() >= s.size() && it->compare(it->size() - s.size(), s.size(), s) == 0);
    it = drop ? unclaimed_.erase(it) : std::next(it);
  }
}

void WeightStore::finish(const std::string& owner) const {
  if (unclaimed_.empty()) return;
  std::vector<std::string> listed;
  for (const auto& name : unclaimed_) {
    if (listed.size() == 5) break;
    const io::RawTensor& raw = checkpoint_.at(name);
    listed.push_back(fmt::format("'{}' {} in '{}'", name, shape_string(raw.shape), raw.file.string()));
  }
  ATLAS_FAIL(CheckpointError, "{} unclaimed tensor(s) that {} does not use (expected none, got {}{})",
             unclaimed_.size(), owner, fmt::join(listed, ", "),
             unclaimed_.size() > listed.size() ? ", ..." : "");
}

}  // namespace atlas::models
