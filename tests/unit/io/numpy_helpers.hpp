#pragma once
// Shared by test_npy.cpp and test_npz.cpp: run the real numpy, and build the same sample arrays in
// C++ and in Python from one formula, so each side checks the other's bytes exactly.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "atlas/io/npy.hpp"
#include "test_support.hpp"

namespace atlas::test {

struct PyResult {
  int rc = -1;
  std::string out;
};

/// Runs `script` (Python source) with /usr/bin/python3 and the given arguments; captures stdout+stderr.
inline PyResult run_python(const std::filesystem::path& dir, const std::string& script,
                           const std::vector<std::string>& args = {}) {
  static int counter = 0;
  auto file = dir / ("script_" + std::to_string(counter++) + ".py");
  std::ofstream(file) << script;
  std::string cmd = python() + " '" + file.string() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  PyResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// The Python twin of sample_array(): `sample(code, shape)` with code = numpy dtype str.
inline const char* kPySample = R"PY(
import numpy as np, sys
STRINGS = ['', 'a', 'h\u00e9llo', '\u65e5\u672c\u8a9e', '\U0001f642x', 'tab\tend']
def sample(code, shape):
    n = int(np.prod(shape, dtype=np.int64))
    if code == '?':
        return (np.arange(n) % 3 == 0).reshape(shape)
    if code == 'U':
        return np.array([STRINGS[i % 6] for i in range(n)], dtype=None if n else 'U1').reshape(shape)
    dt = np.dtype(code)
    if dt.kind in 'iu':
        x = np.arange(n, dtype=np.uint64) * np.uint64(2654435761) + np.uint64(12345)
        return x.astype(dt).reshape(shape)
    v = ((np.arange(n) - n // 2) * 0.25).astype(dt)
    specials = [np.inf, -0.0, np.nan]
    for k in range(min(n, 3)):
        v[k] = specials[k]
    return v.reshape(shape)
CODES = ['?', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'f2', 'f4', 'f8', 'U']
SHAPES = {'2d': (3, 5), '0d': (), 'empty': (0, 3), '1d': (7,)}
def check(a, e, what):
    ok = a.dtype == e.dtype and a.shape == e.shape and a.tobytes() == e.tobytes()
    if not ok:
        print('MISMATCH', what, a.dtype, e.dtype, a.shape, e.shape, a.ravel()[:8], e.ravel()[:8])
    return ok
)PY";

/// Python: `check_local_headers(path)` asserts that every local header agrees with the central
/// directory (zipfile itself only reads the central one; streaming unzippers read the local one).
inline const char* kPyZipCheck = R"PY(
import struct, zipfile
def check_local_headers(path):
    with zipfile.ZipFile(path) as z, open(path, 'rb') as f:
        for info in z.infolist():
            f.seek(info.header_offset)
            sig, ver, flags, method, t, d, crc, csize, usize, nlen, xlen = struct.unpack('<IHHHHHIIIHH', f.read(30))
            name = f.read(nlen); extra = f.read(xlen)
            assert sig == 0x04034b50 and name.decode('utf-8') == info.filename, info
            assert method == info.compress_type and crc == info.CRC, (info, crc)
            if csize == 0xFFFFFFFF or usize == 0xFFFFFFFF:
                tag, ln, u64, c64 = struct.unpack('<HHQQ', extra[:20])
                assert tag == 1 and (u64, c64) == (info.file_size, info.compress_size), info
            else:
                assert (usize, csize) == (info.file_size, info.compress_size), info
            if method == 0:
                assert (info.header_offset + 30 + nlen + xlen) % 64 == 0, 'STORED data not 64-byte aligned'
)PY";

inline const std::vector<std::pair<std::string, io::DType>>& sample_codes() {
  using io::DType;
  static const std::vector<std::pair<std::string, DType>> codes = {
      {"?", DType::Bool}, {"i1", DType::I8},  {"i2", DType::I16},   {"i4", DType::I32}, {"i8", DType::I64},
      {"u1", DType::U8},  {"u2", DType::U16}, {"u4", DType::U32},   {"u8", DType::U64}, {"f2", DType::F16},
      {"f4", DType::F32}, {"f8", DType::F64}, {"U", DType::Unicode}};
  return codes;
}
inline const std::vector<std::pair<std::string, std::vector<int64_t>>>& sample_shapes() {
  static const std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"2d", {3, 5}}, {"0d", {}}, {"empty", {0, 3}}, {"1d", {7}}};
  return shapes;
}
/// Member / file stem for a dtype code ('?' is not filename-friendly).
inline std::string code_stem(const std::string& code) { return code == "?" ? "b1" : code; }

/// The C++ twin of `sample(code, shape)` in kPySample.
inline io::NdArray sample_array(io::DType dtype, const std::vector<int64_t>& shape) {
  using io::DType;
  int64_t n = 1;
  for (auto d : shape) n *= d;
  if (dtype == DType::Unicode) {
    static const std::vector<std::string> strings = {
        "", "a", "h\xc3\xa9llo", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xf0\x9f\x99\x82x", "tab\tend"};
    std::vector<std::string> v;
    for (int64_t i = 0; i < n; ++i) v.push_back(strings[static_cast<size_t>(i % 6)]);
    return io::NdArray::from_strings(shape, v);
  }
  io::NdArray a(dtype, shape);
  std::byte* out = a.mutable_data();
  for (int64_t i = 0; i < n; ++i) {
    uint64_t x = static_cast<uint64_t>(i) * 2654435761ull + 12345ull;
    double v = static_cast<double>(i - n / 2) * 0.25;
    if (i < 3)
      v = i == 0   ? std::numeric_limits<double>::infinity()
          : i == 1 ? -0.0
                   : std::numeric_limits<double>::quiet_NaN();
    auto put = [&](auto value) { std::memcpy(out + i * sizeof(value), &value, sizeof(value)); };
    switch (dtype) {
      case DType::Bool:
        put(static_cast<uint8_t>(i % 3 == 0));
        break;
      case DType::I8:
        put(static_cast<int8_t>(x));
        break;
      case DType::I16:
        put(static_cast<int16_t>(x));
        break;
      case DType::I32:
        put(static_cast<int32_t>(x));
        break;
      case DType::I64:
        put(static_cast<int64_t>(x));
        break;
      case DType::U8:
        put(static_cast<uint8_t>(x));
        break;
      case DType::U16:
        put(static_cast<uint16_t>(x));
        break;
      case DType::U32:
        put(static_cast<uint32_t>(x));
        break;
      case DType::U64:
        put(x);
        break;
      case DType::F16:
        put(io::float_to_half(static_cast<float>(v)));
        break;
      case DType::F32:
        put(static_cast<float>(v));
        break;
      case DType::F64:
        put(v);
        break;
      case DType::Unicode:
        break;
    }
  }
  return a;
}

inline bool same_array(const io::NdArray& a, const io::NdArray& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.unicode_chars() == b.unicode_chars() &&
         a.nbytes() == b.nbytes() && (a.nbytes() == 0 || std::memcmp(a.data(), b.data(), a.nbytes()) == 0);
}

}  // namespace atlas::test
