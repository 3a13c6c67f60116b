#pragma once
// UTF-8 and Unicode character properties for the tokenizer pipeline (internal). Categories and
// normalization come from glib, so the tables follow the system's Unicode version.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::tokenize::detail {

/// Decodes one code point at `pos` (input already validated); advances `pos`.
char32_t next_char(std::string_view s, size_t& pos);
/// Byte length of the UTF-8 sequence that starts with `lead`.
size_t utf8_len(unsigned char lead);
void append_utf8(std::string& out, char32_t c);
std::string to_utf8(char32_t c);
/// Throws InputError naming `what` and the byte position when `s` is not valid UTF-8.
void check_utf8(std::string_view s, std::string_view what);
/// For each byte offset 0..s.size() (inclusive), the code-point index it starts.
std::vector<int64_t> byte_to_char_index(std::string_view s);

bool is_whitespace(char32_t c);          // Unicode White_Space (Rust char::is_whitespace)
bool is_control_char(char32_t c);        // Cc, Cf, Cn, Co, Cs except \t \n \r (BERT clean_text)
bool is_punctuation(char32_t c);         // ASCII punctuation or a P* category (BERT)
bool is_nonspacing_mark(char32_t c);     // Mn
bool is_chinese_char(char32_t c);        // CJK ideograph blocks, as BERT defines them
bool is_alphanumeric(char32_t c);
int combining_class(char32_t c);       // canonical combining class (0 = starter)

enum class NormForm { NFC, NFD, NFKC, NFKD };
std::string normalize_utf8(std::string_view s, NormForm form);
/// Full lower-casing of one character (may yield several characters, e.g. U+0130).
std::string lowercase_char(char32_t c);

}  // namespace atlas::tokenize::detail
