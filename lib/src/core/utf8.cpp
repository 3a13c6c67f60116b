#include "atlas/core/utf8.hpp"

#include "atlas/core/error.hpp"

namespace atlas::utf8 {
namespace {
// Decodes one code point at s[i]; returns its byte length, or 0 when the sequence is invalid.
size_t decode_one(std::string_view s, size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len;
  char32_t min;
  if (b0 < 0x80) { cp = b0; return 1; }
  if ((b0 & 0xE0) == 0xC0) { len = 2; cp = b0 & 0x1F; min = 0x80; }
  else if ((b0 & 0xF0) == 0xE0) { len = 3; cp = b0 & 0x0F; min = 0x800; }
  else if ((b0 & 0xF8) == 0xF0) { len = 4; cp = b0 & 0x07; min = 0x10000; }
  else return 0;
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}
}  // namespace

size_t first_invalid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t n = decode_one(s, i, cp);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

bool valid(std::string_view s) { return first_invalid(s) == std::string_view::npos; }

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t n = decode_one(s, i, cp);
    ATLAS_CHECK(n != 0, InputError, "text is not valid UTF-8 (bad byte 0x{:02x} at byte offset {})",
                static_cast<unsigned char>(s[i]), i);
    out.push_back(cp);
    i += n;
  }
  return out;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) append(out, cp);
  return out;
}

std::vector<int64_t> byte_to_char_index(std::string_view s) {
  std::vector<int64_t> idx(s.size() + 1, 0);
  int64_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    idx[i] = chars;
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++chars;
    // A continuation byte maps to the code point it belongs to (chars-1 after its lead byte).
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) idx[i] = chars - 1;
  }
  idx[s.size()] = chars;
  return idx;
}

}  // namespace atlas::utf8
