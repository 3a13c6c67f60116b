#pragma once
/// Where `atlas analyze` reads attention from: one attention NPZ, a store (every document), one
/// document of a store (STORE:DOC), or a corpus run through the model directly. Documents are read
/// one at a time and handed to a visitor, so a store of any size needs the memory of one document.
/// A document that cannot be used (failed in the store's manifest, unreadable, of another shape) is
/// reported in `skipped`, never silently dropped.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "atlas/extract/extract.hpp"
#include "atlas/format/attention.hpp"

namespace atlas::analyze {

struct SkippedDocument {
  std::string id;
  std::string error;
};

struct DocumentSource {
  std::string spec;                               ///< FILE.npz | STORE | STORE:DOC (empty with `corpus`)
  std::optional<extract::CorpusOptions> corpus;   ///< --model M --input corpus.txt: run, then read
  std::string kind;                               ///< attention member ("" = the default)
};

struct SourceSummary {
  std::string source;                             ///< what was read, for the report
  int64_t documents = 0;                          ///< documents handed to the visitor (and not thrown)
  int64_t tokens = 0;
  std::vector<SkippedDocument> skipped;
  nlohmann::json model = nlohmann::json::object();   ///< name, path, checkpoint_sha256 of the first document
  nlohmann::json to_json() const;                 ///< {"source", "documents", "tokens", "skipped": [...]}
};

/// Visits every usable document. An atlas::Error thrown by `visit` for a document skips it (recorded
/// with the message); anything about the source itself (a missing file, a store that does not open)
/// is thrown. `visit` gets the document and its id ("" for a lone NPZ).
using DocumentVisitor = std::function<void(const format::AttentionData& doc, const std::string& id)>;
SourceSummary for_each_document(const DocumentSource& source, const DocumentVisitor& visit);

/// The documents are all skipped or absent: InputError naming the source and the first reasons.
void require_documents(const SourceSummary& summary);

/// A folder for temporary model outputs, removed (with its contents) when the object goes.
class TempDir {
 public:
  explicit TempDir(const std::string& stem);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Runs the model on one text (or ids) through the model runtime and reads the result back:
/// `options.output` is set to a temporary file that is removed afterwards.
format::AttentionData run_model(extract::ExtractOptions options);

/// One input of a batch run: a text, or token ids taken verbatim.
struct ModelInput {
  std::string id;
  std::optional<std::string> text;
  std::optional<std::vector<int64_t>> ids;
};
/// Runs the model once over many inputs (a temporary JSONL corpus into a temporary store, so the
/// model loads once) and visits each document with its input's id; the order is the store's, which
/// need not be the inputs'. Inputs that fail are in `skipped`.
SourceSummary run_model_batch(const extract::RunOptions& options, const std::vector<ModelInput>& inputs,
                              const DocumentVisitor& visit);

/// Model provenance for reports: {"name", "path", "checkpoint_sha256", "model_type"} of a document.
nlohmann::json model_json(const format::AttentionData& doc);

/// NaN as JSON null (JSON has no NaN), anything else as the number.
nlohmann::json number_or_null(double v);

}  // namespace atlas::analyze
