// The model handle of `atlas serve` (atlas/extract/serve_model.hpp): one Session kept loaded, run
// one input at a time into an NPZ written exactly as run_extract() writes it.
#include "atlas/extract/serve_model.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <mutex>
#include <numeric>

#include "atlas/core/error.hpp"
#include "atlas/io/npz.hpp"
#include "extract/session.hpp"

namespace atlas::extract {
namespace {

class TorchServeModel final : public ServeModel, public std::enable_shared_from_this<TorchServeModel> {
 public:
  explicit TorchServeModel(const RunOptions& options) : session_(options) {
    const models::ModelInfo& i = session_.info();
    ATLAS_CHECK(!i.is_encoder_decoder, ConfigError,
                "atlas serve: '{}' is an encoder-decoder ({}); serve shows self-attention models only",
                options.model_dir.string(), i.model_type);
    info_.model_type = i.model_type;
    info_.model_class = i.model_class;
    info_.num_layers = i.num_layers;
    info_.num_heads = i.num_heads;
    info_.max_tokens = i.max_positions;
    info_.causal = i.causal;
    info_.next_token = i.causal && i.has_lm_head && i.vocab_size > 0;
    info_.kv_cache = session_.can_run_cached();
    info_.in_memory = session_.can_run_in_memory();
    info_.onednn_gemm = session_.onednn_gemm();
    info_.seconds_load = session_.seconds_load();
    session_.set_logits(info_.next_token);
  }

  const ServeModelInfo& info() const override { return info_; }
  std::string label(int64_t id) const override { return session_.label(id); }

  ServeResult run(const ServeRequest& r) override {
    std::unique_lock<std::mutex> lock(mutex_);   // the caller locks too; the session and cache_ are one state
    ATLAS_CHECK(r.text.has_value() != r.ids.has_value(), InputError, "give exactly one input: text or ids");
    Prepared doc = r.text ? session_.prepare_text(*r.text) : session_.prepare_ids(*r.ids);
    const int64_t limit = r.max_tokens > 0 && (info_.max_tokens <= 0 || r.max_tokens < info_.max_tokens)
                              ? r.max_tokens : info_.max_tokens;
    ATLAS_CHECK(limit <= 0 || doc.size() <= limit, InputError,
                "too many tokens: the input has {} but at most {} are accepted (--max-tokens, or the model's position limit)",
                doc.size(), limit);
    const double before = session_.seconds_model();
    ServeResult out;
    at::Tensor logits;
    const bool cached = info_.kv_cache && doc.tokens.token_type_ids.empty();
    if (cached || (r.in_memory && info_.in_memory)) {
      if (!cached) cache_.clear();
      auto run = std::make_shared<CachedRun>(cached ? session_.run_cached(doc, cache_, r.output)
                                                    : session_.run_in_memory(doc, cache_.pool, r.output));
      out.reused_tokens = run->reused;
      logits = run->logits;
      run->logits = at::Tensor();
      auto prepared = std::make_shared<const Prepared>(std::move(doc));
      out.tokens = prepared->size();
      if (r.in_memory) {
        // The NPZ from the kept document, when it is asked for: as run_streaming() + write_rest() write it.
        auto self = shared_from_this();
        out.data = run->data;
        out.write_npz = [self, prepared, run](const std::filesystem::path& path) {
          std::lock_guard<std::mutex> lock(self->mutex_);
          self->write_kept(path, *prepared, *run);
        };
      } else {
        write_kept(r.output, *prepared, *run);
      }
    } else {
      cache_.clear();
      io::NpzWriter npz(r.output, io::Compression::Stored);
      format::DocumentWriter writer(npz);
      DocumentResult result = session_.run_streaming(doc, writer, false);
      logits = result.logits;
      result.logits = at::Tensor();   // the NPZ stays what `atlas extract` (without --logits) writes
      session_.write_rest(writer, doc, result);
      npz.close();
      out.tokens = doc.size();
    }
    if (logits.defined()) {
      // Only the distribution after the last token is kept (run_cached computes no other).
      const at::Tensor last = logits.select(0, logits.size(0) - 1);
      const at::Tensor probs = at::softmax(last.to(at::kDouble), 0).to(at::kFloat).contiguous();
      const float* p = probs.data_ptr<float>();
      out.next_probabilities.assign(p, p + probs.numel());
      std::vector<int64_t> order(out.next_probabilities.size());
      std::iota(order.begin(), order.end(), 0);
      const size_t k = std::min<size_t>(static_cast<size_t>(std::max<int64_t>(r.top_next, 0)), order.size());
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                        [&](int64_t a, int64_t b) { return p[a] > p[b]; });
      for (size_t n = 0; n < k; ++n) out.next_top.push_back({order[n], session_.label(order[n]), p[order[n]]});
    }
    out.seconds_model = session_.seconds_model() - before;
    return out;
  }

 private:
  /// Writes a document kept in memory (run_cached / run_in_memory) as its NPZ; mutex_ held.
  void write_kept(const std::filesystem::path& path, const Prepared& doc, const CachedRun& run) const {
    io::NpzWriter npz(path, io::Compression::Stored);
    format::DocumentWriter writer(npz);
    session_.write_cached(writer, doc, run);
    npz.close();
  }

  std::mutex mutex_;
  Session session_;
  ServeModelInfo info_;
  RunCache cache_;   // the last run of this model (causal kv_cache models): one per model
};

}  // namespace

std::shared_ptr<ServeModel> open_serve_model(const RunOptions& options) {
  return std::make_shared<TorchServeModel>(options);
}

}  // namespace atlas::extract
