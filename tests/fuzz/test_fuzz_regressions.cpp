// Replays every committed fuzz input (tests/fuzz/seeds/<target>/ and regressions/<target>/, the
// crash inputs scripts/fuzz.sh found) through the same target bodies the fuzzers run, in the normal
// build: each must end in an atlas::Error or succeed, never crash or throw anything else.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_targets.hpp"

namespace fs = std::filesystem;

namespace {
struct Target {
  const char* name;
  int (*fn)(const uint8_t*, size_t);
};
using namespace atlas::fuzz;
constexpr Target kTargets[] = {
    {"npy", fuzz_npy},
    {"npz", fuzz_npz},
    {"manifest", fuzz_manifest},
    {"safetensors", fuzz_safetensors},
    {"sharded_index", fuzz_sharded_index},
    {"pickle", fuzz_pickle},
    {"torch_bin", fuzz_torch_bin},
    {"config", fuzz_config},
    {"adapter_config", fuzz_adapter_config},
    {"tokenizer_text", fuzz_tokenizer_text},
    {"tokenizer_json", fuzz_tokenizer_json},
    {"style", fuzz_style},
    {"corpus", fuzz_corpus},
    {"expr", fuzz_expr},
    {"bias_suite", fuzz_bias_suite},
    {"serve", fuzz_serve},
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("fuzz regressions and seeds replay without a crash") {
  const fs::path root = fs::path(ATLAS_TEST_SOURCE_DIR) / "tests" / "fuzz";
  size_t replayed = 0;
  for (const auto& target : kTargets) {
    for (const char* kind : {"seeds", "regressions"}) {
      const fs::path dir = root / kind / target.name;
      if (!fs::is_directory(dir)) continue;
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        CAPTURE(f.string());
        const std::string bytes = slurp(f);
        CHECK_NOTHROW(target.fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
        ++replayed;
      }
    }
  }
  MESSAGE("replayed ", replayed, " fuzz inputs");
  CHECK(replayed > 0);
}

TEST_CASE("every fuzz target accepts the empty input") {
  for (const auto& target : kTargets) {
    CAPTURE(target.name);
    CHECK_NOTHROW(target.fn(nullptr, 0));
  }
}
