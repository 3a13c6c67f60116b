#include "tokenize/unicode.hpp"

#include <glib.h>

#include "atlas/core/error.hpp"
#include "atlas/core/utf8.hpp"

namespace atlas::tokenize::detail {

size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  return 4;
}

char32_t next_char(std::string_view s, size_t& pos) {
  const auto lead = static_cast<unsigned char>(s[pos]);
  const size_t n = utf8_len(lead);
  char32_t c = n == 1 ? lead : n == 2 ? (lead & 0x1F) : n == 3 ? (lead & 0x0F) : (lead & 0x07);
  for (size_t i = 1; i < n; ++i) c = (c << 6) | (static_cast<unsigned char>(s[pos + i]) & 0x3F);
  pos += n;
  return c;
}

void append_utf8(std::string& out, char32_t c) { utf8::append(out, c); }

std::string to_utf8(char32_t c) {
  std::string s;
  append_utf8(s, c);
  return s;
}

void check_utf8(std::string_view s, std::string_view what) {
  const gchar* end = nullptr;
  if (!g_utf8_validate_len(s.data(), s.size(), &end)) {
    ATLAS_FAIL(InputError, "{} is not valid UTF-8 (bad byte 0x{:02X} at byte {})", what,
               static_cast<unsigned char>(*end), end - s.data());
  }
}

std::vector<int64_t> byte_to_char_index(std::string_view s) { return utf8::byte_to_char_index(s); }

bool is_whitespace(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_control_char(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (g_unichar_type(c)) {
    case G_UNICODE_CONTROL: case G_UNICODE_FORMAT: case G_UNICODE_UNASSIGNED:
    case G_UNICODE_PRIVATE_USE: case G_UNICODE_SURROGATE:
      return true;
    default:
      return false;
  }
}

bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) {
    return true;
  }
  switch (g_unichar_type(c)) {
    case G_UNICODE_CONNECT_PUNCTUATION: case G_UNICODE_DASH_PUNCTUATION:
    case G_UNICODE_CLOSE_PUNCTUATION: case G_UNICODE_FINAL_PUNCTUATION:
    case G_UNICODE_INITIAL_PUNCTUATION: case G_UNICODE_OTHER_PUNCTUATION:
    case G_UNICODE_OPEN_PUNCTUATION:
      return true;
    default:
      return false;
  }
}

bool is_nonspacing_mark(char32_t c) { return g_unichar_type(c) == G_UNICODE_NON_SPACING_MARK; }

bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_alphanumeric(char32_t c) { return g_unichar_isalnum(c); }

int combining_class(char32_t c) { return g_unichar_combining_class(c); }

std::string normalize_utf8(std::string_view s, NormForm form) {
  GNormalizeMode mode = G_NORMALIZE_NFC;
  switch (form) {
    case NormForm::NFC: mode = G_NORMALIZE_NFC; break;
    case NormForm::NFD: mode = G_NORMALIZE_NFD; break;
    case NormForm::NFKC: mode = G_NORMALIZE_NFKC; break;
    case NormForm::NFKD: mode = G_NORMALIZE_NFKD; break;
  }
  gchar* out = g_utf8_normalize(s.data(), static_cast<gssize>(s.size()), mode);
  if (!out) return std::string(s);
  std::string result(out);
  g_free(out);
  return result;
}

std::string lowercase_char(char32_t c) {
  if (c < 0x80) return std::string(1, static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
  const std::string in = to_utf8(c);
  gchar* out = g_utf8_strdown(in.data(), static_cast<gssize>(in.size()));
  std::string result(out);
  g_free(out);
  return result;
}

}  // namespace atlas::tokenize::detail
