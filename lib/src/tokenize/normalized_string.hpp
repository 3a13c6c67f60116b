#pragma once
// A string under normalization that remembers, for every byte, the byte range of the input
// character it came from (the alignment model of Hugging Face tokenizers), so that every token can
// report its offsets in the user's text however the text was rewritten (internal).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atlas::tokenize::detail {

using ByteRange = std::pair<uint32_t, uint32_t>;  // [begin, end) bytes of the original text

struct NormalizedString {
  std::string text;              // current (normalized) UTF-8
  std::vector<ByteRange> align;  // one per byte of `text`
  uint32_t original_shift = 0;   // where this slice starts in the original text (tokenizers' original_shift)

  /// Identity alignment over `original` (every byte maps to its character's range).
  static NormalizedString from_original(std::string_view original);
  bool empty() const { return text.empty(); }
  /// Bytes [b, e) of `text` with their alignments.
  NormalizedString slice(size_t b, size_t e) const;
  /// Original byte range covered by text bytes [b, e): first start to last end.
  ByteRange original_range(size_t b, size_t e) const;
  /// Rewrites character by character: `f(c, out)` appends the replacement (possibly empty) and every
  /// character it appends inherits c's alignment.
  void map_chars(const std::function<void(char32_t, std::string&)>& f);
  /// Replaces text bytes [b, e) by `content`; the new characters take the alignment of the last
  /// replaced byte (of the byte before b when nothing is replaced), as tokenizers' transform_range.
  void replace_range(size_t b, size_t e, std::string_view content);
  /// tokenizers' NormalizedString::transform over the whole text: `dest` is every new character with
  /// its change: 0 replaces the next old character (and takes its alignment), +1 is inserted (aligned
  /// like the byte before it), -N replaces the next old character and removes the N after it.
  void transform(const std::vector<std::pair<char32_t, int>>& dest);
  /// Inserts `prefix` before the first character, aligned to that character (no-op when empty).
  void prepend(std::string_view prefix);
};

}  // namespace atlas::tokenize::detail
