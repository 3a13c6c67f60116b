#pragma once
/// Progress of a long job (documents of a corpus), on stderr: a redrawn bar on a terminal, a plain
/// line every few seconds in a log file or under Slurm. The one exception to "the library never
/// prints": the caller owns the Progress, chooses the stream and can make it quiet.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>

namespace atlas {

struct ProgressOptions {
  std::FILE* out = stderr;
  bool quiet = false;
  /// -1 auto (a bar when isatty(fileno(out))), 0 plain lines, 1 bar.
  int force_mode = -1;
  /// Plain mode: seconds between lines. The environment variable ATLAS_PROGRESS_INTERVAL overrides it.
  double plain_interval_s = 10;
  std::string label = "extract";
  /// Bar mode: columns to fit; 0 = the terminal's (TIOCGWINSZ), else $COLUMNS, else 80.
  int width = 0;
  /// Seconds on a monotonic clock; empty = std::chrono::steady_clock. Tests inject their own.
  std::function<double()> clock;
};

/// Thread-safe: update() may be called from worker threads.
class Progress {
 public:
  /// `total_documents` 0 = unknown (no bar, no ETA). ConfigError if ATLAS_PROGRESS_INTERVAL is set
  /// but is not a non-negative number.
  explicit Progress(int64_t total_documents, ProgressOptions options = {});
  /// Ends an unfinished bar's line (without the final report) so that later output starts clean.
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// Cheap; output is throttled (the bar at most ~10 times a second, plain lines every interval).
  /// `documents_done` counts every finished document, the failed ones included.
  void update(int64_t documents_done, int64_t documents_failed, int64_t tokens_done);
  /// Final state: the bar redrawn complete and ended with a newline; plain mode prints a last line.
  /// Later calls do nothing.
  void finish();

 private:
  double now() const;
  int width() const;
  std::string bar_line(int width, bool final_line) const;
  std::string plain_line(bool final_line) const;
  void write(const std::string& s);

  int64_t total_;
  ProgressOptions options_;
  bool bar_ = false;
  double start_ = 0;
  double last_output_ = 0;
  bool drawn_ = false;
  bool finished_ = false;
  int64_t done_ = 0;
  int64_t failed_ = 0;
  int64_t tokens_ = 0;
  mutable std::mutex mutex_;
};

}  // namespace atlas
