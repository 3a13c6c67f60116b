// Start-up cost of the atlas binary against baselines measured in the same run:
//   1. `atlas --version` vs. `/bin/true` (what starting any process costs): the binary links no
//      LibTorch, so this ratio stays small;
//   2. a 1-token `atlas extract` on the embedded model vs. `atlas --version`: what loading the model
//      runtime (libatlas_torch.so and LibTorch's ~290 libraries) plus the job costs.
#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

// Median wall time of `runs` runs of argv, stdout and stderr discarded.
double median_seconds(std::vector<std::string> argv, int runs) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    pid_t pid = 0;
    int status = 0;
    if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0 || waitpid(pid, &status, 0) < 0 ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fmt::print(stderr, "bench_startup: '{}' failed\n", fmt::join(argv, " "));
      std::exit(1);
    }
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  posix_spawn_file_actions_destroy(&fa);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main() {
  const std::string atlas = ATLAS_BENCH_BINARY;
  const std::string model = std::string(ATLAS_BENCH_SOURCE_DIR) + "/examples/models/stories260K";
  const std::string out = (std::filesystem::temp_directory_path() / "atlas_bench_startup.npz").string();
  constexpr int kRuns = 11;
  const double t_true = median_seconds({"/bin/true"}, kRuns);
  const double t_version = median_seconds({atlas, "--version"}, kRuns);
  const double t_help = median_seconds({atlas, "--help"}, kRuns);
  const double t_extract = median_seconds({atlas, "extract", "--model", model, "--text", "hi", "-o", out}, kRuns);
  std::filesystem::remove(out);
  fmt::print("median of {} runs\n", kRuns);
  fmt::print("  /bin/true                 {:8.1f} ms   (baseline: starting a process)\n", t_true * 1e3);
  fmt::print("  atlas --version           {:8.1f} ms   {:6.1f}x /bin/true\n", t_version * 1e3, t_version / t_true);
  fmt::print("  atlas --help              {:8.1f} ms   {:6.1f}x /bin/true\n", t_help * 1e3, t_help / t_true);
  fmt::print("  atlas extract (1 token)   {:8.1f} ms   {:6.1f}x atlas --version\n", t_extract * 1e3,
             t_extract / t_version);
  return 0;
}
