#pragma once
/// The attention store (docs/formats/store.md): a folder of shard NPZ files holding many documents
/// (members `<id>/attention`, `<id>/tokens`, ...), a `manifest.jsonl` with one line per document, and
/// `store.json` describing the run. Shards appear only complete (temp file + rename) and their
/// documents are added to the manifest after the rename, so a run killed at any point leaves a store
/// that reads as valid and that a re-run completes (resume).
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "atlas/format/attention.hpp"

namespace atlas::format {

/// One line of manifest.jsonl.
struct ManifestEntry {
  std::string id;                      ///< document id (given, or the 1-based record number)
  int64_t ordinal = -1;                ///< 0-based position in the input (windows: of the source record)
  int64_t line = 0;                    ///< 1-based input line where the record starts
  std::string shard;                   ///< shard file name ("shard-00003.npz"); empty when failed
  std::vector<std::string> members;    ///< member names without the "<id>/" prefix
  int64_t tokens = 0;                  ///< sequence length Q
  std::string sha256;                  ///< of the document's input: UTF-8 text, or ids joined by ','
  std::string status = "ok";           ///< "ok" | "failed"
  std::string error;                   ///< why it failed
  std::optional<std::string> source_id;     ///< --window: the id of the record this window came from
  std::optional<int64_t> window_index;      ///< --window: 0-based window number
  std::optional<int64_t> window_offset;     ///< --window: global token offset of the window
  bool ok() const { return status == "ok"; }
  nlohmann::json to_json() const;
  static ManifestEntry from_json(const nlohmann::json& json, const std::string& where);
};

/// store.json. `run` holds everything that decides the stored values (model and checkpoint hash,
/// layers, heads, dtypes, top-k, windows, shard spec ...): resume and merge compare it.
struct StoreInfo {
  std::string format = "atlas.store";
  int format_version = 1;
  std::string tool = "atlas", version, git_revision, created, command_line;
  nlohmann::json run = nlohmann::json::object();
  nlohmann::json extra = nlohmann::json::object();
  nlohmann::json to_json() const;
  static StoreInfo from_json(const nlohmann::json& json, const std::string& where);
};

/// Percent-encodes an id for use inside an NPZ member name: keeps [A-Za-z0-9._-] (but a leading '.'
/// is encoded), encodes every other byte as %XX (upper-case hex); never empty (an empty id becomes
/// "%"). The mapping is injective, so distinct ids never share a member name.
std::string member_safe_id(const std::string& id);
/// The member-name prefix of document `id` inside a shard: member_safe_id(id) + "/".
std::string document_prefix(const std::string& id);

struct StoreWriterOptions {
  int64_t shard_bytes = int64_t{256} << 20;   ///< a shard is closed once it holds this much
  int64_t shard_documents = 0;                ///< ... or this many documents (0: no limit)
  bool compress = false;                      ///< DEFLATE members
  bool resume = true;                         ///< false: refuse a folder that already holds a store
};

class StoreWriter {
 public:
  /// Creates `dir` (and parents) or opens the store already in it. An existing store is resumed
  /// when its store.json `run` equals `info.run` (InputError naming the first differing key
  /// otherwise): its manifest is read (a torn last line is dropped), shards it does not list and
  /// temporary files are removed, and finished() lists what needs no work.
  StoreWriter(std::filesystem::path dir, StoreInfo info, StoreWriterOptions options = {});
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  /// Documents recorded by an earlier run (ok or failed), by id. Failed ones may be tried again:
  /// their new manifest line supersedes the old one.
  const std::map<std::string, ManifestEntry>& finished() const { return finished_; }
  bool resumed() const { return resumed_; }

  /// Starts document `id` in the open shard (a new shard is opened when none is). Write its members
  /// through the returned writer, then call end_document().
  DocumentWriter& begin_document(const std::string& id);
  /// Completes the document begun last; `entry` gets its shard and members filled in and is added
  /// to the manifest when the shard has been renamed into place. May close the shard.
  void end_document(ManifestEntry entry);
  /// Records a document that could not be extracted (appended to the manifest at once).
  void record_failure(ManifestEntry entry);
  /// Closes the open shard and flushes the manifest. Without close() (an exception), the open
  /// shard's temporary file is removed and its documents are not recorded.
  void close();

  const std::filesystem::path& dir() const { return dir_; }
  int64_t shards_written() const { return shards_written_; }

 private:
  void open_shard();
  void close_shard();
  void append_manifest(const std::vector<ManifestEntry>& entries);
  int64_t shard_bytes_written() const;
  bool is_taken(const std::string& id) const;

  std::filesystem::path dir_;
  StoreInfo info_;
  StoreWriterOptions options_;
  std::map<std::string, ManifestEntry> finished_;
  bool resumed_ = false;
  int next_shard_ = 0;
  int64_t shards_written_ = 0;
  std::unique_ptr<io::NpzWriter> shard_;
  std::string shard_name_;
  std::unique_ptr<DocumentWriter> doc_;
  std::string doc_id_;
  std::vector<ManifestEntry> pending_;   // documents of the open shard
  std::map<std::string, bool> ids_in_run_;
};

class StoreReader {
 public:
  /// Reads store.json and manifest.jsonl; FormatError naming the file and line on damage or a
  /// document listed twice.
  explicit StoreReader(std::filesystem::path dir);
  ~StoreReader();
  StoreReader(StoreReader&&) noexcept;

  const StoreInfo& info() const { return info_; }
  /// Every document once, in manifest order (failed ones included: check ok()); where a failed
  /// document was tried again by a resumed run, its latest line.
  const std::vector<ManifestEntry>& entries() const { return entries_; }
  const ManifestEntry* find(const std::string& id) const;
  /// InputError naming the store and listing a few ids when `id` is not there; FormatError with
  /// the recorded error when the document failed.
  const ManifestEntry& at(const std::string& id) const;
  /// Reads one document (attention densified).
  AttentionData read(const std::string& id, const std::string& kind = kSelfAttention) const;
  /// The shard holding `entry`, opened once and kept.
  const io::NpzReader& shard(const ManifestEntry& entry) const;
  const std::filesystem::path& dir() const { return dir_; }

  size_t ok_count() const;
  size_t failed_count() const;

 private:
  std::filesystem::path dir_;
  StoreInfo info_;
  std::vector<ManifestEntry> entries_;
  std::map<std::string, size_t> by_id_;
  mutable std::map<std::string, std::unique_ptr<io::NpzReader>> shards_;
};

/// True when `dir` holds a store (store.json or manifest.jsonl).
bool is_store(const std::filesystem::path& dir);

/// Writes document `id` of `store` as the standalone NPZ `atlas extract --text` writes: the same
/// members in the same order, equal bytes (`meta` gains nothing, keeps its values).
void cat_document(const StoreReader& store, const std::string& id, const std::filesystem::path& output);

struct MergeSummary {
  size_t stores = 0, documents = 0, failed = 0, shards = 0;
};
/// Merges stores written by the same run over disjoint shards (`--shard I/N`) or parts of a corpus:
/// their `run` must agree apart from the shard spec, and no document may appear twice (InputError
/// naming both stores). Shard files are copied (hard-linked when possible) and renumbered; the
/// manifest is ordered by input ordinal. `output` must not exist or be an empty folder; it appears
/// complete (built in a temporary folder, then renamed).
MergeSummary merge_stores(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& output);

}  // namespace atlas::format
