#include "tokenize/decoder.hpp"

#include <fmt/format.h>
#include <glib.h>

#include <cstdlib>

#include "tokenize/pre_tokenizer.hpp"
#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {
namespace {

/// Control characters would break a figure label: show the usual visible stand-ins.
std::string visible(const std::string& s) {
  std::string out;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = next_char(s, pos);
    if (c == '\n') {
      out += "\xE2\x86\xB5";  // ↵
    } else if (c == '\t') {
      out += "\xE2\x87\xA5";  // ⇥
    } else if (c == '\r') {
      out += "\xE2\x90\x8D";  // ␍
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("<0x{:02X}>", static_cast<unsigned>(c));
    } else {
      append_utf8(out, c);
    }
  }
  return out;
}

}  // namespace

std::string display_token(const std::string& token, const DisplayStyle& style) {
  std::string s = token;
  if (style.byte_fallback && s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>') {
    const int b = static_cast<int>(std::strtol(s.substr(3, 2).c_str(), nullptr, 16));
    if (b >= 0x20 && b < 0x7F) return std::string(1, static_cast<char>(b));
    if (b == '\n' || b == '\t' || b == '\r') return visible(std::string(1, static_cast<char>(b)));
    return s;
  }
  if (!style.wordpiece_prefix.empty() && s.compare(0, style.wordpiece_prefix.size(), style.wordpiece_prefix) == 0 &&
      s.size() > style.wordpiece_prefix.size()) {
    s = s.substr(style.wordpiece_prefix.size());
  }
  if (style.byte_level) {
    std::string bytes;
    size_t pos = 0;
    bool ok = true;
    while (pos < s.size()) {
      const int b = char_to_byte(next_char(s, pos));
      if (b < 0) {
        ok = false;
        break;
      }
      bytes += static_cast<char>(b);
    }
    if (ok) {
      // Whole characters as text, bytes of a split multi-byte character as <0xXX>.
      std::string shown;
      size_t i = 0;
      while (i < bytes.size()) {
        const size_t n = utf8_len(static_cast<unsigned char>(bytes[i]));
        const bool lead = (static_cast<unsigned char>(bytes[i]) & 0xC0) != 0x80;
        if (lead && i + n <= bytes.size() && g_utf8_validate(bytes.data() + i, static_cast<gssize>(n), nullptr)) {
          shown.append(bytes, i, n);
          i += n;
        } else {
          shown += fmt::format("<0x{:02X}>", static_cast<unsigned char>(bytes[i]));
          ++i;
        }
      }
      s = shown;
    }
  }
  if (style.metaspace) {
    std::string out;
    size_t pos = 0, prev = 0;
    const std::string meta = "\xE2\x96\x81";
    while ((pos = s.find(meta, prev)) != std::string::npos) {
      out += s.substr(prev, pos - prev) + " ";
      prev = pos + meta.size();
    }
    s = out + s.substr(prev);
  }
  s = visible(s);
  return s.empty() ? token : s;
}

}  // namespace atlas::tokenize::detail
