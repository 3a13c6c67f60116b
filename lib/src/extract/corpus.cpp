// Corpus runs: one loaded model over many documents, read ahead in pools that are sorted by length
// (so batches pad little), written into a store that a re-run resumes.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/progress.hpp"
#include "atlas/core/version.hpp"
#include "atlas/extract/extract.hpp"
#include "atlas/format/store.hpp"
#include "atlas/io/npz.hpp"
#include "extract/session.hpp"

namespace atlas::extract {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

/// What decides the stored values: a store is resumed, and stores are merged, only when this agrees.
json run_description(const CorpusOptions& o, const Session& s) {
  const models::ModelInfo& info = s.info();
  json d = {{"model",
           {{"path", fs::absolute(o.model_dir).lexically_normal().string()},
            {"model_type", info.model_type},
            {"checkpoint_sha256", s.checkpoint_sha256()}}},
          {"layers", s.layers()},
          {"heads", s.heads()},
          {"dtype", o.dtype},
          {"compute_dtype", o.compute_dtype},
          {"topk", o.topk},
          {"logits", o.logits},
          {"add_special_tokens", o.add_special_tokens},
          {"window", o.window},
          {"stride", o.stride},
          {"shard", o.shard},
          {"input",
           {{"format", std::string(corpus::input_format_name(o.input.format))},
            {"text_field", o.input.text_field},
            {"id_field", o.input.id_field},
            {"column", o.input.column}}}};
  // Only when set, so that stores written before --gemm existed (OpenBLAS) still resume.
  if (s.onednn_gemm()) d["gemm"] = "onednn";
  return d;
}

/// Records in a text or JSONL file (for the progress ETA); 0 when not cheap to know.
int64_t count_records(const corpus::InputOptions& in) {
  if (in.path == "-") return 0;
  const std::string ext = in.path.extension().string();
  const bool line_based = in.format == corpus::InputFormat::Text || in.format == corpus::InputFormat::Jsonl ||
                          (in.format == corpus::InputFormat::Auto && ext != ".csv" && ext != ".tsv" && ext != ".tab");
  if (!line_based) return 0;
  std::ifstream f(in.path, std::ios::binary);
  if (!f) return 0;
  int64_t lines = 0;
  char last = '\n';
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = f.gcount();
    for (std::streamsize i = 0; i < n; ++i) lines += buf[static_cast<size_t>(i)] == '\n';
    if (n > 0) last = buf[static_cast<size_t>(n - 1)];
  }
  return lines + (last != '\n' ? 1 : 0);
}

/// Where a corpus run puts its documents: a store (run_corpus), or one document at a time to a
/// visitor (visit_corpus), so that analyses stream over a corpus without keeping its matrices.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual const std::map<std::string, format::ManifestEntry>& finished() const = 0;
  virtual bool resumed() const = 0;
  virtual format::DocumentWriter& begin_document(const std::string& id) = 0;
  virtual void end_document(format::ManifestEntry entry) = 0;
  virtual void record_failure(format::ManifestEntry entry) = 0;
  virtual void close() = 0;
  virtual int64_t shards_written() const = 0;
};

class StoreSink : public Sink {
 public:
  StoreSink(const fs::path& dir, format::StoreInfo info, format::StoreWriterOptions o) : store_(dir, std::move(info), o) {}
  const std::map<std::string, format::ManifestEntry>& finished() const override { return store_.finished(); }
  bool resumed() const override { return store_.resumed(); }
  format::DocumentWriter& begin_document(const std::string& id) override { return store_.begin_document(id); }
  void end_document(format::ManifestEntry e) override { store_.end_document(std::move(e)); }
  void record_failure(format::ManifestEntry e) override { store_.record_failure(std::move(e)); }
  void close() override { store_.close(); }
  int64_t shards_written() const override { return store_.shards_written(); }

 private:
  format::StoreWriter store_;
};

// Each document goes through a one-document NPZ in `dir` (the same writer and reader as every other
// path, so the visitor sees exactly what a store would hold), is visited, and is removed.
class VisitSink : public Sink {
 public:
  VisitSink(fs::path dir, const CorpusVisitor& visit, const CorpusFailure& failed)
      : dir_(std::move(dir)), visit_(visit), failed_(failed) {
    fs::create_directories(dir_);
  }
  const std::map<std::string, format::ManifestEntry>& finished() const override { return none_; }
  bool resumed() const override { return false; }
  format::DocumentWriter& begin_document(const std::string& id) override {
    id_ = id;
    npz_ = std::make_unique<io::NpzWriter>(dir_ / "document.npz");
    writer_ = std::make_unique<format::DocumentWriter>(*npz_);
    return *writer_;
  }
  void end_document(format::ManifestEntry e) override {
    npz_->close();
    writer_.reset();
    npz_.reset();
    format::AttentionData doc = format::load_attention((dir_ / "document.npz").string());
    doc.source = e.id;
    std::error_code ec;
    fs::remove(dir_ / "document.npz", ec);
    visit_(doc, e.id);
  }
  void record_failure(format::ManifestEntry e) override { failed_(e.id, e.error); }
  void close() override {}
  int64_t shards_written() const override { return 0; }

 private:
  fs::path dir_;
  const CorpusVisitor& visit_;
  const CorpusFailure& failed_;
  std::map<std::string, format::ManifestEntry> none_;
  std::string id_;
  std::unique_ptr<io::NpzWriter> npz_;
  std::unique_ptr<format::DocumentWriter> writer_;
};

using SinkFactory = std::function<std::unique_ptr<Sink>(const CorpusOptions&, const Session&)>;
CorpusSummary run_corpus_into(const CorpusOptions& o, const SinkFactory& make_sink);

}  // namespace

CorpusSummary run_corpus(const CorpusOptions& o) {
  return run_corpus_into(o, [](const CorpusOptions& opts, const Session& session) -> std::unique_ptr<Sink> {
    format::StoreInfo store_info;
    store_info.version = atlas::version();
    store_info.git_revision = atlas::git_revision();
    store_info.created = format::utc_now_iso();
    store_info.command_line = opts.command_line;
    store_info.run = run_description(opts, session);
    format::StoreWriterOptions so;
    so.shard_bytes = opts.shard_bytes;
    so.shard_documents = opts.shard_documents;
    so.compress = opts.compress;
    so.resume = opts.resume;
    return std::make_unique<StoreSink>(opts.output, store_info, so);
  });
}

CorpusSummary visit_corpus(const CorpusOptions& o, const CorpusVisitor& visit, const CorpusFailure& failed) {
  return run_corpus_into(o, [&](const CorpusOptions& opts, const Session&) -> std::unique_ptr<Sink> {
    return std::make_unique<VisitSink>(opts.output, visit, failed);
  });
}

namespace {

CorpusSummary run_corpus_into(const CorpusOptions& o, const SinkFactory& make_sink) {
  const auto t0 = Clock::now();
  ATLAS_CHECK(o.batch_size >= 1, InputError, "--batch-size must be at least 1, got {}", o.batch_size);
  ATLAS_CHECK(!o.value_norms, InputError, "--value-norms works with --text / --ids for now, not with --input");
  ATLAS_CHECK(o.window >= 0 && o.stride >= 0, InputError, "--window and --stride must be positive");
  ATLAS_CHECK(o.stride == 0 || o.window > 0, InputError, "--stride needs --window");
  ATLAS_CHECK(o.stride <= o.window, InputError, "--stride {} is larger than --window {}: tokens between windows would be lost",
              o.stride, o.window);
  const corpus::ShardSpec shard = corpus::parse_shard(o.shard);
  // Open the input before loading the model: a missing file should not cost a model load.
  corpus::DocumentReader reader(o.input);

  Session session(o);
  const models::ModelInfo& info = session.info();
  // A store document holds one attention member today; encoder-decoders need three and a decoder
  // input per record.
  ATLAS_CHECK(!info.is_encoder_decoder, InputError,
              "corpus runs (--input) of encoder-decoder models ({} '{}') are not supported yet; extract one "
              "document at a time with --text/--ids (and --decoder-text/--decoder-ids)",
              info.model_class, info.model_type);
  ATLAS_CHECK(o.window == 0 || info.max_positions <= 0 || o.window <= info.max_positions, InputError,
              "--window {} is longer than the model accepts ({} positions)", o.window, info.max_positions);

  const std::unique_ptr<Sink> sink = make_sink(o, session);
  Sink& store = *sink;

  CorpusSummary s;
  s.output = o.output;
  s.model_type = info.model_type;
  s.model_class = info.model_class;
  s.notes = info.notes;
  s.threads = session.threads();
  s.seconds_load = session.seconds_load();
  s.resumed = store.resumed();

  int64_t total = count_records(o.input);
  if (total > 0 && shard.count > 1) total = (total - shard.index + shard.count - 1) / shard.count;
  if (total > 0 && o.max_documents > 0) total = std::min(total, o.max_documents);
  ProgressOptions po;
  po.quiet = o.quiet;
  po.force_mode = o.progress_mode;
  Progress progress(total, po);
  int64_t records_done = 0;

  auto fail = [&](const corpus::Document& d, const std::string& sha, const std::string& error) {
    format::ManifestEntry e;
    e.id = d.id;
    // A repeated id cannot name a second entry: the copy is recorded under "<id>@line<N>".
    if (d.error.find("duplicate document id") != std::string::npos) e.id = fmt::format("{}@line{}", d.id, d.line);
    e.ordinal = d.ordinal;
    e.line = d.line;
    e.sha256 = sha;
    e.error = error;
    store.record_failure(e);
    ++s.documents_failed;
    if (s.failures.size() < 20) s.failures.push_back({d.id, d.line, error});
  };

  const int64_t pool_size = o.bucket_documents > 0 ? o.bucket_documents : 32 * o.batch_size;
  bool end = false;
  while (!end) {
    std::vector<Prepared> pool;
    int64_t pool_records = 0;
    while (static_cast<int64_t>(pool.size()) < pool_size) {
      if (o.max_documents > 0 && s.records >= o.max_documents) {
        end = true;
        break;
      }
      std::optional<corpus::Document> next = reader.next();
      if (!next) {
        end = true;
        break;
      }
      corpus::Document& d = *next;
      if (!shard.contains(d.ordinal)) continue;
      ++s.records;
      ++pool_records;
      const std::string sha = d.text ? sha256_hex(*d.text) : d.ids ? sha256_hex([&] {
        std::string j;
        for (size_t i = 0; i < d.ids->size(); ++i) j += (i ? "," : "") + std::to_string((*d.ids)[i]);
        return j;
      }()) : std::string();
      auto done = store.finished().find(d.id);
      if (done != store.finished().end() && done->second.ok()) {
        ATLAS_CHECK(done->second.sha256.empty() || sha.empty() || done->second.sha256 == sha, InputError,
                    "document '{}' (line {} of {}) differs from the one stored in '{}' by an earlier run: the "
                    "input changed, so the store cannot be resumed; use another -o",
                    d.id, d.line, reader.source_name(), o.output.string());
        ++s.documents_skipped;
        continue;
      }
      if (!d.error.empty()) {
        fail(d, sha, d.error);
        continue;
      }
      try {
        Prepared p = d.text ? session.prepare_text(*d.text) : session.prepare_ids(*d.ids);
        p.id = d.id;
        p.ordinal = d.ordinal;
        p.line = d.line;
        if (info.max_positions > 0 && p.size() > info.max_positions && o.window == 0) {
          ATLAS_FAIL(InputError, "the document has {} tokens but the model accepts at most {}; use --window N",
                     p.size(), info.max_positions);
        }
        for (Prepared& w : session.split_windows(p, o.window, o.stride)) {
          auto wd = store.finished().find(w.id);
          if (wd != store.finished().end() && wd->second.ok()) continue;   // a window done before a crash
          pool.push_back(std::move(w));
        }
      } catch (const InputError& e) {
        fail(d, sha, e.what());
      }
    }
    // Length buckets: similar lengths batch together, so padding stays small.
    std::stable_sort(pool.begin(), pool.end(), [](const Prepared& a, const Prepared& b) { return a.size() < b.size(); });
    for (size_t b0 = 0; b0 < pool.size(); b0 += static_cast<size_t>(o.batch_size)) {
      const size_t b1 = std::min(pool.size(), b0 + static_cast<size_t>(o.batch_size));
      std::vector<const Prepared*> batch;
      int64_t longest = 0;
      for (size_t i = b0; i < b1; ++i) {
        batch.push_back(&pool[i]);
        longest = std::max(longest, pool[i].size());
      }
      auto entry_for = [](const Prepared& p) {
        format::ManifestEntry e;
        e.id = p.id;
        e.ordinal = p.ordinal;
        e.line = p.line;
        e.tokens = p.size();
        e.sha256 = p.sha256;
        e.source_id = p.source_id;
        e.window_index = p.window_index;
        e.window_offset = p.window_offset;
        return e;
      };
      if (batch.size() == 1) {
        const Prepared& p = *batch[0];
        format::DocumentWriter& w = store.begin_document(p.id);
        DocumentResult r = session.run_streaming(p, w, false);
        session.write_rest(w, p, r);
        store.end_document(entry_for(p));
      } else {
        std::vector<DocumentResult> results = session.run_batch(batch);
        for (size_t i = 0; i < batch.size(); ++i) {
          format::DocumentWriter& w = store.begin_document(batch[i]->id);
          session.write_document(w, *batch[i], results[i]);
          store.end_document(entry_for(*batch[i]));
        }
      }
      ++s.batches;
      for (const Prepared* p : batch) s.tokens += p->size();
      s.documents_ok += static_cast<int64_t>(batch.size());
      s.padded_tokens += longest * static_cast<int64_t>(batch.size());
      progress.update(records_done + s.documents_skipped, s.documents_failed, s.tokens);
    }
    records_done += pool_records;
    progress.update(records_done, s.documents_failed, s.tokens);
  }
  store.close();
  progress.finish();
  s.shards_written = store.shards_written();
  s.seconds_model = session.seconds_model();
  s.seconds_total = std::chrono::duration<double>(Clock::now() - t0).count();
  s.tokens_per_second = s.seconds_total > 0 ? static_cast<double>(s.tokens) / s.seconds_total : 0;
  return s;
}

}  // namespace

}  // namespace atlas::extract
