#pragma once
/// Document input for the corpus engine: one streaming reader for plain text, JSONL, CSV and TSV
/// files (or standard input), the --shard I/N partition, and the id encoding used in NPZ member
/// names. Torch-free, so that tools which only list or validate a corpus do not link LibTorch.
///
/// A bad record never stops the reader: it comes back with Document::error set (and its id and line),
/// so that the engine can record it as a failed document and go on. Only problems that make the whole
/// input unusable (file missing, CSV header without the requested column) throw InputError.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::corpus {

enum class InputFormat { Auto, Text, Jsonl, Csv, Tsv };

/// "auto", "text" / "txt", "jsonl" / "ndjson", "csv", "tsv" (any case); InputError otherwise.
InputFormat parse_input_format(const std::string& name);
/// The canonical name: "auto", "text", "jsonl", "csv", "tsv".
std::string_view input_format_name(InputFormat format);

struct InputOptions {
  /// "-" = standard input.
  std::filesystem::path path;
  /// Auto: by extension (.txt/.text -> Text, .jsonl/.ndjson -> Jsonl, .csv -> Csv, .tsv/.tab -> Tsv,
  /// case-insensitive); anything else, and standard input, -> Text.
  InputFormat format = InputFormat::Auto;
  /// JSONL: the key holding the text. When absent, an "ids" array of token ids is used instead.
  std::string text_field = "text";
  /// JSONL key, or CSV/TSV column (name or 0-based index); empty = ids are 1-based record numbers.
  std::string id_field;
  /// CSV/TSV: header name, or a 0-based index when all digits (a header name that is all digits
  /// wins over the index reading).
  std::string column = "text";
  /// CSV/TSV: the first row is a header. With false, `column` and `id_field` must be indices.
  bool header = true;
  /// TSV only: decode the PostgreSQL text-format escapes \t \n \r \\ inside fields. Off by default:
  /// most TSV writers (spreadsheets, pandas) write backslashes literally, e.g. in Windows paths.
  bool tsv_escapes = false;
};

struct Document {
  /// The given id, or the 1-based record number as decimal ("1", "2", ...).
  std::string id;
  std::optional<std::string> text;
  /// Pre-tokenized input (JSONL "ids": [1,2,3] when the text field is absent).
  std::optional<std::vector<int64_t>> ids;
  /// 0-based position among all records (blank JSONL/CSV/TSV lines are not records).
  int64_t ordinal = 0;
  /// 1-based line where the record starts in the file.
  int64_t line = 0;
  /// Non-empty: this record is bad; the engine records it as a failed document and goes on.
  /// Starts with "line N: "; a bad record has neither text nor ids.
  std::string error;
};

/// Streams documents from a file or standard input; never loads the whole file.
///
/// Text: one document per line ("\n" or "\r\n"); an empty line is a document with empty text, so
/// that ids equal line numbers; a final newline does not start another document.
/// JSONL: one JSON object per non-blank line. CSV: RFC 4180. TSV: tab-separated, no quoting.
/// A UTF-8 byte-order mark at the start of the input is skipped in every format.
class DocumentReader {
 public:
  /// InputError naming the file if it cannot be opened; CSV/TSV header problems (column not found:
  /// the message lists the columns) are InputError here too.
  explicit DocumentReader(const InputOptions& options);
  ~DocumentReader();
  DocumentReader(DocumentReader&&) noexcept;
  DocumentReader& operator=(DocumentReader&&) noexcept;

  /// The next record, or nullopt at the end. IoError if reading fails at the OS level.
  std::optional<Document> next();
  /// The file path, or "<stdin>".
  std::string source_name() const;
  /// The format actually read (Auto resolved).
  InputFormat format() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// Deterministic partition for --shard I/N: document ordinal k belongs to shard k % count.
struct ShardSpec {
  int index = 0;
  int count = 1;
  bool contains(int64_t ordinal) const;
};

/// Parses "I/N" with 0 <= I < N (e.g. "0/4"); InputError naming the spec and what was expected.
ShardSpec parse_shard(const std::string& spec);


}  // namespace atlas::corpus
