// Finds and dlopen()s libatlas_torch.so, the model runtime (see backend.hpp and lib/CMakeLists.txt).
// Torch-free: this file is part of the `atlas` binary; torch_module.cpp is the other side.
#include "atlas/extract/backend.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "atlas/core/error.hpp"

namespace atlas::extract {
namespace {
namespace fs = std::filesystem;

constexpr const char* kModuleName = "libatlas_torch.so";
constexpr const char* kEntryPoint = "atlas_torch_backend";

bool inside(const fs::path& file, const fs::path& dir) {
  const auto rel = file.lexically_normal().lexically_relative(fs::path(dir).lexically_normal());
  return !rel.empty() && *rel.begin() != "..";
}

std::vector<std::string> candidate_paths() {
  std::vector<std::string> paths;
  auto add = [&](const fs::path& p) {
    const std::string s = p.lexically_normal().string();
    for (const auto& q : paths)
      if (q == s) return;
    paths.push_back(s);
  };
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
#ifdef ATLAS_TORCH_BUILD_PATH
  // A binary of the build tree uses the module built next to it, never an older installed one.
  if (!ec && inside(exe, ATLAS_BUILD_DIR)) add(ATLAS_TORCH_BUILD_PATH);
#endif
  if (!ec) add(exe.parent_path() / ".." / "lib" / kModuleName);
#ifdef ATLAS_TORCH_INSTALL_PATH
  add(ATLAS_TORCH_INSTALL_PATH);
#endif
  return paths;
}

// Loads one module file; returns the backend or sets `failure`.
const Backend* load(const std::string& path, std::string& failure) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = dlerror();
    failure = fmt::format("cannot load the model runtime '{}': {}", path, err ? err : "unknown dlopen error");
    return nullptr;
  }
  using Entry = const Backend* (*)();
  auto entry = reinterpret_cast<Entry>(dlsym(handle, kEntryPoint));
  if (!entry) {
    failure = fmt::format("cannot load the model runtime '{}': it has no symbol '{}'", path, kEntryPoint);
    return nullptr;
  }
  const Backend* backend = entry();
  if (!backend || backend->abi_version != kBackendAbiVersion || backend->size != sizeof(Backend)) {
    failure = fmt::format(
        "cannot load the model runtime '{}': it has ABI version {} (table of {} bytes), this atlas expects {} "
        "({} bytes); rebuild or reinstall both together",
        path, backend ? backend->abi_version : -1, backend ? backend->size : 0, kBackendAbiVersion,
        sizeof(Backend));
    return nullptr;
  }
  return backend;
}

// OpenBLAS (Debian's 0.3.21, DYNAMIC_ARCH) picks its kernels by CPU model at load time and falls
// back to the SSE3 "Prescott" kernels for Intel models it does not know (Emerald Rapids, model 207,
// among them): sgemm then runs at about a third of the speed of its AVX-512 kernels. Before the
// runtime (and with it OpenBLAS) is loaded, an unset OPENBLAS_CORETYPE is set from the CPU's
// features, with the choice OpenBLAS itself makes for the Intel models it knows: AVX-512 BF16 ->
// Cooperlake, AVX-512 -> SkylakeX, AVX2 + FMA -> Haswell. A value the user set is left alone; other
// CPUs (AMD, older Intel) are left to OpenBLAS.
// (0.3.21 has no name "Cooperlake" and reaches it through its feature fallback, which says "Core not
// found" under OPENBLAS_VERBOSE only; later versions know the name.) README.md, "Platform notes".
void choose_blas_kernels() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("ATLAS_KEEP_BLAS_CORETYPE")) return;
  __builtin_cpu_init();
  if (!__builtin_cpu_is("intel")) return;
  const char* core = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq")) {
    core = __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    core = "Haswell";
  }
  if (core) setenv("OPENBLAS_CORETYPE", core, 0);
#endif
}

}  // namespace

const Backend& torch_backend() {
  static std::once_flag once;
  static const Backend* backend = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    choose_blas_kernels();
    // An explicit override is used alone: falling back would hide that it is wrong.
    if (const char* env = std::getenv("ATLAS_TORCH_MODULE"); env && *env) {
      backend = load(env, failure);
      if (!backend) failure += " (from ATLAS_TORCH_MODULE)";
      return;
    }
    const auto paths = candidate_paths();
    for (const auto& path : paths) {
      std::error_code ec;
      // A module that is there but does not load is the error to report, not a reason to go on.
      if (!fs::exists(path, ec)) continue;
      backend = load(path, failure);
      return;
    }
    std::string looked;
    for (const auto& p : paths) looked += (looked.empty() ? "" : ", ") + p;
    failure = fmt::format("cannot load the model runtime '{}': not found (looked in {}; set ATLAS_TORCH_MODULE)",
                          kModuleName, looked);
  });
  ATLAS_CHECK(backend, Error, "{}", failure);
  return *backend;
}

}  // namespace atlas::extract
