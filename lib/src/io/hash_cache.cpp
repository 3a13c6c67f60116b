// The sha256 cache: one JSON file, read whole, updated through a temp file + rename so that a reader
// never sees half a file and concurrent runs cannot interleave their writes (the last writer wins;
// losing another run's fresh entry only costs that run's hash again next time).
#include "io/hash_cache.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"

namespace atlas::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kCacheVersion = 1;
// A file modified this close to (or after) the moment it was hashed may be modified again within
// the file system's timestamp granularity without its mtime changing ("racy git"): not cached.
constexpr int64_t kRacyWindowNs = 2'000'000'000;
// A hit refreshes the entry's last use (for the eviction order) at most this often, so that a warm
// run does not rewrite the cache every time.
constexpr int64_t kTouchIntervalNs = 3600LL * 1'000'000'000;

struct FileKey {
  std::string path;  // canonical: the Hub cache's snapshot symlinks share their blob's entry
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

std::optional<FileKey> key_of(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  std::error_code ec;
  fs::path path = fs::canonical(file, ec);
  if (ec) return std::nullopt;
  return FileKey{path.string(), static_cast<uint64_t>(st.st_size),
                 static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

bool is_sha256_hex(const json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool valid_entry(const json& e) {
  return e.is_object() && e.contains("size") && e["size"].is_number_unsigned() && e.contains("mtime_ns") &&
         e["mtime_ns"].is_number_integer() && e.contains("used_ns") && e["used_ns"].is_number_integer() &&
         e.contains("sha256") && is_sha256_hex(e["sha256"]);
}

/// The cache's entries (path -> entry); empty when the file is missing, unreadable or not ours.
json load_entries(const fs::path& cache) {
  json entries = json::object();
  try {
    std::ifstream in(cache, std::ios::binary);
    if (!in) return entries;
    json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("version") || j["version"] != kCacheVersion || !j.contains("entries") ||
        !j["entries"].is_object())
      return entries;
    for (auto& [path, e] : j["entries"].items())
      if (valid_entry(e)) entries[path] = std::move(e);
  } catch (...) {
    entries = json::object();
  }
  return entries;
}

/// Writes `entries` (at most kHashCacheMaxEntries, most recently used first kept). Never throws:
/// the cache is an optimisation, a read-only or full disk must not fail the run.
void store_entries(const fs::path& cache, json entries) {
  try {
    if (entries.size() > kHashCacheMaxEntries) {
      std::vector<std::pair<int64_t, std::string>> by_use;
      for (const auto& [path, e] : entries.items()) by_use.emplace_back(e["used_ns"].get<int64_t>(), path);
      std::sort(by_use.begin(), by_use.end(), std::greater<>());
      json kept = json::object();
      for (size_t i = 0; i < kHashCacheMaxEntries; ++i)
        kept[by_use[i].second] = std::move(entries[by_use[i].second]);
      entries = std::move(kept);
    }
    std::error_code ec;
    fs::create_directories(cache.parent_path(), ec);
    const std::string text = json{{"version", kCacheVersion}, {"entries", std::move(entries)}}.dump(1) + "\n";
    write_atomically(cache, [&](const fs::path& tmp) {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << text;
      out.close();
      ATLAS_CHECK(out.good(), IoError, "cannot write '{}'", tmp.string());
    });
  } catch (...) {
  }
}

json make_entry(const FileKey& key, const std::string& sha256, int64_t used_ns) {
  return json{{"size", key.size}, {"mtime_ns", key.mtime_ns}, {"sha256", sha256}, {"used_ns", used_ns}};
}

}  // namespace

std::optional<fs::path> hash_cache_file() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
  };
  const std::string off = env("ATLAS_NO_HASH_CACHE");
  if (!off.empty() && off != "0") return std::nullopt;
  if (const std::string dir = env("ATLAS_CACHE_DIR"); !dir.empty()) return fs::path(dir) / "sha256.json";
  // The XDG spec: a relative XDG_CACHE_HOME is invalid and ignored.
  if (const std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty() && fs::path(xdg).is_absolute())
    return fs::path(xdg) / "atlas" / "sha256.json";
  if (const std::string home = env("HOME"); !home.empty())
    return fs::path(home) / ".cache" / "atlas" / "sha256.json";
  return std::nullopt;
}

std::string cached_sha256_file(const fs::path& file) {
  const auto cache = hash_cache_file();
  const auto key = cache ? key_of(file) : std::nullopt;
  if (!key) return sha256_file(file);

  const int64_t started = now_ns();
  json entries = load_entries(*cache);
  if (auto it = entries.find(key->path); it != entries.end()) {
    const json& e = *it;
    if (e["size"].get<uint64_t>() == key->size && e["mtime_ns"].get<int64_t>() == key->mtime_ns) {
      std::string sha256 = e["sha256"].get<std::string>();
      if (started - e["used_ns"].get<int64_t>() > kTouchIntervalNs) {
        entries[key->path]["used_ns"] = started;
        store_entries(*cache, std::move(entries));
      }
      return sha256;
    }
  }

  std::string sha256 = sha256_file(file);
  const auto after = key_of(file);
  const bool stable = after && after->path == key->path && after->size == key->size &&
                      after->mtime_ns == key->mtime_ns && key->mtime_ns < started - kRacyWindowNs;
  if (stable) {
    // Re-read: another run may have added entries while this one was hashing.
    json latest = load_entries(*cache);
    latest[key->path] = make_entry(*key, sha256, now_ns());
    store_entries(*cache, std::move(latest));
  }
  return sha256;
}

}  // namespace atlas::io
