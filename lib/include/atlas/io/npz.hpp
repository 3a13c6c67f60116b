#pragma once
/// NumPy .npz archives (a ZIP of .npy members), the interchange format of every Atlas subcommand.
/// The writer streams: members go straight to a temporary file (renamed onto the target by close()),
/// an array whose shape is known up front can be written chunk by chunk, and ZIP64 records are used
/// when a member or the archive passes 4 GiB or there are more than 65535 members.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "atlas/io/npy.hpp"

namespace atlas::io {

enum class Compression { Stored, Deflate };

/// Most members an archive may declare (docs/limits.md); the central directory is read in full.
constexpr uint64_t kMaxNpzMembers = 1000000;

class NpzWriter {
 public:
  /// Opens a temporary file next to `path`; nothing appears at `path` until close() succeeds.
  /// The directory of `path` must exist (InputError otherwise).
  explicit NpzWriter(std::filesystem::path path, Compression compression = Compression::Stored,
                     int level = 6);
  /// Destroying an open writer (e.g. during an exception) removes the temporary file.
  ~NpzWriter();
  NpzWriter(const NpzWriter&) = delete;
  NpzWriter& operator=(const NpzWriter&) = delete;

  /// Adds member `name` + ".npy". Names must be unique (FormatError otherwise).
  void add(const std::string& name, const NdArray& array);

  /// A member written in pieces: exactly shape-product * itemsize bytes must be written, in C order.
  class Stream {
   public:
    void write(const void* data, size_t nbytes);
    template <class T> void write(const std::vector<T>& values) { write(values.data(), values.size() * sizeof(T)); }
    /// Finishes the member (FormatError if the byte count is wrong). Called by NpzWriter otherwise.
    void finish();
    ~Stream();
    Stream(Stream&&) noexcept;
    Stream& operator=(Stream&&) noexcept;
   private:
    friend class NpzWriter;
    struct Impl;
    explicit Stream(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
  };
  /// Starts a streamed member; only one may be open at a time.
  Stream begin(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
               size_t unicode_chars = 0);

  /// Writes the central directory, closes, and renames onto the target path.
  void close();
  const std::filesystem::path& path() const { return path_; }
  /// Bytes in the archive so far (before the central directory), e.g. to roll over store shards.
  uint64_t bytes_written() const;

 private:
  struct Impl;
  std::filesystem::path path_;
  std::unique_ptr<Impl> impl_;
};

class NpzReader {
 public:
  /// Opens and indexes an .npz (ZIP or ZIP64). Throws FormatError naming the file when it is not one.
  explicit NpzReader(const std::filesystem::path& path);
  ~NpzReader();
  NpzReader(NpzReader&&) noexcept;
  NpzReader& operator=(NpzReader&&) noexcept;

  /// Member names without the ".npy" suffix, in archive order.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  /// Reads a member. STORED members are memory-mapped (no copy; a read-only view that keeps the
  /// mapping alive) when their data is aligned for the dtype, as in every file NpzWriter writes, and
  /// copied otherwise; DEFLATE members are inflated and CRC-checked.
  /// Throws FormatError "'<file>' has no array '<name>' (has: a, b, c)" when missing.
  NdArray get(const std::string& name) const;
  /// Header only (dtype and shape) without reading the data.
  NpyHeader header(const std::string& name) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Impl;
  std::filesystem::path path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace atlas::io
