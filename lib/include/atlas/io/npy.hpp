#pragma once
/// NumPy .npy arrays: the element type every Atlas file is made of. An NdArray owns its bytes or
/// views a memory-mapped region (kept alive by a shared owner). C order only on write; read accepts
/// Fortran-order files too (fortran_order: True; transposed into C order on read) and byte-string
/// arrays (`|S<n>`, decoded as UTF-8 into a Unicode array). Object arrays (`|O`, pickles) are refused.
/// Limits (docs/limits.md): header <= kMaxNpyHeaderBytes (which also bounds the number of dimensions).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::io {

enum class DType { Bool, I8, I16, I32, I64, U8, U16, U32, U64, F16, F32, F64, Unicode };

/// numpy descr without byte order, e.g. "f4", "i8", "U12" (Unicode needs the char count).
std::string dtype_name(DType dtype);
/// Bytes per element; for Unicode that is 4 * chars.
size_t dtype_size(DType dtype, size_t unicode_chars = 0);

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }
template <> constexpr DType dtype_of<int8_t>() { return DType::I8; }
template <> constexpr DType dtype_of<int16_t>() { return DType::I16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::U8; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::U16; }
template <> constexpr DType dtype_of<uint32_t>() { return DType::U32; }
template <> constexpr DType dtype_of<uint64_t>() { return DType::U64; }
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }

/// IEEE half <-> float conversion (round to nearest even).
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

class NdArray {
 public:
  NdArray() = default;
  /// Zero-filled array that owns its bytes. For Unicode pass `unicode_chars` (chars per element).
  NdArray(DType dtype, std::vector<int64_t> shape, size_t unicode_chars = 0);
  /// View over external bytes kept alive by `owner` (e.g. a memory map). Read-only.
  static NdArray view(DType dtype, std::vector<int64_t> shape, size_t unicode_chars,
                      const std::byte* data, std::shared_ptr<const void> owner);

  template <class T>
  static NdArray from(std::vector<int64_t> shape, const std::vector<T>& values);
  /// Unicode array from UTF-8 strings; chars per element = the longest string (at least 1).
  static NdArray from_strings(std::vector<int64_t> shape, const std::vector<std::string>& utf8);
  /// 0-d Unicode array (how `meta` JSON documents are stored).
  static NdArray scalar_string(const std::string& utf8);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t ndim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t numel() const;
  size_t itemsize() const { return dtype_size(dtype_, unicode_chars_); }
  size_t unicode_chars() const { return unicode_chars_; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * itemsize(); }
  const std::byte* data() const { return data_; }
  /// Throws if the array is a read-only view.
  std::byte* mutable_data();
  bool empty() const { return data_ == nullptr && numel() == 0; }

  /// Typed access; throws FormatError naming expected and actual dtype.
  template <class T> const T* as() const;
  template <class T> T* as_mutable();

  /// Numeric array converted to float / double / int64 (any numeric dtype, incl. float16).
  std::vector<float> to_float() const;
  std::vector<double> to_double() const;
  std::vector<int64_t> to_int64() const;
  /// Unicode array as UTF-8 strings (trailing NULs stripped, as numpy does).
  std::vector<std::string> to_strings() const;
  /// 0-d or 1-element Unicode array as one UTF-8 string.
  std::string to_string() const;

 private:
  DType dtype_ = DType::F32;
  std::vector<int64_t> shape_;
  size_t unicode_chars_ = 0;
  std::shared_ptr<const void> owner_;
  const std::byte* data_ = nullptr;
  bool writable_ = false;
};

/// Largest .npy header (the dict after the magic, version and length) a reader accepts. numpy's own
/// reader refuses more than 10000 bytes by default.
constexpr size_t kMaxNpyHeaderBytes = 1 << 20;
/// Longest string element (`U<n>` / `S<n>`) a reader accepts.
constexpr size_t kMaxNpyStringChars = size_t{1} << 30;

/// Header of a .npy file: dtype, shape, and where the data starts.
struct NpyHeader {
  DType dtype = DType::F32;
  size_t unicode_chars = 0;     // Unicode: chars per element; byte strings: bytes per element
  std::vector<int64_t> shape;   // logical shape (also for Fortran order)
  bool big_endian = false;      // data is converted to little-endian on read
  bool fortran_order = false;   // data is transposed into C order on read
  bool byte_string = false;     // `|S<n>`: dtype is Unicode, elements are decoded from UTF-8 on read
  size_t data_offset = 0;       // bytes from the start of the .npy to the first element

  /// Bytes of one stored element (for byte strings: unicode_chars bytes, not 4 per char).
  size_t stored_itemsize() const;
  /// Bytes of stored data the header announces; FormatError naming `what` if that overflows.
  size_t data_bytes(const std::string& what) const;
};

/// Parses the header at the start of `bytes` (versions 1.0, 2.0, 3.0). `what` names the source
/// (file or member) in error messages.
NpyHeader parse_npy_header(const std::byte* bytes, size_t size, const std::string& what);
/// Serialises a header (version 1.0 when it fits, else 2.0; 3.0 when the dtype descr needs UTF-8),
/// padded so the data starts at a multiple of 64 bytes.
std::string make_npy_header(DType dtype, const std::vector<int64_t>& shape, size_t unicode_chars = 0);
/// Same with a forced format version (1, 2 or 3; 0 = automatic as above). FormatError when the
/// header does not fit version 1.0's 16-bit length.
std::string make_npy_header(DType dtype, const std::vector<int64_t>& shape, size_t unicode_chars,
                            int version);

/// Parses a complete in-memory .npy (copies the data).
NdArray parse_npy(const std::byte* bytes, size_t size, const std::string& what);
/// Whole .npy as bytes (header + data).
std::string serialize_npy(const NdArray& array);
/// Same with a forced header version (1, 2 or 3; 0 = automatic).
std::string serialize_npy(const NdArray& array, int version);

/// Writes atomically (temp file + rename).
void write_npy(const std::filesystem::path& path, const NdArray& array);
/// Reads a .npy; the data is memory-mapped when it is little-endian and aligned.
NdArray read_npy(const std::filesystem::path& path);

}  // namespace atlas::io
