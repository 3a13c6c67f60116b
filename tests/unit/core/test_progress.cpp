// Progress reporter: plain lines for logs, a redrawn bar for terminals, nothing when quiet.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "atlas/core/error.hpp"
#include "atlas/core/progress.hpp"

using namespace atlas;

namespace {

// A tmpfile standing in for stderr, and a clock the test moves by hand.
struct Capture {
  std::FILE* file = std::tmpfile();
  double t = 100.0;
  Capture() {
    REQUIRE(file != nullptr);
    ::unsetenv("ATLAS_PROGRESS_INTERVAL");
  }
  ~Capture() { std::fclose(file); }
  ProgressOptions options(int mode, double interval = 0) {
    ProgressOptions o;
    o.out = file;
    o.force_mode = mode;
    o.plain_interval_s = interval;
    o.clock = [this] { return t; };
    return o;
  }
  std::string text() {
    std::fflush(file);
    long size = std::ftell(file);
    std::string out(static_cast<size_t>(size), '\0');
    std::rewind(file);
    size_t n = std::fread(out.data(), 1, out.size(), file);
    out.resize(n);
    std::fseek(file, 0, SEEK_END);
    return out;
  }
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      if (i > start) out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

// The visible text of each bar redraw: between "\r" and the clear-to-end-of-line sequence.
std::vector<std::string> bar_frames(const std::string& s) {
  std::vector<std::string> out;
  for (const auto& part : split(s, '\r')) {
    auto end = part.find("\x1b[K");
    if (end != std::string::npos) out.push_back(part.substr(0, end));
  }
  return out;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("plain mode: one line per update with interval 0, and a last line at finish") {
  Capture cap;
  Progress p(64, cap.options(0, 0));
  cap.t += 4;
  p.update(37, 1, 4936);
  cap.t += 4;
  p.update(64, 1, 9872);
  p.finish();
  auto lines = split(cap.text(), '\n');
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "extract: 37/64 documents (1 failed), 4936 tokens, 1234 tokens/s, ETA 3 s");
  CHECK(lines[1] == "extract: 64/64 documents (1 failed), 9872 tokens, 1234 tokens/s");
  CHECK(lines[2] == "extract: 64/64 documents (1 failed), 9872 tokens, 1234 tokens/s, done in 8 s");
  CHECK(cap.text().find('\r') == std::string::npos);
  p.finish();  // a second finish adds nothing
  CHECK(split(cap.text(), '\n').size() == 3);
}

TEST_CASE("plain mode: lines are throttled to the interval; ETA and failures only when known") {
  Capture cap;
  Progress p(1000, cap.options(0, 10));
  cap.t += 1;
  p.update(1, 0, 10);
  cap.t += 4;
  p.update(2, 0, 20);
  CHECK(cap.text().empty());
  cap.t += 5.5;
  p.update(100, 0, 1050);
  cap.t += 3;
  p.update(150, 0, 1500);
  auto lines = split(cap.text(), '\n');
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "extract: 100/1000 documents, 1050 tokens, 100 tokens/s, ETA 1 min 35 s");
  p.finish();
  lines = split(cap.text(), '\n');
  REQUIRE(lines.size() == 2);
  CHECK(lines[1] == "extract: 150/1000 documents, 1500 tokens, 111 tokens/s, done in 14 s");
}

TEST_CASE("plain mode: unknown total shows counts and rate, no ETA") {
  Capture cap;
  auto o = cap.options(0, 0);
  o.label = "corpus";
  Progress p(0, o);
  cap.t += 2;
  p.update(5, 2, 100);
  CHECK(cap.text() == "corpus: 5 documents (2 failed), 100 tokens, 50 tokens/s\n");
}

TEST_CASE("ATLAS_PROGRESS_INTERVAL overrides the interval; a bad value is a ConfigError") {
  Capture cap;
  ::setenv("ATLAS_PROGRESS_INTERVAL", "0", 1);
  {
    Progress p(10, cap.options(0, 3600));
    cap.t += 1;
    p.update(1, 0, 5);
    cap.t += 1;
    p.update(2, 0, 10);
    CHECK(split(cap.text(), '\n').size() == 2);
  }
  ::setenv("ATLAS_PROGRESS_INTERVAL", "soon", 1);
  CHECK_THROWS_AS(Progress(10, cap.options(0)), ConfigError);
  ::setenv("ATLAS_PROGRESS_INTERVAL", "-1", 1);
  CHECK_THROWS_AS(Progress(10, cap.options(0)), ConfigError);
  ::unsetenv("ATLAS_PROGRESS_INTERVAL");
}

TEST_CASE("bar mode: redrawn with \\r, counts with separators, rate, ETA, failures; newline at finish") {
  Capture cap;
  Progress p(64, cap.options(1));
  cap.t += 4;
  p.update(37, 1, 4936);
  std::string out = cap.text();
  CHECK(out.front() == '\r');
  CHECK(out.find('\n') == std::string::npos);
  auto frames = bar_frames(out);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].rfind("extract [", 0) == 0);
  CHECK(frames[0].find("=>") != std::string::npos);
  CHECK(frames[0].find("] 37/64 docs  4,936 tok  1,234 tok/s  ETA 0:03  (1 failed)") != std::string::npos);
  CHECK(frames[0].size() <= 79);  // default width 80 (a tmpfile is no terminal), last column free

  cap.t += 4;
  p.update(64, 1, 9872);
  p.finish();
  out = cap.text();
  CHECK(out.back() == '\n');
  CHECK(count(out, "\n") == 1);
  frames = bar_frames(out);
  REQUIRE(frames.size() == 3);
  CHECK(frames[2].find("] 64/64 docs  9,872 tok  1,234 tok/s  in 0:08  (1 failed)") != std::string::npos);
  CHECK(frames[2].find('>') == std::string::npos);  // a full bar
  CHECK(frames[2].find("[====") != std::string::npos);
}

TEST_CASE("bar mode: at most ~10 redraws a second") {
  Capture cap;
  Progress p(100, cap.options(1));
  cap.t += 0.01;
  p.update(1, 0, 1);  // the first update draws at once
  cap.t += 0.02;
  p.update(2, 0, 2);
  cap.t += 0.03;
  p.update(3, 0, 3);
  CHECK(bar_frames(cap.text()).size() == 1);
  cap.t += 0.1;
  p.update(4, 0, 4);
  auto frames = bar_frames(cap.text());
  REQUIRE(frames.size() == 2);
  CHECK(frames[1].find(" 4/100 docs") != std::string::npos);
}

TEST_CASE("bar mode: fitted to the width; narrow terminals lose the bar, then the least useful parts") {
  for (int width : {200, 80, 60, 40, 24, 12}) {
    CAPTURE(width);
    Capture cap;
    auto o = cap.options(1);
    o.width = width;
    Progress p(64, o);
    cap.t += 4;
    p.update(37, 1, 4936);
    auto frames = bar_frames(cap.text());
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].size() <= size_t(width - 1));
    if (width >= 80) CHECK(frames[0].find('[') != std::string::npos);
    if (width <= 60) CHECK(frames[0].find('[') == std::string::npos);
    if (width >= 24) CHECK(frames[0].find("37/64 docs") != std::string::npos);
    if (width == 40) CHECK(frames[0] == "extract 37/64 docs  (1 failed)");
  }
  Capture wide;
  auto o = wide.options(1);
  o.width = 300;
  Progress p(10, o);
  p.update(5, 0, 0);
  auto frames = bar_frames(wide.text());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].size() < 120);  // the bar itself does not stretch to any width
}

TEST_CASE("bar mode: unknown total has no bar and no ETA") {
  Capture cap;
  Progress p(0, cap.options(1));
  cap.t += 2;
  p.update(5, 0, 1000);
  auto frames = bar_frames(cap.text());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0] == "extract 5 docs  1,000 tok  500 tok/s");
}

TEST_CASE("bar mode: destroying an unfinished bar ends its line") {
  Capture cap;
  {
    Progress p(10, cap.options(1));
    p.update(3, 0, 30);
  }
  std::string out = cap.text();
  CHECK(out.back() == '\n');
  CHECK(count(out, "\n") == 1);
  CHECK(out.find("3/10 docs") != std::string::npos);
}

TEST_CASE("quiet prints nothing in either mode") {
  for (int mode : {0, 1, -1}) {
    CAPTURE(mode);
    Capture cap;
    auto o = cap.options(mode, 0);
    o.quiet = true;
    {
      Progress p(10, o);
      cap.t += 1;
      p.update(5, 1, 50);
      p.update(10, 1, 100);
      p.finish();
    }
    CHECK(cap.text().empty());
  }
}

TEST_CASE("auto mode picks plain lines when the stream is not a terminal") {
  Capture cap;
  Progress p(2, cap.options(-1, 0));
  cap.t += 1;
  p.update(1, 0, 7);
  CHECK(cap.text() == "extract: 1/2 documents, 7 tokens, 7 tokens/s, ETA 1 s\n");
}
