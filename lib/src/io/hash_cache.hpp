#pragma once
// sha256 of weight files, cached across runs (private to io/). Hashing a multi-GB checkpoint on every
// run costs more than loading it (the weights are mapped, the hash reads every byte), so each file's
// digest is remembered in $ATLAS_CACHE_DIR/sha256.json keyed by (canonical path, size, mtime in ns).
// The cache is an optimisation only: a missing, unreadable or corrupt cache is recomputed, and a cache
// that cannot be written (read-only home) is skipped without failing the run.
#include <filesystem>
#include <optional>
#include <string>

namespace atlas::io {

/// The cache file: $ATLAS_CACHE_DIR/sha256.json, else $XDG_CACHE_HOME/atlas/sha256.json, else
/// $HOME/.cache/atlas/sha256.json; nullopt when caching is off (ATLAS_NO_HASH_CACHE set to anything
/// but "" or "0") or none of the variables is set.
std::optional<std::filesystem::path> hash_cache_file();

/// Most entries the cache keeps; the least recently used are dropped beyond it.
constexpr size_t kHashCacheMaxEntries = 1000;

/// sha256 (lowercase hex) of `file`'s bytes, through the cache when it is on.
std::string cached_sha256_file(const std::filesystem::path& file);

}  // namespace atlas::io
