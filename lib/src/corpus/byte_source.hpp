#pragma once
// Buffered reads from a file descriptor (a file or standard input). read(2) rather than fread so
// that a document piped in by a slow producer is handed on as soon as its line is complete, instead
// of waiting for a full buffer.
#include <string>
#include <vector>

namespace atlas::corpus::detail {

class ByteSource {
 public:
  static constexpr int kEof = -1;

  /// Takes ownership of `fd` when `owned` (standard input is not closed).
  ByteSource(int fd, bool owned, std::string name);
  ~ByteSource();
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  int get() {
    if (pos_ == end_ && !fill()) return kEof;
    return static_cast<unsigned char>(buf_[pos_++]);
  }
  int peek() {
    if (pos_ == end_ && !fill()) return kEof;
    return static_cast<unsigned char>(buf_[pos_]);
  }
  /// The next line without its '\n' (a '\r' before it is kept). False at the end of the input when
  /// nothing is left, so a final newline does not yield an empty last line.
  bool read_line(std::string& line);
  /// Up to `n` bytes from the current position without consuming them (fewer at the end).
  std::string peek_bytes(size_t n);
  void skip(size_t n);

 private:
  // Reads more bytes after the buffered ones; false at the end of the input. IoError on failure.
  bool fill();

  int fd_;
  bool owned_;
  std::string name_;
  std::vector<char> buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
};

}  // namespace atlas::corpus::detail
