// io/hub: which --model values are Hub ids, where the cache is, offline resolution and listing of a
// cache laid out as huggingface_hub lays it out (the downloads themselves: tests/cli/test_hub.sh).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "atlas/core/error.hpp"
#include "atlas/io/hub.hpp"

namespace fs = std::filesystem;
using atlas::io::is_hub_model_id;

namespace {
/// Sets an environment variable for a scope and restores it.
struct EnvVar {
  std::string name;
  bool had = false;
  std::string old;
  EnvVar(std::string n, const char* value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) { had = true; old = v; }
    if (value) setenv(name.c_str(), value, 1); else unsetenv(name.c_str());
  }
  ~EnvVar() { if (had) setenv(name.c_str(), old.c_str(), 1); else unsetenv(name.c_str()); }
};
void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}
}  // namespace

TEST_CASE("model ids and paths") {
  CHECK(is_hub_model_id("gpt2"));
  CHECK(is_hub_model_id("openai-community/gpt2"));
  CHECK(is_hub_model_id("meta-llama/Llama-3.2-1B@main"));
  CHECK(is_hub_model_id("org/name@0123456789abcdef0123456789abcdef01234567"));
  CHECK(is_hub_model_id("org/name@refs/pr/3"));
  CHECK_FALSE(is_hub_model_id("/abs/path"));
  CHECK_FALSE(is_hub_model_id("./gpt2"));
  CHECK_FALSE(is_hub_model_id("../gpt2"));
  CHECK_FALSE(is_hub_model_id("a/b/c"));
  CHECK_FALSE(is_hub_model_id("models/"));
  CHECK_FALSE(is_hub_model_id("org--x/name"));
  CHECK_FALSE(is_hub_model_id("org/na..me"));
  CHECK_FALSE(is_hub_model_id(""));
}

TEST_CASE("cache folder from the environment") {
  EnvVar a("HF_HUB_CACHE", nullptr), b("HUGGINGFACE_HUB_CACHE", nullptr), c("HF_HOME", nullptr),
      d("XDG_CACHE_HOME", nullptr), e("HOME", "/home/u");
  CHECK(atlas::io::hub_cache_dir() == fs::path("/home/u/.cache/huggingface/hub"));
  EnvVar f("XDG_CACHE_HOME", "/xdg");
  CHECK(atlas::io::hub_cache_dir() == fs::path("/xdg/huggingface/hub"));
  EnvVar g("HF_HOME", "/hf");
  CHECK(atlas::io::hub_cache_dir() == fs::path("/hf/hub"));
  EnvVar h("HF_HUB_CACHE", "/cache");
  CHECK(atlas::io::hub_cache_dir() == fs::path("/cache"));
}

TEST_CASE("offline resolution and listing") {
  const fs::path cache = fs::temp_directory_path() / ("atlas_hub_test_" + std::to_string(::getpid()));
  fs::remove_all(cache);
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  const fs::path repo = cache / "models--org--tiny";
  write(repo / "blobs" / "abc", "{}");
  write(repo / "refs" / "main", commit);
  fs::create_directories(repo / "snapshots" / commit);
  fs::create_symlink("../../blobs/abc", repo / "snapshots" / commit / "config.json");
  atlas::io::HubOptions o;
  o.cache_dir = cache;
  o.offline = true;
  CHECK(atlas::io::resolve_model("org/tiny", o) == repo / "snapshots" / commit);
  CHECK(atlas::io::resolve_model("org/tiny@" + commit, o) == repo / "snapshots" / commit);
  CHECK_THROWS_AS(atlas::io::resolve_model("org/tiny@v2", o), atlas::InputError);
  CHECK_THROWS_AS(atlas::io::resolve_model("org/other", o), atlas::InputError);
  CHECK(atlas::io::resolve_model("/no/such/dir", o) == fs::path("/no/such/dir"));   // a path stays a path

  const auto models = atlas::io::list_cached_models(cache);
  REQUIRE(models.size() == 1);
  CHECK(models[0].repo_id == "org/tiny");
  CHECK(models[0].refs.at("main") == commit);
  CHECK(models[0].snapshots == std::vector<std::string>{commit});
  CHECK(models[0].size_bytes == 2);
  CHECK(atlas::io::list_cached_models(cache / "absent").empty());
  fs::remove_all(cache);
}
