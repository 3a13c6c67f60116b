// NPZ = ZIP of .npy members. The ZIP container is written and read here directly (zlib for deflate,
// libdeflate for CRC-32) rather than through libzip, because libzip pulls member data on
// zip_close() (no push-style chunked streaming of a 10 GB array) and exposes no data offsets, which
// the reader needs to memory-map STORED members.
#include "atlas/io/npz.hpp"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/utf8.hpp"
#include "npy_internal.hpp"

namespace atlas::io {
namespace fs = std::filesystem;
using detail::load_u16;
using detail::load_u32;
using detail::load_u64;

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr uint16_t kZip64Tag = 0x0001;
// Android zipalign's extra-field tag: padding so that STORED data starts 64-byte aligned in the file.
constexpr uint16_t kAlignTag = 0xD935;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEndSize = 22;
constexpr size_t kEnd64Size = 56;
constexpr size_t kEnd64LocatorSize = 20;
constexpr uint64_t kMax32 = 0xFFFFFFFFull;
constexpr uint64_t kMax16 = 0xFFFFull;
constexpr size_t kDataAlign = 64;
// DEFLATE cannot expand data by more than 1032:1 (a 258-byte match per 2-bit code), so a member that
// declares more is lying; the slack covers the block headers of tiny members.
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr uint64_t kDeflateSlack = 4096;
// DOS date 1980-01-01 00:00: a fixed timestamp keeps archives byte-identical across runs.
constexpr uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;
constexpr uint16_t kDosTime = 0;

void put16(std::string& s, uint64_t v) {
  uint16_t x = static_cast<uint16_t>(v);
  s.append(reinterpret_cast<const char*>(&x), 2);
}
void put32(std::string& s, uint64_t v) {
  uint32_t x = static_cast<uint32_t>(v);
  s.append(reinterpret_cast<const char*>(&x), 4);
}
void put64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }

uint32_t crc32_update(uint32_t crc, const void* data, size_t n) { return libdeflate_crc32(crc, data, n); }

bool is_ascii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Member names become array keys (and, for whoever unzips the file, paths): refuse what no numpy
// writer produces and what would escape a directory when extracted.
void check_member_name(const std::string& file, const std::string& name) {
  size_t bad = atlas::utf8::first_invalid(name);
  ATLAS_CHECK(bad == std::string::npos, FormatError, "'{}': member name is not valid UTF-8 (byte {})", file,
              bad);
  ATLAS_CHECK(!name.empty() && name.find('\0') == std::string::npos, FormatError,
              "'{}': member name is empty or holds a NUL byte", file);
  bool traversal = name.front() == '/' || name.front() == '\\' || name.find('\\') != std::string::npos;
  for (size_t start = 0; !traversal && start <= name.size();) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    traversal = name.compare(start, end - start, "..") == 0;
    start = end + 1;
  }
  ATLAS_CHECK(!traversal, FormatError,
              "'{}': member name '{}' is absolute or climbs out of the archive ('..'); refusing the file", file,
              name);
}

struct CentralEntry {
  std::string name;  // with ".npy"
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t compressed = 0;
  uint64_t uncompressed = 0;
  uint64_t local_offset = 0;
};

}  // namespace

// ======================================== writer ========================================

// State shared by the writer and its open Stream (weak_ptr), so a Stream that outlives its writer
// fails cleanly instead of touching freed memory.
struct WriterCore {
  fs::path target;
  fs::path tmp;
  std::FILE* file = nullptr;
  Compression compression = Compression::Stored;
  int level = 6;
  std::vector<CentralEntry> entries;
  std::unordered_set<std::string> names;
  bool failed = false;
  bool closed = false;
  uint64_t next_member_id = 1;

  struct Member {
    uint64_t id = 0;
    std::string name;
    DType dtype = DType::F32;
    uint64_t local_offset = 0;
    bool zip64_local = false;
    uint64_t expected_data = 0;  // array bytes the caller must write
    uint64_t written_data = 0;
    uint64_t uncompressed = 0;  // npy header + data
    uint64_t compressed = 0;
    uint32_t crc = 0;
    bool deflate = false;
    z_stream z{};
    std::vector<unsigned char> zbuf;
  };
  std::unique_ptr<Member> open;

  ~WriterCore() {
    if (open && open->deflate) deflateEnd(&open->z);
    if (file) std::fclose(file);
    if (!closed) {
      std::error_code ec;
      fs::remove(tmp, ec);
    }
  }

  [[noreturn]] void io_fail(const char* op) {
    failed = true;
    ATLAS_FAIL(IoError, "cannot {} '{}' (writing '{}'): {}", op, tmp.string(), target.string(),
               std::strerror(errno));
  }
  void raw_write(const void* data, size_t n) {
    if (n && std::fwrite(data, 1, n, file) != n) io_fail("write");
  }
  uint64_t tell() {
    off_t pos = ftello(file);
    if (pos < 0) io_fail("tell");
    return static_cast<uint64_t>(pos);
  }
  void seek(uint64_t pos) {
    if (fseeko(file, static_cast<off_t>(pos), SEEK_SET) != 0) io_fail("seek");
  }

  void check_usable(const std::string& what) {
    ATLAS_CHECK(!closed, FormatError, "'{}': {} after close()", target.string(), what);
    ATLAS_CHECK(!failed, FormatError, "'{}': {} after an earlier error left the archive incomplete",
                target.string(), what);
  }

  // Feeds member bytes (npy header or data) through CRC and, for DEFLATE, the compressor.
  void member_bytes(Member& m, const void* data, size_t n, bool finish) {
    m.crc = crc32_update(m.crc, data, n);
    m.uncompressed += n;
    if (!m.deflate) {
      raw_write(data, n);
      m.compressed += n;
      return;
    }
    const unsigned char* in = static_cast<const unsigned char*>(data);
    size_t left = n;
    for (;;) {
      size_t chunk = std::min<size_t>(left, 1u << 30);  // avail_in is 32-bit
      m.z.next_in = const_cast<unsigned char*>(in);
      m.z.avail_in = static_cast<uInt>(chunk);
      bool last = finish && chunk == left;
      int flush = last ? Z_FINISH : Z_NO_FLUSH;
      int rc;
      do {
        m.z.next_out = m.zbuf.data();
        m.z.avail_out = static_cast<uInt>(m.zbuf.size());
        rc = deflate(&m.z, flush);
        if (rc == Z_STREAM_ERROR) {
          failed = true;
          ATLAS_FAIL(IoError, "deflate failed writing '{}'", target.string());
        }
        size_t produced = m.zbuf.size() - m.z.avail_out;
        raw_write(m.zbuf.data(), produced);
        m.compressed += produced;
      } while (m.z.avail_out == 0 || (last && rc != Z_STREAM_END));
      in += chunk;
      left -= chunk;
      if (left == 0) break;
    }
  }

  void begin_member(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                    size_t unicode_chars) {
    check_usable("adding '" + name + "'");
    if (open) finish_member(open->id);
    ATLAS_CHECK(!name.empty(), InputError, "'{}': array name is empty", target.string());
    ATLAS_CHECK(atlas::utf8::valid(name), InputError, "'{}': array name is not valid UTF-8", target.string());
    ATLAS_CHECK(names.insert(name).second, FormatError, "'{}': duplicate array name '{}'", target.string(),
                name);
    std::string member_name = name + ".npy";
    ATLAS_CHECK(member_name.size() <= kMax16, InputError, "'{}': array name of {} bytes is too long",
                target.string(), name.size());
    std::string header = make_npy_header(dtype, shape, unicode_chars);
    int64_t numel = 1;
    for (int64_t d : shape) {
      ATLAS_CHECK(d >= 0, InputError, "'{}': array '{}' has a negative dimension", target.string(), name);
      numel *= d;
    }

    auto m = std::make_unique<Member>();
    m->id = next_member_id++;
    m->name = name;
    m->dtype = dtype;
    m->expected_data = static_cast<uint64_t>(numel) * dtype_size(dtype, unicode_chars);
    m->deflate = compression == Compression::Deflate;
    m->local_offset = tell();
    uint64_t total = header.size() + m->expected_data;
    // Deflate can expand incompressible input slightly; leave a margin before deciding 32-bit fields.
    uint64_t worst = m->deflate ? total + total / 1000 + (1u << 16) : total;
    m->zip64_local = worst >= kMax32 || m->local_offset >= kMax32;

    std::string local;
    put32(local, kLocalSig);
    put16(local, m->zip64_local ? 45 : 20);
    put16(local, is_ascii(member_name) ? 0 : 0x800);
    put16(local, m->deflate ? 8 : 0);
    put16(local, kDosTime);
    put16(local, kDosDate);
    put32(local, 0);  // crc, patched in finish
    put32(local, m->zip64_local ? kMax32 : 0);
    put32(local, m->zip64_local ? kMax32 : 0);
    put16(local, member_name.size());
    std::string extra;
    if (m->zip64_local) {
      put16(extra, kZip64Tag);
      put16(extra, 16);
      put64(extra, 0);
      put64(extra, 0);
    }
    if (!m->deflate) {
      uint64_t data_at = m->local_offset + kLocalHeaderSize + member_name.size() + extra.size();
      size_t pad = (kDataAlign - (data_at + 6) % kDataAlign) % kDataAlign + 6;
      put16(extra, kAlignTag);
      put16(extra, pad - 4);
      put16(extra, kDataAlign);
      extra.append(pad - 6, '\0');
    }
    put16(local, extra.size());
    local += member_name;
    local += extra;
    raw_write(local.data(), local.size());

    if (m->deflate) {
      if (deflateInit2(&m->z, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        failed = true;
        ATLAS_FAIL(IoError, "cannot initialise deflate for '{}'", target.string());
      }
      m->zbuf.resize(1 << 18);
    }
    open = std::move(m);
    member_bytes(*open, header.data(), header.size(), open->expected_data == 0);
  }

  void write_data(uint64_t id, const void* data, size_t n) {
    check_usable("writing a stream");
    if (n == 0) return;
    ATLAS_CHECK(open && open->id == id, FormatError, "'{}': write to a stream that was already finished",
                target.string());
    Member& m = *open;
    if (m.written_data + n > m.expected_data) {
      failed = true;
      ATLAS_FAIL(FormatError, "'{}': array '{}' expects {} bytes, got at least {}", target.string(), m.name,
                 m.expected_data, m.written_data + n);
    }
    m.written_data += n;
    member_bytes(m, data, n, m.written_data == m.expected_data);
  }

  void finish_member(uint64_t id) {
    if (!open || open->id != id) return;  // already finished
    std::unique_ptr<Member> m = std::move(open);
    if (m->written_data != m->expected_data) {
      failed = true;
      if (m->deflate) deflateEnd(&m->z);
      ATLAS_FAIL(FormatError, "'{}': array '{}' expects {} bytes, got {}", target.string(), m->name,
                 m->expected_data, m->written_data);
    }
    if (m->deflate) deflateEnd(&m->z);
    ATLAS_CHECK(m->zip64_local || m->compressed < kMax32, FormatError,
                "'{}': array '{}' compressed beyond the 4 GiB estimate", target.string(), m->name);
    uint64_t end = tell();
    std::string patch;
    put32(patch, m->crc);
    seek(m->local_offset + 14);
    if (m->zip64_local) {
      raw_write(patch.data(), 4);
      patch.clear();
      put64(patch, m->uncompressed);
      put64(patch, m->compressed);
      seek(m->local_offset + kLocalHeaderSize + m->name.size() + 4 /* ".npy" */ + 4);
    } else {
      put32(patch, m->compressed);
      put32(patch, m->uncompressed);
    }
    raw_write(patch.data(), patch.size());
    seek(end);
    CentralEntry e;
    e.name = m->name + ".npy";
    e.method = m->deflate ? 8 : 0;
    e.crc = m->crc;
    e.compressed = m->compressed;
    e.uncompressed = m->uncompressed;
    e.local_offset = m->local_offset;
    entries.push_back(std::move(e));
  }

  void close() {
    check_usable("close()");
    if (open) finish_member(open->id);
    uint64_t cd_offset = tell();
    std::string cd;
    for (const auto& e : entries) {
      bool big_u = e.uncompressed >= kMax32, big_c = e.compressed >= kMax32, big_o = e.local_offset >= kMax32;
      std::string extra;
      if (big_u || big_c || big_o) {
        put16(extra, kZip64Tag);
        put16(extra, 8 * (big_u + big_c + big_o));
        if (big_u) put64(extra, e.uncompressed);
        if (big_c) put64(extra, e.compressed);
        if (big_o) put64(extra, e.local_offset);
      }
      uint16_t version = extra.empty() ? 20 : 45;
      put32(cd, kCentralSig);
      put16(cd, version);  // made by (MS-DOS attribute compatibility)
      put16(cd, version);
      put16(cd, is_ascii(e.name) ? 0 : 0x800);
      put16(cd, e.method);
      put16(cd, kDosTime);
      put16(cd, kDosDate);
      put32(cd, e.crc);
      put32(cd, big_c ? kMax32 : e.compressed);
      put32(cd, big_u ? kMax32 : e.uncompressed);
      put16(cd, e.name.size());
      put16(cd, extra.size());
      put16(cd, 0);  // comment
      put16(cd, 0);  // disk
      put16(cd, 0);  // internal attributes
      put32(cd, 0);  // external attributes
      put32(cd, big_o ? kMax32 : e.local_offset);
      cd += e.name;
      cd += extra;
      if (cd.size() >= (1u << 20)) {
        raw_write(cd.data(), cd.size());
        cd.clear();
      }
    }
    raw_write(cd.data(), cd.size());
    uint64_t cd_end = tell();
    uint64_t cd_size = cd_end - cd_offset;
    uint64_t count = entries.size();
    std::string tail;
    if (count >= kMax16 || cd_size >= kMax32 || cd_offset >= kMax32) {
      put32(tail, kEnd64Sig);
      put64(tail, kEnd64Size - 12);
      put16(tail, 45);
      put16(tail, 45);
      put32(tail, 0);
      put32(tail, 0);
      put64(tail, count);
      put64(tail, count);
      put64(tail, cd_size);
      put64(tail, cd_offset);
      put32(tail, kEnd64LocatorSig);
      put32(tail, 0);
      put64(tail, cd_end);
      put32(tail, 1);
    }
    put32(tail, kEndSig);
    put16(tail, 0);
    put16(tail, 0);
    put16(tail, std::min(count, kMax16));
    put16(tail, std::min(count, kMax16));
    put32(tail, std::min(cd_size, kMax32));
    put32(tail, std::min(cd_offset, kMax32));
    put16(tail, 0);
    raw_write(tail.data(), tail.size());
    if (std::fflush(file) != 0) io_fail("flush");
    int rc = std::fclose(file);
    file = nullptr;
    if (rc != 0) io_fail("close");
    std::error_code ec;
    fs::rename(tmp, target, ec);
    if (ec) {
      failed = true;
      ATLAS_FAIL(IoError, "cannot rename '{}' to '{}': {}", tmp.string(), target.string(), ec.message());
    }
    closed = true;
    remove_stale_temps(target);
  }
};

struct NpzWriter::Impl {
  std::shared_ptr<WriterCore> core;
};

struct NpzWriter::Stream::Impl {
  std::weak_ptr<WriterCore> core;
  uint64_t id = 0;
  WriterCore& get() {
    auto c = core.lock();
    ATLAS_CHECK(c != nullptr, FormatError, "NPZ stream used after its writer was destroyed");
    return *c;
  }
};

NpzWriter::NpzWriter(fs::path path, Compression compression, int level)
    : path_(std::move(path)), impl_(std::make_unique<Impl>()) {
  check_output_path(path_);
  ATLAS_CHECK(level >= 0 && level <= 9, InputError, "'{}': deflate level must be 0-9, got {}", path_.string(),
              level);
  auto core = std::make_shared<WriterCore>();
  core->target = path_;
  core->tmp = temp_path_for(path_);
  core->compression = compression;
  core->level = level;
  core->file = std::fopen(core->tmp.c_str(), "wb");
  ATLAS_CHECK(core->file != nullptr, IoError, "cannot create '{}': {}", core->tmp.string(),
              std::strerror(errno));
  std::setvbuf(core->file, nullptr, _IOFBF, 1 << 20);
  impl_->core = std::move(core);
}

NpzWriter::~NpzWriter() = default;  // WriterCore's destructor removes an un-renamed temp file

void NpzWriter::add(const std::string& name, const NdArray& array) {
  WriterCore& c = *impl_->core;
  c.begin_member(name, array.dtype(), array.shape(), array.unicode_chars());
  uint64_t id = c.open->id;
  if (array.nbytes() > 0) c.write_data(id, array.data(), array.nbytes());
  c.finish_member(id);
}

NpzWriter::Stream NpzWriter::begin(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                   size_t unicode_chars) {
  WriterCore& c = *impl_->core;
  c.begin_member(name, dtype, shape, unicode_chars);
  auto s = std::make_unique<Stream::Impl>();
  s->core = impl_->core;
  s->id = c.open->id;
  return Stream(std::move(s));
}

void NpzWriter::close() { impl_->core->close(); }

uint64_t NpzWriter::bytes_written() const {
  WriterCore& c = *impl_->core;
  return c.closed || c.file == nullptr ? 0 : c.tell();
}

NpzWriter::Stream::Stream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NpzWriter::Stream::~Stream() = default;  // an unfinished member is finished by the next add/begin/close
NpzWriter::Stream::Stream(Stream&&) noexcept = default;
NpzWriter::Stream& NpzWriter::Stream::operator=(Stream&&) noexcept = default;

void NpzWriter::Stream::write(const void* data, size_t nbytes) {
  ATLAS_CHECK(impl_ != nullptr, FormatError, "write to a moved-from NPZ stream");
  impl_->get().write_data(impl_->id, data, nbytes);
}

void NpzWriter::Stream::finish() {
  ATLAS_CHECK(impl_ != nullptr, FormatError, "finish of a moved-from NPZ stream");
  impl_->get().finish_member(impl_->id);
}

// ======================================== reader ========================================

struct NpzReader::Impl {
  std::shared_ptr<detail::MappedFile> map;
  std::vector<CentralEntry> entries;
  std::unordered_map<std::string, size_t> by_key;  // key (name without .npy) -> entry
  std::vector<std::string> keys;

  std::string file;  // for messages

  [[noreturn]] void corrupt(const std::string& msg) const {
    ATLAS_FAIL(FormatError, "'{}' is not a valid .npz (zip) archive: {}", file, msg);
  }

  const CentralEntry& find(const std::string& name) const {
    auto it = by_key.find(name);
    if (it == by_key.end()) {
      std::string has;
      for (size_t i = 0; i < keys.size(); ++i) has += (i ? ", " : "") + keys[i];
      ATLAS_FAIL(FormatError, "'{}' has no array '{}' (has: {})", file, name, has);
    }
    return entries[it->second];
  }

  // Offset of the member's bytes, after checking that the local header and data lie in the file.
  uint64_t data_offset(const CentralEntry& e) const {
    const std::byte* base = map->data();
    uint64_t size = map->size();
    if (e.local_offset > size || size - e.local_offset < kLocalHeaderSize ||
        load_u32(base + e.local_offset) != kLocalSig)
      corrupt(fmt::format("member '{}' has no local header at offset {}", e.name, e.local_offset));
    const std::byte* lh = base + e.local_offset;
    uint64_t at = e.local_offset + kLocalHeaderSize + load_u16(lh + 26) + load_u16(lh + 28);
    if (at > size || size - at < e.compressed)
      ATLAS_FAIL(FormatError, "'{}' is truncated: member '{}' needs {} bytes at offset {}, file has {}", file,
                 e.name, e.compressed, at, size);
    return at;
  }

  // Inflates a DEFLATE member into `out` (exactly out_size bytes), from uncompressed byte 0.
  struct Inflater {
    z_stream z{};
    bool ok = false;
    Inflater() { ok = inflateInit2(&z, -MAX_WBITS) == Z_OK; }
    ~Inflater() {
      if (ok) inflateEnd(&z);
    }
  };
  // Inflates into `out`; returns bytes produced (stops when out is full or the stream ends).
  size_t inflate_into(Inflater& inf, const CentralEntry& e, std::byte* out, size_t n) const {
    size_t produced = 0;
    while (produced < n) {
      inf.z.next_out = reinterpret_cast<Bytef*>(out + produced);
      size_t want = std::min<size_t>(n - produced, 1u << 30);
      inf.z.avail_out = static_cast<uInt>(want);
      if (inf.z.avail_in == 0) {
        // Input is fed in <= 1 GiB pieces; total_in tells how far we are.
        uint64_t consumed = inf.z.total_in;
        uint64_t left = e.compressed - consumed;
        inf.z.avail_in = static_cast<uInt>(std::min<uint64_t>(left, 1u << 30));
      }
      int rc = inflate(&inf.z, Z_NO_FLUSH);
      produced += want - inf.z.avail_out;
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && !(rc == Z_BUF_ERROR && inf.z.avail_out == 0))
        corrupt(
            fmt::format("member '{}' does not inflate ({})", e.name, inf.z.msg ? inf.z.msg : "zlib error"));
      if (rc == Z_BUF_ERROR && inf.z.avail_in == 0 && inf.z.total_in >= e.compressed)
        corrupt(fmt::format("member '{}' compressed data ends early", e.name));
    }
    return produced;
  }
  void start_inflate(Inflater& inf, const CentralEntry& e) const {
    if (!inf.ok) ATLAS_FAIL(Error, "cannot initialise zlib inflate");
    inf.z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(map->data() + data_offset(e)));
    inf.z.avail_in = 0;
  }

  std::string what(const CentralEntry& e) const { return fmt::format("'{}' member '{}'", file, e.name); }

  // Reads the npy header of a DEFLATE member; leaves `inf` positioned after it.
  NpyHeader deflate_header(Inflater& inf, const CentralEntry& e, std::string& buf) const {
    start_inflate(inf, e);
    buf.assign(12, '\0');
    size_t got = inflate_into(inf, e, reinterpret_cast<std::byte*>(buf.data()), 12);
    buf.resize(got);
    size_t need = 12;
    if (got >= 10 && buf[6] == 1)
      need = 10 + load_u16(reinterpret_cast<const std::byte*>(buf.data()) + 8);
    else if (got >= 12)
      need = 12 + load_u32(reinterpret_cast<const std::byte*>(buf.data()) + 8);
    if (got == 12 && need > 12) {
      ATLAS_CHECK(need - 12 <= kMaxNpyHeaderBytes, FormatError,
                  "{}: .npy header of {} bytes is larger than the limit of {} bytes (docs/limits.md)", what(e),
                  need - 12, kMaxNpyHeaderBytes);
      ATLAS_CHECK(need <= e.uncompressed, FormatError, "{}: truncated .npy header", what(e));
      buf.resize(need);
      got += inflate_into(inf, e, reinterpret_cast<std::byte*>(buf.data()) + 12, need - 12);
      buf.resize(got);
    }
    NpyHeader h = parse_npy_header(reinterpret_cast<const std::byte*>(buf.data()), buf.size(), what(e));
    // A 1.0 header may be shorter than the 12 bytes read up front: those belong to the data.
    return h;
  }
};

NpzReader::NpzReader(const fs::path& path) : path_(path), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.file = path.string();
  m.map = std::make_shared<detail::MappedFile>(path);
  const std::byte* base = m.map->data();
  uint64_t size = m.map->size();
  if (size >= 6 && std::memcmp(base, "\x93NUMPY", 6) == 0)
    m.corrupt("it is a single .npy file (read it with read_npy)");
  if (size < kEndSize) m.corrupt(fmt::format("file has only {} bytes", size));
  // The end record is the last 22 bytes unless an archive comment (<= 65535 bytes) follows it.
  uint64_t end_at = UINT64_MAX;
  uint64_t lowest = size > kEndSize + kMax16 ? size - kEndSize - kMax16 : 0;
  for (uint64_t p = size - kEndSize + 1; p-- > lowest;) {
    if (load_u32(base + p) == kEndSig && p + kEndSize + load_u16(base + p + 20) <= size) {
      end_at = p;
      break;
    }
  }
  if (end_at == UINT64_MAX) {
    if (size >= 4 && load_u32(base) == kLocalSig)
      ATLAS_FAIL(FormatError, "'{}' is truncated: zip end-of-central-directory record missing", m.file);
    m.corrupt("no zip end-of-central-directory record");
  }
  const std::byte* end = base + end_at;
  uint64_t count = load_u16(end + 10);
  uint64_t cd_size = load_u32(end + 12);
  uint64_t cd_offset = load_u32(end + 16);
  if (end_at >= kEnd64LocatorSize && load_u32(base + end_at - kEnd64LocatorSize) == kEnd64LocatorSig) {
    uint64_t e64 = load_u64(base + end_at - kEnd64LocatorSize + 8);
    if (e64 > size || size - e64 < kEnd64Size || load_u32(base + e64) != kEnd64Sig)
      m.corrupt("bad ZIP64 end-of-central-directory record");
    count = load_u64(base + e64 + 32);
    cd_size = load_u64(base + e64 + 40);
    cd_offset = load_u64(base + e64 + 48);
  }
  ATLAS_CHECK(count <= kMaxNpzMembers, FormatError,
              "'{}' declares {} members, more than the limit of {} (docs/limits.md)", m.file, count,
              kMaxNpzMembers);
  if (cd_offset > size || size - cd_offset < cd_size)
    ATLAS_FAIL(
        FormatError,
        "'{}' is truncated or corrupt: central directory at {} (+{} bytes) lies beyond the end ({} bytes)",
        m.file, cd_offset, cd_size, size);
  uint64_t p = cd_offset, cd_end = cd_offset + cd_size;
  m.entries.reserve(std::min<uint64_t>(count, cd_size / kCentralHeaderSize));
  for (uint64_t i = 0; i < count; ++i) {
    if (cd_end - p < kCentralHeaderSize || load_u32(base + p) != kCentralSig)
      m.corrupt(fmt::format("central directory entry {} of {} is damaged", i, count));
    const std::byte* h = base + p;
    uint16_t flags = load_u16(h + 8);
    CentralEntry e;
    e.method = load_u16(h + 10);
    e.crc = load_u32(h + 16);
    e.compressed = load_u32(h + 20);
    e.uncompressed = load_u32(h + 24);
    size_t name_len = load_u16(h + 28), extra_len = load_u16(h + 30), comment_len = load_u16(h + 32);
    e.local_offset = load_u32(h + 42);
    if (cd_end - p < kCentralHeaderSize + name_len + extra_len + comment_len)
      m.corrupt(fmt::format("central directory entry {} of {} is damaged", i, count));
    e.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_len);
    const std::byte* x = h + kCentralHeaderSize + name_len;
    for (size_t k = 0; k + 4 <= extra_len;) {
      uint16_t tag = load_u16(x + k), len = load_u16(x + k + 2);
      if (k + 4 + len > extra_len) m.corrupt(fmt::format("member '{}' has a damaged extra field", e.name));
      if (tag == kZip64Tag) {
        const std::byte* f = x + k + 4;
        size_t left = len;
        auto take = [&](uint64_t& v) {
          if (v != kMax32) return;
          if (left < 8) m.corrupt(fmt::format("member '{}' has a short ZIP64 field", e.name));
          v = load_u64(f);
          f += 8;
          left -= 8;
        };
        take(e.uncompressed);
        take(e.compressed);
        take(e.local_offset);
      }
      k += 4 + len;
    }
    if (flags & 1) ATLAS_FAIL(FormatError, "'{}': member '{}' is encrypted", m.file, e.name);
    if (e.method != 0 && e.method != 8)
      ATLAS_FAIL(FormatError, "'{}': member '{}' uses compression method {} (supported: 0 stored, 8 deflate)",
                 m.file, e.name, e.method);
    if (e.method == 0 && e.compressed != e.uncompressed)
      m.corrupt(fmt::format("stored member '{}' has compressed size {} != size {}", e.name, e.compressed,
                            e.uncompressed));
    if (e.method == 8 && (e.compressed > UINT64_MAX / kMaxDeflateRatio ||
                          e.uncompressed > e.compressed * kMaxDeflateRatio + kDeflateSlack))
      ATLAS_FAIL(FormatError,
                 "'{}': member '{}' declares {} bytes from {} compressed bytes, more than DEFLATE can produce "
                 "(at most {}:1): corrupt file or zip bomb",
                 m.file, e.name, e.uncompressed, e.compressed, kMaxDeflateRatio);
    check_member_name(m.file, e.name);
    std::string key = e.name.size() > 4 && e.name.compare(e.name.size() - 4, 4, ".npy") == 0
                          ? e.name.substr(0, e.name.size() - 4)
                          : e.name;
    // Two members of one name would let different readers see different arrays under one key.
    ATLAS_CHECK(m.by_key.emplace(key, m.entries.size()).second, FormatError,
                "'{}': member name '{}' occurs twice", m.file, e.name);
    m.keys.push_back(key);
    m.entries.push_back(std::move(e));
    p += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
}

NpzReader::~NpzReader() = default;
NpzReader::NpzReader(NpzReader&&) noexcept = default;
NpzReader& NpzReader::operator=(NpzReader&&) noexcept = default;

std::vector<std::string> NpzReader::names() const { return impl_->keys; }

bool NpzReader::contains(const std::string& name) const { return impl_->by_key.count(name) > 0; }

NpyHeader NpzReader::header(const std::string& name) const {
  const Impl& m = *impl_;
  const CentralEntry& e = m.find(name);
  if (e.method == 0) {
    uint64_t at = m.data_offset(e);
    return parse_npy_header(m.map->data() + at, e.uncompressed, m.what(e));
  }
  Impl::Inflater inf;
  std::string buf;
  return m.deflate_header(inf, e, buf);
}

NdArray NpzReader::get(const std::string& name) const {
  const Impl& m = *impl_;
  const CentralEntry& e = m.find(name);
  std::string what = m.what(e);
  if (e.method == 0) {
    uint64_t at = m.data_offset(e);
    const std::byte* npy = m.map->data() + at;
    NpyHeader h = parse_npy_header(npy, e.uncompressed, what);
    uint64_t nbytes = h.data_bytes(what);
    ATLAS_CHECK(e.uncompressed - h.data_offset == nbytes, FormatError,
                "{}: member holds {} data bytes, header (shape and dtype) needs {}", what,
                e.uncompressed - h.data_offset, nbytes);
    return detail::array_from_bytes(h, npy + h.data_offset, std::shared_ptr<const void>(m.map, m.map.get()),
                                    what);
  }
  Impl::Inflater inf;
  std::string head;
  NpyHeader h = m.deflate_header(inf, e, head);
  uint64_t nbytes = h.data_bytes(what);
  ATLAS_CHECK(e.uncompressed - h.data_offset == nbytes, FormatError,
              "{}: member holds {} data bytes, header (shape and dtype) needs {}", what,
              e.uncompressed - h.data_offset, nbytes);
  // Plain arrays inflate straight into the result; Fortran order and byte strings go through a raw
  // buffer that array_from_bytes converts.
  const bool plain = !h.fortran_order && !h.byte_string;
  NdArray a;
  std::unique_ptr<std::byte[]> raw;
  std::byte* out;
  if (plain) {
    a = NdArray(h.dtype, h.shape, h.unicode_chars);
    out = a.mutable_data();
  } else {
    raw.reset(new std::byte[std::max<uint64_t>(nbytes, 1)]);
    out = raw.get();
  }
  // The first read may have taken bytes past a short 1.0 header: they start the data.
  size_t early = head.size() > h.data_offset ? head.size() - h.data_offset : 0;
  early = std::min<size_t>(early, nbytes);
  std::memcpy(out, head.data() + h.data_offset, early);
  size_t got = early + m.inflate_into(inf, e, out + early, nbytes - early);
  ATLAS_CHECK(got == nbytes, FormatError, "{}: inflated {} data bytes, expected {}", what, got, nbytes);
  // The output stops at the declared size; a stream that goes on is a zip bomb or a corrupt member.
  std::byte extra[1];
  ATLAS_CHECK(m.inflate_into(inf, e, extra, 1) == 0, FormatError,
              "{}: DEFLATE data inflates to more than the declared {} bytes (corrupt file or zip bomb)", what,
              e.uncompressed);
  uint32_t crc = crc32_update(0, head.data(), std::min<size_t>(head.size(), h.data_offset));
  crc = crc32_update(crc, out, nbytes);
  ATLAS_CHECK(crc == e.crc, FormatError,
              "{}: CRC-32 mismatch (stored {:08x}, computed {:08x}); the file is corrupt", what, e.crc, crc);
  if (!plain) return detail::array_from_bytes(h, out, nullptr, what);
  if (h.big_endian) {
    size_t width = h.dtype == DType::Unicode ? 4 : a.itemsize();
    detail::byteswap_elements(out, nbytes / std::max<size_t>(width, 1), width);
  }
  return a;
}

}  // namespace atlas::io
