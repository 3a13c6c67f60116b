#include "tokenize/normalized_string.hpp"

#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {

NormalizedString NormalizedString::from_original(std::string_view original) {
  NormalizedString ns;
  ns.text = std::string(original);
  ns.align.resize(original.size());
  size_t pos = 0;
  while (pos < original.size()) {
    const size_t n = utf8_len(static_cast<unsigned char>(original[pos]));
    for (size_t i = 0; i < n; ++i) {
      ns.align[pos + i] = {static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + n)};
    }
    pos += n;
  }
  return ns;
}

NormalizedString NormalizedString::slice(size_t b, size_t e) const {
  NormalizedString ns;
  ns.text = text.substr(b, e - b);
  ns.align.assign(align.begin() + static_cast<std::ptrdiff_t>(b), align.begin() + static_cast<std::ptrdiff_t>(e));
  ns.original_shift = b < align.size() ? align[b].first : (align.empty() ? original_shift : align.back().second);
  return ns;
}

ByteRange NormalizedString::original_range(size_t b, size_t e) const {
  if (align.empty()) return {0, 0};
  if (b >= e) {
    // An empty token (never produced by the models) collapses onto the position it sits at.
    const uint32_t at = b < align.size() ? align[b].first : align.back().second;
    return {at, at};
  }
  return {align[b].first, align[e - 1].second};
}

void NormalizedString::map_chars(const std::function<void(char32_t, std::string&)>& f) {
  std::string out;
  std::vector<ByteRange> out_align;
  out.reserve(text.size());
  out_align.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const char32_t c = next_char(text, pos);
    const size_t before = out.size();
    f(c, out);
    out_align.insert(out_align.end(), out.size() - before, align[start]);
  }
  text = std::move(out);
  align = std::move(out_align);
}

void NormalizedString::replace_range(size_t b, size_t e, std::string_view content) {
  const size_t anchor = e;  // tokenizers: inserted characters copy alignments[offset - 1]
  const ByteRange a = anchor >= 1 ? align[anchor - 1] : ByteRange{0, 0};
  text.replace(b, e - b, content);
  align.erase(align.begin() + static_cast<std::ptrdiff_t>(b), align.begin() + static_cast<std::ptrdiff_t>(e));
  align.insert(align.begin() + static_cast<std::ptrdiff_t>(b), content.size(), a);
}

void NormalizedString::transform(const std::vector<std::pair<char32_t, int>>& dest) {
  std::string out;
  std::vector<ByteRange> out_align;
  out.reserve(text.size());
  out_align.reserve(text.size());
  size_t offset = 0;  // next unconsumed byte of the old text
  auto consume = [&] {
    if (offset < text.size()) offset += utf8_len(static_cast<unsigned char>(text[offset]));
  };
  for (const auto& [c, change] : dest) {
    ByteRange a;
    if (change > 0) {
      a = offset >= 1 ? align[offset - 1] : ByteRange{original_shift, original_shift};
    } else {
      a = offset < align.size() ? align[offset] : (align.empty() ? ByteRange{original_shift, original_shift} : align.back());
      consume();
      for (int k = 0; k < -change; ++k) consume();
    }
    const size_t before = out.size();
    append_utf8(out, c);
    out_align.insert(out_align.end(), out.size() - before, a);
  }
  text = std::move(out);
  align = std::move(out_align);
}

void NormalizedString::prepend(std::string_view prefix) {
  if (text.empty()) return;
  const ByteRange a = align.front();
  text.insert(0, prefix);
  align.insert(align.begin(), prefix.size(), a);
}

}  // namespace atlas::tokenize::detail
