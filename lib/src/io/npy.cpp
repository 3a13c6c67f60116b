#include "atlas/io/npy.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/memory.hpp"
#include "atlas/core/utf8.hpp"
#include "npy_internal.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "atlas io assumes a little-endian host (npy/npz data is stored little-endian)"
#endif

namespace atlas::io {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// numpy pads headers so that the data starts at a multiple of this (numpy.lib.format.ARRAY_ALIGN).
constexpr size_t kArrayAlign = 64;

const char* kind_name(DType d) {
  switch (d) {
    case DType::Bool:
      return "bool";
    case DType::I8:
      return "int8";
    case DType::I16:
      return "int16";
    case DType::I32:
      return "int32";
    case DType::I64:
      return "int64";
    case DType::U8:
      return "uint8";
    case DType::U16:
      return "uint16";
    case DType::U32:
      return "uint32";
    case DType::U64:
      return "uint64";
    case DType::F16:
      return "float16";
    case DType::F32:
      return "float32";
    case DType::F64:
      return "float64";
    case DType::Unicode:
      return "unicode";
  }
  return "?";
}

std::shared_ptr<void> allocate_zeroed(size_t nbytes) {
  // An array larger than the machine's memory can only end in the OOM killer (the memset below
  // touches every page), so it is an error up front.
  static const uint64_t physical =
      static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  ATLAS_CHECK(nbytes <= physical, Error, "cannot allocate {} bytes for an array: this machine has {} bytes of memory",
              nbytes, physical);
  // 64-byte aligned so SIMD code and typed views never see a misaligned owned buffer.
  size_t padded = (std::max<size_t>(nbytes, 1) + kArrayAlign - 1) / kArrayAlign * kArrayAlign;
  void* p = std::aligned_alloc(kArrayAlign, padded);
  ATLAS_CHECK(p != nullptr, Error, "cannot allocate {} bytes for an array", nbytes);
  std::memset(p, 0, padded);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    ATLAS_CHECK(d >= 0, FormatError, "{}: negative dimension {} in shape", what, d);
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      ATLAS_FAIL(FormatError, "{}: shape product overflows", what);
    n *= d;
  }
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    s += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) s += ",";
    if (i + 1 < shape.size()) s += " ";
  }
  return s + ")";
}

// ---- header dict parser: the subset of Python literal syntax that numpy writes ----
struct DictParser {
  const std::string& s;
  size_t pos = 0;
  const std::string& what;

  [[noreturn]] void fail(const std::string& msg) const {
    ATLAS_FAIL(FormatError, "{}: bad .npy header ({} at byte {}): {}", what, msg, pos, s.substr(0, 200));
  }
  void ws() {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r')) ++pos;
  }
  bool eat(char c) {
    ws();
    if (pos < s.size() && s[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  std::string str() {
    ws();
    if (pos >= s.size() || (s[pos] != '\'' && s[pos] != '"')) fail("expected a string");
    char q = s[pos++];
    std::string out;
    while (pos < s.size() && s[pos] != q) {
      if (s[pos] == '\\' && pos + 1 < s.size()) ++pos;
      out += s[pos++];
    }
    if (pos >= s.size()) fail("unterminated string");
    ++pos;
    return out;
  }
  int64_t integer() {
    ws();
    size_t start = pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
    if (start == pos) fail("expected an integer");
    std::string digits = s.substr(start, pos - start);
    if (pos < s.size() && s[pos] == 'L') ++pos;  // Python 2 long suffix
    errno = 0;
    long long v = std::strtoll(digits.c_str(), nullptr, 10);
    if (errno == ERANGE) fail("integer out of range");
    return v;
  }
};

void parse_descr(const std::string& descr, NpyHeader& h, const std::string& what) {
  ATLAS_CHECK(descr.size() >= 2, FormatError, "{}: unsupported dtype descr '{}'", what, descr);
  // Object arrays hold pickles; unpickling a downloaded file could run code, so they stay refused.
  ATLAS_CHECK(descr.find('O') == std::string::npos, FormatError,
              "{}: object arrays (dtype '{}', pickled Python objects) are not supported: they could run code "
              "when loaded; save numbers or strings (np.str_) instead",
              what, descr);
  char order = descr[0];
  std::string body = descr.substr(1);
  if (order != '<' && order != '>' && order != '|' && order != '=') {
    order = '=';
    body = descr;
  }
  h.big_endian = order == '>';
  char kind = body[0];
  std::string size_str = body.substr(1);
  bool digits = !size_str.empty() && std::all_of(size_str.begin(), size_str.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
  ATLAS_CHECK(
      digits, FormatError,
      "{}: unsupported dtype descr '{}' (supported: bool, int8-64, uint8-64, float16/32/64, unicode U, bytes S)",
      what, descr);
  errno = 0;
  long size = std::strtol(size_str.c_str(), nullptr, 10);
  ATLAS_CHECK(errno != ERANGE && static_cast<unsigned long>(size) <= kMaxNpyStringChars, FormatError,
              "{}: dtype descr '{}': element size {} is too large (limit {})", what, descr, size_str,
              kMaxNpyStringChars);
  auto bad = [&]() {
    ATLAS_FAIL(
        FormatError,
        "{}: unsupported dtype descr '{}' (supported: bool, int8-64, uint8-64, float16/32/64, unicode U, "
        "bytes S)",
        what, descr);
  };
  switch (kind) {
    case 'b':
    case '?':
      if (size != 1) bad();
      h.dtype = DType::Bool;
      break;
    case 'i':
      if (size == 1)
        h.dtype = DType::I8;
      else if (size == 2)
        h.dtype = DType::I16;
      else if (size == 4)
        h.dtype = DType::I32;
      else if (size == 8)
        h.dtype = DType::I64;
      else
        bad();
      break;
    case 'u':
      if (size == 1)
        h.dtype = DType::U8;
      else if (size == 2)
        h.dtype = DType::U16;
      else if (size == 4)
        h.dtype = DType::U32;
      else if (size == 8)
        h.dtype = DType::U64;
      else
        bad();
      break;
    case 'f':
      if (size == 2)
        h.dtype = DType::F16;
      else if (size == 4)
        h.dtype = DType::F32;
      else if (size == 8)
        h.dtype = DType::F64;
      else
        bad();
      break;
    case 'U':
      // Zero-width strings hold nothing but let a header claim billions of elements in 0 bytes.
      ATLAS_CHECK(size > 0, FormatError, "{}: dtype descr '{}': zero-width strings are not supported", what, descr);
      h.dtype = DType::Unicode;
      h.unicode_chars = static_cast<size_t>(size);
      break;
    case 'S':  // numpy bytes_ (what np.array([b'..']) and many older tools write): decoded as UTF-8
      ATLAS_CHECK(size > 0, FormatError, "{}: dtype descr '{}': zero-width strings are not supported", what, descr);
      h.dtype = DType::Unicode;
      h.unicode_chars = static_cast<size_t>(size);
      h.byte_string = true;
      break;
    default:
      bad();
  }
  if (h.byte_string || h.stored_itemsize() <= 1) h.big_endian = false;
}

std::string descr_for(DType dtype, size_t unicode_chars) {
  switch (dtype) {
    case DType::Bool:
      return "|b1";
    case DType::I8:
      return "|i1";
    case DType::U8:
      return "|u1";
    case DType::Unicode:
      return "<U" + std::to_string(unicode_chars);
    default:
      return "<" + dtype_name(dtype);
  }
}

template <class T>
void convert_all(const NdArray& a, T* out) {
  const std::byte* p = a.data();
  size_t n = static_cast<size_t>(a.numel());
  auto load = [&](auto tag) {
    using S = decltype(tag);
    for (size_t i = 0; i < n; ++i) {
      S v;
      std::memcpy(&v, p + i * sizeof(S), sizeof(S));
      out[i] = static_cast<T>(v);
    }
  };
  switch (a.dtype()) {
    case DType::Bool:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<T>(p[i] != std::byte{0});
      break;
    case DType::I8:
      load(int8_t{});
      break;
    case DType::I16:
      load(int16_t{});
      break;
    case DType::I32:
      load(int32_t{});
      break;
    case DType::I64:
      load(int64_t{});
      break;
    case DType::U8:
      load(uint8_t{});
      break;
    case DType::U16:
      load(uint16_t{});
      break;
    case DType::U32:
      load(uint32_t{});
      break;
    case DType::U64:
      load(uint64_t{});
      break;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = static_cast<T>(half_to_float(h));
      }
      break;
    case DType::F32:
      load(float{});
      break;
    case DType::F64:
      load(double{});
      break;
    case DType::Unicode:
      ATLAS_FAIL(FormatError, "cannot convert a unicode array to numbers (expected a numeric dtype)");
  }
}

}  // namespace

// ---- dtypes ----

std::string dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Bool:
      return "b1";
    case DType::I8:
      return "i1";
    case DType::I16:
      return "i2";
    case DType::I32:
      return "i4";
    case DType::I64:
      return "i8";
    case DType::U8:
      return "u1";
    case DType::U16:
      return "u2";
    case DType::U32:
      return "u4";
    case DType::U64:
      return "u8";
    case DType::F16:
      return "f2";
    case DType::F32:
      return "f4";
    case DType::F64:
      return "f8";
    case DType::Unicode:
      return "U";
  }
  return "?";
}

size_t dtype_size(DType dtype, size_t unicode_chars) {
  switch (dtype) {
    case DType::Bool:
    case DType::I8:
    case DType::U8:
      return 1;
    case DType::I16:
    case DType::U16:
    case DType::F16:
      return 2;
    case DType::I32:
    case DType::U32:
    case DType::F32:
      return 4;
    case DType::I64:
    case DType::U64:
    case DType::F64:
      return 8;
    case DType::Unicode:
      return 4 * unicode_chars;
  }
  return 0;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t exp = (x >> 23) & 0xFFu;
  uint32_t mant = x & 0x7FFFFFu;
  if (exp == 0xFF) {  // inf / nan (keep nan quiet and non-zero)
    if (mant == 0) return sign | 0x7C00u;
    return static_cast<uint16_t>(sign | 0x7C00u | 0x0200u | (mant >> 13));
  }
  int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 31) return sign | 0x7C00u;  // overflow -> inf
  if (e <= 0) {                        // subnormal half or zero
    if (e < -10) return sign;
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half_mant = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1u))) ++half_mant;
    return static_cast<uint16_t>(sign | half_mant);
  }
  uint32_t half = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;  // may carry into exp: correct
  return static_cast<uint16_t>(sign | half);
}

float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      x = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7F800000u | (mant << 13);
  } else {
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// ---- NdArray ----

NdArray::NdArray(DType dtype, std::vector<int64_t> shape, size_t unicode_chars)
    : dtype_(dtype), shape_(std::move(shape)), unicode_chars_(unicode_chars) {
  ATLAS_CHECK(dtype == DType::Unicode || unicode_chars == 0, InputError,
              "unicode_chars={} given for non-unicode dtype {}", unicode_chars, kind_name(dtype));
  int64_t n = checked_numel(shape_, "NdArray");
  size_t bytes = 0;
  ATLAS_CHECK(!__builtin_mul_overflow(static_cast<size_t>(n), itemsize(), &bytes), InputError,
              "NdArray: shape {} of {}-byte elements overflows the byte count", shape_str(shape_), itemsize());
  auto buf = allocate_zeroed(bytes);
  data_ = static_cast<const std::byte*>(buf.get());
  owner_ = std::move(buf);
  writable_ = true;
}

NdArray NdArray::view(DType dtype, std::vector<int64_t> shape, size_t unicode_chars, const std::byte* data,
                      std::shared_ptr<const void> owner) {
  NdArray a;
  a.dtype_ = dtype;
  a.shape_ = std::move(shape);
  a.unicode_chars_ = unicode_chars;
  checked_numel(a.shape_, "NdArray::view");
  a.data_ = data;
  a.owner_ = std::move(owner);
  a.writable_ = false;
  return a;
}

int64_t NdArray::numel() const {
  // A default-constructed array (no data, no shape) has no elements, so empty() holds for it.
  if (shape_.empty()) return data_ ? 1 : 0;
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

std::byte* NdArray::mutable_data() {
  ATLAS_CHECK(writable_, Error, "array is a read-only view (e.g. memory-mapped); copy it to modify");
  return const_cast<std::byte*>(data_);
}

template <class T>
NdArray NdArray::from(std::vector<int64_t> shape, const std::vector<T>& values) {
  NdArray a(dtype_of<T>(), std::move(shape));
  ATLAS_CHECK(static_cast<size_t>(a.numel()) == values.size(), InputError,
              "NdArray::from: shape {} needs {} values, got {}", shape_str(a.shape_), a.numel(),
              values.size());
  T* out = a.as_mutable<T>();
  for (size_t i = 0; i < values.size(); ++i) out[i] = values[i];  // loop: vector<bool> has no data()
  return a;
}

NdArray NdArray::from_strings(std::vector<int64_t> shape, const std::vector<std::string>& utf8) {
  std::vector<std::u32string> decoded;
  decoded.reserve(utf8.size());
  size_t chars = 1;
  for (const auto& s : utf8) {
    decoded.push_back(atlas::utf8::decode(s));
    chars = std::max(chars, decoded.back().size());
  }
  NdArray a(DType::Unicode, std::move(shape), chars);
  ATLAS_CHECK(static_cast<size_t>(a.numel()) == utf8.size(), InputError,
              "NdArray::from_strings: shape {} needs {} strings, got {}", shape_str(a.shape_), a.numel(),
              utf8.size());
  std::byte* out = a.mutable_data();
  for (size_t i = 0; i < decoded.size(); ++i)
    std::memcpy(out + i * 4 * chars, decoded[i].data(), 4 * decoded[i].size());
  return a;
}

NdArray NdArray::scalar_string(const std::string& utf8) { return from_strings({}, {utf8}); }

template <class T>
const T* NdArray::as() const {
  ATLAS_CHECK(dtype_ == dtype_of<T>(), FormatError, "array has dtype {}, expected {}", kind_name(dtype_),
              kind_name(dtype_of<T>()));
  return reinterpret_cast<const T*>(data_);
}

template <class T>
T* NdArray::as_mutable() {
  ATLAS_CHECK(dtype_ == dtype_of<T>(), FormatError, "array has dtype {}, expected {}", kind_name(dtype_),
              kind_name(dtype_of<T>()));
  return reinterpret_cast<T*>(mutable_data());
}

#define ATLAS_INSTANTIATE(T)                                                      \
  template NdArray NdArray::from<T>(std::vector<int64_t>, const std::vector<T>&); \
  template const T* NdArray::as<T>() const;                                       \
  template T* NdArray::as_mutable<T>();
ATLAS_INSTANTIATE(bool)
ATLAS_INSTANTIATE(int8_t)
ATLAS_INSTANTIATE(int16_t)
ATLAS_INSTANTIATE(int32_t)
ATLAS_INSTANTIATE(int64_t)
ATLAS_INSTANTIATE(uint8_t)
ATLAS_INSTANTIATE(uint16_t)
ATLAS_INSTANTIATE(uint32_t)
ATLAS_INSTANTIATE(uint64_t)
ATLAS_INSTANTIATE(float)
ATLAS_INSTANTIATE(double)
#undef ATLAS_INSTANTIATE

std::vector<float> NdArray::to_float() const {
  std::vector<float> out = bulk_vector<float>(static_cast<size_t>(numel()));
  convert_all(*this, out.data());
  return out;
}
std::vector<double> NdArray::to_double() const {
  std::vector<double> out = bulk_vector<double>(static_cast<size_t>(numel()));
  convert_all(*this, out.data());
  return out;
}
std::vector<int64_t> NdArray::to_int64() const {
  ATLAS_CHECK(dtype_ != DType::F16 && dtype_ != DType::F32 && dtype_ != DType::F64, FormatError,
              "to_int64: array has dtype {}, expected an integer or bool dtype", kind_name(dtype_));
  std::vector<int64_t> out(static_cast<size_t>(numel()));
  convert_all(*this, out.data());
  return out;
}

std::vector<std::string> NdArray::to_strings() const {
  ATLAS_CHECK(dtype_ == DType::Unicode, FormatError, "to_strings: array has dtype {}, expected unicode",
              kind_name(dtype_));
  size_t n = static_cast<size_t>(numel());
  std::vector<std::string> out;
  out.reserve(n);
  std::u32string buf(unicode_chars_, U'\0');
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(buf.data(), data_ + i * 4 * unicode_chars_, 4 * unicode_chars_);
    size_t len = unicode_chars_;
    while (len > 0 && buf[len - 1] == U'\0') --len;  // numpy strips trailing NULs only
    for (size_t k = 0; k < len; ++k) {
      char32_t c = buf[k];
      ATLAS_CHECK(c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF), FormatError,
                  "to_strings: element {} holds U+{:X}, which is not a Unicode scalar value", i,
                  static_cast<uint32_t>(c));
    }
    out.push_back(atlas::utf8::encode(std::u32string_view(buf.data(), len)));
  }
  return out;
}

std::string NdArray::to_string() const {
  ATLAS_CHECK(dtype_ == DType::Unicode && numel() == 1, FormatError,
              "to_string: expected a 0-d or 1-element unicode array, got dtype {} shape {}",
              kind_name(dtype_), shape_str(shape_));
  return to_strings().front();
}

// ---- header ----

size_t NpyHeader::stored_itemsize() const {
  return byte_string ? unicode_chars : dtype_size(dtype, unicode_chars);
}

size_t NpyHeader::data_bytes(const std::string& what) const {
  uint64_t n = static_cast<uint64_t>(checked_numel(shape, what)), bytes = 0;
  ATLAS_CHECK(!__builtin_mul_overflow(n, static_cast<uint64_t>(stored_itemsize()), &bytes) &&
                  bytes <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
              FormatError, "{}: shape {} of {}-byte elements overflows the byte count", what, shape_str(shape),
              stored_itemsize());
  return static_cast<size_t>(bytes);
}

NpyHeader parse_npy_header(const std::byte* bytes, size_t size, const std::string& what) {
  ATLAS_CHECK(size >= 10 && std::memcmp(bytes, kMagic, kMagicLen) == 0, FormatError,
              "{}: not a .npy file (missing \\x93NUMPY magic)", what);
  int major = static_cast<int>(bytes[6]);
  int minor = static_cast<int>(bytes[7]);
  ATLAS_CHECK((major >= 1 && major <= 3) && minor == 0, FormatError,
              "{}: unsupported .npy format version {}.{} (expected 1.0, 2.0 or 3.0)", what, major, minor);
  size_t prefix = major == 1 ? 10 : 12;
  ATLAS_CHECK(size >= prefix, FormatError, "{}: truncated .npy header", what);
  size_t hlen = major == 1 ? detail::load_u16(bytes + 8) : detail::load_u32(bytes + 8);
  ATLAS_CHECK(hlen <= kMaxNpyHeaderBytes, FormatError,
              "{}: .npy header of {} bytes is larger than the limit of {} bytes (docs/limits.md)", what, hlen,
              kMaxNpyHeaderBytes);
  ATLAS_CHECK(size >= prefix + hlen, FormatError,
              "{}: truncated .npy header (header needs {} bytes, only {} available)", what, prefix + hlen,
              size);
  // 1.0/2.0 headers are latin-1, 3.0 is UTF-8; the keys and values we accept are ASCII either way.
  std::string text(reinterpret_cast<const char*>(bytes + prefix), hlen);

  NpyHeader h;
  h.data_offset = prefix + hlen;
  DictParser p{text, 0, what};
  if (!p.eat('{')) p.fail("expected '{'");
  bool have_descr = false, have_order = false, have_shape = false, fortran = false;
  while (!p.eat('}')) {
    std::string key = p.str();
    if (!p.eat(':')) p.fail("expected ':'");
    p.ws();
    if (key == "descr") {
      if (p.pos < text.size() && text[p.pos] == '[')
        ATLAS_FAIL(FormatError, "{}: structured dtypes are not supported (descr is a field list)", what);
      parse_descr(p.str(), h, what);
      have_descr = true;
    } else if (key == "fortran_order") {
      if (text.compare(p.pos, 4, "True") == 0) {
        fortran = true;
        p.pos += 4;
      } else if (text.compare(p.pos, 5, "False") == 0) {
        p.pos += 5;
      } else {
        p.fail("fortran_order must be True or False");
      }
      have_order = true;
    } else if (key == "shape") {
      if (!p.eat('(')) p.fail("expected a shape tuple");
      while (!p.eat(')')) {
        h.shape.push_back(p.integer());
        if (!p.eat(',')) {
          if (!p.eat(')')) p.fail("expected ',' or ')' in shape");
          break;
        }
      }
      have_shape = true;
    } else {
      p.fail("unexpected key '" + key + "'");
    }
    if (!p.eat(',')) {
      if (!p.eat('}')) p.fail("expected ',' or '}'");
      break;
    }
  }
  ATLAS_CHECK(have_descr && have_order && have_shape, FormatError,
              "{}: .npy header lacks descr, fortran_order or shape: {}", what, text.substr(0, 200));
  h.fortran_order = fortran && h.shape.size() > 1;  // 0-d and 1-d arrays read the same either way
  h.data_bytes(what);  // shape product and byte count must fit before anyone sizes a buffer by them
  return h;
}

std::string make_npy_header(DType dtype, const std::vector<int64_t>& shape, size_t unicode_chars) {
  return make_npy_header(dtype, shape, unicode_chars, 0);
}

std::string make_npy_header(DType dtype, const std::vector<int64_t>& shape, size_t unicode_chars,
                            int version) {
  ATLAS_CHECK(version >= 0 && version <= 3, InputError, "npy version must be 0 (auto), 1, 2 or 3, got {}",
              version);
  // Same layout and key order as numpy.lib.format (sorted keys, trailing ", }").
  std::string dict = "{'descr': '" + descr_for(dtype, unicode_chars) +
                     "', 'fortran_order': False, 'shape': " + shape_str(shape) + ", }";
  auto padded = [&](size_t prefix) {
    size_t total = prefix + dict.size() + 1;  // + '\n'
    return dict + std::string((kArrayAlign - total % kArrayAlign) % kArrayAlign, ' ') + "\n";
  };
  if (version == 0) version = padded(10).size() <= 0xFFFF ? 1 : 2;
  size_t prefix = version == 1 ? 10 : 12;
  std::string body = padded(prefix);
  ATLAS_CHECK(version != 1 || body.size() <= 0xFFFF, FormatError,
              "npy header of {} bytes does not fit format 1.0 (max 65535)", body.size());
  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(version);
  out += '\0';
  if (version == 1) {
    uint16_t n = static_cast<uint16_t>(body.size());
    out.append(reinterpret_cast<const char*>(&n), 2);
  } else {
    uint32_t n = static_cast<uint32_t>(body.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
  }
  return out + body;
}

// ---- whole arrays ----

namespace detail {

void byteswap_elements(std::byte* data, size_t count, size_t width) {
  if (width <= 1) return;
  for (size_t i = 0; i < count; ++i) std::reverse(data + i * width, data + (i + 1) * width);
}

size_t dtype_alignment(DType dtype) { return dtype == DType::Unicode ? 4 : dtype_size(dtype); }

namespace {

// Fortran order stores the first index fastest: element (i0..ik) sits at i0 + d0*(i1 + d1*(...)).
// Walks the C-order output with an odometer and gathers each element from there.
void fortran_to_c(const std::byte* src, std::byte* dst, const std::vector<int64_t>& shape, size_t item) {
  const size_t nd = shape.size();
  std::vector<size_t> stride(nd);  // source stride of each axis, in elements
  size_t n = 1;
  for (size_t k = 0; k < nd; ++k) {
    stride[k] = n;
    n *= static_cast<size_t>(shape[k]);
  }
  if (n == 0) return;
  std::vector<size_t> idx(nd, 0);
  const size_t last = static_cast<size_t>(shape[nd - 1]), last_stride = stride[nd - 1];
  size_t base = 0;  // source offset of idx with the last index at 0
  for (size_t out = 0; out < n; out += last) {
    for (size_t j = 0; j < last; ++j) std::memcpy(dst + (out + j) * item, src + (base + j * last_stride) * item, item);
    for (size_t k = nd - 1; k-- > 0;) {  // advance the odometer over axes 0..nd-2
      base += stride[k];
      if (++idx[k] < static_cast<size_t>(shape[k])) break;
      base -= stride[k] * idx[k];
      idx[k] = 0;
    }
  }
}

// `|S<n>` elements: n bytes, trailing NULs stripped (as numpy does), decoded as UTF-8.
NdArray decode_byte_strings(const NpyHeader& h, const std::byte* src, const std::string& what) {
  const size_t width = h.unicode_chars;
  const size_t n = static_cast<size_t>(checked_numel(h.shape, what));
  auto element = [&](size_t i) {
    std::string_view v(reinterpret_cast<const char*>(src) + i * width, width);
    while (!v.empty() && v.back() == '\0') v.remove_suffix(1);
    return v;
  };
  size_t chars = 1;
  for (size_t i = 0; i < n; ++i) {
    std::string_view v = element(i);
    size_t bad = atlas::utf8::first_invalid(v);
    ATLAS_CHECK(bad == std::string_view::npos, FormatError,
                "{}: byte-string element {} is not valid UTF-8 (byte {} of it); decode it before saving or "
                "save text as np.str_",
                what, i, bad);
    size_t count = 0;
    for (char c : v) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    chars = std::max(chars, count);
  }
  NdArray a(DType::Unicode, h.shape, chars);
  std::byte* out = a.mutable_data();
  for (size_t i = 0; i < n; ++i) {
    std::u32string cps = atlas::utf8::decode(element(i));
    std::memcpy(out + i * 4 * chars, cps.data(), 4 * cps.size());
  }
  return a;
}

}  // namespace

NdArray array_from_bytes(const NpyHeader& h, const std::byte* data, std::shared_ptr<const void> owner,
                         const std::string& what) {
  size_t align = dtype_alignment(h.dtype);
  bool aligned = align <= 1 || reinterpret_cast<uintptr_t>(data) % align == 0;
  bool plain = !h.fortran_order && !h.byte_string;
  if (plain && !h.big_endian && aligned && owner)
    return NdArray::view(h.dtype, h.shape, h.unicode_chars, data, std::move(owner));
  if (plain) {
    NdArray a(h.dtype, h.shape, h.unicode_chars);
    std::memcpy(a.mutable_data(), data, a.nbytes());
    if (h.big_endian) {
      size_t width = h.dtype == DType::Unicode ? 4 : a.itemsize();
      byteswap_elements(a.mutable_data(), a.nbytes() / std::max<size_t>(width, 1), width);
    }
    return a;
  }
  const size_t item = h.stored_itemsize(), nbytes = h.data_bytes(what);
  std::unique_ptr<std::byte[]> swapped;
  if (h.big_endian) {
    swapped.reset(new std::byte[std::max<size_t>(nbytes, 1)]);
    std::memcpy(swapped.get(), data, nbytes);
    size_t width = h.dtype == DType::Unicode ? 4 : item;
    byteswap_elements(swapped.get(), nbytes / std::max<size_t>(width, 1), width);
    data = swapped.get();
  }
  if (h.byte_string) {
    if (!h.fortran_order) return decode_byte_strings(h, data, what);
    std::unique_ptr<std::byte[]> c_order(new std::byte[std::max<size_t>(nbytes, 1)]);
    fortran_to_c(data, c_order.get(), h.shape, item);
    return decode_byte_strings(h, c_order.get(), what);
  }
  NdArray a(h.dtype, h.shape, h.unicode_chars);
  fortran_to_c(data, a.mutable_data(), h.shape, item);
  return a;
}

MappedFile::MappedFile(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ATLAS_CHECK(fd >= 0, IoError, "cannot open '{}': {}", path.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    ATLAS_FAIL(IoError, "cannot stat '{}': {}", path.string(), std::strerror(err));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    int err = errno;
    ::close(fd);
    ATLAS_CHECK(p != MAP_FAILED, IoError, "cannot memory-map '{}': {}", path.string(), std::strerror(err));
    data_ = static_cast<const std::byte*>(p);
  } else {
    ::close(fd);
  }
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace detail

NdArray parse_npy(const std::byte* bytes, size_t size, const std::string& what) {
  NpyHeader h = parse_npy_header(bytes, size, what);
  size_t nbytes = h.data_bytes(what);
  ATLAS_CHECK(size - h.data_offset >= nbytes, FormatError,
              "{}: truncated .npy data (expected {} bytes, got {})", what, nbytes, size - h.data_offset);
  return detail::array_from_bytes(h, bytes + h.data_offset, nullptr, what);
}

std::string serialize_npy(const NdArray& array) { return serialize_npy(array, 0); }

std::string serialize_npy(const NdArray& array, int version) {
  std::string out = make_npy_header(array.dtype(), array.shape(), array.unicode_chars(), version);
  out.append(reinterpret_cast<const char*>(array.data()), array.nbytes());
  return out;
}

void write_npy(const std::filesystem::path& path, const NdArray& array) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    ATLAS_CHECK(f != nullptr, IoError, "cannot create '{}': {}", tmp.string(), std::strerror(errno));
    std::string header = make_npy_header(array.dtype(), array.shape(), array.unicode_chars());
    bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
              std::fwrite(array.data(), 1, array.nbytes(), f) == array.nbytes();
    int err = errno;
    ok = (std::fclose(f) == 0) && ok;
    ATLAS_CHECK(ok, IoError, "cannot write '{}': {}", path.string(), std::strerror(err));
  });
}

NdArray read_npy(const std::filesystem::path& path) {
  auto map = std::make_shared<detail::MappedFile>(path);
  std::string what = "'" + path.string() + "'";
  NpyHeader h = parse_npy_header(map->data(), map->size(), what);
  size_t nbytes = h.data_bytes(what);
  ATLAS_CHECK(map->size() - h.data_offset >= nbytes, FormatError,
              "{}: truncated .npy data (expected {} bytes, got {})", what, nbytes,
              map->size() - h.data_offset);
  const std::byte* data = map->data() + h.data_offset;
  return detail::array_from_bytes(h, data, std::shared_ptr<const void>(map, map.get()), what);
}

}  // namespace atlas::io
