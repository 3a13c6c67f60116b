#include "models/weights.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <regex>

#include "atlas/core/error.hpp"
#include "models/lora.hpp"

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
  at::Tensor weight = convert(name, raw);
  auto deltas = deltas_.find(name);
  if (deltas != deltas_.end()) {
    // Out of place: `weight` may be a view of the read-only mapping.
    for (const at::Tensor& delta : deltas->second) weight = weight + delta;
    merged_.insert(name);
  }
  return weight;
}

at::Tensor WeightStore::take_linear(const std::string& name, const std::vector<int64_t>& shape) {
  at::Tensor weight = take(name, shape);
  if (!linear_layout_ || weight.dim() != 2 || weight.scalar_type() != at::kFloat || !weight.is_cpu()) return weight;
  return weight.t().contiguous().t();  // a copy: the checkpoint's mapping stays untouched
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

void WeightStore::add_adapter(LoraAdapter& adapter) {
  const AdapterInfo& info = adapter.info;
  const std::string file = info.weight_file.string();
  std::regex target_regex;
  if (adapter.target_regex) {
    try {
      target_regex = std::regex(info.target_modules.at(0));
    } catch (const std::regex_error& e) {
      ATLAS_FAIL(ConfigError, "'{}': key 'target_modules': expected a regex, got '{}' ({})",
                 (info.dir / "adapter_config.json").string(), info.target_modules.at(0), e.what());
    }
  }
  // PEFT's check_target_module_exists: a list entry matches the module name or its last
  // components; a string is re.fullmatch-ed against the whole module name.
  auto targeted = [&](const std::string& module) {
    if (adapter.target_regex) return std::regex_match(module, target_regex);
    for (const auto& t : info.target_modules)
      if (module == t || (module.size() > t.size() && module.compare(module.size() - t.size(), t.size(), t) == 0 &&
                          module[module.size() - t.size() - 1] == '.'))
        return true;
    return false;
  };
  std::map<std::string, at::Tensor> pending;
  for (const auto& [name_a, raw_a] : adapter.weights.tensors()) {
    std::string module;
    std::string base = lora_base_tensor(name_a, "lora_A", &module);
    if (base.empty()) continue;
    const std::string name_b = name_a.substr(0, name_a.size() - std::string("lora_A.weight").size()) + "lora_B.weight";
    ATLAS_CHECK(adapter.weights.contains(name_b), CheckpointError,
                "adapter tensor '{}' in '{}' has no matching '{}' (expected lora_A and lora_B for every module)",
                name_a, file, name_b);
    const io::RawTensor& raw_b = adapter.weights.at(name_b);
    ATLAS_CHECK(targeted(module), CheckpointError,
                "adapter tensor '{}' in '{}': module '{}' is not in target_modules [{}] of adapter_config.json",
                name_a, file, module, fmt::join(info.target_modules, ", "));
    // Hub checkpoints of some head classes store the base model's keys without its prefix
    // ("h.0.attn.c_attn.weight" for GPT2LMHeadModel's "transformer.h.0.attn.c_attn.weight").
    if (!checkpoint_.contains(base)) {
      const auto dot = base.find('.');
      if (dot != std::string::npos && checkpoint_.contains(base.substr(dot + 1))) base = base.substr(dot + 1);
    }
    ATLAS_CHECK(checkpoint_.contains(base), CheckpointError,
                "adapter tensor '{}' in '{}': unknown target module '{}' (no base tensor '{}' in {}): an adapter "
                "for another model?",
                name_a, file, module, base, files_string(checkpoint_));
    const io::RawTensor& raw = checkpoint_.at(base);
    ATLAS_CHECK(raw_a.shape.size() == 2 && raw_b.shape.size() == 2 && raw_a.shape[0] == info.r &&
                    raw_b.shape[1] == info.r,
                CheckpointError,
                "adapter tensors '{}' {} and '{}' {} in '{}': expected [r, in] and [out, r] with r = {}", name_a,
                shape_string(raw_a.shape), name_b, shape_string(raw_b.shape), file, info.r);
    const std::vector<int64_t> delta_shape = info.fan_in_fan_out
                                                 ? std::vector<int64_t>{raw_a.shape[1], raw_b.shape[0]}
                                                 : std::vector<int64_t>{raw_b.shape[0], raw_a.shape[1]};
    ATLAS_CHECK(raw.shape == delta_shape, CheckpointError,
                "adapter tensor '{}' in '{}' is for another base model: lora_B {} @ lora_A {}{} gives {}, base "
                "tensor '{}' in '{}' is {}",
                name_a, file, shape_string(raw_b.shape), shape_string(raw_a.shape),
                info.fan_in_fan_out ? " (transposed, fan_in_fan_out)" : "", shape_string(delta_shape), base,
                raw.file.string(), shape_string(raw.shape));
    // PEFT's get_delta_weight, in float32 like its merge: transpose(B @ A, fan_in_fan_out) * scaling.
    at::Tensor delta = at::matmul(convert(name_b, raw_b), convert(name_a, raw_a));
    if (info.fan_in_fan_out) delta = delta.t();
    pending[base] = (delta * info.scaling).contiguous();
  }
  for (const auto& [name_b, raw_b] : adapter.weights.tensors()) {
    if (lora_base_tensor(name_b, "lora_B").empty()) continue;
    const std::string name_a = name_b.substr(0, name_b.size() - std::string("lora_B.weight").size()) + "lora_A.weight";
    ATLAS_CHECK(adapter.weights.contains(name_a), CheckpointError,
                "adapter tensor '{}' in '{}' has no matching '{}' (expected lora_A and lora_B for every module)",
                name_b, file, name_a);
  }
  ATLAS_CHECK(!pending.empty(), CheckpointError, "adapter '{}' holds no lora_A / lora_B tensors", file);
  for (auto& [base, delta] : pending) {
    deltas_[base].push_back(delta);
    adapter.info.merged_tensors.push_back(base);
  }
}

void WeightStore::finish(const std::string& owner) const {
  for (const auto& [name, deltas] : deltas_)
    ATLAS_CHECK(merged_.count(name) != 0, CheckpointError,
                "an adapter changes tensor '{}', which {} does not use as a weight (a tied copy or a buffer)", name,
                owner);
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
