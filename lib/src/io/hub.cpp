// The Hugging Face Hub cache and its downloads (atlas/io/hub.hpp). The layout and the HTTP protocol
// follow huggingface_hub (file_download.py: hf_hub_download): a HEAD on /{repo}/resolve/{commit}/{file}
// without following redirects gives the blob's name (X-Linked-Etag for LFS files, which is their
// sha256, else ETag) and size; the GET follows the redirect to the CDN.
#include "atlas/io/hub.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"

namespace atlas::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool env_true(const char* name) {
  std::string v = env(name);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

bool is_commit_hash(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

bool is_sha256(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string repo_folder(const std::string& repo_id) {
  std::string name = "models--";
  for (char c : repo_id) name += c == '/' ? std::string("--") : std::string(1, c);
  return name;
}

std::string human_bytes(double n) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (n >= 1000 && u < 4) { n /= 1000; ++u; }
  return u == 0 ? fmt::format("{:.0f} {}", n, units[u]) : fmt::format("{:.1f} {}", n, units[u]);
}

/// Writes a small text file through a temporary + rename (refs/<revision>).
void write_text_atomically(const fs::path& path, const std::string& text) {
  write_atomically(path, [&](const fs::path& tmp) {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    ATLAS_CHECK(f.good(), IoError, "cannot write '{}'", tmp.string());
  });
}

void make_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  ATLAS_CHECK(!ec, IoError, "cannot create the Hugging Face cache folder '{}': {}", dir.string(), ec.message());
}

// ---- HTTP (libcurl) -------------------------------------------------------------------------------

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;   // lowercase names, of the last response
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// Progress of one file's bytes, on `out`: a redrawn bar on a terminal, else one line when it starts.
class ByteProgress {
 public:
  ByteProgress(std::FILE* out, std::string name, uint64_t total, uint64_t already)
      : out_(out), name_(std::move(name)), total_(total), already_(already) {
    if (!out_) return;
    tty_ = isatty(fileno(out_)) != 0;
    if (!tty_) {
      std::fprintf(out_, "atlas: downloading %s (%s%s)\n", name_.c_str(), human_bytes(double(total_)).c_str(),
                   already_ ? fmt::format(", resuming at {}", human_bytes(double(already_))).c_str() : "");
      std::fflush(out_);
    }
    start_ = std::chrono::steady_clock::now();
  }
  ~ByteProgress() {
    if (out_ && tty_ && drawn_) { std::fputc('\n', out_); std::fflush(out_); }
  }
  void update(uint64_t done, bool force = false) {
    if (!out_ || !tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    const double secs = std::max(1e-3, std::chrono::duration<double>(now - start_).count());
    const uint64_t got = done + already_;
    const double frac = total_ ? std::min(1.0, double(got) / double(total_)) : 0.0;
    const int width = 30;
    const int fill = static_cast<int>(frac * width);
    std::fprintf(out_, "\r%s [%s%s] %3.0f%% %s/%s %s/s ", name_.c_str(), std::string(fill, '#').c_str(),
                 std::string(width - fill, '.').c_str(), frac * 100, human_bytes(double(got)).c_str(),
                 human_bytes(double(total_)).c_str(), human_bytes(double(done) / secs).c_str());
    std::fflush(out_);
  }

 private:
  std::FILE* out_;
  std::string name_;
  uint64_t total_, already_;
  bool tty_ = false, drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

struct Transfer {
  Response* response;
  std::FILE* file = nullptr;      // GET into a file, else into response->body
  ByteProgress* progress = nullptr;
  uint64_t written = 0;
  std::string write_error;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) t->response->headers.clear();   // a new response (redirect)
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    const auto b = value.find_first_not_of(" \t");
    const auto e = value.find_last_not_of(" \t\r\n");
    t->response->headers[name] = b == std::string::npos ? std::string() : value.substr(b, e - b + 1);
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->file) {
    if (std::fwrite(data, 1, bytes, t->file) != bytes) {
      t->write_error = std::strerror(errno);
      return 0;
    }
    t->written += bytes;
    if (t->progress) t->progress->update(t->written);
  } else {
    if (t->response->body.size() + bytes > (64u << 20)) return 0;   // API answers are small
    t->response->body.append(data, bytes);
  }
  return bytes;
}

class Http {
 public:
  Http(const HubOptions& o, std::string endpoint) : token_(o.token.empty() ? env("HF_TOKEN") : o.token),
                                                     endpoint_(std::move(endpoint)) {
    static CurlGlobal global;
    (void)global;
  }

  /// `range_from` > 0 asks for the bytes from there on. `file` null: the body is kept in memory.
  /// Throws IoError when the hub cannot be reached or the transfer broke (`*broken` set instead
  /// when given, so that the caller can resume).
  Response request(const std::string& url, bool head, bool follow, std::FILE* file = nullptr,
                   uint64_t range_from = 0, ByteProgress* progress = nullptr, bool* broken = nullptr) {
    Response r;
    Transfer t{&r, file, progress, 0, {}};
    CURL* c = curl_easy_init();
    ATLAS_CHECK(c, IoError, "libcurl could not start a transfer");
    struct curl_slist* hdrs = nullptr;
    if (!token_.empty()) hdrs = curl_slist_append(hdrs, ("Authorization: Bearer " + token_).c_str());
    hdrs = curl_slist_append(hdrs, "User-Agent: attention-atlas; hf_hub/compatible");
    // Byte-exact blobs: no transparent decompression of the files themselves.
    hdrs = curl_slist_append(hdrs, "Accept-Encoding: identity");
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOBODY, head ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    // The token goes to the hub only; a redirect to the CDN carries a signed URL instead.
    curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);     // a stalled connection: give up after 60 s
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, file ? 1L : 0L);   // no error page into a blob
    if (range_from > 0) curl_easy_setopt(c, CURLOPT_RANGE, (std::to_string(range_from) + "-").c_str());
    const CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (rc == CURLE_HTTP_RETURNED_ERROR) return r;   // status says what
    if (rc != CURLE_OK) {
      ATLAS_CHECK(t.write_error.empty(), IoError, "cannot write the download of {}: {}", url, t.write_error);
      const bool connect = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                           rc == CURLE_COULDNT_RESOLVE_PROXY || (rc == CURLE_OPERATION_TIMEDOUT && r.status == 0);
      if (connect) {
        unreachable_ = true;
        ATLAS_FAIL(IoError, "cannot reach the Hugging Face Hub at {}: {} (set HF_ENDPOINT, or HF_HUB_OFFLINE=1 to use "
                   "the cache only)", endpoint_, errbuf[0] ? errbuf : curl_easy_strerror(rc));
      }
      if (broken) { *broken = true; return r; }
      ATLAS_FAIL(IoError, "download of {} failed: {}", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    return r;
  }
  bool unreachable() const { return unreachable_; }

 private:
  std::string token_;
  std::string endpoint_;
  bool unreachable_ = false;
};

/// One line for an HTTP error answer of the hub, for `what` (e.g. "model 'x' revision 'main'").
[[noreturn]] void http_fail(const Response& r, const std::string& what, const std::string& url) {
  const std::string code = r.header("x-error-code");
  std::string msg = r.header("x-error-message");
  if (msg.empty() && !r.body.empty()) {
    try {
      const json j = json::parse(r.body);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) msg = j["error"].get<std::string>();
    } catch (const json::exception&) {
    }
  }
  const std::string detail = msg.empty() ? "" : ": " + msg;
  if (r.status == 401 || r.status == 403 || code == "GatedRepo")
    ATLAS_FAIL(InputError, "{}: the Hugging Face Hub refused access (HTTP {}){}; a private or gated model needs a "
               "token with access in HF_TOKEN", what, r.status, detail);
  if (code == "RevisionNotFound") ATLAS_FAIL(InputError, "{} not found: no such revision (HTTP 404 from {})", what, url);
  if (code == "EntryNotFound") ATLAS_FAIL(InputError, "{} not found (HTTP 404 from {})", what, url);
  if (r.status == 404)
    ATLAS_FAIL(InputError, "{} not found on the Hugging Face Hub (HTTP 404 from {}): check the model name and the "
               "revision (and there is no local folder of that name){}", what, url, detail);
  ATLAS_FAIL(IoError, "{}: the Hugging Face Hub answered HTTP {} ({}){}", what, r.status, url, detail);
}

// ---- cache ----------------------------------------------------------------------------------------

/// An exclusive flock held for its lifetime; the same kind huggingface_hub's filelock takes.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    make_dirs(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ATLAS_CHECK(fd_ >= 0, IoError, "cannot open the lock file '{}': {}", path.string(), std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd_);
      ATLAS_FAIL(IoError, "cannot lock '{}': {}", path.string(), std::strerror(e));
    }
  }
  ~FileLock() {
    if (fd_ >= 0) { ::flock(fd_, LOCK_UN); ::close(fd_); }
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

/// snapshots/<commit>/<file> -> ../../blobs/<etag> (one more ../ per folder in `file`), replaced
/// atomically so that two processes linking the same file do not fail.
void link_snapshot(const fs::path& repo_dir, const std::string& commit, const std::string& file, const std::string& etag) {
  const fs::path link = repo_dir / "snapshots" / commit / file;
  make_dirs(link.parent_path());
  std::error_code ec;
  const fs::path target = fs::relative(repo_dir / "blobs" / etag, link.parent_path(), ec);
  ATLAS_CHECK(!ec, IoError, "cannot link '{}': {}", link.string(), ec.message());
  const fs::path tmp = temp_path_for(link);
  fs::create_symlink(target, tmp, ec);
  ATLAS_CHECK(!ec, IoError, "cannot create the symlink '{}': {}", tmp.string(), ec.message());
  fs::rename(tmp, link, ec);
  if (ec) {
    fs::remove(tmp);
    ATLAS_FAIL(IoError, "cannot create the symlink '{}': {}", link.string(), ec.message());
  }
}

std::string strip_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

struct Repo {
  std::string id;
  std::string revision;
  fs::path dir;
};

/// The files of a model a run needs, from the repo's file list.
std::vector<std::string> needed_files(const std::set<std::string>& have, const std::string& what, bool weights,
                                      const std::function<json(const std::string&)>& read_index) {
  std::vector<std::string> out;
  ATLAS_CHECK(have.count("config.json"), InputError, "{} has no config.json (not a transformers model?)", what);
  out.push_back("config.json");
  auto with_shards = [&](const std::string& index) {
    out.push_back(index);
    const json j = read_index(index);
    ATLAS_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), FormatError,
                "{}: {} has no weight_map", what, index);
    std::set<std::string> shards;
    for (const auto& [name, shard] : j["weight_map"].items()) {
      (void)name;
      ATLAS_CHECK(shard.is_string(), FormatError, "{}: {} maps a tensor to a non-string", what, index);
      shards.insert(shard.get<std::string>());
    }
    for (const auto& s : shards) {
      ATLAS_CHECK(have.count(s), InputError, "{}: shard '{}' named in {} is not in the repository", what, s, index);
      out.push_back(s);
    }
  };
  if (!weights) {
  } else if (have.count("model.safetensors")) out.push_back("model.safetensors");
  else if (have.count("model.safetensors.index.json")) with_shards("model.safetensors.index.json");
  else if (have.count("pytorch_model.bin")) out.push_back("pytorch_model.bin");
  else if (have.count("pytorch_model.bin.index.json")) with_shards("pytorch_model.bin.index.json");
  else
    ATLAS_FAIL(InputError, "{} has no weights that atlas reads (model.safetensors, model.safetensors.index.json, "
               "pytorch_model.bin)", what);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                        "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model", "spiece.model",
                        "sentencepiece.bpe.model", "adapter_config.json", "adapter_model.safetensors"})
    if (have.count(f)) out.push_back(f);
  return out;
}

bool snapshot_usable(const fs::path& snap) {
  std::error_code ec;
  return fs::exists(snap / "config.json", ec);
}

class Downloader {
 public:
  Downloader(const HubOptions& o, Repo repo, std::string endpoint, fs::path cache)
      : o_(o), repo_(std::move(repo)), endpoint_(std::move(endpoint)), cache_(std::move(cache)), http_(o, endpoint_) {}

  fs::path run() {
    const std::string what = fmt::format("model '{}' revision '{}'", repo_.id, repo_.revision);
    const std::string api = fmt::format("{}/api/models/{}/revision/{}", endpoint_, repo_.id, url_escape(repo_.revision));
    Response r = http_.request(api, false, true);
    if (r.status != 200) http_fail(r, what, api);
    json info;
    try {
      info = json::parse(r.body);
    } catch (const json::exception& e) {
      ATLAS_FAIL(FormatError, "{}: the hub's answer from {} is not JSON: {}", what, api, e.what());
    }
    ATLAS_CHECK(info.is_object() && info.contains("sha") && info["sha"].is_string(), FormatError,
                "{}: the hub's answer from {} has no commit \"sha\"", what, api);
    const std::string commit = info["sha"].get<std::string>();
    ATLAS_CHECK(is_commit_hash(commit), FormatError, "{}: the hub answered commit '{}', not a 40-digit hash", what, commit);
    std::set<std::string> have;
    if (info.contains("siblings") && info["siblings"].is_array())
      for (const auto& s : info["siblings"])
        if (s.is_object() && s.contains("rfilename") && s["rfilename"].is_string()) have.insert(s["rfilename"].get<std::string>());

    const fs::path snap = repo_.dir / "snapshots" / commit;
    auto fetch = [&](const std::string& file) {
      std::error_code ec;
      if (fs::exists(snap / file, ec)) return;   // a symlink to a complete blob
      download(commit, file);
    };
    const auto files = needed_files(have, what, o_.weights, [&](const std::string& index) {
      fetch(index);
      try {
        return json::parse(read_file(snap / index));
      } catch (const json::exception& e) {
        ATLAS_FAIL(FormatError, "{}: {} is not JSON: {}", what, index, e.what());
      }
    });
    for (const auto& f : files) fetch(f);
    if (repo_.revision != commit) {
      const fs::path ref = repo_.dir / "refs" / repo_.revision;
      make_dirs(ref.parent_path());   // "refs/pr/1"
      write_text_atomically(ref, commit);
    }
    return snap;
  }

  bool unreachable() const { return http_.unreachable(); }

 private:
  static std::string url_escape(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
      else out += fmt::format("%{:02X}", c);
    }
    return out;
  }

  void download(const std::string& commit, const std::string& file) {
    const std::string url = fmt::format("{}/{}/resolve/{}/{}", endpoint_, repo_.id, commit, file);
    const std::string what = fmt::format("file '{}' of model '{}' revision '{}'", file, repo_.id, repo_.revision);
    // The blob's name: as huggingface_hub, from a HEAD that does not follow the CDN redirect.
    Response head = http_.request(url, true, false);
    if (head.status >= 300 && head.status < 400 && head.header("x-linked-etag").empty() && head.header("etag").empty())
      head = http_.request(url, true, true);   // a renamed repo: a relative redirect to follow
    if (head.status >= 400) http_fail(head, what, url);
    std::string etag = strip_etag(head.header("x-linked-etag"));
    if (etag.empty()) etag = strip_etag(head.header("etag"));
    ATLAS_CHECK(!etag.empty() && etag.find('/') == std::string::npos && etag != "." && etag != "..", FormatError,
                "{}: the hub gave no usable ETag for {}", what, url);
    const std::string size_text = !head.header("x-linked-size").empty() ? head.header("x-linked-size")
                                                                         : head.header("content-length");
    uint64_t size = 0;
    try {
      size = size_text.empty() ? 0 : std::stoull(size_text);
    } catch (const std::exception&) {
      size = 0;
    }

    const fs::path blobs = repo_.dir / "blobs";
    make_dirs(blobs);
    const fs::path blob = blobs / etag;
    {
      FileLock lock(cache_ / ".locks" / repo_folder(repo_.id) / (etag + ".lock"));
      std::error_code ec;
      if (!fs::exists(blob, ec)) fetch_blob(url, what, blob, etag, size);
    }
    link_snapshot(repo_.dir, commit, file, etag);
  }

  void fetch_blob(const std::string& url, const std::string& what, const fs::path& blob, const std::string& etag,
                  uint64_t size) {
    const fs::path part = fs::path(blob.string() + ".incomplete");
    for (int attempt = 1;; ++attempt) {
      std::error_code ec;
      uint64_t have = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
      if (ec) have = 0;
      if (size && have > size) { fs::remove(part, ec); have = 0; }
      std::FILE* f = std::fopen(part.c_str(), have ? "ab" : "wb");
      ATLAS_CHECK(f, IoError, "cannot write '{}': {}", part.string(), std::strerror(errno));
      bool broken = false;
      Response r;
      {
        ByteProgress progress(size >= (1u << 20) || have ? o_.progress : nullptr, file_label(url), size, have);
        try {
          r = http_.request(url, false, true, f, have, &progress, &broken);
        } catch (...) {
          std::fclose(f);
          throw;
        }
        if (!broken) progress.update(size ? size - have : 0, true);
      }
      const bool closed = std::fclose(f) == 0;
      ATLAS_CHECK(closed, IoError, "cannot write '{}': {}", part.string(), std::strerror(errno));
      if (r.status == 416 && have) { fs::remove(part, ec); continue; }   // our partial file is stale
      if (r.status >= 400) {
        if (!have) fs::remove(part, ec);
        http_fail(r, what, url);
      }
      if (!broken && have && r.status == 200) {
        // The server ignored the Range and sent the whole file after our partial bytes: start over.
        fs::remove(part, ec);
        continue;
      }
      if (broken) {
        ATLAS_CHECK(attempt < std::max(1, o_.attempts), IoError,
                    "download of {} broke off {} times; the partial file '{}' is kept and the next run resumes it",
                    url, attempt, part.string());
        continue;
      }
      break;
    }
    std::error_code ec;
    const uint64_t got = fs::file_size(part, ec);
    if (size && got != size) {
      fs::remove(part, ec);
      ATLAS_FAIL(IoError, "{}: downloaded {} bytes, the hub announced {}; the download was discarded", what, got, size);
    }
    if (is_sha256(etag)) {
      const std::string digest = sha256_file(part);
      if (digest != etag) {
        fs::remove(part, ec);
        ATLAS_FAIL(IoError, "{}: sha256 mismatch (expected {}, got {}); the download was discarded", what, etag, digest);
      }
    }
    fs::rename(part, blob, ec);
    ATLAS_CHECK(!ec, IoError, "cannot move '{}' to '{}': {}", part.string(), blob.string(), ec.message());
  }

  static std::string file_label(const std::string& url) { return url.substr(url.find_last_of('/') + 1); }

  const HubOptions& o_;
  Repo repo_;
  std::string endpoint_;
  fs::path cache_;
  Http http_;
};

/// The snapshot a revision names in the cache, if there is one.
std::optional<fs::path> cached_snapshot(const Repo& repo) {
  std::string commit = repo.revision;
  if (!is_commit_hash(commit)) {
    std::error_code ec;
    const fs::path ref = repo.dir / "refs" / repo.revision;
    if (!fs::is_regular_file(ref, ec)) return std::nullopt;
    commit = read_file(ref);
    while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
  }
  const fs::path snap = repo.dir / "snapshots" / commit;
  if (!snapshot_usable(snap)) return std::nullopt;
  return snap;
}

}  // namespace

fs::path hub_cache_dir() {
  if (const std::string v = env("HF_HUB_CACHE"); !v.empty()) return v;
  if (const std::string v = env("HUGGINGFACE_HUB_CACHE"); !v.empty()) return v;   // the older name
  if (const std::string v = env("HF_HOME"); !v.empty()) return fs::path(v) / "hub";
  if (const std::string v = env("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "huggingface" / "hub";
  const std::string home = env("HOME");
  return fs::path(home.empty() ? "." : home) / ".cache" / "huggingface" / "hub";
}

bool is_hub_model_id(const std::string& spec) {
  // huggingface_hub's validate_repo_id: [\w.-] names of at most 96 characters, an optional "org/".
  static const std::regex re(R"(^[A-Za-z0-9][\w.\-]{0,95}(/[A-Za-z0-9][\w.\-]{0,95})?(@[^\s@]+)?$)");
  if (!std::regex_match(spec, re)) return false;
  const std::string id = spec.substr(0, spec.find('@'));
  return id.find("--") == std::string::npos && id.find("..") == std::string::npos && id.back() != '.';
}

fs::path resolve_model(const std::string& spec, const HubOptions& o) {
  std::error_code ec;
  if (spec.empty() || fs::exists(spec, ec) || !is_hub_model_id(spec)) return spec;
  Repo repo;
  const auto at = spec.find('@');
  repo.id = spec.substr(0, at);
  repo.revision = at == std::string::npos ? "main" : spec.substr(at + 1);
  ATLAS_CHECK(repo.revision.find("..") == std::string::npos && repo.revision.front() != '/', InputError,
              "model '{}': revision '{}' is not a branch, tag or commit name", repo.id, repo.revision);
  const fs::path cache = o.cache_dir.empty() ? hub_cache_dir() : o.cache_dir;
  repo.dir = cache / repo_folder(repo.id);

  const bool offline = o.offline || env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
  if (offline) {
    if (auto snap = cached_snapshot(repo)) return *snap;
    ATLAS_FAIL(InputError, "model '{}' revision '{}' is neither a local folder nor in the Hugging Face cache {} "
               "(HF_HUB_OFFLINE=1 forbids downloading it)", repo.id, repo.revision, cache.string());
  }
  // A commit hash names bytes that never change: a complete cached snapshot needs no network.
  if (is_commit_hash(repo.revision))
    if (auto snap = cached_snapshot(repo)) return *snap;

  std::string endpoint = o.endpoint.empty() ? env("HF_ENDPOINT") : o.endpoint;
  if (endpoint.empty()) endpoint = "https://huggingface.co";
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  Downloader d(o, repo, endpoint, cache);
  try {
    return d.run();
  } catch (const IoError&) {
    // As huggingface_hub: with the hub out of reach, what the cache holds is used.
    if (d.unreachable())
      if (auto snap = cached_snapshot(repo)) return *snap;
    throw;
  }
}

std::vector<CachedModel> list_cached_models(const fs::path& cache_dir) {
  const fs::path cache = cache_dir.empty() ? hub_cache_dir() : cache_dir;
  std::vector<CachedModel> out;
  std::error_code ec;
  if (!fs::is_directory(cache, ec)) return out;
  for (const auto& entry : fs::directory_iterator(cache, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("models--", 0) != 0 || !entry.is_directory(ec)) continue;
    CachedModel m;
    m.path = entry.path();
    std::string rest = name.substr(8);
    for (size_t p; (p = rest.find("--")) != std::string::npos;) rest.replace(p, 2, "/");
    m.repo_id = rest;
    const fs::path refs = m.path / "refs";
    if (fs::is_directory(refs, ec))
      for (const auto& r : fs::recursive_directory_iterator(refs, ec)) {
        if (!r.is_regular_file(ec)) continue;
        std::string commit = read_file(r.path());
        while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
        m.refs[fs::relative(r.path(), refs).generic_string()] = commit;
      }
    if (fs::is_directory(m.path / "snapshots", ec))
      for (const auto& s : fs::directory_iterator(m.path / "snapshots", ec)) m.snapshots.push_back(s.path().filename().string());
    std::sort(m.snapshots.begin(), m.snapshots.end());
    if (fs::is_directory(m.path / "blobs", ec))
      for (const auto& b : fs::directory_iterator(m.path / "blobs", ec))
        if (b.is_regular_file(ec)) m.size_bytes += b.file_size(ec);
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(), [](const CachedModel& a, const CachedModel& b) { return a.repo_id < b.repo_id; });
  return out;
}

}  // namespace atlas::io
