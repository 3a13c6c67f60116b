#include "atlas/core/json.hpp"
#include "atlas/format/store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <cctype>
#include <regex>
#include <set>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/version.hpp"

namespace atlas::format {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kManifest = "manifest.jsonl";
constexpr const char* kStoreJson = "store.json";

std::string shard_file_name(int index) { return fmt::format("shard-{:05d}.npz", index); }

/// Index of "shard-00012.npz", or -1.
int shard_index(const std::string& name) {
  static const std::regex re(R"(shard-(\d{5,})\.npz)");
  std::smatch m;
  return std::regex_match(name, m, re) ? std::stoi(m[1]) : -1;
}

json read_json_file(const fs::path& path) {
  json j = parse_json(read_file(path), "'" + path.string() + "'", false);
  ATLAS_CHECK(!j.is_discarded(), FormatError, "'{}' is not valid JSON", path.string());
  return j;
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  write_atomically(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.flush();
    ATLAS_CHECK(out.good(), IoError, "cannot write '{}': {}", path.string(), std::strerror(errno));
  });
}

/// Reads manifest.jsonl. A last line without its newline is a write cut short by a crash: it is
/// dropped (and `torn` set) rather than reported, since its shard was not complete either.
std::vector<ManifestEntry> read_manifest(const fs::path& path, bool& torn, size_t& valid_bytes) {
  std::vector<ManifestEntry> out;
  torn = false;
  valid_bytes = 0;
  std::error_code ec;
  if (!fs::exists(path, ec)) return out;
  const std::string text = read_file(path);
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    ++line_no;
    if (nl == std::string::npos) {
      torn = true;
      break;
    }
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    valid_bytes = pos;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("'{}' line {}", path.string(), line_no);
    json j = parse_json(line, where, false);
    ATLAS_CHECK(!j.is_discarded(), FormatError, "{}: not valid JSON", where);
    out.push_back(ManifestEntry::from_json(j, where));
  }
  return out;
}

/// Names the first key where two run descriptions differ ("model.checkpoint_sha256: 'a' vs 'b'").
std::string first_difference(const json& a, const json& b, const std::string& path = "") {
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
    for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it.key());
    for (const auto& k : keys) {
      const std::string sub = path.empty() ? k : path + "." + k;
      if (!a.contains(k)) return fmt::format("{}: absent vs {}", sub, b[k].dump());
      if (!b.contains(k)) return fmt::format("{}: {} vs absent", sub, a[k].dump());
      std::string d = first_difference(a[k], b[k], sub);
      if (!d.empty()) return d;
    }
    return "";
  }
  if (a != b) return fmt::format("{}: {} vs {}", path.empty() ? "(run)" : path, a.dump(), b.dump());
  return "";
}

}  // namespace

// ======================================== manifest ========================================

json ManifestEntry::to_json() const {
  json j = {{"id", id},         {"ordinal", ordinal}, {"line", line},     {"shard", shard},
            {"members", members}, {"tokens", tokens},  {"sha256", sha256}, {"status", status}};
  if (!error.empty()) j["error"] = error;
  if (source_id) j["source_id"] = *source_id;
  if (window_index) j["window_index"] = *window_index;
  if (window_offset) j["window_offset"] = *window_offset;
  return j;
}

ManifestEntry ManifestEntry::from_json(const json& j, const std::string& where) {
  ATLAS_CHECK(j.is_object(), FormatError, "{}: expected a JSON object, got {}", where, j.type_name());
  ManifestEntry e;
  auto need = [&](const char* key, auto check, const char* what) -> const json& {
    ATLAS_CHECK(j.contains(key), FormatError, "{}: key '{}' is missing", where, key);
    const json& v = j[key];
    ATLAS_CHECK(check(v), FormatError, "{}: key '{}' must be {}, got {}", where, key, what, v.type_name());
    return v;
  };
  auto is_str = [](const json& v) { return v.is_string(); };
  auto is_int = [](const json& v) { return v.is_number_integer(); };
  e.id = need("id", is_str, "a string").get<std::string>();
  e.status = need("status", is_str, "a string").get<std::string>();
  ATLAS_CHECK(e.status == "ok" || e.status == "failed", FormatError,
              "{}: key 'status' must be \"ok\" or \"failed\", got \"{}\"", where, e.status);
  if (j.contains("ordinal")) e.ordinal = need("ordinal", is_int, "an integer").get<int64_t>();
  if (j.contains("line")) e.line = need("line", is_int, "an integer").get<int64_t>();
  if (j.contains("shard")) e.shard = need("shard", is_str, "a string").get<std::string>();
  if (j.contains("tokens")) e.tokens = need("tokens", is_int, "an integer").get<int64_t>();
  if (j.contains("sha256")) e.sha256 = need("sha256", is_str, "a string").get<std::string>();
  if (j.contains("error")) e.error = need("error", is_str, "a string").get<std::string>();
  if (j.contains("members")) {
    const json& m = need("members", [](const json& v) { return v.is_array(); }, "an array");
    for (const auto& x : m) {
      ATLAS_CHECK(x.is_string(), FormatError, "{}: key 'members' must hold strings", where);
      e.members.push_back(x.get<std::string>());
    }
  }
  if (j.contains("source_id")) e.source_id = need("source_id", is_str, "a string").get<std::string>();
  if (j.contains("window_index")) e.window_index = need("window_index", is_int, "an integer").get<int64_t>();
  if (j.contains("window_offset")) e.window_offset = need("window_offset", is_int, "an integer").get<int64_t>();
  ATLAS_CHECK(!e.ok() || !e.shard.empty(), FormatError, "{}: document '{}' is ok but names no shard", where, e.id);
  ATLAS_CHECK(e.shard.empty() || e.shard.find('/') == std::string::npos, FormatError,
              "{}: shard '{}' must be a file name in the store folder", where, e.shard);
  return e;
}

json StoreInfo::to_json() const {
  json j = extra.is_object() ? extra : json::object();
  j["format"] = format;
  j["format_version"] = format_version;
  j["tool"] = tool;
  j["version"] = version;
  j["git_revision"] = git_revision;
  j["created"] = created;
  j["command_line"] = command_line;
  j["run"] = run;
  return j;
}

StoreInfo StoreInfo::from_json(const json& j, const std::string& where) {
  ATLAS_CHECK(j.is_object(), FormatError, "{}: expected a JSON object", where);
  StoreInfo s;
  // value() would throw nlohmann's type_error for a key of another type: check the types first.
  const auto fmt_it = j.find("format");
  ATLAS_CHECK(fmt_it != j.end() && fmt_it->is_string() && *fmt_it == "atlas.store", FormatError,
              "{}: key 'format' must be \"atlas.store\", got {}", where,
              fmt_it != j.end() ? fmt_it->dump() : "nothing");
  const auto ver_it = j.find("format_version");
  ATLAS_CHECK(ver_it == j.end() || ver_it->is_number_integer(), FormatError,
              "{}: key 'format_version' must be an integer, got {}", where, ver_it != j.end() ? ver_it->dump() : "");
  s.format_version = ver_it == j.end() ? 1 : ver_it->get<int>();
  ATLAS_CHECK(s.format_version == 1, FormatError, "{}: format_version {} is newer than this atlas reads (1)",
              where, s.format_version);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "tool" && it->is_string()) s.tool = *it;
    else if (k == "version" && it->is_string()) s.version = *it;
    else if (k == "git_revision" && it->is_string()) s.git_revision = *it;
    else if (k == "created" && it->is_string()) s.created = *it;
    else if (k == "command_line" && it->is_string()) s.command_line = *it;
    else if (k == "run") s.run = *it;
    else if (k != "format" && k != "format_version") s.extra[k] = *it;
  }
  return s;
}

std::string document_prefix(const std::string& id) { return member_safe_id(id) + "/"; }

std::string member_safe_id(const std::string& id) {
  std::string out;
  for (size_t i = 0; i < id.size(); ++i) {
    const auto c = static_cast<unsigned char>(id[i]);
    const bool keep = std::isalnum(c) || c == '_' || c == '-' || (c == '.' && i > 0);
    if (keep && c < 0x80) out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  if (out.empty()) out = "%";
  return out;
}

bool is_store(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / kStoreJson, ec) || fs::is_regular_file(dir / kManifest, ec);
}

// ======================================== writer ========================================

StoreWriter::StoreWriter(fs::path dir, StoreInfo info, StoreWriterOptions options)
    : dir_(std::move(dir)), info_(std::move(info)), options_(options) {
  std::error_code ec;
  if (fs::exists(dir_, ec) && !fs::is_directory(dir_, ec))
    ATLAS_FAIL(InputError, "output '{}' exists and is not a folder (a store is a folder)", dir_.string());
  fs::create_directories(dir_, ec);
  ATLAS_CHECK(!ec, IoError, "cannot create the store folder '{}': {}", dir_.string(), ec.message());
  check_output_path(dir_ / kStoreJson);

  const fs::path store_json = dir_ / kStoreJson;
  if (fs::exists(store_json, ec)) {
    StoreInfo old = StoreInfo::from_json(read_json_file(store_json), "'" + store_json.string() + "'");
    ATLAS_CHECK(options_.resume, InputError,
                "'{}' already holds a store and --no-resume was given (use another -o, or remove it)",
                dir_.string());
    const std::string diff = first_difference(old.run, info_.run);
    ATLAS_CHECK(diff.empty(), InputError,
                "'{}' holds a store made with other settings, so it cannot be resumed (differs in {}); use "
                "another -o, or remove the folder",
                dir_.string(), diff);
    resumed_ = true;
    info_.created = old.created;
  } else {
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      const std::string n = e.path().filename().string();
      ATLAS_CHECK(shard_index(n) < 0 && n != kManifest, InputError,
                  "'{}' holds '{}' but no store.json: not a store atlas can resume; use another -o", dir_.string(), n);
    }
    write_text_atomically(store_json, info_.to_json().dump(2) + "\n");
  }

  // The manifest says what is done; a torn last line, shards it does not name, and temporary files
  // are what a killed run left behind.
  bool torn = false;
  size_t valid = 0;
  const fs::path manifest = dir_ / kManifest;
  std::vector<ManifestEntry> entries = read_manifest(manifest, torn, valid);
  if (torn) fs::resize_file(manifest, valid);
  std::set<std::string> listed;
  for (auto& e : entries) {
    if (!e.shard.empty()) listed.insert(e.shard);
    const std::string id = e.id;
    finished_[id] = std::move(e);
  }
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string n = e.path().filename().string();
    const int idx = shard_index(n);
    if (idx >= 0 && !listed.count(n)) {
      fs::remove(e.path(), ec);
      continue;
    }
    if (idx >= 0) next_shard_ = std::max(next_shard_, idx + 1);
    if (n.rfind(".shard-", 0) == 0 && n.find(".tmp-") != std::string::npos) fs::remove(e.path(), ec);
  }
}

StoreWriter::~StoreWriter() {
  // An exception unwinds through here: the open shard's temp file goes (NpzWriter's destructor), and
  // its documents are never listed, so a re-run redoes them.
  doc_.reset();
  shard_.reset();
}

void StoreWriter::open_shard() {
  shard_name_ = shard_file_name(next_shard_++);
  shard_ = std::make_unique<io::NpzWriter>(dir_ / shard_name_,
                                           options_.compress ? io::Compression::Deflate : io::Compression::Stored);
}

DocumentWriter& StoreWriter::begin_document(const std::string& id) {
  ATLAS_CHECK(!doc_, Error, "internal: document '{}' begun before '{}' ended", id, doc_id_);
  ATLAS_CHECK(!is_taken(id), InputError, "document id '{}' appears twice in the input", id);
  if (!shard_) open_shard();
  doc_ = std::make_unique<DocumentWriter>(*shard_, document_prefix(id));
  doc_id_ = id;
  return *doc_;
}

void StoreWriter::end_document(ManifestEntry entry) {
  ATLAS_CHECK(doc_ && entry.id == doc_id_, Error, "internal: end_document('{}') without begin", entry.id);
  entry.shard = shard_name_;
  entry.status = "ok";
  entry.members.clear();
  const std::string prefix = document_prefix(entry.id);
  for (const auto& m : doc_->members()) entry.members.push_back(m.substr(prefix.size()));
  doc_.reset();
  ids_in_run_[entry.id] = true;
  pending_.push_back(std::move(entry));
  const bool full_docs = options_.shard_documents > 0 &&
                         static_cast<int64_t>(pending_.size()) >= options_.shard_documents;
  if (full_docs || shard_bytes_written() >= options_.shard_bytes) close_shard();
}

void StoreWriter::record_failure(ManifestEntry entry) {
  ATLAS_CHECK(!is_taken(entry.id), InputError, "document id '{}' appears twice in the input", entry.id);
  entry.status = "failed";
  entry.shard.clear();
  entry.members.clear();
  ids_in_run_[entry.id] = true;
  append_manifest({entry});
}

bool StoreWriter::is_taken(const std::string& id) const {
  // A document that failed in an earlier run may be tried again; its new line supersedes the old.
  auto it = finished_.find(id);
  return ids_in_run_.count(id) || (it != finished_.end() && it->second.ok());
}

void StoreWriter::close_shard() {
  if (!shard_) return;
  shard_->close();
  shard_.reset();
  ++shards_written_;
  append_manifest(pending_);
  pending_.clear();
}

void StoreWriter::close() {
  ATLAS_CHECK(!doc_, Error, "internal: store closed while document '{}' is open", doc_id_);
  close_shard();
}

int64_t StoreWriter::shard_bytes_written() const { return shard_ ? static_cast<int64_t>(shard_->bytes_written()) : 0; }

void StoreWriter::append_manifest(const std::vector<ManifestEntry>& entries) {
  if (entries.empty()) return;
  std::string text;
  for (const auto& e : entries) text += e.to_json().dump() + "\n";
  const fs::path path = dir_ / kManifest;
  // One write() of whole lines on an O_APPEND descriptor, then fsync: a crash leaves at most one
  // torn last line, which the next open drops.
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  ATLAS_CHECK(fd >= 0, IoError, "cannot open '{}': {}", path.string(), std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ATLAS_FAIL(IoError, "cannot write '{}': {}", path.string(), std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  for (const auto& e : entries) finished_[e.id] = e;
}

// ======================================== reader ========================================

StoreReader::StoreReader(fs::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  ATLAS_CHECK(fs::is_directory(dir_, ec), InputError, "store '{}' does not exist or is not a folder", dir_.string());
  ATLAS_CHECK(is_store(dir_), InputError, "'{}' is not an attention store (it has no {} or {})", dir_.string(),
              kStoreJson, kManifest);
  const fs::path sj = dir_ / kStoreJson;
  if (fs::exists(sj, ec)) info_ = StoreInfo::from_json(read_json_file(sj), "'" + sj.string() + "'");
  bool torn = false;
  size_t valid = 0;
  entries_ = read_manifest(dir_ / kManifest, torn, valid);
  // A failed document that a resumed run tried again is listed again: the later line counts. Any
  // other repetition is damage.
  std::vector<ManifestEntry> all = std::move(entries_);
  entries_.clear();
  for (auto& e : all) {
    auto it = by_id_.find(e.id);
    if (it == by_id_.end()) {
      by_id_.emplace(e.id, entries_.size());
      entries_.push_back(std::move(e));
      continue;
    }
    ATLAS_CHECK(!entries_[it->second].ok(), FormatError, "'{}': document '{}' is listed twice",
                (dir_ / kManifest).string(), e.id);
    entries_[it->second] = std::move(e);
  }
}

StoreReader::~StoreReader() = default;
StoreReader::StoreReader(StoreReader&&) noexcept = default;

const ManifestEntry* StoreReader::find(const std::string& id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &entries_[it->second];
}

const ManifestEntry& StoreReader::at(const std::string& id) const {
  const ManifestEntry* e = find(id);
  if (!e) {
    std::vector<std::string> some;
    for (const auto& x : entries_) {
      if (some.size() == 5) {
        some.push_back("...");
        break;
      }
      some.push_back(x.id);
    }
    ATLAS_FAIL(InputError, "store '{}' has no document '{}' ({} documents: {})", dir_.string(), id, entries_.size(),
               fmt::join(some, ", "));
  }
  return *e;
}

const io::NpzReader& StoreReader::shard(const ManifestEntry& e) const {
  auto it = shards_.find(e.shard);
  if (it == shards_.end()) {
    const fs::path p = dir_ / e.shard;
    std::error_code ec;
    ATLAS_CHECK(fs::is_regular_file(p, ec), FormatError, "store '{}': document '{}' is in '{}', which is missing",
                dir_.string(), e.id, e.shard);
    it = shards_.emplace(e.shard, std::make_unique<io::NpzReader>(p)).first;
  }
  return *it->second;
}

AttentionData StoreReader::read(const std::string& id, const std::string& kind) const {
  const ManifestEntry& e = at(id);
  ATLAS_CHECK(e.ok(), InputError, "store '{}': document '{}' failed during extraction: {}", dir_.string(), id,
              e.error);
  return read_document(shard(e), document_prefix(id), fmt::format("{}:{}", dir_.string(), id), kind);
}

size_t StoreReader::ok_count() const {
  return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(), [](const auto& e) { return e.ok(); }));
}
size_t StoreReader::failed_count() const { return entries_.size() - ok_count(); }

// ======================================== cat / merge ========================================

void cat_document(const StoreReader& store, const std::string& id, const fs::path& output) {
  const ManifestEntry& e = store.at(id);
  ATLAS_CHECK(e.ok(), InputError, "store '{}': document '{}' failed during extraction: {}", store.dir().string(), id,
              e.error);
  const io::NpzReader& shard = store.shard(e);
  const std::string prefix = document_prefix(id);
  io::NpzWriter out(output);
  for (const auto& m : e.members) out.add(m, shard.get(prefix + m));
  out.close();
}

MergeSummary merge_stores(const std::vector<fs::path>& inputs, const fs::path& output) {
  ATLAS_CHECK(!inputs.empty(), InputError, "merge needs at least one input store");
  std::error_code ec;
  if (fs::exists(output, ec)) {
    ATLAS_CHECK(fs::is_directory(output, ec) && fs::is_empty(output, ec), InputError,
                "merge output '{}' already exists and is not an empty folder", output.string());
  }
  std::vector<StoreReader> stores;
  for (const auto& in : inputs) stores.emplace_back(in);

  // The runs must agree on everything but the shard spec.
  auto comparable = [](json run) {
    if (run.is_object()) run.erase("shard");
    return run;
  };
  const json run0 = comparable(stores[0].info().run);
  for (size_t i = 1; i < stores.size(); ++i) {
    const std::string diff = first_difference(run0, comparable(stores[i].info().run));
    ATLAS_CHECK(diff.empty(), InputError, "stores '{}' and '{}' were made with other settings (differs in {})",
                inputs[0].string(), inputs[i].string(), diff);
  }
  struct Item {
    const ManifestEntry* entry;
    size_t store;
  };
  std::vector<Item> items;
  std::map<std::string, size_t> seen;
  for (size_t s = 0; s < stores.size(); ++s) {
    for (const auto& e : stores[s].entries()) {
      auto [it, inserted] = seen.emplace(e.id, s);
      ATLAS_CHECK(inserted, InputError, "document '{}' is in both '{}' and '{}'", e.id, inputs[it->second].string(),
                  inputs[s].string());
      items.push_back({&e, s});
    }
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.entry->ordinal < b.entry->ordinal;
  });

  const fs::path tmp = temp_path_for(output);
  fs::create_directories(tmp, ec);
  ATLAS_CHECK(!ec, IoError, "cannot create '{}': {}", tmp.string(), ec.message());
  MergeSummary summary;
  summary.stores = stores.size();
  try {
    // Shard files keep their contents; only their names change.
    std::map<std::pair<size_t, std::string>, std::string> renamed;
    int next = 0;
    for (size_t s = 0; s < stores.size(); ++s) {
      std::set<std::string> shards;
      for (const auto& e : stores[s].entries())
        if (!e.shard.empty()) shards.insert(e.shard);
      for (const auto& sh : shards) {
        const std::string name = shard_file_name(next++);
        const fs::path from = inputs[s] / sh, to = tmp / name;
        ATLAS_CHECK(fs::is_regular_file(from, ec), FormatError, "store '{}' lists '{}', which is missing",
                    inputs[s].string(), sh);
        fs::create_hard_link(from, to, ec);
        if (ec) {
          ec.clear();
          fs::copy_file(from, to, ec);
          ATLAS_CHECK(!ec, IoError, "cannot copy '{}' to '{}': {}", from.string(), to.string(), ec.message());
        }
        renamed[{s, sh}] = name;
        ++summary.shards;
      }
    }
    std::string manifest;
    for (const auto& it : items) {
      ManifestEntry e = *it.entry;
      if (!e.shard.empty()) e.shard = renamed.at({it.store, e.shard});
      if (!e.ok()) ++summary.failed;
      ++summary.documents;
      manifest += e.to_json().dump() + "\n";
    }
    StoreInfo info = stores[0].info();
    // The merged store stands for one unsharded run: resuming it with the unsharded command fills in
    // whatever the parts lacked.
    info.run = run0;
    if (info.run.is_object() && stores[0].info().run.contains("shard")) info.run["shard"] = "0/1";
    info.version = atlas::version();
    info.git_revision = atlas::git_revision();
    json from = json::array();
    for (const auto& in : inputs) from.push_back(fs::absolute(in).lexically_normal().string());
    info.extra["merged_from"] = from;
    write_text_atomically(tmp / kManifest, manifest);
    write_text_atomically(tmp / kStoreJson, info.to_json().dump(2) + "\n");
    if (fs::exists(output, ec)) fs::remove(output, ec);   // the empty folder
    fs::rename(tmp, output, ec);
    ATLAS_CHECK(!ec, IoError, "cannot rename '{}' to '{}': {}", tmp.string(), output.string(), ec.message());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  return summary;
}

}  // namespace atlas::format
