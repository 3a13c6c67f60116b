// model.safetensors: 8-byte little-endian header length N, N bytes of JSON, then the data buffer.
// The header is untrusted input: every field is checked before a pointer into the mapping is formed,
// so a truncated or corrupted file is a CheckpointError, never an out-of-bounds read.
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "atlas/core/json.hpp"
#include "atlas/core/error.hpp"
#include "atlas/io/checkpoint.hpp"
#include "io/dtype_names.hpp"
#include "io/mapped_file.hpp"

namespace atlas::io {
namespace {

using nlohmann::json;

// The Rust safetensors crate refuses headers over 100 MB (HeaderTooLarge); so do we.
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

uint64_t read_le_u64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint64_t>(p[i]);
  return v;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

struct Entry {
  std::string name;
  uint64_t begin = 0, end = 0;
};

}  // namespace

std::map<std::string, RawTensor> read_safetensors(const std::filesystem::path& file) {
  auto map = MappedFile::open(file);
  const std::string fname = file.string();
  const size_t size = map->size();
  ATLAS_CHECK(size >= 8, CheckpointError,
              "'{}': truncated safetensors file: expected at least 8 bytes (header length), got {}", fname,
              size);
  const uint64_t header_len = read_le_u64(map->data());
  ATLAS_CHECK(header_len <= size - 8, CheckpointError,
              "'{}': safetensors header length {} runs past the end of the file (expected <= {} "
              "bytes after the 8-byte length, file is {} bytes): truncated or not a safetensors file",
              fname, header_len, size - 8, size);
  ATLAS_CHECK(header_len <= kMaxSafetensorsHeader, CheckpointError,
              "'{}': safetensors header of {} bytes is larger than the limit of {} bytes (the safetensors "
              "library's own limit; docs/limits.md)",
              fname, header_len, kMaxSafetensorsHeader);
  ATLAS_CHECK(header_len >= 2 && static_cast<char>(map->data()[8]) == '{', CheckpointError,
              "'{}': safetensors header must be a JSON object starting with '{{' (header length {})", fname,
              header_len);
  const char* hbegin = reinterpret_cast<const char*>(map->data() + 8);
  json header;
  try {
    header = parse_json(std::string_view(hbegin, header_len), "'" + fname + "': safetensors header");
  } catch (const json::parse_error& e) {
    ATLAS_FAIL(CheckpointError, "'{}': safetensors header is not valid JSON at byte {} of the header: {}",
               fname, e.byte, e.what());
  }
  ATLAS_CHECK(header.is_object(), CheckpointError, "'{}': safetensors header: expected a JSON object, got {}",
              fname, header.type_name());

  const std::byte* buffer = map->data() + 8 + header_len;
  const uint64_t buffer_size = size - 8 - header_len;
  std::map<std::string, RawTensor> tensors;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      ATLAS_CHECK(info.is_object(), CheckpointError,
                  "'{}': safetensors '__metadata__': expected an object, got {}", fname, info.type_name());
      for (const auto& [k, v] : info.items())
        ATLAS_CHECK(v.is_string(), CheckpointError,
                    "'{}': safetensors '__metadata__' key '{}': expected a string, got {}", fname, k,
                    v.type_name());
      continue;
    }
    ATLAS_CHECK(info.is_object(), CheckpointError,
                "'{}': tensor '{}': expected an object with dtype/shape/data_offsets, got {}", fname, name,
                info.type_name());
    for (const auto& [k, v] : info.items()) {
      (void)v;
      ATLAS_CHECK(k == "dtype" || k == "shape" || k == "data_offsets", CheckpointError,
                  "'{}': tensor '{}': unknown field '{}' (expected dtype, shape, data_offsets)", fname, name,
                  k);
    }
    // Captured by name: clang 14 (the fuzz build) cannot capture structured bindings.
    auto field = [&, &info = info, &name = name](const char* key) -> const json& {
      auto it = info.find(key);
      ATLAS_CHECK(it != info.end(), CheckpointError, "'{}': tensor '{}': missing field '{}'", fname, name,
                  key);
      return *it;
    };
    const json& jdtype = field("dtype");
    ATLAS_CHECK(jdtype.is_string(), CheckpointError,
                "'{}': tensor '{}': field 'dtype': expected a string, got {}", fname, name,
                jdtype.type_name());
    auto dtype = parse_dtype_name(jdtype.get<std::string>());
    ATLAS_CHECK(dtype.has_value(), CheckpointError,
                "'{}': tensor '{}': unsupported dtype '{}' (expected one of {})", fname, name,
                jdtype.get<std::string>(), supported_dtype_names());
    const json& jshape = field("shape");
    ATLAS_CHECK(jshape.is_array(), CheckpointError,
                "'{}': tensor '{}': field 'shape': expected an array, got {}", fname, name,
                jshape.type_name());
    RawTensor t;
    t.dtype = *dtype;
    t.file = file;
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : jshape) {
      ATLAS_CHECK(d.is_number_unsigned(), CheckpointError,
                  "'{}': tensor '{}': field 'shape': expected non-negative integers, got {}", fname, name,
                  jshape.dump());
      uint64_t dim = d.get<uint64_t>();
      ATLAS_CHECK(dim <= static_cast<uint64_t>(INT64_MAX), CheckpointError,
                  "'{}': tensor '{}': shape dimension {} too large", fname, name, dim);
      overflow |= __builtin_mul_overflow(numel, dim, &numel);
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t nbytes = 0;
    overflow |= __builtin_mul_overflow(numel, static_cast<uint64_t>(tensor_dtype_size(t.dtype)), &nbytes);
    ATLAS_CHECK(!overflow, CheckpointError, "'{}': tensor '{}': shape {} overflows the byte count", fname,
                name, shape_str(t.shape));
    const json& joff = field("data_offsets");
    ATLAS_CHECK(
        joff.is_array() && joff.size() == 2 && joff[0].is_number_unsigned() && joff[1].is_number_unsigned(),
        CheckpointError,
        "'{}': tensor '{}': field 'data_offsets': expected [begin, end] non-negative integers, got {}", fname,
        name, joff.dump());
    const uint64_t begin = joff[0].get<uint64_t>(), end = joff[1].get<uint64_t>();
    ATLAS_CHECK(begin <= end, CheckpointError, "'{}': tensor '{}': data_offsets [{}, {}]: begin after end",
                fname, name, begin, end);
    ATLAS_CHECK(end <= buffer_size, CheckpointError,
                "'{}': tensor '{}': data_offsets [{}, {}] out of bounds: expected end <= {} (the data "
                "buffer size), got {} (truncated file?)",
                fname, name, begin, end, buffer_size, end);
    ATLAS_CHECK(end - begin == nbytes, CheckpointError,
                "'{}': tensor '{}': data_offsets [{}, {}] hold {} bytes, expected {} for {} {}", fname, name,
                begin, end, end - begin, nbytes, tensor_dtype_name(t.dtype), shape_str(t.shape));
    t.data = buffer + begin;
    t.nbytes = static_cast<size_t>(nbytes);
    t.owner = map;
    entries.push_back({name, begin, end});
    tensors.emplace(name, std::move(t));
  }
  // The format requires the tensors to tile the data buffer exactly: no overlaps, no holes.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  std::string prev = "(start of the data buffer)";
  for (const auto& e : entries) {
    ATLAS_CHECK(e.begin >= pos, CheckpointError,
                "'{}': tensor '{}': data_offsets [{}, {}] overlap tensor {} (expected begin >= {}, got {})",
                fname, e.name, e.begin, e.end, prev, pos, e.begin);
    ATLAS_CHECK(e.begin == pos, CheckpointError,
                "'{}': tensor '{}': data_offsets [{}, {}] leave a hole after {} (expected begin {}, got {})",
                fname, e.name, e.begin, e.end, prev, pos, e.begin);
    pos = e.end;
    prev = "'" + e.name + "'";
  }
  ATLAS_CHECK(pos == buffer_size, CheckpointError,
              "'{}': the tensors cover {} bytes of the data buffer, expected the whole buffer of {} bytes "
              "(trailing bytes after {})",
              fname, pos, buffer_size, prev);
  return tensors;
}

}  // namespace atlas::io
