// NPZ archives against the real numpy / Python zipfile, both directions.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/utf8.hpp"
#include "atlas/io/npz.hpp"
#include "numpy_helpers.hpp"

namespace fs = std::filesystem;
using namespace atlas;
using namespace atlas::io;
using atlas::test::run_python;

namespace {

std::vector<std::string> dir_entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  return out;
}

void write_all_samples(NpzWriter& w) {
  for (const auto& [code, dtype] : test::sample_codes())
    for (const auto& [shape_name, shape] : test::sample_shapes())
      w.add(test::code_stem(code) + "_" + shape_name, test::sample_array(dtype, shape));
}

// numpy loads `file` and checks every sample member (and that zipfile sees `method`).
void numpy_checks_samples(const fs::path& dir, const fs::path& file, int method) {
  std::string script = std::string(test::kPySample) + test::kPyZipCheck + R"PY(
import zipfile
f = sys.argv[1]; method = int(sys.argv[2])
check_local_headers(f)
bad = 0
with zipfile.ZipFile(f) as z:
    assert z.testzip() is None, 'CRC error'
    for info in z.infolist():
        if info.compress_type != method:
            print('method', info.filename, info.compress_type); bad += 1
d = np.load(f)
names = set(d.files)
for code in CODES:
    for sname, shape in SHAPES.items():
        key = code.replace('?', 'b1') + '_' + sname
        names.discard(key)
        bad += not check(d[key], sample(code, shape), key)
if names:
    print('unexpected members', names); bad += 1
print('checked', len(d.files))
sys.exit(1 if bad else 0)
)PY";
  auto r = run_python(dir, script, {file.string(), std::to_string(method)});
  INFO(r.out);
  CHECK(r.rc == 0);
  CHECK(r.out.find("checked 52") != std::string::npos);
}

}  // namespace

TEST_CASE("reads the GPT-2 reference npz written by np.savez") {
  auto file = test::shared_dir() / "reference/attention/gpt2/b_len7.npz";
  NpzReader r(file);
  auto names = r.names();
  CHECK(names == std::vector<std::string>{"input_ids", "logits", "attn_L0", "attn_L1", "hidden_L0",
                                          "hidden_L1", "hidden_L2", "meta"});
  NdArray ids = r.get("input_ids");
  CHECK(ids.dtype() == DType::I64);
  CHECK(ids.shape() == std::vector<int64_t>{7});
  NdArray attn = r.get("attn_L0");
  CHECK(attn.dtype() == DType::F32);
  CHECK(attn.shape() == std::vector<int64_t>{4, 7, 7});
  CHECK(r.header("logits").shape == std::vector<int64_t>{7, 1000});
  NdArray meta = r.get("meta");
  CHECK(meta.dtype() == DType::Unicode);
  CHECK(meta.ndim() == 0);
  std::string meta_json = meta.to_string();
  CHECK(meta_json.front() == '{');

  // The same numbers as numpy sees them.
  auto dir = test::scratch_dir("npz_reference");
  auto py = run_python(dir, R"PY(
import numpy as np, sys
d = np.load(sys.argv[1])
print(' '.join(str(int(v)) for v in d['input_ids']))
print(repr(float(d['attn_L0'].astype(np.float64).sum())), repr(float(d['logits'].astype(np.float64)[6, 999])))
print(len(d['meta'][()]))
)PY",
                       {file.string()});
  REQUIRE(py.rc == 0);
  std::string expect_ids;
  for (int64_t v : ids.to_int64()) expect_ids += (expect_ids.empty() ? "" : " ") + std::to_string(v);
  CHECK(py.out.substr(0, py.out.find('\n')) == expect_ids);
  double sum = 0;
  for (float v : attn.to_float()) sum += v;
  auto line2 = py.out.substr(py.out.find('\n') + 1);
  double py_sum = std::stod(line2.substr(0, line2.find(' ')));
  double py_last = std::stod(line2.substr(line2.find(' ') + 1));
  CHECK(sum == doctest::Approx(py_sum).epsilon(1e-12));
  CHECK(r.get("logits").to_float().back() == static_cast<float>(py_last));
  auto line3 = line2.substr(line2.find('\n') + 1);
  CHECK(std::stoul(line3) == atlas::utf8::decode(meta_json).size());
}

TEST_CASE("numpy reads our npz: every dtype, STORED and DEFLATE") {
  auto dir = test::scratch_dir("npz_write_samples");
  for (Compression c : {Compression::Stored, Compression::Deflate}) {
    auto file = dir / (c == Compression::Stored ? "stored.npz" : "deflate.npz");
    {
      NpzWriter w(file, c);
      write_all_samples(w);
      CHECK_FALSE(fs::exists(file));  // only the temp file exists before close()
      w.close();
    }
    REQUIRE(fs::exists(file));
    for (const auto& name : dir_entries(dir)) CHECK(name[0] != '.');  // no temp file left
    numpy_checks_samples(dir, file, c == Compression::Stored ? 0 : 8);

    // And we read back what we wrote, bit for bit; STORED members are 64-byte aligned mmap views.
    NpzReader r(file);
    CHECK(r.names().size() == 52);
    for (const auto& [code, dtype] : test::sample_codes())
      for (const auto& [shape_name, shape] : test::sample_shapes()) {
        std::string key = test::code_stem(code) + "_" + shape_name;
        NdArray a = r.get(key);
        CAPTURE(key);
        CHECK(test::same_array(a, test::sample_array(dtype, shape)));
        if (c == Compression::Stored && a.nbytes() > 0) {
          CHECK(reinterpret_cast<uintptr_t>(a.data()) % 64 == 0);
          CHECK_THROWS_AS(a.mutable_data(), Error);  // a view of the mapping, not a copy
        }
      }
  }
}

TEST_CASE("we read np.savez and np.savez_compressed files of every dtype, incl. big-endian") {
  auto dir = test::scratch_dir("npz_read_numpy");
  std::string script = std::string(test::kPySample) + R"PY(
out = sys.argv[1]
arrays = {}
for code in CODES:
    for sname, shape in SHAPES.items():
        arrays[code.replace('?', 'b1') + '_' + sname] = sample(code, shape)
        a = sample(code, shape)
        if a.dtype.itemsize > 1 and a.dtype.kind != 'b':
            arrays['be_' + code.replace('?', 'b1') + '_' + sname] = a.astype(a.dtype.newbyteorder('>'))
np.savez(out + '/plain.npz', **arrays)
np.savez_compressed(out + '/compressed.npz', **arrays)
)PY";
  auto py = run_python(dir, script, {dir.string()});
  INFO(py.out);
  REQUIRE(py.rc == 0);
  for (const char* stem : {"plain.npz", "compressed.npz"}) {
    NpzReader r(dir / stem);
    CAPTURE(stem);
    size_t checked = 0;
    for (const auto& [code, dtype] : test::sample_codes())
      for (const auto& [shape_name, shape] : test::sample_shapes()) {
        NdArray expect = test::sample_array(dtype, shape);
        for (std::string prefix : {"", "be_"}) {
          std::string key = prefix + test::code_stem(code) + "_" + shape_name;
          if (!r.contains(key)) continue;
          CAPTURE(key);
          NpyHeader h = r.header(key);
          CHECK(h.dtype == dtype);
          CHECK(h.shape == shape);
          CHECK(h.big_endian == (prefix == "be_"));
          CHECK(test::same_array(r.get(key), expect));
          ++checked;
        }
      }
    CHECK(checked == r.names().size());
    CHECK(checked == 52 + 40);  // 10 multi-byte dtypes x 4 shapes have a big-endian twin
  }
}

TEST_CASE("streamed members: chunk by chunk, numpy reads them") {
  auto dir = test::scratch_dir("npz_stream");
  for (Compression c : {Compression::Stored, Compression::Deflate}) {
    auto file = dir / (c == Compression::Stored ? "s.npz" : "d.npz");
    NpzWriter w(file, c, 1);
    w.add("before", NdArray::scalar_string("{\"k\": \"v\"}"));
    auto s = w.begin("big", DType::F32, {1000, 257});
    for (int row = 0; row < 1000; ++row) {
      std::vector<float> v(257);
      for (int k = 0; k < 257; ++k) v[static_cast<size_t>(k)] = static_cast<float>(row * 257 + k);
      s.write(v);
    }
    s.finish();
    auto t = w.begin("unfinished_by_caller", DType::I64, {3});
    t.write(std::vector<int64_t>{1, 2, 3});
    w.add("after", NdArray::from<int32_t>({2}, {7, 8}));  // finishes `t` itself
    w.close();
    auto py = run_python(dir, std::string(test::kPyZipCheck) + R"PY(
import numpy as np, sys
check_local_headers(sys.argv[1])
d = np.load(sys.argv[1])
assert d.files == ['before', 'big', 'unfinished_by_caller', 'after'], d.files
assert d['before'][()] == '{"k": "v"}'
b = d['big']; assert b.dtype == np.float32 and b.shape == (1000, 257)
assert (b.ravel() == np.arange(257000, dtype=np.float32)).all()
assert d['unfinished_by_caller'].tolist() == [1, 2, 3] and d['after'].tolist() == [7, 8]
print('ok')
)PY",
                         {file.string()});
    INFO(py.out);
    CHECK(py.rc == 0);
    NpzReader r(file);
    CHECK(r.get("big").to_float()[256999] == 256999.0f);
    CHECK(r.get("before").to_string() == "{\"k\": \"v\"}");
  }
}

TEST_CASE("a stream with the wrong byte count fails and leaves no file") {
  auto dir = test::scratch_dir("npz_stream_wrong");
  auto file = dir / "out.npz";
  SUBCASE("too few bytes") {
    {
      NpzWriter w(file);
      auto s = w.begin("x", DType::F32, {4});
      s.write(std::vector<float>{1, 2, 3});
      CHECK_THROWS_WITH_AS(s.finish(), doctest::Contains("expects 16 bytes, got 12"), FormatError);
      CHECK_THROWS_AS(w.close(), FormatError);  // the archive is incomplete: refuse to publish it
    }
  }
  SUBCASE("too many bytes") {
    {
      NpzWriter w(file, Compression::Deflate);
      auto s = w.begin("x", DType::F32, {2});
      CHECK_THROWS_AS(s.write(std::vector<float>{1, 2, 3}), FormatError);
    }
  }
  SUBCASE("too few bytes, finished by close()") {
    {
      NpzWriter w(file);
      auto s = w.begin("x", DType::U8, {10});
      s.write(std::vector<uint8_t>{1, 2});
      CHECK_THROWS_WITH_AS(w.close(), doctest::Contains("'x'"), FormatError);
    }
  }
  CHECK_FALSE(fs::exists(file));
  CHECK(dir_entries(dir).empty());  // temp file removed too
}

TEST_CASE("writer: un-closed writer leaves nothing; duplicate names; missing directory") {
  auto dir = test::scratch_dir("npz_writer_misc");
  {
    NpzWriter w(dir / "never.npz");
    w.add("a", NdArray::from<float>({1}, {1.0f}));
    CHECK_THROWS_WITH_AS(w.add("a", NdArray::from<float>({1}, {2.0f})),
                         doctest::Contains("duplicate array name 'a'"), FormatError);
  }
  CHECK(dir_entries(dir).empty());
  CHECK_THROWS_AS(NpzWriter(dir / "no_such_dir" / "x.npz"), InputError);
  // Overwrites an existing file atomically.
  {
    NpzWriter w(dir / "x.npz");
    w.add("v", NdArray::from<int64_t>({1}, {1}));
    w.close();
  }
  {
    NpzWriter w(dir / "x.npz", Compression::Deflate);
    w.add("v", NdArray::from<int64_t>({1}, {2}));
    w.close();
  }
  CHECK(NpzReader(dir / "x.npz").get("v").to_int64() == std::vector<int64_t>{2});
  CHECK(dir_entries(dir).size() == 1);
}

TEST_CASE("reader errors name the file: missing member, not a zip, truncated, corrupt; fortran order reads") {
  auto dir = test::scratch_dir("npz_errors");
  auto good = dir / "good.npz";
  {
    NpzWriter w(good, Compression::Deflate);
    w.add("alpha", NdArray::from<float>({300}, std::vector<float>(300, 0.5f)));
    w.add("beta", NdArray::from<int32_t>({2}, {1, 2}));
    w.add("gamma", NdArray::scalar_string("x"));
    w.close();
  }
  NpzReader r(good);
  CHECK_THROWS_WITH_AS(r.get("delta"),
                       ("'" + good.string() + "' has no array 'delta' (has: alpha, beta, gamma)").c_str(),
                       FormatError);
  CHECK_THROWS_AS(r.header("delta"), FormatError);
  CHECK_FALSE(r.contains("delta"));
  CHECK(r.contains("beta"));

  std::string bytes = atlas::read_file(good);
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir / name, std::ios::binary) << content;
    return dir / name;
  };
  auto not_zip = write("text.npz", "this is not a zip archive at all, just some text\n");
  CHECK_THROWS_WITH_AS(NpzReader{not_zip}, doctest::Contains(not_zip.string().c_str()), FormatError);
  auto empty = write("empty.npz", "");
  CHECK_THROWS_WITH_AS(NpzReader{empty}, doctest::Contains(empty.string().c_str()), FormatError);
  auto truncated = write("truncated.npz", bytes.substr(0, bytes.size() / 2));
  CHECK_THROWS_WITH_AS(NpzReader{truncated}, doctest::Contains("truncated"), FormatError);
  auto npy = write("single.npy", "\x93NUMPY");
  CHECK_THROWS_WITH_AS(NpzReader{npy}, doctest::Contains("single .npy"), FormatError);
  CHECK_THROWS_AS(NpzReader{dir / "missing.npz"}, IoError);

  // Flip a byte inside alpha's compressed data: inflate or the CRC check must catch it.
  std::string corrupt = bytes;
  corrupt[30 + 9 + 20] = static_cast<char>(corrupt[30 + 9 + 20] ^ 0x55);
  NpzReader rc(write("corrupt.npz", corrupt));
  CHECK_THROWS_WITH_AS(rc.get("alpha"), doctest::Contains(dir.string().c_str()), FormatError);

  // A member in Fortran order (numpy writes fortran_order: True for F-contiguous 2-D arrays).
  auto py = run_python(dir, R"PY(
import numpy as np, sys
np.savez(sys.argv[1], f=np.asfortranarray(np.arange(6.0).reshape(2, 3)), c=np.arange(3))
)PY",
                       {(dir / "fortran.npz").string()});
  REQUIRE(py.rc == 0);
  NpzReader rf(dir / "fortran.npz");
  CHECK(rf.get("c").to_int64() == std::vector<int64_t>{0, 1, 2});
  CHECK(rf.get("f").shape() == std::vector<int64_t>{2, 3});  // read in C order (test_hostile.cpp)
  CHECK(rf.get("f").to_double() == std::vector<double>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("ZIP64: more than 65535 members") {
  auto dir = test::scratch_dir("npz_zip64_count");
  auto file = dir / "many.npz";
  constexpr int kCount = 70000;
  {
    NpzWriter w(file);
    for (int i = 0; i < kCount; ++i) w.add("m" + std::to_string(i), NdArray::from<int32_t>({1}, {i}));
    w.close();
  }
  auto py = run_python(dir, std::string(test::kPyZipCheck) + R"PY(
import numpy as np, sys, zipfile
check_local_headers(sys.argv[1])
with zipfile.ZipFile(sys.argv[1]) as z:
    infos = z.infolist()
    assert len(infos) == 70000, len(infos)
d = np.load(sys.argv[1])
assert len(d.files) == 70000
for i in (0, 1, 65535, 65536, 69999):
    assert d['m%d' % i].tolist() == [i], i
print('ok')
)PY",
                       {file.string()});
  INFO(py.out);
  CHECK(py.rc == 0);
  NpzReader r(file);
  auto names = r.names();
  REQUIRE(names.size() == kCount);
  CHECK(names[69999] == "m69999");
  CHECK(r.get("m65536").to_int64() == std::vector<int64_t>{65536});
  CHECK(r.get("m69999").to_int64() == std::vector<int64_t>{69999});
  fs::remove(file);
}

TEST_CASE("ZIP64: a streamed STORED member over 4 GiB, then a member past the 4 GiB offset [slow]") {
  auto dir = test::scratch_dir("npz_zip64_big");
  auto file = dir / "big.npz";
  // The case needs ~4.1 GiB of scratch disk; on a nearly full disk it reports itself skipped to CTest
  // (its own test, unit_io_test_npz_slow) instead of failing for a reason unrelated to the code.
  const auto free_bytes = fs::space(dir).available;
  if (free_bytes < (10ull << 30))
    test::skip("ZIP64 >4 GiB case needs 10 GiB free, only " + std::to_string(free_bytes >> 20) + " MiB in " +
               dir.string());
  struct RemoveOnExit {  // 4 GiB must not stay behind in the build tree, even when a check fails
    fs::path path;
    ~RemoveOnExit() {
      std::error_code ec;
      fs::remove(path, ec);
    }
  } cleanup{file};
  constexpr uint64_t kChunk = 64ull << 20;
  constexpr uint64_t kBytes = (4ull << 30) + kChunk;  // 4.0625 GiB
  auto t0 = std::chrono::steady_clock::now();
  {
    NpzWriter w(file);
    w.add("first", NdArray::from<int64_t>({2}, {11, 12}));
    auto s = w.begin("zeros", DType::U8, {static_cast<int64_t>(kBytes)});
    std::vector<uint8_t> chunk(kChunk, 0);
    for (uint64_t done = 0; done < kBytes; done += kChunk) {
      if (done + kChunk == kBytes)  // mark the tail so the reader's slice is checked, not just zeros
        for (size_t k = 0; k < 4096; ++k) chunk[kChunk - 4096 + k] = static_cast<uint8_t>(k % 251 + 1);
      s.write(chunk.data(), chunk.size());
    }
    s.finish();
    w.add("last", NdArray::from<double>({3}, {1.5, 2.5, 3.5}));
    w.close();
  }
  auto py = run_python(dir, std::string(test::kPyZipCheck) + R"PY(
import numpy as np, sys, zipfile
check_local_headers(sys.argv[1])
with zipfile.ZipFile(sys.argv[1]) as z:
    infos = {i.filename: i for i in z.infolist()}
    assert list(infos) == ['first.npy', 'zeros.npy', 'last.npy'], list(infos)
    big = infos['zeros.npy']
    assert big.compress_type == 0 and big.file_size == big.compress_size, big
    assert big.file_size == int(sys.argv[2]) + 128, big.file_size
    assert infos['last.npy'].header_offset > 2**32
d = np.load(sys.argv[1])
assert d['last'].tolist() == [1.5, 2.5, 3.5] and d['first'].tolist() == [11, 12]
print('ok')
)PY",
                       {file.string(), std::to_string(kBytes)});
  INFO(py.out);
  CHECK(py.rc == 0);
  {
    NpzReader r(file);
    NpyHeader h = r.header("zeros");
    CHECK(h.shape == std::vector<int64_t>{static_cast<int64_t>(kBytes)});
    NdArray a = r.get("zeros");  // a view of the mapping: only the touched pages are read
    REQUIRE(a.nbytes() == kBytes);
    const uint8_t* p = reinterpret_cast<const uint8_t*>(a.data());
    CHECK(p[0] == 0);
    CHECK(p[kBytes - 4097] == 0);
    bool tail_ok = true;
    for (size_t k = 0; k < 4096; ++k) tail_ok &= p[kBytes - 4096 + k] == k % 251 + 1;
    CHECK(tail_ok);
    CHECK(r.get("last").to_double() == std::vector<double>{1.5, 2.5, 3.5});
    CHECK(r.get("first").to_int64() == std::vector<int64_t>{11, 12});
  }
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("4 GiB ZIP64 round trip took " << secs << " s");
}
