// Checkpoints: every reference model folder against an independent numpy description of its
// safetensors files, .bin == safetensors bit for bit, sharded == single, and the error fixtures.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/io/checkpoint.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace atlas;
using namespace atlas::io;

namespace {

fs::path models_dir() { return test::shared_dir() / "reference" / "models"; }
fs::path script(const char* name) { return test::fixtures_dir() / "checkpoints" / name; }

std::string run_capture(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE_MESSAGE(p != nullptr, cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  REQUIRE_MESSAGE(rc == 0, "command failed: " << cmd);
  return out;
}

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

uint64_t checksum(const RawTensor& t) {
  const auto* b = reinterpret_cast<const unsigned char*>(t.data);
  uint64_t sum = 0;
  for (size_t i = 0; i < t.nbytes; ++i) sum += static_cast<uint64_t>(b[i]) * (i % 65521 + 1);
  return sum;
}

double element(const RawTensor& t, int64_t i) {
  float f;
  std::memcpy(&f, t.data + i * 4, 4);
  return f;
}

std::string shape_text(const RawTensor& t) {
  if (t.shape.empty()) return "-";
  std::string s;
  for (size_t i = 0; i < t.shape.size(); ++i) s += (i ? "," : "") + std::to_string(t.shape[i]);
  return s;
}

// Compares a loaded checkpoint with describe_safetensors.py's view of `files`.
void check_against_python(const Checkpoint& ck, const std::vector<fs::path>& files) {
  std::string cmd = test::python() + " " + quote(script("describe_safetensors.py"));
  for (const auto& f : files) cmd += " " + quote(f);
  std::istringstream lines(run_capture(cmd));
  std::string line;
  size_t count = 0;
  while (std::getline(lines, line)) {
    std::istringstream in(line);
    std::string name, dtype, shape, v0, v1, vlast;
    size_t nbytes = 0;
    uint64_t sum = 0;
    in >> name >> dtype >> shape >> nbytes >> sum >> v0 >> v1 >> vlast;
    ++count;
    INFO("tensor " << name);
    REQUIRE(ck.contains(name));
    const RawTensor& t = ck.at(name);
    CHECK(tensor_dtype_name(t.dtype) == dtype);
    CHECK(shape_text(t) == shape);
    CHECK(t.nbytes == nbytes);
    CHECK(static_cast<size_t>(t.numel()) * tensor_dtype_size(t.dtype) == t.nbytes);
    CHECK(checksum(t) == sum);
    if (dtype == "F32" && t.numel() > 0) {
      CHECK(element(t, 0) == std::stod(v0));
      CHECK(element(t, std::min<int64_t>(1, t.numel() - 1)) == std::stod(v1));
      CHECK(element(t, t.numel() - 1) == std::stod(vlast));
    }
  }
  CHECK(count > 0);
  CHECK(ck.tensors().size() == count);
}

void check_same_bits(const Checkpoint& a, const Checkpoint& b) {
  REQUIRE(a.tensors().size() == b.tensors().size());
  for (const auto& [name, ta] : a.tensors()) {
    INFO("tensor " << name);
    REQUIRE(b.contains(name));
    const RawTensor& tb = b.at(name);
    CHECK(ta.dtype == tb.dtype);
    CHECK(ta.shape == tb.shape);
    REQUIRE(ta.nbytes == tb.nbytes);
    CHECK(std::memcmp(ta.data, tb.data, ta.nbytes) == 0);
  }
}

}  // namespace

TEST_CASE("safetensors model folders match an independent numpy reader") {
  const std::vector<std::pair<fs::path, size_t>> cases = {
      {models_dir() / "gpt2", 28},
      {models_dir() / "bert", 42},
      {models_dir() / "distilbert", 41},
      {models_dir() / "roberta", 42},
      {models_dir() / "t5", 47},
      {models_dir() / "llama", 21},
      {models_dir() / "qwen2", 27},
      {models_dir() / "gpt_neox", 28},
      {test::shared_dir() / "models" / "stories260K", 47},
  };
  for (const auto& [dir, expected_count] : cases) {
    SUBCASE(dir.filename().string().c_str()) {
      Checkpoint ck = Checkpoint::open(dir);
      CHECK(ck.format() == "safetensors");
      REQUIRE(ck.files().size() == 1);
      CHECK(ck.files()[0] == dir / "model.safetensors");
      CHECK(ck.tensors().size() == expected_count);
      check_against_python(ck, {dir / "model.safetensors"});
      for (const auto& [name, t] : ck.tensors()) {
        CHECK(t.owner != nullptr);
        CHECK(t.file == dir / "model.safetensors");
      }
      CHECK(ck.hash() == sha256_file(dir / "model.safetensors"));
    }
  }
}

TEST_CASE("tensors outlive the Checkpoint through RawTensor::owner") {
  RawTensor t;
  {
    Checkpoint ck = Checkpoint::open(models_dir() / "gpt2");
    t = ck.at("transformer.wte.weight");
  }
  CHECK(t.shape == std::vector<int64_t>{1000, 64});
  CHECK(t.dtype == TensorDType::F32);
  CHECK(t.nbytes == 1000 * 64 * 4);
  Checkpoint again = Checkpoint::open(models_dir() / "gpt2");
  CHECK(std::memcmp(t.data, again.at("transformer.wte.weight").data, t.nbytes) == 0);
}

TEST_CASE("Checkpoint::at names the missing tensor and the file") {
  Checkpoint ck = Checkpoint::open(models_dir() / "gpt2");
  try {
    ck.at("no.such.tensor");
    FAIL("expected CheckpointError");
  } catch (const CheckpointError& e) {
    CHECK(std::string(e.what()).find("no.such.tensor") != std::string::npos);
    CHECK(std::string(e.what()).find("model.safetensors") != std::string::npos);
  }
}

TEST_CASE("read_config") {
  nlohmann::json config = read_config(models_dir() / "gpt2");
  CHECK(config["model_type"] == "gpt2");
  CHECK(config["n_layer"] == 2);
  CHECK(config["vocab_size"] == 1000);
  CHECK(read_config(models_dir() / "llama")["num_key_value_heads"] == 2);

  const fs::path dir = test::scratch_dir("ckpt_config");
  CHECK_THROWS_AS(read_config(dir / "missing"), CheckpointError);
  try {
    read_config(dir);
    FAIL("expected CheckpointError");
  } catch (const CheckpointError& e) {
    CHECK(std::string(e.what()).find(dir.string()) != std::string::npos);
    CHECK(std::string(e.what()).find("config.json") != std::string::npos);
  }
  std::ofstream(dir / "config.json") << "{\n  \"model_type\": \"gpt2\",\n  \"n_layer\": 2,,\n}";
  try {
    read_config(dir);
    FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    CHECK(msg.find((dir / "config.json").string()) != std::string::npos);
    CHECK(msg.find("byte 42") != std::string::npos);  // the second comma (1-based)
    CHECK(msg.find("line 3") != std::string::npos);
  }
}

namespace {

// The tensor names of `bin` that are not in `st` (the tied copies), each with the tensor it shares
// storage with.
void check_bin_equals_safetensors(const fs::path& bin_dir, const fs::path& st_dir, size_t bin_count,
                                  size_t storages, const std::map<std::string, std::string>& tied) {
  Checkpoint bin = Checkpoint::open(bin_dir);
  Checkpoint st = Checkpoint::open(st_dir);
  CHECK(bin.format() == "pytorch_bin");
  REQUIRE(bin.files().size() == 1);
  CHECK(bin.files()[0] == bin_dir / "pytorch_model.bin");
  CHECK(bin.hash() == sha256_file(bin_dir / "pytorch_model.bin"));
  CHECK(bin.tensors().size() == bin_count);
  CHECK(st.tensors().size() + tied.size() == bin_count);
  std::set<const void*> owners;
  for (const auto& [name, t] : bin.tensors()) {
    owners.insert(t.owner.get());
    CHECK(t.file == bin_dir / "pytorch_model.bin");
  }
  CHECK(owners.size() == storages);
  for (const auto& [name, t] : st.tensors()) {
    INFO("tensor " << name);
    REQUIRE(bin.contains(name));
    const RawTensor& b = bin.at(name);
    CHECK(b.dtype == t.dtype);
    CHECK(b.shape == t.shape);
    REQUIRE(b.nbytes == t.nbytes);
    CHECK(std::memcmp(b.data, t.data, t.nbytes) == 0);
  }
  for (const auto& [copy, original] : tied) {
    INFO("tied " << copy << " = " << original);
    REQUIRE(bin.contains(copy));
    CHECK_FALSE(st.contains(copy));
    CHECK(bin.at(copy).data == bin.at(original).data);  // one storage, not two copies
    CHECK(bin.at(copy).shape == st.at(original).shape);
    CHECK(std::memcmp(bin.at(copy).data, st.at(original).data, st.at(original).nbytes) == 0);
  }
}

// Runs `f`, expects `Err`, and checks that the message contains every string in `parts`.
template <class Err, class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("expected an exception containing " << parts.front());
  } catch (const Err& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (const auto& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "missing '" << p << "'");
  }
}

fs::path make_fixtures() {
  static fs::path dir;
  if (dir.empty()) {
    dir = test::scratch_dir("ckpt_fixtures");
    run_capture(test::python() + " " + quote(script("make_bad_checkpoints.py")) + " " + quote(dir));
  }
  return dir;
}

template <class T>
T value_at(const RawTensor& t, int64_t i) {
  REQUIRE(static_cast<size_t>(i + 1) * sizeof(T) <= t.nbytes);
  T v;
  std::memcpy(&v, t.data + i * sizeof(T), sizeof(T));
  return v;
}

}  // namespace

TEST_CASE("pytorch_model.bin gives the safetensors tensors bit for bit, tied weights shared") {
  SUBCASE("gpt2") {
    check_bin_equals_safetensors(models_dir() / "gpt2-bin", models_dir() / "gpt2", 29, 28,
                                 {{"lm_head.weight", "transformer.wte.weight"}});
  }
  SUBCASE("bert") {
    check_bin_equals_safetensors(
        models_dir() / "bert-bin", models_dir() / "bert", 44, 42,
        {{"cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"},
         {"cls.predictions.decoder.bias", "cls.predictions.bias"}});
  }
}

TEST_CASE("sharded safetensors equal the single file") {
  const fs::path dir = models_dir() / "llama-sharded";
  Checkpoint sharded = Checkpoint::open(dir);
  CHECK(sharded.format() == "safetensors");
  const std::vector<fs::path> shards = {dir / "model-00001-of-00002.safetensors",
                                        dir / "model-00002-of-00002.safetensors"};
  CHECK(sharded.files() == shards);
  CHECK(sharded.tensors().size() == 21);
  check_against_python(sharded, shards);
  check_same_bits(sharded, Checkpoint::open(models_dir() / "llama"));
  // hash: sha256 over the concatenated hex digests of the shards, in name order (computed by python).
  const std::string expected =
      run_capture(test::python() +
                  " -c \"import hashlib,sys; d=''.join(hashlib.sha256(open(f,'rb').read()).hexdigest() "
                  "for f in sorted(sys.argv[1:])); print(hashlib.sha256(d.encode()).hexdigest(), end='')\" " +
                  quote(shards[1]) + " " + quote(shards[0]));
  CHECK(sharded.hash() == expected);
  CHECK(sharded.hash() != sha256_file(shards[0]));
}

TEST_CASE("every dtype and a hand-written .bin with views, ties and strides") {
  const fs::path dir = make_fixtures();
  Checkpoint st = Checkpoint::open_file(dir / "all_dtypes.safetensors");
  check_against_python(st, {dir / "all_dtypes.safetensors"});
  CHECK(st.at("b_f16").dtype == TensorDType::F16);
  CHECK(value_at<uint16_t>(st.at("b_f16"), 2) == 0x7bff);  // 65504
  CHECK(st.at("c_bf16").dtype == TensorDType::BF16);
  CHECK(value_at<uint16_t>(st.at("c_bf16"), 1) == 0xC000);
  CHECK(value_at<double>(st.at("d_f64"), 1) == -1e300);
  CHECK(value_at<int64_t>(st.at("e_i64"), 1) == (int64_t{1} << 40));
  CHECK(value_at<int32_t>(st.at("f_i32"), 0) == -7);
  CHECK(value_at<int16_t>(st.at("g_i16"), 0) == -300);
  CHECK(value_at<int8_t>(st.at("h_i8"), 0) == -1);
  CHECK(value_at<uint8_t>(st.at("i_u8"), 2) == 255);
  CHECK(st.at("j_bool").dtype == TensorDType::Bool);
  CHECK(value_at<uint8_t>(st.at("j_bool"), 0) == 1);
  CHECK(st.at("k_scalar").shape.empty());
  CHECK(st.at("k_scalar").numel() == 1);
  CHECK(value_at<float>(st.at("k_scalar"), 0) == 7.0f);
  CHECK(st.at("l_empty").nbytes == 0);
  CHECK(st.at("l_empty").shape == std::vector<int64_t>{0, 4});

  Checkpoint bin = Checkpoint::open_file(dir / "good.bin");
  CHECK(bin.tensors().size() == 5);
  const RawTensor& w = bin.at("w");
  CHECK(w.shape == std::vector<int64_t>{2, 3});
  for (int i = 0; i < 6; ++i) CHECK(value_at<float>(w, i) == i * 1.5f - 2);
  CHECK(bin.at("tied").data == w.data);
  const RawTensor& wt = bin.at("w_t");  // the transpose, gathered into C order
  CHECK(wt.shape == std::vector<int64_t>{3, 2});
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 2; ++c) CHECK(value_at<float>(wt, r * 2 + c) == value_at<float>(w, c * 3 + r));
  const RawTensor& tail = bin.at("tail");
  CHECK(tail.data == w.data + 8);
  CHECK(tail.nbytes == 16);
  CHECK(bin.at("ids").dtype == TensorDType::I64);
  CHECK(value_at<int64_t>(bin.at("ids"), 1) == -1);
  CHECK(value_at<int64_t>(bin.at("ids"), 2) == (int64_t{1} << 33));

  Checkpoint shards = Checkpoint::open(dir / "sharded_ok");
  CHECK(shards.tensors().size() == 2);
  CHECK(shards.at("b").shape == std::vector<int64_t>{2});
}

TEST_CASE("corrupt safetensors are CheckpointErrors naming the file and the field") {
  const fs::path d = make_fixtures();
  auto st = [&](const char* name) { return [=] { read_safetensors(d / name); }; };
  auto f = [&](const char* name) { return (d / name).string(); };
  expect_error<CheckpointError>(st("truncated.safetensors"),
                                {f("truncated.safetensors"), "tensor 'j_bool'", "data_offsets [79, 81]",
                                 "out of bounds", "expected end <= 80"});
  expect_error<CheckpointError>(st("tiny.safetensors"), {f("tiny.safetensors"), "at least 8 bytes", "got 3"});
  expect_error<CheckpointError>(st("header_past_eof.safetensors"),
                                {f("header_past_eof.safetensors"), "header length 1000000", "past the end"});
  expect_error<CheckpointError>(st("bad_json.safetensors"),
                                {f("bad_json.safetensors"), "not valid JSON", "byte"});
  expect_error<CheckpointError>(st("offsets_oob.safetensors"),
                                {f("offsets_oob.safetensors"), "tensor 'w'", "[0, 4096]", "out of bounds"});
  expect_error<CheckpointError>(
      st("offsets_shape_mismatch.safetensors"),
      {f("offsets_shape_mismatch.safetensors"), "tensor 'w'", "hold 24 bytes", "expected 32", "[2, 4]"});
  expect_error<CheckpointError>(st("overlap.safetensors"),
                                {f("overlap.safetensors"), "tensor 'x'", "overlap tensor 'w'"});
  expect_error<CheckpointError>(st("bad_dtype.safetensors"),
                                {f("bad_dtype.safetensors"), "tensor 'x'", "F8_E4M3", "BF16"});
  expect_error<CheckpointError>(st("negative_shape.safetensors"),
                                {f("negative_shape.safetensors"), "tensor 'x'", "shape", "[-2]"});
}

TEST_CASE("the restricted unpickler rejects os.system and never runs it") {
  const fs::path d = make_fixtures();
  // The fixture is a live exploit: Python's pickle ran the same payload while generating it.
  REQUIRE(fs::exists(d / "python_ran_payload"));
  expect_error<CheckpointError>(
      [&] { Checkpoint::open_file(d / "evil.bin"); },
      {(d / "evil.bin").string(), "pickle global 'os.system' is not allowed",
       "allowed: collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage"});
  expect_error<CheckpointError>([&] { Checkpoint::open_file(d / "evil_stack_global.bin"); },
                                {(d / "evil_stack_global.bin").string(), "'posix.system' is not allowed"});
  expect_error<CheckpointError>([&] { Checkpoint::open_file(d / "evil_builtins.bin"); },
                                {(d / "evil_builtins.bin").string(), "'builtins.exec' is not allowed"});
  expect_error<CheckpointError>([&] { Checkpoint::open_file(d / "evil_inst.bin"); },
                                {(d / "evil_inst.bin").string(), "data.pkl"});
  expect_error<CheckpointError>([&] { Checkpoint::open_file(d / "evil_newobj.bin"); },
                                {(d / "evil_newobj.bin").string(), "'subprocess.Popen' is not allowed"});
  CHECK_FALSE(fs::exists(d / "pwned"));
}

TEST_CASE("broken .bin files are CheckpointErrors naming the file and the entry") {
  const fs::path d = make_fixtures();
  auto bin = [&](const char* name) { return [=] { read_torch_bin(d / name); }; };
  auto f = [&](const char* name) { return (d / name).string(); };
  expect_error<CheckpointError>(bin("missing_data.bin"),
                                {f("missing_data.bin"), "missing zip entry 'archive/data/1'", "storage '1'"});
  expect_error<CheckpointError>(bin("short_storage.bin"),
                                {f("short_storage.bin"), "archive/data/0", "expected 24 bytes, got 20"});
  expect_error<CheckpointError>(bin("truncated_pickle.bin"), {f("truncated_pickle.bin"), "data.pkl"});
  expect_error<CheckpointError>(bin("view_oob.bin"), {f("view_oob.bin"), "storage '0'", "past its end"});
  expect_error<CheckpointError>(bin("not_zip.bin"), {f("not_zip.bin"), "not a PyTorch zip checkpoint"});
}

TEST_CASE("sharded checkpoints are checked both ways against the index") {
  const fs::path d = make_fixtures();
  const std::string index = "model.safetensors.index.json";
  expect_error<CheckpointError>([&] { Checkpoint::open(d / "sharded_missing_shard"); },
                                {(d / "sharded_missing_shard" / index).string(),
                                 "model-00002-of-00002.safetensors", "does not exist", "tensor 'b'"});
  expect_error<CheckpointError>(
      [&] { Checkpoint::open(d / "sharded_unlisted_tensor"); },
      {(d / "sharded_unlisted_tensor" / index).string(), "tensor 'stray'", "does not name"});
  expect_error<CheckpointError>(
      [&] { Checkpoint::open(d / "sharded_absent_tensor"); },
      {(d / "sharded_absent_tensor" / index).string(), "tensor 'c'", "does not contain it"});
  expect_error<CheckpointError>([&] { Checkpoint::open(d / "sharded_escape"); },
                                {"../model-00002-of-00002.safetensors", "plain file name"});
  expect_error<CheckpointError>([&] { Checkpoint::open(d / "bad_index"); },
                                {(d / "bad_index" / index).string(), "invalid JSON at byte"});
  expect_error<CheckpointError>([&] { Checkpoint::open(d / "empty_model"); },
                                {(d / "empty_model").string(), "model.safetensors", "pytorch_model.bin"});
  expect_error<CheckpointError>([&] { Checkpoint::open(d / "no_such_model"); },
                                {(d / "no_such_model").string(), "does not exist"});
}
