// .npy arrays against the real numpy, both directions, plus NdArray accessors and float16.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "numpy_helpers.hpp"

namespace fs = std::filesystem;
using namespace atlas;
using namespace atlas::io;
using atlas::test::run_python;

namespace {

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

TEST_CASE("numpy reads our .npy files: every dtype and shape, header versions 1.0/2.0/3.0") {
  auto dir = test::scratch_dir("npy_write");
  for (const auto& [code, dtype] : test::sample_codes())
    for (const auto& [shape_name, shape] : test::sample_shapes()) {
      NdArray a = test::sample_array(dtype, shape);
      std::string stem = test::code_stem(code) + "_" + shape_name;
      write_npy(dir / (stem + ".npy"), a);
      for (int version : {2, 3})
        write_bytes(dir / (stem + "_v" + std::to_string(version) + ".npy"), serialize_npy(a, version));
    }
  std::string script = std::string(test::kPySample) + R"PY(
import os
d = sys.argv[1]
bad = 0; n = 0
for code in CODES:
    for sname, shape in SHAPES.items():
        stem = code.replace('?', 'b1') + '_' + sname
        for suffix, version in (('', (1, 0)), ('_v2', (2, 0)), ('_v3', (3, 0))):
            path = os.path.join(d, stem + suffix + '.npy')
            with open(path, 'rb') as f:
                got_version = np.lib.format.read_magic(f)
                if got_version != version:
                    print('version', path, got_version); bad += 1
            bad += not check(np.load(path), sample(code, shape), path)
            n += 1
print('checked', n)
sys.exit(1 if bad else 0)
)PY";
  auto r = run_python(dir, script, {dir.string()});
  INFO(r.out);
  CHECK(r.rc == 0);
  CHECK(r.out.find("checked 156") != std::string::npos);
}

TEST_CASE("we read np.save files of every dtype: little/big-endian, versions 1.0/2.0/3.0") {
  auto dir = test::scratch_dir("npy_read");
  std::string script = std::string(test::kPySample) + R"PY(
import os
d = sys.argv[1]
for code in CODES:
    for sname, shape in SHAPES.items():
        stem = os.path.join(d, code.replace('?', 'b1') + '_' + sname)
        a = sample(code, shape)
        np.save(stem + '.npy', a)
        np.save(stem + '_be.npy', a.astype(a.dtype.newbyteorder('>')))
        for v in (2, 3):
            with open(stem + '_v%d.npy' % v, 'wb') as f:
                np.lib.format.write_array(f, a, version=(v, 0))
)PY";
  auto py = run_python(dir, script, {dir.string()});
  INFO(py.out);
  REQUIRE(py.rc == 0);
  int checked = 0;
  for (const auto& [code, dtype] : test::sample_codes())
    for (const auto& [shape_name, shape] : test::sample_shapes()) {
      NdArray expect = test::sample_array(dtype, shape);
      std::string stem = test::code_stem(code) + "_" + shape_name;
      for (std::string suffix : {"", "_be", "_v2", "_v3"}) {
        auto path = dir / (stem + suffix + ".npy");
        CAPTURE(path);
        NdArray a = read_npy(path);
        CHECK(test::same_array(a, expect));
        std::string bytes = atlas::read_file(path);
        CHECK(test::same_array(
            parse_npy(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size(), stem), expect));
        NpyHeader h = parse_npy_header(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size(), stem);
        CHECK(h.big_endian == (suffix == "_be" && expect.itemsize() > 1 && dtype != DType::Bool));
        CHECK(h.data_offset % 64 == 0);
        ++checked;
      }
    }
  CHECK(checked == 13 * 4 * 4);
}

TEST_CASE("header layout: 64-byte aligned, numpy's dict text, automatic 2.0 for a header > 65535 bytes") {
  std::string h = make_npy_header(DType::F32, {3, 4});
  CHECK(h.size() % 64 == 0);
  CHECK(h.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  CHECK(h.find("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }") == 10);
  CHECK(make_npy_header(DType::I64, {7}).find("'shape': (7,)") != std::string::npos);
  CHECK(make_npy_header(DType::Unicode, {}, 12).find("'descr': '<U12'") != std::string::npos);
  CHECK(make_npy_header(DType::U8, {}).find("'descr': '|u1'") != std::string::npos);
  CHECK(make_npy_header(DType::Bool, {}).find("'descr': '|b1'") != std::string::npos);

  // numpy caps ndim at 32, so only a shape with thousands of axes makes a header this long: 2.0 is
  // chosen automatically and our reader takes it back.
  std::vector<int64_t> shape(30000, 1);  // "1, " x 30000 > 65535 bytes
  NdArray a = NdArray::from<float>(shape, {42.0f});
  std::string bytes = serialize_npy(a);
  CHECK(bytes[6] == 2);
  CHECK((bytes.size() - 4) % 64 == 0);
  NdArray back = parse_npy(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size(), "long");
  CHECK(back.shape() == shape);
  CHECK(back.to_float() == std::vector<float>{42.0f});
  CHECK_THROWS_AS(serialize_npy(a, 1), FormatError);
}

TEST_CASE("errors: structured dtypes, unsupported dtypes, truncation, bad magic") {
  auto dir = test::scratch_dir("npy_errors");
  auto py = run_python(dir, R"PY(
import numpy as np, sys, os
d = sys.argv[1]
np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray(np.arange(6.0).reshape(2, 3)))
np.save(os.path.join(d, 'complex.npy'), np.zeros(3, np.complex64))
np.save(os.path.join(d, 'object.npy'), np.array([1, 'a'], dtype=object), allow_pickle=True)
np.save(os.path.join(d, 'bytes.npy'), np.array([b'ab']))
# Structured dtypes: many fields force a 2.0 header (> 65535 bytes), a non-latin-1 name forces 3.0.
np.save(os.path.join(d, 'long_header.npy'), np.zeros(2, dtype=[('field_%05d' % i, 'f4') for i in range(4000)]))
np.save(os.path.join(d, 'utf8_header.npy'), np.zeros(2, dtype=[('\u03b1\u03b2', 'f4')]))
np.save(os.path.join(d, 'good.npy'), np.arange(1000, dtype=np.float64))
for name, version in (('long_header.npy', (2, 0)), ('utf8_header.npy', (3, 0))):
    with open(os.path.join(d, name), 'rb') as f:
        assert np.lib.format.read_magic(f) == version, name
)PY",
                       {dir.string()});
  INFO(py.out);
  REQUIRE(py.rc == 0);
  auto path_of = [&](const char* name) { return dir / name; };
  // Fortran order and byte strings are read (test_hostile.cpp has the full cases).
  CHECK(read_npy(path_of("fortran.npy")).to_double() == std::vector<double>{0, 1, 2, 3, 4, 5});
  CHECK(read_npy(path_of("bytes.npy")).to_strings() == std::vector<std::string>{"ab"});
  CHECK_THROWS_WITH_AS(read_npy(path_of("complex.npy")), doctest::Contains("unsupported dtype descr '<c8'"),
                       FormatError);
  CHECK_THROWS_WITH_AS(read_npy(path_of("object.npy")), doctest::Contains("'|O'"), FormatError);
  CHECK_THROWS_WITH_AS(read_npy(path_of("long_header.npy")), doctest::Contains("structured dtypes"),
                       FormatError);
  CHECK_THROWS_WITH_AS(read_npy(path_of("utf8_header.npy")), doctest::Contains("structured dtypes"),
                       FormatError);

  std::string good = atlas::read_file(path_of("good.npy"));
  write_bytes(dir / "truncated.npy", good.substr(0, good.size() - 8));
  CHECK_THROWS_WITH_AS(read_npy(dir / "truncated.npy"), doctest::Contains("truncated .npy data"),
                       FormatError);
  write_bytes(dir / "short_header.npy", good.substr(0, 40));
  CHECK_THROWS_WITH_AS(read_npy(dir / "short_header.npy"), doctest::Contains("truncated .npy header"),
                       FormatError);
  write_bytes(dir / "magic.npy", "PK\x03\x04 not an npy");
  CHECK_THROWS_WITH_AS(read_npy(dir / "magic.npy"), doctest::Contains("not a .npy file"), FormatError);
  std::string v9 = good;
  v9[6] = 9;
  write_bytes(dir / "v9.npy", v9);
  CHECK_THROWS_WITH_AS(read_npy(dir / "v9.npy"), doctest::Contains("version 9.0"), FormatError);
  CHECK_THROWS_AS(read_npy(dir / "missing.npy"), IoError);
  CHECK(read_npy(path_of("good.npy")).to_double()[999] == 999.0);
}

TEST_CASE("float16 conversion matches numpy on every half and on float32 rounding cases") {
  auto dir = test::scratch_dir("npy_half");
  auto py = run_python(dir, R"PY(
import numpy as np, sys, os
d = sys.argv[1]
np.save(os.path.join(d, 'all_halves_as_f4.npy'), np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32))
rng = np.random.default_rng(7)
bits = rng.integers(0, 2**32, size=200000, dtype=np.uint64).astype(np.uint32)
f = bits.view(np.float32)
# plus values near half boundaries: ties, subnormals, overflow
near = (np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).view(np.uint32)[:, None]
        + np.array([0, 1, 0x0FFF, 0x1000, 0x1001, 0x1FFF], dtype=np.uint32)[None, :]).ravel().view(np.float32)
f = np.concatenate([f, near])
np.save(os.path.join(d, 'f4.npy'), f)
np.save(os.path.join(d, 'f4_as_f2.npy'), f.astype(np.float16))
)PY",
                       {dir.string()});
  INFO(py.out);
  REQUIRE(py.rc == 0);
  NdArray all = read_npy(dir / "all_halves_as_f4.npy");
  const float* expect = all.as<float>();
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    float got = half_to_float(static_cast<uint16_t>(h));
    uint32_t a, b;
    std::memcpy(&a, &got, 4);
    std::memcpy(&b, &expect[h], 4);
    bad += a != b;
  }
  CHECK(bad == 0);
  NdArray f = read_npy(dir / "f4.npy");
  NdArray f2 = read_npy(dir / "f4_as_f2.npy");
  REQUIRE(f2.dtype() == DType::F16);
  const float* fv = f.as<float>();
  const uint16_t* hv = reinterpret_cast<const uint16_t*>(f2.data());
  bad = 0;
  for (int64_t i = 0; i < f.numel(); ++i) {
    uint16_t got = float_to_half(fv[i]);
    bool both_nan = std::isnan(fv[i]) && (got & 0x7C00) == 0x7C00 && (got & 0x3FF) && (hv[i] & 0x3FF);
    if (got != hv[i] && !both_nan) ++bad;
  }
  CHECK(bad == 0);
}

TEST_CASE("NdArray: accessors, conversions, strings, views") {
  NdArray a = NdArray::from<int16_t>({2, 2}, {1, -2, 3, -4});
  CHECK(a.numel() == 4);
  CHECK(a.nbytes() == 8);
  CHECK(a.to_int64() == std::vector<int64_t>{1, -2, 3, -4});
  CHECK(a.to_float() == std::vector<float>{1, -2, 3, -4});
  CHECK(a.to_double() == std::vector<double>{1, -2, 3, -4});
  CHECK_THROWS_WITH_AS(a.as<float>(), doctest::Contains("dtype int16, expected float32"), FormatError);
  a.as_mutable<int16_t>()[0] = 9;
  CHECK(a.as<int16_t>()[0] == 9);

  NdArray b = NdArray::from<bool>({3}, {true, false, true});
  CHECK(b.to_int64() == std::vector<int64_t>{1, 0, 1});
  NdArray h(DType::F16, {2});
  reinterpret_cast<uint16_t*>(h.mutable_data())[0] = float_to_half(1.5f);
  reinterpret_cast<uint16_t*>(h.mutable_data())[1] = float_to_half(-65504.0f);
  CHECK(h.to_float() == std::vector<float>{1.5f, -65504.0f});
  CHECK_THROWS_AS(NdArray::from<float>({3}, {1.0f}), InputError);
  CHECK_THROWS_AS(NdArray::from<float>({2}, {1.0f, 2.0f}).to_int64(), FormatError);

  NdArray s = NdArray::from_strings({2}, {"ab", "\xc3\xa9t\xc3\xa9"});
  CHECK(s.unicode_chars() == 3);
  CHECK(s.itemsize() == 12);
  CHECK(s.to_strings() == std::vector<std::string>{"ab", "\xc3\xa9t\xc3\xa9"});
  CHECK_THROWS_AS(s.to_string(), FormatError);
  CHECK_THROWS_AS(s.to_float(), FormatError);
  NdArray meta = NdArray::scalar_string("{\"tool\": \"atlas\"}");
  CHECK(meta.ndim() == 0);
  CHECK(meta.numel() == 1);
  CHECK(meta.to_string() == "{\"tool\": \"atlas\"}");

  NdArray none;
  CHECK(none.empty());
  CHECK(none.numel() == 0);
  CHECK_FALSE(meta.empty());

  auto owner = std::make_shared<std::vector<int32_t>>(std::vector<int32_t>{5, 6});
  NdArray v = NdArray::view(DType::I32, {2}, 0, reinterpret_cast<const std::byte*>(owner->data()), owner);
  owner.reset();  // the view keeps its owner alive
  CHECK(v.to_int64() == std::vector<int64_t>{5, 6});
  CHECK_THROWS_AS(v.mutable_data(), Error);

  auto dir = test::scratch_dir("npy_views");
  write_npy(dir / "x.npy", NdArray::from<double>({3}, {1, 2, 3}));
  NdArray mapped = read_npy(dir / "x.npy");
  CHECK(reinterpret_cast<uintptr_t>(mapped.data()) % 64 == 0);  // data of a mapped, aligned file
  CHECK_THROWS_AS(mapped.mutable_data(), Error);
  fs::remove(dir / "x.npy");  // the mapping stays valid after unlink
  CHECK(mapped.to_double() == std::vector<double>{1, 2, 3});
  CHECK_THROWS_AS(write_npy(dir / "nope" / "x.npy", mapped), InputError);
}
