#pragma once
/// Errors of the Attention Atlas library: one hierarchy, raised through ATLAS_CHECK / ATLAS_FAIL with
/// fmt messages that say what failed, where, expected vs got. The library never prints or exits;
/// apps/atlas/main.cpp catches once and maps to exit codes (0 ok, 1 error, 2 usage, 3 gate crossed).
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace atlas {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// config.json / YAML / option values that are missing or unsupported.
class ConfigError : public Error { using Error::Error; };
/// Checkpoint files: missing, truncated, wrong tensor, wrong shape, unclaimed tensor.
class CheckpointError : public Error { using Error::Error; };
/// A file whose bytes do not follow its format (NPY/NPZ/safetensors/pickle/JSON).
class FormatError : public Error { using Error::Error; };
/// User input: text, ids, layer/head selections, paths.
class InputError : public Error { using Error::Error; };
/// Reading or writing a file failed at the OS level.
class IoError : public Error { using Error::Error; };

}  // namespace atlas

/// Throws `ErrType` with a fmt-formatted message when `cond` is false.
#define ATLAS_CHECK(cond, ErrType, ...)                      \
  do {                                                       \
    if (!(cond)) throw ErrType(fmt::format(__VA_ARGS__));    \
  } while (0)

/// Throws `ErrType` with a fmt-formatted message.
#define ATLAS_FAIL(ErrType, ...) throw ErrType(fmt::format(__VA_ARGS__))
