#include "corpus/byte_source.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "atlas/core/error.hpp"

namespace atlas::corpus::detail {

namespace {
constexpr size_t kBufferSize = 1 << 16;
}

ByteSource::ByteSource(int fd, bool owned, std::string name)
    : fd_(fd), owned_(owned), name_(std::move(name)), buf_(kBufferSize) {}

ByteSource::~ByteSource() {
  if (owned_) ::close(fd_);
}

bool ByteSource::fill() {
  if (eof_) return pos_ < end_;
  // Keep unread bytes (peek_bytes may ask for more than are buffered) and append after them.
  if (pos_ > 0) {
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
  for (;;) {
    ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
    if (n < 0 && errno == EINTR) continue;
    ATLAS_CHECK(n >= 0, IoError, "cannot read '{}': {}", name_, std::strerror(errno));
    if (n == 0) {
      eof_ = true;
      return pos_ < end_;
    }
    end_ += static_cast<size_t>(n);
    return true;
  }
}

bool ByteSource::read_line(std::string& line) {
  line.clear();
  bool any = false;
  for (;;) {
    if (pos_ == end_ && !fill()) return any;
    any = true;
    const char* start = buf_.data() + pos_;
    const void* nl = std::memchr(start, '\n', end_ - pos_);
    if (nl) {
      size_t len = static_cast<const char*>(nl) - start;
      line.append(start, len);
      pos_ += len + 1;
      return true;
    }
    line.append(start, end_ - pos_);
    pos_ = end_;
  }
}

std::string ByteSource::peek_bytes(size_t n) {
  while (end_ - pos_ < n && !eof_) {
    size_t before = end_ - pos_;
    if (!fill() || end_ - pos_ == before) break;
  }
  return std::string(buf_.data() + pos_, std::min(n, end_ - pos_));
}

void ByteSource::skip(size_t n) {
  for (size_t i = 0; i < n && get() != kEof; ++i) {
  }
}

}  // namespace atlas::corpus::detail
