// Fuzz targets of io/: NPY, NPZ, safetensors (single and sharded), the unpickler, .bin, config.json,
// and adapter_config.json (models/adapter_config.cpp, torch-free).
#include <nlohmann/json.hpp>

#include "atlas/io/checkpoint.hpp"
#include "atlas/io/npy.hpp"
#include "atlas/io/npz.hpp"
#include "fuzz_support.hpp"
#include "fuzz_targets.hpp"
#include "io/unpickler.hpp"
#include "models/adapter_config.hpp"

namespace atlas::fuzz {
namespace fs = std::filesystem;

namespace {

// Reads every element the way the subcommands do, so a view that points past its bytes is caught.
void touch(const io::NdArray& array) {
  if (array.dtype() == io::DType::Unicode) {
    (void)array.to_strings();
  } else if (array.dtype() != io::DType::Bool) {
    (void)array.to_double();
  }
}

void touch(const io::Checkpoint& ck) {
  volatile uint8_t sink = 0;
  for (const auto& [name, t] : ck.tensors()) {
    (void)t.numel();
    if (t.nbytes > 0) sink = sink ^ static_cast<uint8_t>(t.data[0]) ^ static_cast<uint8_t>(t.data[t.nbytes - 1]);
  }
  (void)sink;
}

}  // namespace

int fuzz_npy(const uint8_t* data, size_t size) {
  return expect_atlas_errors([&] {
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    (void)io::parse_npy_header(bytes, size, "fuzz.npy");
    touch(io::parse_npy(bytes, size, "fuzz.npy"));
  });
}

int fuzz_npz(const uint8_t* data, size_t size) {
  const fs::path file = scratch_dir("npz") / "fuzz.npz";
  put_file(file, data, size);
  return expect_atlas_errors([&] {
    io::NpzReader reader(file);
    for (const auto& name : reader.names()) {
      try {
        (void)reader.header(name);
        touch(reader.get(name));
      } catch (const atlas::Error&) {
        // a bad member; the others are still read
      }
    }
  });
}

int fuzz_safetensors(const uint8_t* data, size_t size) {
  const fs::path file = scratch_dir("safetensors") / "model.safetensors";
  put_file(file, data, size);
  return expect_atlas_errors([&] { touch(io::Checkpoint::open_file(file)); });
}

namespace {
// A tiny valid safetensors file holding the F32 tensors `names` (shape [1]).
std::string tiny_safetensors(const std::vector<std::string>& names) {
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const auto& n : names) {
    header[n] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {offset, offset + 4}}};
    offset += 4;
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + h + std::string(offset, '\0');
}
}  // namespace

int fuzz_sharded_index(const uint8_t* data, size_t size) {
  // Two real shards next to the fuzzed index; the index may name them, others, or anything.
  static const fs::path dir = [] {
    const fs::path d = scratch_dir("sharded");
    put_file(d / "model-00001-of-00002.safetensors", tiny_safetensors({"a.weight", "b.weight"}));
    put_file(d / "model-00002-of-00002.safetensors", tiny_safetensors({"c.weight"}));
    return d;
  }();
  put_file(dir / "model.safetensors.index.json", data, size);
  return expect_atlas_errors([&] { touch(io::Checkpoint::open(dir)); });
}

int fuzz_pickle(const uint8_t* data, size_t size) {
  using namespace io::pickle;
  Hooks hooks;
  // What torch_bin.cpp allows, so the fuzzer reaches REDUCE / BINPERSID with allowed callables.
  hooks.allowed_globals = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                           "torch._utils._rebuild_parameter", "torch.FloatStorage",
                           "torch.HalfStorage", "torch.BFloat16Storage", "torch.LongStorage"};
  hooks.persistent_load = [](const ValuePtr& pid) {
    auto v = std::make_shared<Value>();
    v->kind = Value::Kind::Object;
    v->object = pid;
    return v;
  };
  hooks.reduce = [](const std::string& callable, const ValuePtr& args) {
    auto v = std::make_shared<Value>();
    if (callable == "collections.OrderedDict") {
      v->kind = Value::Kind::Dict;
    } else {
      v->kind = Value::Kind::Object;
      v->object = args;
    }
    return v;
  };
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  return expect_atlas_errors([&] {
    const ValuePtr v = unpickle(bytes, "fuzz.pkl", hooks);
    (void)kind_name(v->kind);
  });
}

int fuzz_torch_bin(const uint8_t* data, size_t size) {
  const fs::path file = scratch_dir("torch_bin") / "pytorch_model.bin";
  put_file(file, data, size);
  return expect_atlas_errors([&] { touch(io::Checkpoint::open_file(file)); });
}

int fuzz_config(const uint8_t* data, size_t size) {
  const fs::path dir = scratch_dir("config");
  put_file(dir / "config.json", data, size);
  return expect_atlas_errors([&] {
    const nlohmann::json config = io::read_config(dir);
    (void)config.dump();
  });
}

int fuzz_adapter_config(const uint8_t* data, size_t size) {
  const fs::path dir = scratch_dir("adapter_config");
  put_file(dir / "adapter_config.json", data, size);
  return expect_atlas_errors([&] { (void)models::read_adapter_config(dir / "adapter_config.json"); });
}

}  // namespace atlas::fuzz
