#pragma once
// Pieces shared by npy.cpp and npz.cpp (not public API).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "atlas/io/npy.hpp"

namespace atlas::io::detail {

/// A read-only memory map of a whole file; views into it hold a shared_ptr to it.
class MappedFile {
 public:
  /// Throws IoError naming the file when it cannot be opened or mapped. An empty file maps to size 0.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

/// Reverses the byte order of `count` elements of `width` bytes each, in place.
void byteswap_elements(std::byte* data, size_t count, size_t width);

/// Alignment an element of `dtype` needs for a zero-copy typed view.
size_t dtype_alignment(DType dtype);

/// NdArray over bytes in `bytes` (header already parsed, header.data_bytes() of them available):
/// zero-copy view when the data is little-endian, C-order, numeric or U and suitably aligned, otherwise
/// an owned, converted copy (byte-swapped, transposed from Fortran order, `|S` decoded from UTF-8).
/// `what` names the file / member in errors.
NdArray array_from_bytes(const NpyHeader& header, const std::byte* data, std::shared_ptr<const void> owner,
                         const std::string& what);

inline uint16_t load_u16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t load_u32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t load_u64(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace atlas::io::detail
