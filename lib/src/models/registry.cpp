// model_type -> architecture. One explicit line per architecture (no static self-registration:
// the linker would drop it from the static library).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <utility>

#include "atlas/core/error.hpp"
#include "atlas/io/checkpoint.hpp"
#include "models/architectures.hpp"
#include "models/lora.hpp"
#include "models/torchscript.hpp"

namespace atlas::models {

namespace {

const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> kRegistry = {
      {"gpt2", &make_gpt2},       {"bert", &make_bert},         {"distilbert", &make_distilbert},
      {"roberta", &make_roberta}, {"llama", &make_llama},       {"mistral", &make_mistral},
      {"qwen2", &make_qwen2},     {"gpt_neox", &make_gpt_neox}, {"gemma", &make_gemma},
      {"phi", &make_phi},         {"opt", &make_opt},           {"xlm-roberta", &make_xlm_roberta},
      {"t5", &make_t5},           {"mt5", &make_mt5},           {"bart", &make_bart},
  };
  return kRegistry;
}

c10::Device parse_device(const std::string& name) {
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const c10::Error&) {
    ATLAS_FAIL(ConfigError, "device: expected 'cpu', 'cuda' or 'cuda:N', got '{}'", name);
  }
  ATLAS_CHECK(device.is_cpu() || (device.is_cuda() && at::hasCUDA()), ConfigError,
              "device: expected 'cpu'{}, got '{}'",
              at::hasCUDA() ? " or 'cuda[:N]'" : " (this build has no CUDA)", name);
  return device;
}

/// A model with adapters merged or notes to report: the info of the model plus both.
class AdaptedModel final : public Model {
 public:
  AdaptedModel(std::unique_ptr<Model> model, std::vector<AdapterInfo> adapters, std::vector<std::string> notes)
      : model_(std::move(model)), info_(model_->info()) {
    info_.adapters = std::move(adapters);
    info_.notes = std::move(notes);
  }
  const ModelInfo& info() const override { return info_; }
  at::Tensor forward(const Inputs& inputs, Taps& taps, bool compute_logits) override {
    return model_->forward(inputs, taps, compute_logits);
  }

 private:
  std::unique_ptr<Model> model_;
  ModelInfo info_;
};

/// The base model folder of an adapter folder given as the model.
std::filesystem::path adapter_base(const std::filesystem::path& adapter_dir, const LoraAdapter& adapter,
                                   const std::filesystem::path& base, std::vector<std::string>& notes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!base.empty()) {
    ATLAS_CHECK(fs::is_regular_file(base / "config.json", ec), InputError,
                "--base '{}': expected a model folder with config.json", base.string());
    return base;
  }
  const std::string& name = adapter.base_model_name_or_path;
  const std::string config = (adapter_dir / "adapter_config.json").string();
  ATLAS_CHECK(!name.empty(), ConfigError,
              "'{}': key 'base_model_name_or_path': expected the base model, got none (give --base DIR)", config);
  // As given (relative to the working directory), else relative to a folder above the adapter:
  // PEFT writes the path the base was loaded from, which is relative to where training ran.
  fs::path found;
  if (fs::is_regular_file(fs::path(name) / "config.json", ec)) found = name;
  for (fs::path up = fs::absolute(adapter_dir).lexically_normal(); found.empty() && up.has_relative_path();
       up = up.parent_path())
    if (fs::path(name).is_relative() && fs::is_regular_file(up / name / "config.json", ec)) found = up / name;
  ATLAS_CHECK(!found.empty(), ConfigError,
              "'{}': key 'base_model_name_or_path': expected a local model folder, got '{}' (not found here or "
              "above the adapter; hub names are not resolved: give --base DIR)",
              config, name);
  notes.push_back(fmt::format("base model of the adapter in {}: {} (base_model_name_or_path)", adapter_dir.string(),
                              found.string()));
  return found;
}

}  // namespace

ModelContext::ModelContext(std::filesystem::path dir, ConfigReader config, c10::Device device, bool linear_layout)
    : dir_(std::move(dir)), config_(std::move(config)), device_(device), linear_layout_(linear_layout) {}

WeightStore& ModelContext::weights() {
  if (!weights_) {
    weights_ = std::make_unique<WeightStore>(io::Checkpoint::open(dir_), device_);
    weights_->set_linear_layout(linear_layout_);
  }
  return *weights_;
}

Layout resolve_layout(ModelContext& ctx, const std::string& head_class, const std::string& base_class,
                      const std::string& prefix) {
  Layout layout;
  const auto& json = ctx.config().json();
  auto arch = json.find("architectures");
  if (arch != json.end() && arch->is_array() && !arch->empty() && (*arch)[0].is_string()) {
    layout.model_class = (*arch)[0].get<std::string>();
  } else {
    // No architectures entry: a prefixed layout means the head class saved it.
    layout.model_class = ctx.weights().has_prefix(prefix) ? head_class : base_class;
  }
  if (layout.model_class != head_class && layout.model_class != base_class)
    ctx.config().reject("architectures[0]", fmt::format("'{}' or '{}'", head_class, base_class),
                        fmt::format("'{}'", layout.model_class));
  layout.has_head = layout.model_class == head_class;
  layout.prefix = ctx.weights().has_prefix(prefix) ? prefix : "";
  return layout;
}

ModelInfo model_info(ModelContext& ctx, const Layout& layout, const ModelDims& dims) {
  ModelInfo info;
  info.num_layers = dims.num_layers;
  info.num_heads = dims.num_heads;
  info.num_kv_heads = dims.num_kv_heads > 0 ? dims.num_kv_heads : dims.num_heads;
  info.hidden_size = dims.hidden_size;
  info.vocab_size = dims.vocab_size;
  info.max_positions = dims.max_positions;
  info.causal = dims.causal;
  info.model_type = ctx.config().string("model_type");
  info.model_class = layout.model_class;
  info.has_lm_head = layout.has_head;
  info.pad_token_id = ctx.config().integer("pad_token_id", -1);
  info.checkpoint_format = ctx.weights().checkpoint().format();
  info.checkpoint_files = ctx.weights().checkpoint().files();
  info.model_dir = ctx.dir();
  return info;
}

std::vector<std::string> supported_model_types() {
  std::vector<std::string> types;
  for (const auto& [type, factory] : registry()) types.push_back(type);
  return types;
}

std::unique_ptr<Model> load_model(const std::filesystem::path& model_dir, const LoadOptions& options) {
  if (is_torchscript_file(model_dir)) return load_torchscript(model_dir, options);
  std::vector<LoraAdapter> adapters;
  std::vector<std::string> notes;
  std::filesystem::path dir = model_dir;
  std::error_code ec;
  if (is_adapter_dir(model_dir) && !std::filesystem::exists(model_dir / "config.json", ec)) {
    adapters.push_back(read_lora_adapter(model_dir));
    dir = adapter_base(model_dir, adapters.back(), options.base, notes);
  } else {
    ATLAS_CHECK(options.base.empty(), InputError,
                "--base '{}' applies only when the model '{}' is an adapter folder (adapter_config.json without "
                "config.json); use --adapter DIR to add adapters to a model",
                options.base.string(), model_dir.string());
  }
  if (is_adapter_dir(model_dir) && std::filesystem::exists(model_dir / "config.json", ec) && !options.no_adapter) {
    // Never silently run a model folder without the adapter saved next to it.
    adapters.push_back(read_lora_adapter(model_dir));
    notes.push_back(fmt::format("applying the adapter in {} (adapter_config.json); --no-adapter to skip",
                                model_dir.string()));
  }
  for (const auto& a : options.adapters) adapters.push_back(read_lora_adapter(a));
  ConfigReader config(io::read_config(dir), dir / "config.json");
  const std::string model_type = config.string("model_type");
  Factory factory = nullptr;
  for (const auto& [type, f] : registry())
    if (type == model_type) factory = f;
  if (!factory)
    config.reject("model_type", fmt::format("one of {}", fmt::join(supported_model_types(), ", ")),
                  fmt::format("'{}'", model_type));
  // Attribution needs ordinary weight tensors (inference tensors cannot be saved for backward).
  c10::InferenceMode guard(!options.autograd);
  c10::AutoGradMode no_grad(false);
  ModelContext ctx(dir, std::move(config), parse_device(options.device),
                   options.linear_layout && !options.autograd && linear_layout_available());
  for (auto& a : adapters) ctx.weights().add_adapter(a);
  std::unique_ptr<Model> model = factory(ctx);
  ctx.weights().finish(fmt::format("{} ({})", model->info().model_class, model_type));
  if (adapters.empty() && notes.empty()) return model;
  std::vector<AdapterInfo> infos;
  for (auto& a : adapters) infos.push_back(std::move(a.info));
  return std::make_unique<AdaptedModel>(std::move(model), std::move(infos), std::move(notes));
}

}  // namespace atlas::models
