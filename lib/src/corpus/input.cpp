#include "atlas/core/json.hpp"
#include "atlas/corpus/input.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "atlas/core/error.hpp"
#include "atlas/core/utf8.hpp"
#include "corpus/byte_source.hpp"

namespace atlas::corpus {
namespace fs = std::filesystem;
using detail::ByteSource;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

void strip_cr(std::string& line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
}

bool is_stdin(const fs::path& path) { return path == "-"; }

InputFormat format_from_extension(const fs::path& path) {
  if (is_stdin(path)) return InputFormat::Text;
  std::string ext = lower(path.extension().string());
  if (ext == ".jsonl" || ext == ".ndjson") return InputFormat::Jsonl;
  if (ext == ".csv") return InputFormat::Csv;
  if (ext == ".tsv" || ext == ".tab") return InputFormat::Tsv;
  return InputFormat::Text;  // .txt, .text and anything else
}

std::string join_names(const std::vector<std::string>& names, size_t limit = 20) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) {
    if (i) out += ", ";
    out += names[i];
  }
  if (names.size() > limit) out += fmt::format(", ... ({} in all)", names.size());
  return out;
}

// PostgreSQL text-format escapes; any other backslash sequence is kept as written.
std::string tsv_unescape(const std::string& field) {
  if (field.find('\\') == std::string::npos) return field;
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '\\' || i + 1 == field.size()) {
      out += field[i];
      continue;
    }
    char c = field[i + 1];
    if (c == 't')
      out += '\t';
    else if (c == 'n')
      out += '\n';
    else if (c == 'r')
      out += '\r';
    else if (c == '\\')
      out += '\\';
    else {
      out += '\\';
      out += c;
    }
    ++i;
  }
  return out;
}

// The readable tail of an nlohmann parse error: "column 5: syntax error while parsing ...".
std::string json_error_detail(const std::string& what) {
  auto pos = what.find("column ");
  if (pos != std::string::npos) return what.substr(pos);
  pos = what.find("] ");
  return pos == std::string::npos ? what : what.substr(pos + 2);
}

// One CSV/TSV row as split into fields.
struct Row {
  std::vector<std::string> fields;
  int64_t line = 0;   // where the row starts
  std::string error;  // a malformed row (unterminated quote, text after a closing quote)
};

}  // namespace

InputFormat parse_input_format(const std::string& name) {
  std::string n = lower(name);
  if (n == "auto") return InputFormat::Auto;
  if (n == "text" || n == "txt") return InputFormat::Text;
  if (n == "jsonl" || n == "ndjson") return InputFormat::Jsonl;
  if (n == "csv") return InputFormat::Csv;
  if (n == "tsv") return InputFormat::Tsv;
  ATLAS_FAIL(InputError, "unknown input format '{}' (expected auto, text, jsonl, csv or tsv)", name);
}

std::string_view input_format_name(InputFormat format) {
  switch (format) {
    case InputFormat::Auto:
      return "auto";
    case InputFormat::Text:
      return "text";
    case InputFormat::Jsonl:
      return "jsonl";
    case InputFormat::Csv:
      return "csv";
    case InputFormat::Tsv:
      return "tsv";
  }
  return "?";
}

class DocumentReader::Impl {
 public:
  explicit Impl(const InputOptions& options)
      : options_(options),
        format_(options.format == InputFormat::Auto ? format_from_extension(options.path) : options.format),
        name_(is_stdin(options.path) ? "<stdin>" : options.path.string()),
        source_(open_fd(), !is_stdin(options.path), name_) {
    check_encoding();
    if (format_ == InputFormat::Text) {
      ATLAS_CHECK(options_.id_field.empty(), InputError,
                  "{}: an id field ('{}') does not apply to plain-text input, where ids are line numbers",
                  name_, options_.id_field);
    }
    track_ids_ = !options_.id_field.empty();
    if (format_ == InputFormat::Csv || format_ == InputFormat::Tsv) resolve_columns();
  }

  std::optional<Document> next() {
    std::optional<Document> d;
    switch (format_) {
      case InputFormat::Jsonl:
        d = next_jsonl();
        break;
      case InputFormat::Csv:
      case InputFormat::Tsv:
        d = next_table();
        break;
      default:
        d = next_text();
        break;
    }
    if (d && !d->error.empty()) {
      d->text.reset();
      d->ids.reset();
    }
    return d;
  }

  const std::string& name() const { return name_; }
  InputFormat format() const { return format_; }

 private:
  int open_fd() {
    ATLAS_CHECK(!options_.path.empty(), InputError, "no input file given (use '-' for standard input)");
    if (is_stdin(options_.path)) return STDIN_FILENO;
    int fd = ::open(options_.path.c_str(), O_RDONLY | O_CLOEXEC);
    ATLAS_CHECK(fd >= 0, InputError, "cannot open input file '{}': {}", name_, std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      ::close(fd);
      ATLAS_FAIL(InputError, "input '{}' is a directory, expected a file", name_);
    }
    return fd;
  }

  // Skips a UTF-8 byte-order mark; rejects inputs that would otherwise fail on every record.
  void check_encoding() {
    std::string head = source_.peek_bytes(3);
    if (head == "\xEF\xBB\xBF") {
      source_.skip(3);
      return;
    }
    ATLAS_CHECK(head.compare(0, 2, "\x1F\x8B") != 0, InputError,
                "{}: looks gzip-compressed; decompress it first (e.g. zcat FILE | atlas ... -)", name_);
    ATLAS_CHECK(head.compare(0, 2, "\xFF\xFE") != 0 && head.compare(0, 2, "\xFE\xFF") != 0, InputError,
                "{}: looks like UTF-16 (byte-order mark); convert it to UTF-8 first", name_);
  }

  Document start_document(int64_t line) {
    Document d;
    d.ordinal = ordinal_++;
    d.line = line;
    d.id = std::to_string(d.ordinal + 1);
    return d;
  }

  template <typename... Args>
  static void fail(Document& d, fmt::format_string<Args...> f, Args&&... args) {
    if (d.error.empty())
      d.error = fmt::format("line {}: {}", d.line, fmt::format(f, std::forward<Args>(args)...));
  }

  // Every id is registered, including a bad record's fallback, because the engine stores both.
  void check_duplicate(Document& d) {
    if (!track_ids_) return;
    auto [it, inserted] = seen_ids_.emplace(d.id, d.line);
    if (!inserted) fail(d, "duplicate document id '{}' (first at line {})", d.id, it->second);
  }

  // ---- text: one document per line ---------------------------------------------------------------
  std::optional<Document> next_text() {
    std::string line;
    if (!source_.read_line(line)) return std::nullopt;
    strip_cr(line);
    Document d = start_document(++line_);
    size_t bad = utf8::first_invalid(line);
    if (bad != std::string::npos) fail(d, "invalid UTF-8 at byte offset {}", bad);
    d.text = std::move(line);
    return d;
  }

  // ---- JSONL: one object per non-blank line ------------------------------------------------------
  std::optional<Document> next_jsonl() {
    std::string line;
    for (;;) {
      if (!source_.read_line(line)) return std::nullopt;
      ++line_;
      if (!is_blank(line)) break;
    }
    strip_cr(line);
    Document d = start_document(line_);
    parse_jsonl(line, d);
    check_duplicate(d);
    return d;
  }

  void parse_jsonl(const std::string& line, Document& d) {
    size_t bad = utf8::first_invalid(line);
    if (bad != std::string::npos) return fail(d, "invalid UTF-8 at byte offset {}", bad);
    nlohmann::ordered_json j;
    try {
      j = parse_json<nlohmann::ordered_json>(line, "manifest line");
    } catch (const nlohmann::json::parse_error& e) {
      return fail(d, "invalid JSON at {}", json_error_detail(e.what()));
    } catch (const FormatError& e) {
      return fail(d, "{}", e.what());
    }
    if (!j.is_object()) return fail(d, "expected a JSON object, got {}", j.type_name());

    if (!options_.id_field.empty()) {
      auto it = j.find(options_.id_field);
      if (it == j.end()) return fail(d, "no field '{}' (has: {})", options_.id_field, keys_of(j));
      if (it->is_string()) {
        if (it->get_ref<const std::string&>().empty())
          return fail(d, "field '{}' is empty", options_.id_field);
        d.id = it->get<std::string>();
      } else if (it->is_number_integer()) {
        d.id = it->dump();
      } else {
        return fail(d, "field '{}' must be a string or an integer, got {} {}", options_.id_field,
                    it->type_name(), it->dump());
      }
    }

    auto text = j.find(options_.text_field);
    if (text != j.end()) {
      if (!text->is_string())
        return fail(d, "field '{}' must be a string, got {}", options_.text_field, text->type_name());
      d.text = text->get<std::string>();
      return;
    }
    auto ids = j.find("ids");
    if (ids == j.end()) return fail(d, "no field '{}' (has: {})", options_.text_field, keys_of(j));
    if (!ids->is_array())
      return fail(d, "field 'ids' must be an array of token ids, got {}", ids->type_name());
    std::vector<int64_t> out;
    out.reserve(ids->size());
    for (size_t k = 0; k < ids->size(); ++k) {
      const auto& v = (*ids)[k];
      bool ok = v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(INT64_MAX)
                                       : v.is_number_integer() && v.get<int64_t>() >= 0;
      if (!ok) return fail(d, "field 'ids' element {} must be a non-negative integer, got {}", k, v.dump());
      out.push_back(v.get<int64_t>());
    }
    d.ids = std::move(out);
  }

  static std::string keys_of(const nlohmann::ordered_json& j) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : j.items()) keys.push_back(key);
    return keys.empty() ? "no fields" : join_names(keys);
  }

  // ---- CSV / TSV -----------------------------------------------------------------------------------
  // There is no CSV library among the allowed Debian packages, so this is a small hand-written
  // RFC 4180 parser: quoted fields, "" inside quotes, separators and line breaks inside quotes,
  // "\r\n" or "\n" (or a lone "\r") between records. Leniencies, as in Python's csv module: a quote
  // inside an unquoted field is kept literally, and a blank line between records is skipped.
  bool read_csv_row(Row& row) {
    for (;;) {
      row.fields.clear();
      row.error.clear();
      if (source_.peek() == ByteSource::kEof) return false;
      row.line = line_ + 1;
      enum { kFieldStart, kUnquoted, kQuoted, kAfterQuote } state = kFieldStart;
      std::string field;
      bool quoted_any = false;
      int64_t quote_line = 0;
      for (;;) {
        int c = source_.get();
        if (c == ByteSource::kEof) {
          if (state == kQuoted)
            row.error = fmt::format("unterminated quoted field (the quote opened at line {})", quote_line);
          row.fields.push_back(std::move(field));
          break;
        }
        bool end_of_record = false;
        if (state == kQuoted) {
          if (c == '"')
            state = kAfterQuote;
          else {
            if (c == '\n') ++line_;
            field += static_cast<char>(c);
          }
          continue;
        }
        if (state == kAfterQuote && c == '"') {
          field += '"';
          state = kQuoted;
          continue;
        }
        if (state == kFieldStart && c == '"') {
          state = kQuoted;
          quoted_any = true;
          quote_line = line_ + 1;
          continue;
        }
        if (c == ',') {
          row.fields.push_back(std::move(field));
          field.clear();
          state = kFieldStart;
        } else if (c == '\n' || c == '\r') {
          if (c == '\r' && source_.peek() == '\n') source_.get();
          ++line_;
          end_of_record = true;
        } else {
          if (state == kAfterQuote && row.error.empty())
            row.error =
                fmt::format("unexpected text after the closing quote of field {}", row.fields.size() + 1);
          field += static_cast<char>(c);
          state = kUnquoted;
        }
        if (end_of_record) {
          row.fields.push_back(std::move(field));
          break;
        }
      }
      bool blank = row.fields.size() == 1 && row.fields[0].empty() && !quoted_any && row.error.empty();
      if (!blank) return true;
    }
  }

  // TSV: fields split on tabs, no quoting (IANA text/tab-separated-values); with tsv_escapes the
  // PostgreSQL text-format escapes \t \n \r \\ are decoded, otherwise fields are taken literally.
  bool read_tsv_row(Row& row) {
    std::string line;
    for (;;) {
      if (!source_.read_line(line)) return false;
      ++line_;
      strip_cr(line);
      if (!line.empty()) break;
    }
    row.fields.clear();
    row.error.clear();
    row.line = line_;
    size_t start = 0;
    for (;;) {
      size_t tab = line.find('\t', start);
      std::string field = line.substr(start, tab == std::string::npos ? std::string::npos : tab - start);
      row.fields.push_back(options_.tsv_escapes ? tsv_unescape(field) : std::move(field));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    return true;
  }

  bool read_row(Row& row) { return format_ == InputFormat::Csv ? read_csv_row(row) : read_tsv_row(row); }

  struct Column {
    size_t index = 0;
    std::string label;  // for messages: "'text'" or "2"
  };

  Column resolve(const std::string& spec, const char* what) {
    if (options_.header) {
      auto n = std::count(header_.begin(), header_.end(), spec);
      ATLAS_CHECK(n <= 1, InputError, "{}: {} column '{}' appears {} times in the header", name_, what, spec,
                  n);
      if (n == 1) {
        size_t index = std::find(header_.begin(), header_.end(), spec) - header_.begin();
        return {index, fmt::format("'{}'", spec)};
      }
    }
    if (all_digits(spec) && spec.size() < 10) {
      size_t index = std::stoul(spec);
      if (options_.header) {
        ATLAS_CHECK(index < header_.size(), InputError,
                    "{}: {} column index {} is out of range: the header has {} columns ({})", name_, what,
                    index, header_.size(), join_names(header_));
        return {index, fmt::format("'{}'", header_[index])};
      }
      return {index, std::to_string(index)};
    }
    ATLAS_CHECK(!options_.header, InputError, "{}: no {} column '{}' in the header (columns: {})", name_,
                what, spec, join_names(header_));
    ATLAS_FAIL(InputError, "{}: {} column '{}' must be a 0-based index when the input has no header row",
               name_, what, spec);
  }

  void resolve_columns() {
    if (options_.header) {
      Row row;
      ATLAS_CHECK(read_row(row), InputError, "{}: empty input, expected a header row", name_);
      ATLAS_CHECK(row.error.empty(), InputError, "{}: bad header row (line {}): {}", name_, row.line,
                  row.error);
      header_ = std::move(row.fields);
    }
    text_column_ = resolve(options_.column, "text");
    if (!options_.id_field.empty()) id_column_ = resolve(options_.id_field, "id");
  }

  std::optional<Document> next_table() {
    Row row;
    if (!read_row(row)) return std::nullopt;
    Document d = start_document(row.line);
    fill_from_row(row, d);
    check_duplicate(d);
    return d;
  }

  void fill_from_row(Row& row, Document& d) {
    if (!row.error.empty()) return fail(d, "{}", row.error);
    auto field = [&](const Column& col) -> std::string* {
      if (col.index < row.fields.size()) return &row.fields[col.index];
      fail(d, "row has {} field{}, but column {} is field {}", row.fields.size(),
           row.fields.size() == 1 ? "" : "s", col.label, col.index + 1);
      return nullptr;
    };
    if (id_column_) {
      std::string* id = field(*id_column_);
      if (!id) return;
      if (id->empty()) return fail(d, "empty id in column {}", id_column_->label);
      size_t bad = utf8::first_invalid(*id);
      if (bad != std::string::npos)
        return fail(d, "invalid UTF-8 at byte offset {} in column {}", bad, id_column_->label);
      d.id = std::move(*id);
    }
    std::string* text = field(text_column_);
    if (!text) return;
    size_t bad = utf8::first_invalid(*text);
    if (bad != std::string::npos)
      return fail(d, "invalid UTF-8 at byte offset {} in column {}", bad, text_column_.label);
    d.text = std::move(*text);
  }

  InputOptions options_;
  InputFormat format_;
  std::string name_;
  ByteSource source_;
  int64_t line_ = 0;  // lines consumed so far
  int64_t ordinal_ = 0;
  bool track_ids_ = false;
  std::unordered_map<std::string, int64_t> seen_ids_;
  std::vector<std::string> header_;
  Column text_column_;
  std::optional<Column> id_column_;
};

DocumentReader::DocumentReader(const InputOptions& options) : impl_(std::make_unique<Impl>(options)) {}
DocumentReader::~DocumentReader() = default;
DocumentReader::DocumentReader(DocumentReader&&) noexcept = default;
DocumentReader& DocumentReader::operator=(DocumentReader&&) noexcept = default;

std::optional<Document> DocumentReader::next() { return impl_->next(); }
std::string DocumentReader::source_name() const { return impl_->name(); }
InputFormat DocumentReader::format() const { return impl_->format(); }

}  // namespace atlas::corpus
