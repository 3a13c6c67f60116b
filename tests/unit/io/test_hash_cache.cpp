// The checkpoint-hash cache ($ATLAS_CACHE_DIR/sha256.json): a hit returns the stored digest without
// reading the file (proved by changing the bytes and restoring size and mtime), any change of the
// key recomputes, and a corrupt, unwritable or disabled cache still gives the right digest.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "atlas/core/fs.hpp"
#include "atlas/io/checkpoint.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace atlas;
using nlohmann::json;

namespace {

constexpr int64_t kHour = 3600;

void write_bytes(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  REQUIRE(out.good());
}

/// Sets the mtime (atime untouched).
timespec set_mtime(const fs::path& file, timespec mtime) {
  const timespec times[2] = {{0, UTIME_OMIT}, mtime};
  REQUIRE(::utimensat(AT_FDCWD, file.c_str(), times, 0) == 0);
  return mtime;
}
/// Old enough to be cached (a file modified in the last seconds is not).
timespec an_hour_ago() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return {now.tv_sec - kHour, 123456789};
}

json read_json(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

/// A scratch folder with ATLAS_CACHE_DIR pointing into it, and the cache switched on.
struct CacheFixture {
  fs::path dir, cache_dir, cache_file, weights;
  explicit CacheFixture(const std::string& name) {
    dir = test::scratch_dir("hash_cache/" + name);
    cache_dir = dir / "cache";
    cache_file = cache_dir / "sha256.json";
    weights = dir / "model.safetensors";
    ::setenv("ATLAS_CACHE_DIR", cache_dir.c_str(), 1);
    ::unsetenv("ATLAS_NO_HASH_CACHE");
  }
  ~CacheFixture() {
    ::unsetenv("ATLAS_CACHE_DIR");
    ::unsetenv("ATLAS_NO_HASH_CACHE");
  }
  std::string hash() const { return io::checkpoint_hash({weights}); }
  std::string key() const { return fs::canonical(weights).string(); }
};

}  // namespace

TEST_CASE("a cache hit returns the stored hash without reading the file") {
  CacheFixture f("hit");
  write_bytes(f.weights, std::string(4096, 'a'));
  const timespec mtime = set_mtime(f.weights, an_hour_ago());
  const std::string first = f.hash();
  CHECK(first == sha256_file(f.weights));
  REQUIRE(fs::is_regular_file(f.cache_file));
  const json cache = read_json(f.cache_file);
  REQUIRE(cache["entries"].contains(f.key()));
  CHECK(cache["entries"][f.key()]["sha256"] == first);
  CHECK(cache["entries"][f.key()]["size"] == 4096);

  // Other bytes, same size and mtime: only a cache that did not re-read returns the old digest.
  write_bytes(f.weights, std::string(4096, 'b'));
  set_mtime(f.weights, mtime);
  CHECK(sha256_file(f.weights) != first);
  CHECK(f.hash() == first);

  SUBCASE("a changed mtime recomputes") {
    set_mtime(f.weights, {mtime.tv_sec + 1, mtime.tv_nsec});
    CHECK(f.hash() == sha256_file(f.weights));
    CHECK(read_json(f.cache_file)["entries"][f.key()]["sha256"] == sha256_file(f.weights));
  }
  SUBCASE("a changed size recomputes") {
    write_bytes(f.weights, std::string(4097, 'b'));
    set_mtime(f.weights, mtime);
    CHECK(f.hash() == sha256_file(f.weights));
  }
  SUBCASE("ATLAS_NO_HASH_CACHE=1 reads the file") {
    ::setenv("ATLAS_NO_HASH_CACHE", "1", 1);
    CHECK(f.hash() == sha256_file(f.weights));
    ::setenv("ATLAS_NO_HASH_CACHE", "0", 1);  // "0" means on
    CHECK(f.hash() == first);
  }
  SUBCASE("shards go through the cache one file at a time") {
    const fs::path other = f.dir / "model-00002-of-00002.safetensors";
    write_bytes(other, "shard two");
    set_mtime(other, mtime);
    const std::string sharded = io::checkpoint_hash({f.weights, other});
    write_bytes(other, "shard 2!!");
    set_mtime(other, mtime);
    CHECK(io::checkpoint_hash({f.weights, other}) == sharded);
    CHECK(read_json(f.cache_file)["entries"].size() == 2);
  }
}

TEST_CASE("a file modified just now is hashed but not cached") {
  CacheFixture f("racy");
  write_bytes(f.weights, std::string(100, 'a'));
  CHECK(f.hash() == sha256_file(f.weights));
  // Within the file system's timestamp granularity a rewrite may keep the mtime: never trust it.
  struct stat st {};
  REQUIRE(::stat(f.weights.c_str(), &st) == 0);
  write_bytes(f.weights, std::string(100, 'b'));
  set_mtime(f.weights, st.st_mtim);
  CHECK(f.hash() == sha256_file(f.weights));
}

TEST_CASE("a corrupt cache is ignored and rewritten") {
  CacheFixture f("corrupt");
  write_bytes(f.weights, "weights");
  set_mtime(f.weights, an_hour_ago());
  const std::string expected = sha256_file(f.weights);
  struct stat st {};
  REQUIRE(::stat(f.weights.c_str(), &st) == 0);
  const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  auto entry_with = [&](const json& sha256) {
    return json{
        {"version", 1},
        {"entries", {{f.key(), {{"size", 7}, {"mtime_ns", mtime_ns}, {"sha256", sha256}, {"used_ns", 1}}}}}}
        .dump();
  };
  const std::string corrupt[] = {
      "",
      "{\"version\": 1, \"entries\": {",  // truncated
      std::string("\x00\xff garbage", 10),
      "[1, 2, 3]",
      "{\"version\": \"1\", \"entries\": {}}",
      "{\"version\": 2, \"entries\": {}}",
      "{\"version\": 1, \"entries\": []}",
      entry_with("not-a-digest"),  // the key matches but the digest is not 64 hex digits
      entry_with(std::string(64, 'G')),
      entry_with(42),
  };
  for (const auto& text : corrupt) {
    CAPTURE(text);
    fs::create_directories(f.cache_dir);
    write_bytes(f.cache_file, text);
    CHECK(f.hash() == expected);
    const json rewritten = read_json(f.cache_file);
    CHECK(rewritten["version"] == 1);
    CHECK(rewritten["entries"][f.key()]["sha256"] == expected);
  }
  // A well-formed entry next to a bad one survives.
  json mixed = json::parse(entry_with(expected));
  mixed["entries"]["/elsewhere/model.safetensors"] = "not an entry";
  write_bytes(f.cache_file, mixed.dump());
  CHECK(f.hash() == expected);
}

TEST_CASE("an unwritable cache never fails the hash") {
  CacheFixture f("unwritable");
  write_bytes(f.weights, "weights");
  set_mtime(f.weights, an_hour_ago());
  const std::string expected = sha256_file(f.weights);

  SUBCASE("the cache folder cannot be created (a file is in the way)") {
    write_bytes(f.dir / "a-file", "x");
    ::setenv("ATLAS_CACHE_DIR", (f.dir / "a-file" / "cache").c_str(), 1);
    CHECK(f.hash() == expected);
    CHECK(f.hash() == expected);
  }
  SUBCASE("the cache file's name is taken by a folder") {
    fs::create_directories(f.cache_file);
    CHECK(f.hash() == expected);
    CHECK(fs::is_directory(f.cache_file));
  }
  SUBCASE("the cache folder is read-only") {
    fs::create_directories(f.cache_dir);
    fs::permissions(f.cache_dir, fs::perms::owner_read | fs::perms::owner_exec);
    CHECK(f.hash() == expected);
    if (::geteuid() != 0) CHECK_FALSE(fs::exists(f.cache_file));  // root writes anyway
    fs::permissions(f.cache_dir, fs::perms::owner_all);
  }
  // No temp files left behind by the failed writes.
  for (const auto& e : fs::recursive_directory_iterator(f.dir))
    CHECK_MESSAGE(e.path().filename().string().find(".tmp-") == std::string::npos, e.path().string());
}

TEST_CASE("the cache keeps the 1000 most recently used entries") {
  CacheFixture f("bounded");
  json entries = json::object();
  for (int i = 0; i < 1500; ++i)
    entries[fmt::format("/old/model-{:04}.safetensors", i)] = {
        {"size", 1}, {"mtime_ns", 1}, {"sha256", std::string(64, 'a')}, {"used_ns", 1000 + i}};
  fs::create_directories(f.cache_dir);
  write_bytes(f.cache_file, json{{"version", 1}, {"entries", entries}}.dump());
  write_bytes(f.weights, "weights");
  set_mtime(f.weights, an_hour_ago());
  CHECK(f.hash() == sha256_file(f.weights));
  const json cache = read_json(f.cache_file)["entries"];
  CHECK(cache.size() == 1000);
  CHECK(cache.contains(f.key()));
  CHECK(cache.contains("/old/model-1499.safetensors"));
  CHECK(cache.contains("/old/model-0501.safetensors"));
  CHECK_FALSE(cache.contains("/old/model-0500.safetensors"));
  CHECK_FALSE(cache.contains("/old/model-0000.safetensors"));
}

TEST_CASE("the cache folder follows ATLAS_CACHE_DIR, XDG_CACHE_HOME, HOME") {
  CacheFixture f("location");
  write_bytes(f.weights, "weights");
  set_mtime(f.weights, an_hour_ago());
  const char* home = std::getenv("HOME");
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const std::string saved_home = home ? home : "", saved_xdg = xdg ? xdg : "";
  ::unsetenv("ATLAS_CACHE_DIR");
  ::setenv("XDG_CACHE_HOME", (f.dir / "xdg").c_str(), 1);
  ::setenv("HOME", (f.dir / "home").c_str(), 1);
  f.hash();
  CHECK(fs::is_regular_file(f.dir / "xdg" / "atlas" / "sha256.json"));
  ::setenv("XDG_CACHE_HOME", "relative/ignored", 1);
  f.hash();
  CHECK(fs::is_regular_file(f.dir / "home" / ".cache" / "atlas" / "sha256.json"));
  CHECK_FALSE(fs::exists("relative/ignored"));
  home ? ::setenv("HOME", saved_home.c_str(), 1) : ::unsetenv("HOME");
  xdg ? ::setenv("XDG_CACHE_HOME", saved_xdg.c_str(), 1) : ::unsetenv("XDG_CACHE_HOME");
}
