#pragma once
/// File helpers shared by every writer: nothing is lost or half-written on a crash.
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace atlas {

/// Reads a whole file; throws IoError naming the path.
std::string read_file(const std::filesystem::path& path);

/// Writes through a temporary file in the same directory, then renames it onto `path`.
/// If `write` throws, the temporary file is removed and `path` is untouched.
/// Throws InputError if the directory of `path` does not exist.
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path& tmp)>& write);

/// The temporary path write_atomically uses for `path` (same directory, unique, hidden).
std::filesystem::path temp_path_for(const std::filesystem::path& path);

/// Removes temporary files of `path` (".NAME.tmp-PID-N") left by a process that no longer runs;
/// called after every successful write, so a crashed run leaves nothing behind for long.
void remove_stale_temps(const std::filesystem::path& path);

/// Checks that the directory that would hold `path` exists and is writable; InputError otherwise.
void check_output_path(const std::filesystem::path& path);

/// sha256 of a file's bytes, lowercase hex (streamed, for multi-GB checkpoints).
std::string sha256_file(const std::filesystem::path& path);
/// sha256 of bytes in memory, lowercase hex.
std::string sha256_hex(std::string_view bytes);

}  // namespace atlas
