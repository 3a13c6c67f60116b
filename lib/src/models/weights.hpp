#pragma once
// Strict weight store over an atlas::io::Checkpoint: every tensor the model needs is taken by name
// with its expected shape, and finish() rejects whatever nobody claimed. Loading is strict both
// ways so that a checkpoint of a slightly different architecture cannot load "successfully".
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "atlas/io/checkpoint.hpp"

namespace atlas::models {

struct LoraAdapter;

class WeightStore {
 public:
  WeightStore(io::Checkpoint checkpoint, c10::Device device);

  /// The tensor as float32 on the device (F16/BF16/F64 converted). CheckpointError naming tensor,
  /// file, expected and got when it is missing or its shape differs. An aligned float32 tensor on
  /// the CPU is a view of the checkpoint's read-only mapping, not a copy: never write to it in place.
  at::Tensor take(const std::string& name, const std::vector<int64_t>& shape);
  /// take() of the weight [out, in] of a linear layer, which the model only passes to project().
  /// With set_linear_layout(true) its values are stored transposed ([in, out] row-major, the view
  /// [out, in] with strides {1, out}): the layout project() hands to oneDNN's sgemm.
  at::Tensor take_linear(const std::string& name, const std::vector<int64_t>& shape);
  void set_linear_layout(bool on) { linear_layout_ = on; }
  bool linear_layout() const { return linear_layout_; }
  /// Like take(), but an absent tensor gives an undefined tensor (parts a class may or may not
  /// save, e.g. BERT's pooler).
  at::Tensor take_optional(const std::string& name, const std::vector<int64_t>& shape);
  /// Claims a stored copy of a tied weight (pytorch_model.bin files save lm_head.weight next to the
  /// embedding it is tied to); the shape is checked, the values are not used.
  void claim_tied_copy(const std::string& name, const std::vector<int64_t>& shape);
  /// A weight that config.json may tie to another one (an LM head tied to the token embedding):
  /// `tied_to` when `tied` (a stored copy of `name` is claimed, its shape checked), else take().
  at::Tensor take_or_tie(const std::string& name, const std::vector<int64_t>& shape, bool tied,
                         const at::Tensor& tied_to);
  /// Claims unclaimed tensors whose names end with one of `suffixes`: non-persistent buffers that
  /// older checkpoints contain (GPT-2 "attn.bias", "rotary_emb.inv_freq", "position_ids").
  void ignore_buffers(const std::vector<std::string>& suffixes);
  /// CheckpointError listing the tensors nobody claimed (`owner` names the model class), or naming
  /// a tensor an adapter changes that the model never took.
  void finish(const std::string& owner) const;
  /// Merges a LoRA adapter: take() of each tensor it targets then returns a new tensor W + delta
  /// (never written into the checkpoint's mapping); adapters add up in the order given. Checks
  /// every adapter tensor against its base tensor now: CheckpointError naming the tensor for an
  /// unknown module, one outside target_modules, or a shape that does not fit (both shapes named).
  /// Records the changed tensors in adapter.info.merged_tensors.
  void add_adapter(LoraAdapter& adapter);

  bool contains(const std::string& name) const { return checkpoint_.contains(name); }
  /// Whether some tensor name starts with `prefix`.
  bool has_prefix(const std::string& prefix) const;
  const io::Checkpoint& checkpoint() const { return checkpoint_; }
  c10::Device device() const { return device_; }

 private:
  at::Tensor convert(const std::string& name, const io::RawTensor& raw) const;
  io::Checkpoint checkpoint_;
  std::set<std::string> unclaimed_;
  c10::Device device_;
  bool linear_layout_ = false;
  std::map<std::string, std::vector<at::Tensor>> deltas_;   // base tensor -> adapter deltas, in order
  std::set<std::string> merged_;                            // base tensors take() merged
};

/// "[2, 3]" for error messages.
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace atlas::models
