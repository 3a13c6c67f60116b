#pragma once
// Helpers for the fuzz targets: a per-process scratch folder for the parsers that read files, and
// the one place that decides which exceptions are expected.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include "atlas/core/error.hpp"

namespace atlas::fuzz {

/// A folder private to this process (removed at exit), e.g. /tmp/atlas-fuzz-1234/<sub>.
inline std::filesystem::path scratch_dir(const std::string& sub) {
  struct Root {
    std::filesystem::path path;
    Root() {
      path = std::filesystem::temp_directory_path() / ("atlas-fuzz-" + std::to_string(::getpid()));
      std::filesystem::create_directories(path);
    }
    ~Root() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Root root;
  const auto dir = root.path / sub;
  std::filesystem::create_directories(dir);
  return dir;
}

/// Writes `size` bytes to `path` (truncating). Not atomic: the folder is private.
inline void put_file(const std::filesystem::path& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) throw std::runtime_error("fuzz: cannot write " + path.string());
}
inline void put_file(const std::filesystem::path& path, std::string_view text) {
  put_file(path, text.data(), text.size());
}

/// Runs `body`; an atlas::Error is the parsers' documented answer to bad input and is swallowed,
/// anything else propagates (an uncaught exception is a libFuzzer crash, a doctest failure).
template <class F>
int expect_atlas_errors(F&& body) {
  try {
    body();
  } catch (const atlas::Error& e) {
    // A one-line message is part of the contract: main prints it as the whole diagnostic.
    const std::string_view what = e.what();
    if (what.empty()) throw std::logic_error("atlas::Error with an empty message");
  }
  return 0;
}

}  // namespace atlas::fuzz
