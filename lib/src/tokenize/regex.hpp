#pragma once
// PCRE2 (UTF + UCP, JIT when available) for the pre-tokenizer and normalizer patterns (internal).
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atlas::tokenize::detail {

class Regex {
 public:
  /// Throws ConfigError naming the pattern and PCRE2's message when it does not compile.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  /// Non-overlapping, non-empty matches left to right as byte ranges [begin, end).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*, kept opaque so that pcre2.h stays out of headers
};

/// Byte ranges of every occurrence of `needle` (non-overlapping, left to right).
std::vector<std::pair<size_t, size_t>> find_all_literal(std::string_view text, std::string_view needle);

}  // namespace atlas::tokenize::detail
