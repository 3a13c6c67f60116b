#pragma once
// Paths the tests use, set by tests/CMakeLists.txt (environment variables override them).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace atlas::test {

inline std::filesystem::path env_or(const char* var, const char* fallback) {
  const char* v = std::getenv(var);
  return std::filesystem::path(v && *v ? v : fallback);
}
/// ../shared: reference checkpoints, attention and tokenizer cases (read-only).
inline std::filesystem::path shared_dir() { return env_or("ATLAS_SHARED_DIR", ATLAS_TEST_SHARED_DIR); }
inline std::filesystem::path source_dir() { return ATLAS_TEST_SOURCE_DIR; }
inline std::filesystem::path fixtures_dir() { return ATLAS_TEST_FIXTURES; }
/// A python3 that has numpy (Debian's /usr/bin/python3 with python3-numpy).
inline std::string python() { return ATLAS_TEST_PYTHON; }
inline std::filesystem::path atlas_binary() { return ATLAS_TEST_BINARY; }
/// Reports the running test as skipped to CTest (exit 77, SKIP_RETURN_CODE) and ends the process.
/// Only for "[slow]" test cases, which tests/CMakeLists.txt runs as a CTest test of their own.
[[noreturn]] inline void skip(const std::string& reason) {
  std::fprintf(stderr, "SKIPPED: %s\n", reason.c_str());
  std::fflush(nullptr);
  std::_Exit(77);
}

/// A fresh, empty scratch directory under the build tree.
inline std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::current_path() / "test-scratch" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace atlas::test
