// Files from other tools and from the internet: what numpy users write must read as they expect
// (Fortran order, byte strings), and hostile files (lying headers, zip bombs, path traversal, deep
// JSON) must be clear FormatErrors in bounded memory and time. Limits: docs/limits.md.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/json.hpp"
#include "atlas/io/checkpoint.hpp"
#include "atlas/io/npz.hpp"
#include "numpy_helpers.hpp"

namespace fs = std::filesystem;
using namespace atlas;
using namespace atlas::io;
using atlas::test::run_python;

namespace {

// Python: make_zip(path, [(name, method, payload, declared_size)]) writes a ZIP by hand, so the
// sizes it declares can lie (zipfile always writes the true ones). payload is the raw member bytes;
// method 8 compresses them. ZIP64 extra fields are written when a declared size needs them.
const char* kPyMakeZip = R"PY(
import struct, zlib
def make_zip(path, members):
    out = b''; central = b''
    for name, method, payload, declared in members:
        data = payload
        if method == 8:
            c = zlib.compressobj(9, zlib.DEFLATED, -15); data = c.compress(payload) + c.flush()
        crc = zlib.crc32(payload)
        usize = len(payload) if declared is None else declared
        z64 = usize >= 0xFFFFFFFF
        n = name.encode('utf-8')
        extra = struct.pack('<HHQQ', 1, 16, usize, len(data)) if z64 else b''
        u32 = 0xFFFFFFFF if z64 else usize; c32 = 0xFFFFFFFF if z64 else len(data)
        local = struct.pack('<IHHHHHIIIHH', 0x04034b50, 45 if z64 else 20, 0x800, method, 0, 33, crc,
                            c32, u32, len(n), len(extra))
        cent = struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 45, 45 if z64 else 20, 0x800, method, 0, 33,
                           crc, c32, u32, len(n), len(extra), 0, 0, 0, 0, len(out))
        central += cent + n + extra
        out += local + n + extra + data
    end = struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, len(members), len(members), len(central), len(out), 0)
    open(path, 'wb').write(out + central + end)
)PY";

std::string npy_header(const std::string& dict_body, int version = 1) {
  std::string dict = "{" + dict_body + "}";
  size_t prefix = version == 1 ? 10 : 12;
  dict += std::string((64 - (prefix + dict.size() + 1) % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += static_cast<char>(version);
  out += '\0';
  uint32_t n = static_cast<uint32_t>(dict.size());
  out.append(reinterpret_cast<const char*>(&n), version == 1 ? 2 : 4);
  return out + dict;
}

void write_bytes(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// Runs `f`, which must throw FormatError containing every needle, within `seconds`.
template <class F>
void expect_format_error(F f, const std::vector<std::string>& needles, double seconds = 5.0) {
  auto t0 = std::chrono::steady_clock::now();
  std::string msg;
  try {
    f();
    FAIL("no error; expected one containing '" << needles.front() << "'");
  } catch (const FormatError& e) {
    msg = e.what();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(msg);
  for (const auto& n : needles) CHECK_MESSAGE(msg.find(n) != std::string::npos, "missing '" << n << "'");
  CHECK(secs < seconds);
}

}  // namespace

TEST_CASE("numpy's Fortran-order arrays and byte strings read as numpy sees them") {
  auto dir = test::scratch_dir("hostile_numpy");
  // f.npz / f_z.npz: what a numpy user saves (Fortran order, |S tokens, big-endian Fortran);
  // c.npz: the same arrays as numpy itself reads them, in C order and decoded to str.
  auto py = run_python(dir, R"PY(
import numpy as np, sys, os
d = sys.argv[1]
f = {
  'att_f8': np.asfortranarray(np.arange(2*3*4*5, dtype='<f8').reshape(2, 3, 4, 5) / 7),
  'm_f4': np.asfortranarray(np.arange(12, dtype='<f4').reshape(3, 4)),
  'be_f8': np.asfortranarray(np.arange(6, dtype='>f8').reshape(2, 3) - 2.5),
  'ids_i8': np.asfortranarray(np.arange(10, dtype='<i8').reshape(5, 2)),
  'u_fortran': np.asfortranarray(np.array([['a', 'bb'], ['ccc', '\u00e9']])),
  'tok_s': np.array(['<s>'.encode(), b'The', '\u0120cat'.encode('utf-8'), '\u65e5\u672c'.encode('utf-8'), b'']),
  'tok_s_f': np.asfortranarray(np.array([[b'ab', b'c'], [b'de', b'f\x00g']])),
  'empty_f': np.asfortranarray(np.zeros((0, 3), '<f4')),
}
for k, v in f.items():
    if k not in ('tok_s', 'empty_f') and v.ndim > 1:
        assert v.flags.f_contiguous and not v.flags.c_contiguous, k
np.savez(os.path.join(d, 'f.npz'), **f)
np.savez_compressed(os.path.join(d, 'f_z.npz'), **f)
np.save(os.path.join(d, 'att_f8.npy'), f['att_f8'])
np.save(os.path.join(d, 'tok_s.npy'), f['tok_s'])
c = {k: np.ascontiguousarray(v) for k, v in f.items()}
c['be_f8'] = c['be_f8'].astype('<f8')
c['tok_s'] = np.char.decode(c['tok_s'], 'utf-8')
c['tok_s_f'] = np.char.decode(c['tok_s_f'], 'utf-8')
np.savez(os.path.join(d, 'c.npz'), **c)
np.savez(os.path.join(d, 'bad_utf8.npz'), tokens=np.array([b'ok', b'\xff\xfe']))
np.savez(os.path.join(d, 'object.npz'), o=np.array([1, 'a'], dtype=object))
print(np.load(os.path.join(d, 'f.npz'))['tok_s'].dtype)
)PY",
                       {dir.string()});
  INFO(py.out);
  REQUIRE(py.rc == 0);
  NpzReader c(dir / "c.npz");
  for (const char* file : {"f.npz", "f_z.npz"}) {
    NpzReader f(dir / file);
    for (const auto& name : c.names()) {
      CAPTURE(file);
      CAPTURE(name);
      NdArray want = c.get(name), got = f.get(name);
      CHECK(test::same_array(got, want));
      NpyHeader h = f.header(name);
      CHECK(h.shape == want.shape());
    }
    CHECK(f.header("tok_s").byte_string);
    CHECK(f.header("att_f8").fortran_order);
    CHECK(f.get("tok_s").to_strings() ==
          std::vector<std::string>{"<s>", "The", "\xc4\xa0" "cat", "\xe6\x97\xa5\xe6\x9c\xac", ""});
    CHECK(f.get("tok_s_f").to_strings() == std::vector<std::string>{"ab", "c", "de", std::string("f\0g", 3)});
  }
  CHECK(test::same_array(read_npy(dir / "att_f8.npy"), c.get("att_f8")));
  CHECK(test::same_array(read_npy(dir / "tok_s.npy"), c.get("tok_s")));

  NpzReader bad(dir / "bad_utf8.npz");
  expect_format_error([&] { bad.get("tokens"); },
                      {(dir / "bad_utf8.npz").string(), "member 'tokens.npy'", "element 1", "not valid UTF-8"});
  NpzReader obj(dir / "object.npz");
  expect_format_error([&] { obj.get("o"); }, {"member 'o.npy'", "'|O'", "object arrays"});
}

TEST_CASE("hostile .npy headers fail before anything is sized by them") {
  auto dir = test::scratch_dir("hostile_npy");
  struct Case {
    const char* name;
    std::string bytes;
    std::vector<std::string> needles;
  };
  const std::string data(64, '\0');
  std::vector<Case> cases = {
      {"overflow.npy", npy_header("'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), ") + data,
       {"overflow"}},
      {"bytes_overflow.npy", npy_header("'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), ") + data,
       {"overflows the byte count"}},
      {"past_eof.npy", npy_header("'descr': '<f4', 'fortran_order': True, 'shape': (100000, 100000), ") + data,
       {"truncated .npy data", "expected 40000000000 bytes"}},
      {"negative.npy", npy_header("'descr': '<f4', 'fortran_order': False, 'shape': (-1,), ") + data,
       {"expected an integer"}},
      {"huge_string.npy", npy_header("'descr': '<U99999999999999999999', 'fortran_order': False, 'shape': (2,), ") + data,
       {"too large"}},
      {"huge_header.npy", std::string("\x93NUMPY\x02\x00\xf0\xff\xff\x7f", 12) + data,
       {"header of 2147483632 bytes", "limit"}},
      {"object.npy", npy_header("'descr': '|O', 'fortran_order': False, 'shape': (2,), ") + data, {"'|O'"}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    write_bytes(dir / c.name, c.bytes);
    auto needles = c.needles;
    needles.push_back((dir / c.name).string());
    expect_format_error([&] { read_npy(dir / c.name); }, needles);
    // The same bytes as a STORED and a DEFLATE npz member.
    std::string stem = std::string(c.name).substr(0, std::string(c.name).size() - 4);
    auto py = run_python(dir, std::string(kPyMakeZip) + R"PY(
import sys
b = open(sys.argv[1], 'rb').read()
make_zip(sys.argv[2], [('x.npy', 0, b, None)])
make_zip(sys.argv[3], [('x.npy', 8, b, None)])
)PY",
                         {(dir / c.name).string(), (dir / (stem + "_s.npz")).string(),
                          (dir / (stem + "_z.npz")).string()});
    REQUIRE(py.rc == 0);
    for (const char* suffix : {"_s.npz", "_z.npz"}) {
      NpzReader r(dir / (stem + suffix));
      auto member_needles = c.needles;
      member_needles.push_back("member 'x.npy'");
      if (std::string(c.name) == "past_eof.npy") member_needles = {"member 'x.npy'", "data bytes", "needs 40000000000"};
      expect_format_error([&] { r.get("x"); }, member_needles);
    }
  }
}

TEST_CASE("zip bombs: a member inflating past its declared size, or declaring an impossible size") {
  auto dir = test::scratch_dir("hostile_zip");
  // 256 MiB of zeros after a header for 16 float32s: 256 KiB compressed, declared as 192 bytes.
  auto py = run_python(dir, std::string(kPyMakeZip) + R"PY(
import sys, numpy as np, io
d = sys.argv[1]
buf = io.BytesIO(); np.save(buf, np.zeros(16, '<f4')); small = buf.getvalue()
bomb = small + b'\0' * (256 << 20)
make_zip(d + '/bomb.npz', [('x.npy', 8, bomb, len(small))])
# Declares 1 TB (ZIP64) and 3.9 GB (32-bit) for a few KiB of DEFLATE data.
make_zip(d + '/tera.npz', [('x.npy', 8, bomb[:1 << 20], 1 << 40)])
make_zip(d + '/giga.npz', [('x.npy', 8, bomb[:1 << 20], 3900000000)])
)PY",
                       {dir.string()});
  INFO(py.out);
  REQUIRE(py.rc == 0);
  NpzReader bomb(dir / "bomb.npz");
  expect_format_error([&] { bomb.get("x"); }, {"member 'x.npy'", "more than the declared 192 bytes", "zip bomb"});
  expect_format_error([&] { NpzReader{dir / "tera.npz"}; },
                      {(dir / "tera.npz").string(), "declares 1099511627776 bytes", "zip bomb"});
  expect_format_error([&] { NpzReader{dir / "giga.npz"}; }, {"declares 3900000000 bytes", "1032:1"});
}

TEST_CASE("npz member names: path traversal, absolute, duplicate, invalid UTF-8") {
  auto dir = test::scratch_dir("hostile_names");
  auto py = run_python(dir, std::string(kPyMakeZip) + R"PY(
import sys, numpy as np, io
d = sys.argv[1]
buf = io.BytesIO(); np.save(buf, np.arange(3)); a = buf.getvalue()
make_zip(d + '/dotdot.npz', [('ok.npy', 0, a, None), ('../x.npy', 0, a, None)])
make_zip(d + '/deep.npz', [('a/../../x.npy', 0, a, None)])
make_zip(d + '/abs.npz', [('/etc/x.npy', 0, a, None)])
make_zip(d + '/backslash.npz', [('..\\x.npy', 0, a, None)])
make_zip(d + '/dup.npz', [('x.npy', 0, a, None), ('x.npy', 8, a, None)])
make_zip(d + '/nested_ok.npz', [('a/b.npy', 0, a, None), ('c..d.npy', 0, a, None)])
)PY",
                       {dir.string()});
  INFO(py.out);
  REQUIRE(py.rc == 0);
  expect_format_error([&] { NpzReader{dir / "dotdot.npz"}; },
                      {(dir / "dotdot.npz").string(), "'../x.npy'", "climbs out"});
  expect_format_error([&] { NpzReader{dir / "deep.npz"}; }, {"'a/../../x.npy'"});
  expect_format_error([&] { NpzReader{dir / "abs.npz"}; }, {"'/etc/x.npy'", "absolute"});
  expect_format_error([&] { NpzReader{dir / "backslash.npz"}; }, {"climbs out"});
  expect_format_error([&] { NpzReader{dir / "dup.npz"}; }, {"'x.npy' occurs twice"});
  NpzReader ok(dir / "nested_ok.npz");  // what np.savez(f, **{'a/b': x}) writes stays readable
  CHECK(ok.get("a/b").to_int64() == std::vector<int64_t>{0, 1, 2});
  CHECK(ok.get("c..d").to_int64() == std::vector<int64_t>{0, 1, 2});
}

TEST_CASE("JSON nested 100,000 deep is a FormatError, not a stack overflow") {
  std::string deep(100000, '[');
  expect_format_error([&] { parse_json(deep, "'config.json'"); },
                      {"'config.json'", "nests deeper than 256 levels"});
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  expect_format_error([&] { parse_json<nlohmann::ordered_json>(objects, "manifest line 3"); },
                      {"manifest line 3", "256"});
  // 255 levels (deeper than any real file) still parse; ordinary syntax errors stay parse_errors.
  std::string ok = std::string(255, '[') + std::string(255, ']');
  CHECK(parse_json(ok, "x").is_array());
  CHECK_THROWS_AS(parse_json(std::string("[1,"), "x"), nlohmann::json::parse_error);
  CHECK(parse_json(std::string("[1,"), "x", false).is_discarded());
}

TEST_CASE("JSON number outside double's range is a FormatError (found by fuzz_config)") {
  // nlohmann reports it as out_of_range, which the parse_error handlers of config.json & co. missed.
  expect_format_error([&] { parse_json(std::string("{\"layer_norm_eps\": 1e412}"), "'config.json'"); },
                      {"'config.json'", "invalid JSON", "1e412"});
  CHECK(parse_json(std::string("[1e412]"), "x", false).is_discarded());
}

TEST_CASE("safetensors: a deeply nested or oversized header") {
  auto dir = test::scratch_dir("hostile_safetensors");
  // 100 MB + 1 of header in a sparse file: refused by size before any of it is parsed.
  auto huge = dir / "huge_header.safetensors";
  {
    uint64_t n = 100'000'001;
    std::string head(reinterpret_cast<const char*>(&n), 8);
    head += "{";
    write_bytes(huge, head);
    fs::resize_file(huge, 8 + n + 16);
  }
  try {
    read_safetensors(huge);
    FAIL("no error");
  } catch (const CheckpointError& e) {
    CHECK(std::string(e.what()).find("larger than the limit of 100000000 bytes") != std::string::npos);
  }
  fs::remove(huge);
  auto deep = dir / "deep.safetensors";
  std::string json = "{\"w\":" + std::string(100000, '[');
  uint64_t n = json.size();
  write_bytes(deep, std::string(reinterpret_cast<const char*>(&n), 8) + json);
  expect_format_error([&] { read_safetensors(deep); }, {deep.string(), "safetensors header", "nests deeper"});
}
