// Scoring runs (atlas/extract/scorer.hpp): log-probabilities of chosen tokens and attention maps of
// many short sequences, in right-padded batches sorted by length. Right padding with the attention
// mask leaves every real position as it is unbatched (causal and bidirectional models alike).
#include "atlas/extract/scorer.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <numeric>
#include <thread>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/json.hpp"
#include "atlas/io/checkpoint.hpp"
#include "atlas/io/hub.hpp"
#include "atlas/models/model.hpp"

namespace atlas::extract {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json read_json_if_there(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return json::object();
  json j = parse_json(read_file(path), path.string());
  return j.is_object() ? j : json::object();
}

/// tokenizer_config.json / special_tokens_map.json write a special token as "[MASK]" or as
/// {"content": "[MASK]", ...}.
std::string token_string(const json& j, const std::string& key) {
  if (!j.contains(key)) return {};
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return {};
}

/// Keeps layer l of the attention of each sequence of a batch, cut to its own length.
class AttentionTaps final : public models::Taps {
 public:
  AttentionTaps(std::vector<int64_t> lengths, int64_t layers) : lengths_(std::move(lengths)), layers_(layers) {
    per_layer_.resize(lengths_.size());
  }
  bool wants(const std::string& name, int64_t) const override { return name == models::kAttnProbs; }
  void emit(const std::string& name, int64_t layer, const at::Tensor& value) override {
    if (name != models::kAttnProbs) return;
    ATLAS_CHECK(layer == static_cast<int64_t>(per_layer_[0].size()), Error,
                "internal: attention of layer {} emitted out of order", layer);
    for (size_t b = 0; b < lengths_.size(); ++b) {
      const int64_t n = lengths_[b];
      per_layer_[b].push_back(
          value.select(0, static_cast<int64_t>(b)).narrow(1, 0, n).narrow(2, 0, n).to(at::kCPU, at::kFloat).contiguous());
    }
  }
  SequenceAttention take(size_t b) {
    SequenceAttention a;
    a.layers = static_cast<int64_t>(per_layer_[b].size());
    ATLAS_CHECK(a.layers == layers_, Error, "internal: the model emitted {} of {} attention layers", a.layers, layers_);
    a.heads = per_layer_[b][0].size(0);
    a.tokens = lengths_[b];
    for (const at::Tensor& t : per_layer_[b])
      a.values.insert(a.values.end(), t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
    per_layer_[b].clear();
    return a;
  }

 private:
  std::vector<int64_t> lengths_;
  int64_t layers_;
  std::vector<std::vector<at::Tensor>> per_layer_;
};

class TorchScorer final : public Scorer {
 public:
  explicit TorchScorer(const RunOptions& given) : options_(given) {
    io::HubOptions hub;
    options_.model_dir = io::resolve_model(options_.model_dir.string(), hub);
    if (!options_.tokenizer_dir.empty()) options_.tokenizer_dir = io::resolve_model(options_.tokenizer_dir.string(), hub);
    const bool cuda = options_.device.rfind("cuda", 0) == 0;
    ATLAS_CHECK(options_.device == "cpu" || cuda, InputError, "unknown --device '{}' (expected cpu, cuda or cuda:N)",
                options_.device);
    info_.threads = options_.threads > 0 ? options_.threads
                                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    at::set_num_threads(info_.threads);
    models::LoadOptions load;
    load.device = options_.device;
    load.adapters = options_.adapters;
    load.base = options_.base_dir;
    load.no_adapter = options_.no_adapter;
    model_ = models::load_model(options_.model_dir, load);
    const models::ModelInfo& mi = model_->info();
    ATLAS_CHECK(!mi.is_encoder_decoder, ConfigError,
                "{} is an encoder-decoder; bias scoring supports causal and masked language models", mi.model_class);
    ATLAS_CHECK(mi.has_lm_head, ConfigError,
                "{} in '{}' has no language-model head, so it cannot score sentences (use a *ForCausalLM or "
                "*ForMaskedLM checkpoint)",
                mi.model_class, options_.model_dir.string());
    const fs::path tok_dir = options_.tokenizer_dir.empty()
                                 ? (mi.model_dir.empty() ? options_.model_dir : mi.model_dir)
                                 : options_.tokenizer_dir;
    tokenizer_ = tokenize::load_tokenizer(tok_dir);
    info_.model_type = mi.model_type;
    info_.model_class = mi.model_class;
    info_.model_path = fs::absolute(mi.model_dir.empty() ? options_.model_dir : mi.model_dir).lexically_normal().string();
    info_.checkpoint_sha256 = io::checkpoint_hash(mi.checkpoint_files);
    info_.tokenizer_kind = tokenizer_->kind();
    info_.causal = mi.causal;
    info_.masked = !mi.causal;
    info_.num_layers = mi.num_layers;
    info_.num_heads = mi.num_heads;
    info_.vocab_size = mi.vocab_size;
    info_.max_positions = mi.max_positions;
    pad_ = mi.pad_token_id >= 0 ? mi.pad_token_id : 0;

    const json config = read_json_if_there(options_.model_dir / "config.json");
    json tok_config = read_json_if_there(tok_dir / "tokenizer_config.json");
    const json special = read_json_if_there(tok_dir / "special_tokens_map.json");
    info_.do_lower_case = tok_config.value("do_lower_case", false);
    auto lookup = [&](const std::string& key) -> int64_t {
      std::string s = token_string(tok_config, key);
      if (s.empty()) s = token_string(special, key);
      if (s.empty()) return -1;
      return tokenizer_->token_to_id(s).value_or(-1);
    };
    if (info_.causal) {
      if (config.contains("bos_token_id") && config["bos_token_id"].is_number_integer())
        info_.bos_id = config["bos_token_id"].get<int64_t>();
      if (info_.bos_id < 0) info_.bos_id = lookup("bos_token");
      if (info_.bos_id < 0) info_.bos_id = tokenizer_->token_to_id("<|endoftext|>").value_or(-1);
    } else {
      info_.mask_id = lookup("mask_token");
      for (const char* m : {"[MASK]", "<mask>"})
        if (info_.mask_id < 0) info_.mask_id = tokenizer_->token_to_id(m).value_or(-1);
      ATLAS_CHECK(info_.mask_id >= 0, ConfigError,
                  "the tokenizer in '{}' has no mask token (mask_token in tokenizer_config.json, [MASK] or <mask>)",
                  tok_dir.string());
    }
  }

  const ScorerInfo& info() const override { return info_; }

  tokenize::Encoding encode(const std::string& text, bool add_special_tokens) const override {
    return tokenizer_->encode(text, add_special_tokens);
  }
  std::string token_text(int64_t id) const override { return tokenizer_->display(id); }

  std::vector<std::vector<double>> log_probs(const std::vector<ScoreQuery>& queries, int64_t batch_size,
                                             const ScoreProgress& progress) override {
    std::vector<std::vector<double>> out(queries.size());
    for (size_t i = 0; i < queries.size(); ++i) check_query(queries[i], i);
    const auto order = by_length(queries.size(), [&](size_t i) { return queries[i].ids.size(); });
    c10::InferenceMode guard;
    const at::Device device(options_.device);
    const auto total = static_cast<int64_t>(queries.size());
    for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size)) {
      const size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size));
      std::vector<const std::vector<int64_t>*> seqs;
      for (size_t k = start; k < end; ++k) seqs.push_back(&queries[order[k]].ids);
      models::Inputs inputs = batch_inputs(seqs, device);
      models::NullTaps taps;
      at::Tensor logits = model_->forward(inputs, taps, true);   // [B,T,V]
      // Only the picked rows go through log_softmax: [N,V] instead of [B,T,V].
      std::vector<int64_t> rows, targets;
      const int64_t t = logits.size(1);
      for (size_t k = start; k < end; ++k) {
        for (const auto& [pos, tok] : queries[order[k]].picks) {
          rows.push_back(static_cast<int64_t>(k - start) * t + pos);
          targets.push_back(tok);
        }
      }
      if (!rows.empty()) {
        at::Tensor flat = logits.reshape({-1, logits.size(2)});
        at::Tensor picked = flat.index_select(0, at::tensor(rows, at::kLong).to(device)).to(at::kFloat);
        at::Tensor lp = at::log_softmax(picked, -1)
                            .gather(1, at::tensor(targets, at::kLong).to(device).unsqueeze(1))
                            .squeeze(1)
                            .to(at::kCPU, at::kDouble)
                            .contiguous();
        const double* v = lp.data_ptr<double>();
        size_t r = 0;
        for (size_t k = start; k < end; ++k) {
          auto& dst = out[order[k]];
          dst.assign(v + r, v + r + queries[order[k]].picks.size());
          r += queries[order[k]].picks.size();
        }
      }
      if (progress) progress(static_cast<int64_t>(end), total);
    }
    return out;
  }

  std::vector<SequenceAttention> attention(const std::vector<std::vector<int64_t>>& sequences,
                                           int64_t batch_size) override {
    std::vector<SequenceAttention> out(sequences.size());
    for (size_t i = 0; i < sequences.size(); ++i) check_query(ScoreQuery{sequences[i], {}}, i);
    const auto order = by_length(sequences.size(), [&](size_t i) { return sequences[i].size(); });
    c10::InferenceMode guard;
    const at::Device device(options_.device);
    for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size)) {
      const size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size));
      std::vector<const std::vector<int64_t>*> seqs;
      std::vector<int64_t> lengths;
      for (size_t k = start; k < end; ++k) {
        seqs.push_back(&sequences[order[k]]);
        lengths.push_back(static_cast<int64_t>(sequences[order[k]].size()));
      }
      AttentionTaps taps(lengths, info_.num_layers);
      (void)model_->forward(batch_inputs(seqs, device), taps, false);
      for (size_t k = start; k < end; ++k) out[order[k]] = taps.take(k - start);
    }
    return out;
  }

 private:
  void check_query(const ScoreQuery& q, size_t index) const {
    ATLAS_CHECK(!q.ids.empty(), InputError, "scoring query {} has no tokens", index);
    ATLAS_CHECK(info_.max_positions <= 0 || static_cast<int64_t>(q.ids.size()) <= info_.max_positions, InputError,
                "scoring query {} has {} tokens but the model accepts at most {}", index, q.ids.size(),
                info_.max_positions);
    for (int64_t id : q.ids)
      ATLAS_CHECK(id >= 0 && (id < info_.vocab_size || info_.vocab_size <= 0), InputError,
                  "scoring query {}: token id {} is outside the vocabulary (expected 0 <= id < {})", index, id,
                  info_.vocab_size);
    for (const auto& [pos, tok] : q.picks) {
      ATLAS_CHECK(pos >= 0 && pos < static_cast<int64_t>(q.ids.size()), InputError,
                  "scoring query {}: position {} outside its {} tokens", index, pos, q.ids.size());
      ATLAS_CHECK(tok >= 0 && (tok < info_.vocab_size || info_.vocab_size <= 0), InputError,
                  "scoring query {}: token id {} is outside the vocabulary", index, tok);
    }
  }

  template <class Len>
  static std::vector<size_t> by_length(size_t n, Len len) {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return len(a) < len(b); });
    return order;
  }

  models::Inputs batch_inputs(const std::vector<const std::vector<int64_t>*>& seqs, const at::Device& device) const {
    int64_t t = 0;
    for (const auto* s : seqs) t = std::max(t, static_cast<int64_t>(s->size()));
    const auto b = static_cast<int64_t>(seqs.size());
    at::Tensor ids = at::full({b, t}, pad_, at::kLong), mask = at::zeros({b, t}, at::kLong);
    for (int64_t i = 0; i < b; ++i) {
      const auto& s = *seqs[static_cast<size_t>(i)];
      const auto n = static_cast<int64_t>(s.size());
      ids[i].narrow(0, 0, n).copy_(at::tensor(s, at::kLong));
      mask[i].narrow(0, 0, n).fill_(1);
    }
    models::Inputs inputs;
    inputs.input_ids = ids.to(device);
    inputs.attention_mask = mask.to(device);
    return inputs;
  }

  RunOptions options_;
  ScorerInfo info_;
  std::unique_ptr<models::Model> model_;
  std::unique_ptr<tokenize::Tokenizer> tokenizer_;
  int64_t pad_ = 0;
};

}  // namespace

std::unique_ptr<Scorer> open_scorer(const RunOptions& options) { return std::make_unique<TorchScorer>(options); }

}  // namespace atlas::extract
