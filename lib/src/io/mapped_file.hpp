#pragma once
// Read-only memory mapping of a whole file (private to io/). Checkpoints are mapped, not read, so that
// opening a multi-GB model costs page faults on the tensors actually used, not a copy of the file.
#include <cstddef>
#include <filesystem>
#include <memory>

namespace atlas::io {

class MappedFile {
 public:
  /// Maps `path` read-only; throws CheckpointError naming the file when it cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile() = default;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  std::filesystem::path path_;
};

}  // namespace atlas::io
