#include "atlas/core/fs.hpp"

#include <openssl/evp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>

#include "atlas/core/error.hpp"

namespace atlas {
namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  ATLAS_CHECK(in.good(), IoError, "cannot open '{}': {}", path.string(), std::strerror(errno));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ATLAS_CHECK(!in.bad(), IoError, "cannot read '{}': {}", path.string(), std::strerror(errno));
  return data;
}

void check_output_path(const fs::path& path) {
  ATLAS_CHECK(!path.empty(), InputError, "output path is empty");
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  ATLAS_CHECK(fs::is_directory(dir, ec), InputError,
              "cannot write '{}': directory '{}' does not exist", path.string(), dir.string());
  ATLAS_CHECK(::access(dir.c_str(), W_OK) == 0, InputError,
              "cannot write '{}': directory '{}' is not writable", path.string(), dir.string());
  ATLAS_CHECK(!fs::is_directory(path, ec), InputError, "cannot write '{}': it is a directory",
              path.string());
}

fs::path temp_path_for(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  fs::path dir = path.parent_path();
  std::string name = fmt::format(".{}.tmp-{}-{}", path.filename().string(), ::getpid(), counter++);
  return dir.empty() ? fs::path(name) : dir / name;
}

void remove_stale_temps(const fs::path& path) {
  // ".NAME.tmp-PID-N" of a process that no longer runs (SIGKILL, power loss) will never be renamed.
  const std::string prefix = "." + path.filename().string() + ".tmp-";
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      std::error_code rm;
      fs::remove(it->path(), rm);
    }
  }
}

void write_atomically(const fs::path& path, const std::function<void(const fs::path& tmp)>& write) {
  check_output_path(path);
  fs::path tmp = temp_path_for(path);
  try {
    write(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    ATLAS_FAIL(IoError, "cannot rename '{}' to '{}': {}", tmp.string(), path.string(), ec.message());
  }
  remove_stale_temps(path);
}

std::string sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  ATLAS_CHECK(in.good(), IoError, "cannot open '{}': {}", path.string(), std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  }
  ATLAS_CHECK(!in.bad(), IoError, "cannot read '{}'", path.string());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

}  // namespace atlas
