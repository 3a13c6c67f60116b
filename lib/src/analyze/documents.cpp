#include "atlas/analyze/documents.hpp"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "atlas/core/error.hpp"
#include "atlas/extract/backend.hpp"
#include "atlas/format/store.hpp"

namespace atlas::analyze {
namespace fs = std::filesystem;

nlohmann::json SourceSummary::to_json() const {
  nlohmann::json skipped_json = nlohmann::json::array();
  for (const auto& s : skipped) skipped_json.push_back({{"id", s.id}, {"error", s.error}});
  return {{"source", source}, {"documents", documents}, {"tokens", tokens}, {"skipped_count", skipped.size()},
          {"skipped", skipped_json}};
}

nlohmann::json model_json(const format::AttentionData& doc) {
  nlohmann::json m = {{"name", doc.model_name}, {"path", doc.model_path}, {"checkpoint_sha256", doc.checkpoint_sha256}};
  if (doc.meta) m["model_type"] = doc.meta->model.model_type;
  return m;
}

TempDir::TempDir(const std::string& stem) {
  static std::atomic<int> counter{0};
  path_ = fs::temp_directory_path() / fmt::format("atlas-{}-{}-{}", stem, ::getpid(), counter++);
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

format::AttentionData run_model(extract::ExtractOptions options) {
  TempDir dir("analyze");
  options.output = dir.path() / "doc.npz";
  (void)extract::torch_backend().run_extract(options);
  return format::load_attention(options.output.string());
}

namespace {

// Visits one document, turning an atlas::Error into a skipped entry.
void visit_one(SourceSummary& summary, const DocumentVisitor& visit, const std::string& id,
               const std::function<format::AttentionData()>& read) {
  try {
    const format::AttentionData doc = read();
    if (summary.model.empty() || summary.model.value("name", "").empty()) summary.model = model_json(doc);
    visit(doc, id);
    ++summary.documents;
    summary.tokens += doc.q;
  } catch (const Error& e) {
    summary.skipped.push_back({id, e.what()});
  }
}

void visit_store(SourceSummary& summary, const fs::path& dir, const std::string& kind, const DocumentVisitor& visit) {
  format::StoreReader store(dir);
  for (const auto& entry : store.entries()) {
    if (!entry.ok()) {
      summary.skipped.push_back({entry.id, entry.error.empty() ? "failed in the store (no reason recorded)"
                                                               : "failed in the store: " + entry.error});
      continue;
    }
    visit_one(summary, visit, entry.id, [&] { return store.read(entry.id, kind); });
  }
}

}  // namespace

SourceSummary for_each_document(const DocumentSource& source, const DocumentVisitor& visit) {
  SourceSummary summary;
  // Stores hold self-attention only (corpus runs refuse encoder-decoders); a lone NPZ takes "" as
  // load_attention's default (attention, else encoder_attention).
  const std::string kind = source.kind.empty() ? format::kSelfAttention : source.kind;
  if (source.corpus) {
    // Streamed: each document is analysed when its batch is done and then dropped; the scratch
    // folder holds one document at a time.
    TempDir dir("analyze-corpus");
    extract::CorpusOptions o = *source.corpus;
    o.output = dir.path();
    o.resume = false;
    o.quiet = true;
    summary.source = o.input.path.string();
    const extract::CorpusVisitor on_doc = [&](const format::AttentionData& doc, const std::string& id) {
      visit_one(summary, visit, id, [&] { return doc; });
    };
    const extract::CorpusFailure on_fail = [&](const std::string& id, const std::string& error) {
      summary.skipped.push_back({id, "failed: " + error});
    };
    (void)extract::torch_backend().visit_corpus(o, on_doc, on_fail);
    return summary;
  }
  summary.source = source.spec;
  std::error_code ec;
  const fs::path as_path(source.spec);
  if (fs::is_directory(as_path, ec) && format::is_store(as_path)) {
    visit_store(summary, as_path, kind, visit);
    return summary;
  }
  // A lone NPZ or STORE:DOC: a document that cannot be read is the whole input, so its error is thrown.
  const format::AttentionData doc = format::load_attention(source.spec, source.kind);
  summary.model = model_json(doc);
  const std::string id = doc.meta && doc.meta->input.document_id ? *doc.meta->input.document_id : "";
  visit(doc, id);
  summary.documents = 1;
  summary.tokens = doc.q;
  return summary;
}

SourceSummary run_model_batch(const extract::RunOptions& options, const std::vector<ModelInput>& inputs,
                              const DocumentVisitor& visit) {
  TempDir dir("analyze-batch");
  const fs::path corpus = dir.path() / "inputs.jsonl";
  {
    std::ofstream out(corpus, std::ios::binary);
    for (const auto& in : inputs) {
      nlohmann::json j = {{"id", in.id}};
      if (in.text) j["text"] = *in.text;
      if (in.ids) j["ids"] = *in.ids;
      out << j.dump() << '\n';
    }
    ATLAS_CHECK(out.good(), IoError, "cannot write '{}'", corpus.string());
  }
  DocumentSource src;
  extract::CorpusOptions o;
  static_cast<extract::RunOptions&>(o) = options;
  o.input.path = corpus;
  o.input.format = corpus::InputFormat::Jsonl;
  o.input.id_field = "id";
  o.input.text_field = "text";
  src.corpus = o;
  return for_each_document(src, visit);
}

void require_documents(const SourceSummary& summary) {
  if (summary.documents > 0) return;
  std::string reasons;
  for (size_t i = 0; i < summary.skipped.size() && i < 3; ++i)
    reasons += fmt::format("{}'{}': {}", i ? "; " : "", summary.skipped[i].id, summary.skipped[i].error);
  ATLAS_FAIL(InputError, "'{}': no document could be analyzed ({} skipped{}{})", summary.source,
             summary.skipped.size(), reasons.empty() ? "" : ": ", reasons);
}

}  // namespace atlas::analyze
