#include "atlas/core/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "atlas/core/error.hpp"

namespace atlas {

namespace {
constexpr double kBarRedrawS = 0.1;
constexpr int kMinBarInner = 10;
constexpr int kMaxBarInner = 40;

// 4736 -> "4,736"
std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

// 12 -> "0:12", 3725 -> "1:02:05"
std::string clock_time(double seconds) {
  auto s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

// 12 -> "12 s", 303 -> "5 min 3 s", 7500 -> "2 h 5 min"
std::string spoken_time(double seconds) {
  auto s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{} min {} s", s / 60, s % 60);
  return fmt::format("{} h {} min", s / 3600, s / 60 % 60);
}

double interval_from_env(double fallback) {
  const char* v = std::getenv("ATLAS_PROGRESS_INTERVAL");
  if (!v || !*v) return fallback;
  char* end = nullptr;
  double d = std::strtod(v, &end);
  ATLAS_CHECK(end && *end == '\0' && std::isfinite(d) && d >= 0, ConfigError,
              "ATLAS_PROGRESS_INTERVAL='{}': expected a non-negative number of seconds", v);
  return d;
}
}  // namespace

Progress::Progress(int64_t total_documents, ProgressOptions options)
    : total_(std::max<int64_t>(0, total_documents)), options_(std::move(options)) {
  options_.plain_interval_s = interval_from_env(options_.plain_interval_s);
  if (!options_.out) options_.quiet = true;
  if (!options_.quiet)
    bar_ = options_.force_mode == -1 ? ::isatty(::fileno(options_.out)) == 1 : options_.force_mode == 1;
  start_ = now();
  last_output_ = start_;
}

Progress::~Progress() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (bar_ && drawn_ && !finished_) write("\n");
}

double Progress::now() const {
  if (options_.clock) return options_.clock();
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

int Progress::width() const {
  if (options_.width > 0) return options_.width;
  struct winsize ws {};
  if (::ioctl(::fileno(options_.out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    int n = std::atoi(c);
    if (n > 0) return n;
  }
  return 80;
}

void Progress::write(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), options_.out);
  std::fflush(options_.out);
}

void Progress::update(int64_t documents_done, int64_t documents_failed, int64_t tokens_done) {
  if (options_.quiet) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  done_ = documents_done;
  failed_ = documents_failed;
  tokens_ = tokens_done;
  double t = now();
  if (bar_) {
    if (drawn_ && t - last_output_ < kBarRedrawS) return;
    write("\r" + bar_line(width(), false) + "\x1b[K");
    drawn_ = true;
  } else {
    if (t - last_output_ < options_.plain_interval_s) return;
    write(plain_line(false) + "\n");
  }
  last_output_ = t;
}

void Progress::finish() {
  if (options_.quiet) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (bar_)
    write("\r" + bar_line(width(), true) + "\x1b[K\n");
  else
    write(plain_line(true) + "\n");
}

std::string Progress::bar_line(int columns, bool final_line) const {
  double elapsed = now() - start_;
  // Segments after the bar, most important first (dropped from the end when the line is too long);
  // `place` is the display order: "37/64 docs  4,736 tok  1,234 tok/s  ETA 0:12  (1 failed)".
  struct Segment {
    int place;
    std::string text;
  };
  std::vector<Segment> parts;
  parts.push_back({0, total_ > 0 ? fmt::format("{}/{} docs", done_, total_) : fmt::format("{} docs", done_)});
  if (failed_ > 0) parts.push_back({4, fmt::format("({} failed)", failed_)});
  if (final_line)
    parts.push_back({3, "in " + clock_time(elapsed)});
  else if (total_ > 0 && done_ > 0 && done_ < total_)
    parts.push_back({3, "ETA " + clock_time(elapsed / double(done_) * double(total_ - done_))});
  parts.push_back({1, with_commas(tokens_) + " tok"});
  if (elapsed > 0) parts.push_back({2, with_commas(std::llround(double(tokens_) / elapsed)) + " tok/s"});
  auto join = [&](size_t keep) {
    std::string out;
    for (int place = 0; place <= 4; ++place)
      for (size_t i = 0; i < keep; ++i)
        if (parts[i].place == place) out += (out.empty() ? "" : "  ") + parts[i].text;
    return out;
  };
  // The last column stays empty: writing into it makes some terminals wrap before the \r.
  const size_t limit = static_cast<size_t>(std::max(columns - 1, 1));
  // Narrower terminals lose the bar first, then the least important segments.
  const std::string head = options_.label + " ";
  const std::string full = join(parts.size());
  if (total_ > 0) {
    long inner = static_cast<long>(limit) - static_cast<long>(head.size() + full.size() + 3);
    if (inner >= kMinBarInner) {
      inner = std::min<long>(inner, kMaxBarInner);
      double frac = std::min(1.0, double(done_) / double(total_));
      auto filled = static_cast<long>(frac * double(inner));
      std::string bar(static_cast<size_t>(inner), ' ');
      for (long i = 0; i < filled; ++i) bar[static_cast<size_t>(i)] = '=';
      if (filled < inner) bar[static_cast<size_t>(filled)] = '>';
      return head + "[" + bar + "] " + full;
    }
  }
  for (size_t keep = parts.size(); keep > 1; --keep) {
    std::string line = head + join(keep);
    if (line.size() <= limit) return line;
  }
  return (head + join(1)).substr(0, limit);
}

std::string Progress::plain_line(bool final_line) const {
  double elapsed = now() - start_;
  std::string out = options_.label + ": ";
  out += total_ > 0 ? fmt::format("{}/{} documents", done_, total_) : fmt::format("{} documents", done_);
  if (failed_ > 0) out += fmt::format(" ({} failed)", failed_);
  out += fmt::format(", {} tokens", tokens_);
  if (elapsed > 0) out += fmt::format(", {} tokens/s", std::llround(double(tokens_) / elapsed));
  if (final_line)
    out += ", done in " + spoken_time(elapsed);
  else if (total_ > 0 && done_ > 0 && done_ < total_)
    out += ", ETA " + spoken_time(elapsed / double(done_) * double(total_ - done_));
  return out;
}

}  // namespace atlas
