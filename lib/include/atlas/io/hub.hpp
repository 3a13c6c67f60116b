#pragma once
/// Model names: `--model gpt2` or `--model org/name[@revision]` resolve through the Hugging Face cache
/// that Python users already have ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub),
/// and what is missing is downloaded (libcurl) into that same layout, so `transformers` sees it too:
///   models--org--name/refs/<branch or tag>           the commit hash
///   models--org--name/blobs/<etag>                   the bytes (sha256 for LFS files)
///   models--org--name/snapshots/<commit>/<file>      relative symlink to ../../blobs/<etag>
///   .locks/models--org--name/<etag>.lock             flock, shared with huggingface_hub's filelock
/// Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (Authorization: Bearer),
/// HF_HUB_OFFLINE=1 (cache only, never the network). Torch-free.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace atlas::io {

struct HubOptions {
  std::filesystem::path cache_dir;   // empty: hub_cache_dir()
  std::string endpoint;              // empty: $HF_ENDPOINT, else https://huggingface.co
  std::string token;                 // empty: $HF_TOKEN
  bool offline = false;              // true, or HF_HUB_OFFLINE=1: the cache only
  /// Byte progress of downloads (a redrawn bar on a terminal, a line per file otherwise); nullptr
  /// is quiet. The one exception to "the library never prints", as with atlas::Progress.
  std::FILE* progress = stderr;
  /// Attempts per file when a connection drops mid-file (each resumes with an HTTP Range).
  int attempts = 4;
  /// false: config.json and the tokenizer files only (`atlas tokenize`, `atlas models info`).
  bool weights = true;
};

/// $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
std::filesystem::path hub_cache_dir();

/// True when `spec` reads as a Hub model id ("gpt2", "org/name", either with "@revision"), not a path.
bool is_hub_model_id(const std::string& spec);

/// An existing path is returned as it is; so is anything that is not a model id (check_model_dir
/// then says what is wrong with it). A model id becomes its snapshot folder in the cache, after the
/// files a model needs (config.json, the weights, the tokenizer files) were downloaded when missing.
/// Throws InputError (no such model or revision, offline and not cached, a token is needed) or
/// IoError (hub unreachable, a download failed or did not match its sha256), in one line.
std::filesystem::path resolve_model(const std::string& spec, const HubOptions& options = {});

struct CachedModel {
  std::string repo_id;                          // "org/name"
  std::filesystem::path path;                   // models--org--name
  std::map<std::string, std::string> refs;      // branch or tag -> commit
  std::vector<std::string> snapshots;           // commits with a snapshot folder
  uint64_t size_bytes = 0;                      // the blobs, on disk
};
/// The models in a cache (default hub_cache_dir()), by repo id. A missing cache is an empty list.
std::vector<CachedModel> list_cached_models(const std::filesystem::path& cache_dir = {});

}  // namespace atlas::io
