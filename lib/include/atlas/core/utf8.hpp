#pragma once
/// UTF-8 helpers. Offsets that leave the library are in Unicode code points (as Hugging Face fast
/// tokenizers report them); inside, text is UTF-8 bytes.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::utf8 {

/// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool valid(std::string_view s);
/// Byte position of the first invalid sequence, or npos when valid.
size_t first_invalid(std::string_view s);
/// Decodes to code points; throws InputError on invalid UTF-8.
std::u32string decode(std::string_view s);
/// Encodes code points to UTF-8.
std::string encode(std::u32string_view s);
void append(std::string& out, char32_t cp);
/// For each byte index 0..s.size(), the number of code points before it (size s.size()+1).
std::vector<int64_t> byte_to_char_index(std::string_view s);

}  // namespace atlas::utf8
