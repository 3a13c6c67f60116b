// pytorch_model.bin in PyTorch's zip format (torch >= 1.6): <prefix>/data.pkl holds a pickled state
// dict whose tensors refer, through persistent ids, to raw storages <prefix>/data/<key>. The pickle
// goes through the restricted unpickler: only the globals below, nothing is ever called.
#include <zip.h>

#include <cstring>
#include <memory>

#include "atlas/core/error.hpp"
#include "atlas/io/checkpoint.hpp"
#include "io/unpickler.hpp"

namespace atlas::io {
namespace {

using pickle::Value;
using pickle::ValuePtr;

struct StorageType {
  const char* global;
  TensorDType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", TensorDType::F32},     {"torch.HalfStorage", TensorDType::F16},
    {"torch.BFloat16Storage", TensorDType::BF16}, {"torch.DoubleStorage", TensorDType::F64},
    {"torch.LongStorage", TensorDType::I64},      {"torch.IntStorage", TensorDType::I32},
    {"torch.ShortStorage", TensorDType::I16},     {"torch.CharStorage", TensorDType::I8},
    {"torch.ByteStorage", TensorDType::U8},       {"torch.BoolStorage", TensorDType::Bool},
};
constexpr const char* kOrderedDict = "collections.OrderedDict";
constexpr const char* kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";

struct Storage {
  std::string key;
  TensorDType dtype;
  int64_t numel = 0;
  std::shared_ptr<const std::string> bytes;
};

class Archive {
 public:
  explicit Archive(const std::filesystem::path& file) : file_(file.string()) {
    int err = 0;
    zip_ = zip_open(file_.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!zip_) {
      zip_error_t ze;
      zip_error_init_with_code(&ze, err);
      std::string why = zip_error_strerror(&ze);
      zip_error_fini(&ze);
      ATLAS_FAIL(CheckpointError,
                 "'{}': not a PyTorch zip checkpoint ({}); the legacy pre-1.6 torch.save format is not "
                 "supported, re-save it or convert it to safetensors",
                 file_, why);
    }
  }
  ~Archive() {
    if (zip_) zip_discard(zip_);
  }
  Archive(const Archive&) = delete;
  Archive& operator=(const Archive&) = delete;

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    const zip_int64_t n = zip_get_num_entries(zip_, 0);
    for (zip_int64_t i = 0; i < n; ++i)
      if (const char* name = zip_get_name(zip_, static_cast<zip_uint64_t>(i), 0)) out.emplace_back(name);
    return out;
  }
  bool has(const std::string& name) const { return zip_name_locate(zip_, name.c_str(), 0) >= 0; }

  /// Reads an entry whole; `what` says which tensor/storage needs it, for the message.
  std::string read(const std::string& name, const std::string& what) const {
    const zip_int64_t idx = zip_name_locate(zip_, name.c_str(), 0);
    ATLAS_CHECK(idx >= 0, CheckpointError, "'{}': missing zip entry '{}' ({})", file_, name, what);
    zip_stat_t st;
    zip_stat_init(&st);
    ATLAS_CHECK(
        zip_stat_index(zip_, static_cast<zip_uint64_t>(idx), 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE),
        CheckpointError, "'{}': cannot stat zip entry '{}'", file_, name);
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> f(
        zip_fopen_index(zip_, static_cast<zip_uint64_t>(idx), 0), zip_fclose);
    ATLAS_CHECK(f != nullptr, CheckpointError, "'{}': cannot open zip entry '{}': {}", file_, name,
                zip_strerror(zip_));
    // The declared size sizes the buffer, so it must be one the stored bytes can produce: equal for
    // STORED, at most DEFLATE's 1032:1 for DEFLATE (a zip bomb declares far more).
    ATLAS_CHECK((st.valid & ZIP_STAT_COMP_SIZE) && (st.valid & ZIP_STAT_COMP_METHOD) &&
                    ((st.comp_method == ZIP_CM_STORE && st.size == st.comp_size) ||
                     (st.comp_method == ZIP_CM_DEFLATE && st.comp_size <= UINT64_MAX / 1032 &&
                      st.size <= st.comp_size * 1032 + 4096)),
                CheckpointError,
                "'{}': zip entry '{}' declares {} bytes from {} stored bytes (method {}): corrupt file or "
                "zip bomb",
                file_, name, st.size, st.comp_size, st.comp_method);
    std::string out(st.size, '\0');
    zip_uint64_t got = 0;
    while (got < st.size) {
      const zip_int64_t r = zip_fread(f.get(), out.data() + got, st.size - got);
      ATLAS_CHECK(r > 0, CheckpointError,
                  "'{}': zip entry '{}' is truncated or corrupt: expected {} bytes, got {}{}", file_, name,
                  st.size, got, r < 0 ? std::string(": ") + zip_file_strerror(f.get()) : "");
      got += static_cast<zip_uint64_t>(r);
    }
    return out;
  }

 private:
  std::string file_;
  zip_t* zip_ = nullptr;
};

std::string shape_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

class TorchBinReader {
 public:
  explicit TorchBinReader(const std::filesystem::path& file)
      : path_(file), file_(file.string()), zip_(file) {}

  std::map<std::string, RawTensor> read() {
    find_prefix();
    if (zip_.has(prefix_ + "byteorder")) {
      const std::string order = zip_.read(prefix_ + "byteorder", "byte order");
      ATLAS_CHECK(order == "little", CheckpointError,
                  "'{}': byteorder '{}' is not supported (expected little)", file_, order);
    }
    const std::string pkl = zip_.read(prefix_ + "data.pkl", "the pickled state dict");

    pickle::Hooks hooks;
    hooks.allowed_globals = {kOrderedDict, kRebuildTensor, kRebuildParameter};
    for (const auto& s : kStorageTypes) hooks.allowed_globals.insert(s.global);
    hooks.persistent_load = [this](const ValuePtr& pid) { return persistent_load(pid); };
    hooks.reduce = [this](const std::string& callable, const ValuePtr& args) {
      return reduce(callable, args);
    };
    ValuePtr root = pickle::unpickle(pkl, file_ + "' entry '" + prefix_ + "data.pkl", hooks);

    ATLAS_CHECK(root->kind == Value::Kind::Dict, CheckpointError,
                "'{}': data.pkl holds a {}, expected a state dict (name -> tensor)", file_,
                pickle::kind_name(root->kind));
    std::map<std::string, RawTensor> tensors;
    for (const auto& [k, v] : root->dict) {
      ATLAS_CHECK(k->kind == Value::Kind::Str, CheckpointError, "'{}': state dict key is a {}, expected str",
                  file_, pickle::kind_name(k->kind));
      const RawTensor* t = v->kind == Value::Kind::Object ? std::any_cast<RawTensor>(&v->object) : nullptr;
      ATLAS_CHECK(t != nullptr, CheckpointError, "'{}': state dict entry '{}' is a {}, expected a tensor",
                  file_, k->s, pickle::kind_name(v->kind));
      ATLAS_CHECK(tensors.emplace(k->s, *t).second, CheckpointError, "'{}': tensor '{}' appears twice", file_,
                  k->s);
    }
    return tensors;
  }

 private:
  // torch.save writes every entry under one top-level folder, named after the file (any name works).
  void find_prefix() {
    std::string found;
    for (const auto& name : zip_.names()) {
      const size_t slash = name.find('/');
      if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0) {
        ATLAS_CHECK(found.empty(), CheckpointError, "'{}': more than one data.pkl ('{}' and '{}')", file_,
                    found, name);
        found = name;
      }
    }
    ATLAS_CHECK(!found.empty(), CheckpointError,
                "'{}': no '<prefix>/data.pkl' entry: not a PyTorch zip checkpoint", file_);
    prefix_ = found.substr(0, found.size() - std::strlen("data.pkl"));
  }

  static const StorageType* storage_type(const ValuePtr& v) {
    if (v->kind != Value::Kind::Global) return nullptr;
    for (const auto& s : kStorageTypes)
      if (v->s == s.global) return &s;
    return nullptr;
  }

  // pid = ('storage', storage_type, key, location, numel)
  ValuePtr persistent_load(const ValuePtr& pid) {
    const auto& it = pid->items;
    ATLAS_CHECK(
        pid->kind == Value::Kind::Tuple && it.size() == 5 && it[0]->kind == Value::Kind::Str &&
            it[0]->s == "storage" && it[2]->kind == Value::Kind::Str && it[4]->kind == Value::Kind::Int,
        CheckpointError,
        "'{}': persistent id: expected ('storage', <type>, key, location, numel), got a {} of {} items",
        file_, pickle::kind_name(pid->kind), it.size());
    const StorageType* type = storage_type(it[1]);
    ATLAS_CHECK(type != nullptr, CheckpointError,
                "'{}': storage '{}': type is a {} '{}', expected a torch.*Storage", file_, it[2]->s,
                pickle::kind_name(it[1]->kind), it[1]->s);
    const std::string& key = it[2]->s;
    ATLAS_CHECK(!key.empty() && key.find('/') == std::string::npos && key != "..", CheckpointError,
                "'{}': storage key '{}' is not a plain entry name", file_, key);
    const int64_t numel = it[4]->i;
    ATLAS_CHECK(numel >= 0, CheckpointError, "'{}': storage '{}': numel {} is negative", file_, key, numel);

    auto cached = storages_.find(key);
    std::shared_ptr<Storage> storage;
    if (cached != storages_.end()) {
      storage = cached->second;
      ATLAS_CHECK(storage->dtype == type->dtype && storage->numel == numel, CheckpointError,
                  "'{}': storage '{}' is referenced as {} x {} and as {} x {}", file_, key,
                  tensor_dtype_name(storage->dtype), storage->numel, tensor_dtype_name(type->dtype), numel);
    } else {
      storage = std::make_shared<Storage>();
      storage->key = key;
      storage->dtype = type->dtype;
      storage->numel = numel;
      const std::string entry = prefix_ + "data/" + key;
      auto bytes =
          std::make_shared<std::string>(zip_.read(entry, "storage '" + key + "' (" + type->global + ")"));
      const uint64_t expected = static_cast<uint64_t>(numel) * tensor_dtype_size(type->dtype);
      ATLAS_CHECK(bytes->size() == expected, CheckpointError,
                  "'{}': entry '{}' (storage '{}', {} x {}): expected {} bytes, got {}", file_, entry, key,
                  numel, tensor_dtype_name(type->dtype), expected, bytes->size());
      storage->bytes = std::move(bytes);
      storages_.emplace(key, storage);
    }
    auto v = std::make_shared<Value>();
    v->kind = Value::Kind::Object;
    v->object = storage;
    return v;
  }

  static std::vector<int64_t> int_tuple(const ValuePtr& v, const std::string& file, const char* what) {
    ATLAS_CHECK(v->kind == Value::Kind::Tuple, CheckpointError,
                "'{}': _rebuild_tensor_v2 {}: expected a tuple, got {}", file, what,
                pickle::kind_name(v->kind));
    std::vector<int64_t> out;
    for (const auto& x : v->items) {
      ATLAS_CHECK(x->kind == Value::Kind::Int && x->i >= 0, CheckpointError,
                  "'{}': _rebuild_tensor_v2 {}: expected non-negative ints", file, what);
      out.push_back(x->i);
    }
    return out;
  }

  ValuePtr reduce(const std::string& callable, const ValuePtr& args) {
    auto object = [](std::any o) {
      auto v = std::make_shared<Value>();
      v->kind = Value::Kind::Object;
      v->object = std::move(o);
      return v;
    };
    if (callable == kOrderedDict) {
      ATLAS_CHECK(args->items.empty(), CheckpointError,
                  "'{}': OrderedDict called with {} arguments, expected 0", file_, args->items.size());
      auto d = std::make_shared<Value>();
      d->kind = Value::Kind::Dict;
      return d;
    }
    if (callable == kRebuildParameter) {  // (data, requires_grad, backward_hooks): the tensor itself
      ATLAS_CHECK(!args->items.empty() && args->items[0]->kind == Value::Kind::Object &&
                      std::any_cast<RawTensor>(&args->items[0]->object),
                  CheckpointError, "'{}': _rebuild_parameter: expected a tensor as first argument", file_);
      return args->items[0];
    }
    if (callable == kRebuildTensor) return object(rebuild_tensor(args));
    ATLAS_FAIL(CheckpointError, "'{}': pickle calls '{}', which a state dict never calls", file_, callable);
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  RawTensor rebuild_tensor(const ValuePtr& args) {
    const auto& a = args->items;
    const std::shared_ptr<Storage>* sp = a.size() >= 4 && a[0]->kind == Value::Kind::Object
                                             ? std::any_cast<std::shared_ptr<Storage>>(&a[0]->object)
                                             : nullptr;
    ATLAS_CHECK(sp != nullptr && a[1]->kind == Value::Kind::Int, CheckpointError,
                "'{}': _rebuild_tensor_v2: expected (storage, offset, size, stride, ...), got {} arguments",
                file_, a.size());
    const Storage& s = **sp;
    const int64_t offset = a[1]->i;
    const std::vector<int64_t> size = int_tuple(a[2], file_, "size");
    const std::vector<int64_t> stride = int_tuple(a[3], file_, "stride");
    ATLAS_CHECK(size.size() == stride.size(), CheckpointError,
                "'{}': storage '{}': size {} and stride {} differ in rank", file_, s.key, shape_str(size),
                shape_str(stride));
    RawTensor t;
    t.dtype = s.dtype;
    t.shape = size;
    t.file = path_;
    t.owner = s.bytes;
    const size_t elsize = tensor_dtype_size(s.dtype);
    int64_t numel = 1, last = 0;  // last: storage index of the last element
    bool contiguous = true;
    int64_t expected_stride = 1;
    for (size_t d = size.size(); d-- > 0;) {
      ATLAS_CHECK(!__builtin_mul_overflow(numel, size[d], &numel), CheckpointError,
                  "'{}': storage '{}': size {} overflows", file_, s.key, shape_str(size));
      if (size[d] > 1 && stride[d] != expected_stride) contiguous = false;
      expected_stride *= size[d];
      int64_t span = 0;
      ATLAS_CHECK(size[d] == 0 || (!__builtin_mul_overflow(size[d] - 1, stride[d], &span) &&
                                   !__builtin_add_overflow(last, span, &last)),
                  CheckpointError, "'{}': storage '{}': stride {} overflows", file_, s.key,
                  shape_str(stride));
    }
    ATLAS_CHECK(offset >= 0 && offset <= s.numel && (numel == 0 || last < s.numel - offset), CheckpointError,
                "'{}': storage '{}' ({} elements): a tensor at offset {} with size {} and stride {} reads "
                "past its end",
                file_, s.key, s.numel, offset, shape_str(size), shape_str(stride));
    t.nbytes = static_cast<size_t>(numel) * elsize;
    const std::byte* base = reinterpret_cast<const std::byte*>(s.bytes->data()) + offset * elsize;
    if (contiguous || numel == 0) {
      t.data = base;  // tied weights share the storage: no copy
      return t;
    }
    // A strided view (e.g. a saved transpose): gather it into C order.
    auto copy = std::make_shared<std::string>(t.nbytes, '\0');
    std::vector<int64_t> idx(size.size(), 0);
    for (int64_t n = 0; n < numel; ++n) {
      int64_t src = 0;
      for (size_t d = 0; d < size.size(); ++d) src += idx[d] * stride[d];
      std::memcpy(copy->data() + n * elsize, base + src * elsize, elsize);
      for (size_t d = size.size(); d-- > 0;) {
        if (++idx[d] < size[d]) break;
        idx[d] = 0;
      }
    }
    t.data = reinterpret_cast<const std::byte*>(copy->data());
    t.owner = copy;
    return t;
  }

  std::filesystem::path path_;
  std::string file_;
  Archive zip_;
  std::string prefix_;
  std::map<std::string, std::shared_ptr<Storage>> storages_;
};

}  // namespace

std::map<std::string, RawTensor> read_torch_bin(const std::filesystem::path& file) {
  return TorchBinReader(file).read();
}

}  // namespace atlas::io
