// TorchScript modules (torch.jit.save) that return their attention maps: docs/custom-models.md.
// In its own file because <torch/script.h> is expensive to compile.
#include "models/torchscript.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <torch/script.h>

#include <string>
#include <vector>

#include "atlas/core/error.hpp"

namespace atlas::models {

namespace fs = std::filesystem;

bool is_torchscript_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  const std::string ext = path.extension().string();
  return ext == ".pt" || ext == ".pth" || ext == ".ts" || ext == ".torchscript";
}

namespace {

struct Outputs {
  std::vector<at::Tensor> attentions;   // per layer [B,H,T,T]
  at::Tensor logits;                    // [B,T,V] or undefined
};

class TorchScriptModel final : public Model {
 public:
  TorchScriptModel(const fs::path& file, c10::Device device) : file_(file), device_(device) {
    try {
      module_ = torch::jit::load(file.string(), device);
    } catch (const c10::Error& e) {
      ATLAS_FAIL(CheckpointError, "'{}': expected a TorchScript module saved with torch.jit.save, got: {}",
                 file.string(), first_line(e.what_without_backtrace()));
    }
    module_.eval();
    ATLAS_CHECK(module_.find_method("forward").has_value(), CheckpointError,
                "'{}': the TorchScript module has no forward method", file.string());
    // Probe: the attention it returns says how many layers and heads there are.
    Outputs probe = run(at::arange(4, at::TensorOptions().dtype(at::kLong)).unsqueeze(0));
    info_.model_type = "torchscript";
    info_.model_class = module_.type()->name() ? module_.type()->name()->name() : "TorchScript";
    info_.num_layers = attr_int("num_layers", static_cast<int64_t>(probe.attentions.size()));
    info_.num_heads = attr_int("num_heads", probe.attentions[0].size(1));
    ATLAS_CHECK(info_.num_layers == static_cast<int64_t>(probe.attentions.size()) &&
                    info_.num_heads == probe.attentions[0].size(1),
                CheckpointError,
                "'{}': module attributes say {} layers x {} heads, its forward returned {} x {}", file.string(),
                info_.num_layers, info_.num_heads, probe.attentions.size(), probe.attentions[0].size(1));
    info_.num_kv_heads = info_.num_heads;
    info_.has_lm_head = probe.logits.defined();
    info_.vocab_size = attr_int("vocab_size", probe.logits.defined() ? probe.logits.size(-1) : 0);
    info_.max_positions = attr_int("max_positions", 0);
    // Causal when the probe's attention above the diagonal is exactly zero (or the module says so).
    const bool upper_zero = at::triu(probe.attentions[0].to(at::kCPU), 1).abs().max().item<double>() == 0.0;
    info_.causal = module_.hasattr("causal") ? module_.attr("causal").toBool() : upper_zero;
    info_.checkpoint_format = "torchscript";
    info_.checkpoint_files = {file};
    info_.model_dir = file;
  }

  const ModelInfo& info() const override { return info_; }

  at::Tensor forward(const Inputs& inputs, Taps& taps, bool compute_logits) override {
    ATLAS_CHECK(!inputs.past, InputError, "'{}': a TorchScript module has no key/value cache path", file_.string());
    const at::Tensor ids = inputs.input_ids.to(device_);
    const int64_t batch = ids.size(0), length = ids.size(1);
    ATLAS_CHECK(!compute_logits || info_.has_lm_head, InputError,
                "'{}': logits asked for, but the module returns attention only", file_.string());
    std::vector<at::Tensor> attentions(info_.num_layers);
    at::Tensor logits;
    const bool padded =
        inputs.attention_mask.defined() && inputs.attention_mask.min().item<int64_t>() == 0;
    if (!padded) {
      Outputs out = run(ids);
      attentions = out.attentions;
      logits = out.logits;
    } else {
      // The contract has no attention mask: run each row at its own (right-padded) length and pad
      // the maps with zeros, as masked positions are.
      const at::Tensor lengths = inputs.attention_mask.sum(1).to(at::kCPU);
      for (auto& a : attentions) a = at::zeros({batch, info_.num_heads, length, length}, ids.options().dtype(at::kFloat));
      if (info_.has_lm_head) logits = at::zeros({batch, length, info_.vocab_size}, ids.options().dtype(at::kFloat));
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t n = lengths[b].item<int64_t>();
        ATLAS_CHECK(inputs.attention_mask[b].slice(0, 0, n).min().item<int64_t>() == 1, InputError,
                    "'{}': a TorchScript module takes right-padded batches only", file_.string());
        Outputs out = run(ids.slice(0, b, b + 1).slice(1, 0, n));
        for (int64_t l = 0; l < info_.num_layers; ++l)
          attentions[l][b].slice(1, 0, n).slice(2, 0, n).copy_(out.attentions[l][0]);
        if (logits.defined()) logits[b].slice(0, 0, n).copy_(out.logits[0]);
      }
    }
    ATLAS_CHECK(static_cast<int64_t>(attentions.size()) == info_.num_layers, InputError,
                "'{}': forward returned {} attention maps, the probe run {}", file_.string(), attentions.size(),
                info_.num_layers);
    for (int64_t l = 0; l < info_.num_layers; ++l)
      if (taps.wants(kAttnProbs, l)) taps.emit(kAttnProbs, l, attentions[l]);
    return compute_logits ? logits : at::Tensor();
  }

 private:
  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  int64_t attr_int(const char* name, int64_t fallback) const {
    if (!module_.hasattr(name)) return fallback;
    const c10::IValue v = module_.attr(name);
    return v.isInt() ? v.toInt() : fallback;
  }

  /// An element of the output that should be the per-layer attention maps.
  std::vector<at::Tensor> attention_list(const c10::IValue& v) const {
    std::vector<at::Tensor> out;
    if (v.isTensorList()) {
      out = v.toTensorVector();
    } else if (v.isList() || v.isTuple()) {
      const auto elements = v.isList() ? v.toListRef().vec() : v.toTupleRef().elements().vec();
      for (const auto& e : elements) {
        ATLAS_CHECK(e.isTensor(), CheckpointError,
                    "'{}': forward's attention maps must be tensors [B,H,T,T], got a {}", file_.string(),
                    e.tagKind());
        out.push_back(e.toTensor());
      }
    } else {
      ATLAS_FAIL(CheckpointError,
                 "'{}': forward must return its attention maps (a tuple whose first element is a list of "
                 "[B,H,T,T] tensors, or a dict with \"attentions\"; docs/custom-models.md), got a {}",
                 file_.string(), v.tagKind());
    }
    return out;
  }

  Outputs run(const at::Tensor& ids) {
    c10::IValue result;
    try {
      result = module_.forward({ids.to(device_)});
    } catch (const c10::Error& e) {
      ATLAS_FAIL(InputError, "'{}': forward(input_ids [{}, {}]) failed: {}", file_.string(), ids.size(0),
                 ids.size(1), first_line(e.what_without_backtrace()));
    }
    const std::string contract =
        "a tuple (attentions, [logits]) or a dict with \"attentions\" (docs/custom-models.md)";
    Outputs out;
    c10::IValue attn, logits;
    if (result.isTuple()) {
      const auto& elements = result.toTupleRef().elements();
      ATLAS_CHECK(!elements.empty(), CheckpointError, "'{}': forward returned an empty tuple, expected {}",
                  file_.string(), contract);
      attn = elements[0];
      if (elements.size() > 1) logits = elements[1];
    } else if (result.isGenericDict()) {
      const auto dict = result.toGenericDict();
      ATLAS_CHECK(dict.contains("attentions"), CheckpointError,
                  "'{}': forward returned a dict without key \"attentions\" (expected {})", file_.string(), contract);
      attn = dict.at("attentions");
      if (dict.contains("logits")) logits = dict.at("logits");
    } else {
      ATLAS_FAIL(CheckpointError, "'{}': forward returned no attention (a {}), expected {}", file_.string(),
                 result.tagKind(), contract);
    }
    out.attentions = attention_list(attn);
    ATLAS_CHECK(!out.attentions.empty(), CheckpointError, "'{}': forward returned no attention maps, expected {}",
                file_.string(), contract);
    const int64_t b = ids.size(0), t = ids.size(1);
    for (size_t l = 0; l < out.attentions.size(); ++l) {
      at::Tensor& a = out.attentions[l];
      ATLAS_CHECK(a.dim() == 4 && a.size(0) == b && a.size(2) == t && a.size(3) == t && a.is_floating_point(),
                  CheckpointError, "'{}': attention map {} of forward: expected a float tensor [{}, H, {}, {}], got {} {}",
                  file_.string(), l, b, t, t, c10::toString(a.scalar_type()), c10::str(a.sizes()));
      a = a.to(at::kFloat);
    }
    if (!logits.isNone()) {
      ATLAS_CHECK(logits.isTensor() && logits.toTensor().dim() == 3, CheckpointError,
                  "'{}': forward's second output must be logits [B,T,V], got a {}", file_.string(), logits.tagKind());
      out.logits = logits.toTensor().to(at::kFloat);
    }
    return out;
  }

  fs::path file_;
  c10::Device device_;
  torch::jit::Module module_;
  ModelInfo info_;
};

}  // namespace

std::unique_ptr<Model> load_torchscript(const fs::path& file, const LoadOptions& options) {
  ATLAS_CHECK(options.adapters.empty(), InputError,
              "'{}': --adapter applies to Hugging Face checkpoints, not to a TorchScript module", file.string());
  c10::InferenceMode guard;
  return std::make_unique<TorchScriptModel>(file, c10::Device(options.device));
}

}  // namespace atlas::models
