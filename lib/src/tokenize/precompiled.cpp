// The Precompiled normalizer: sentencepiece's `precompiled_charsmap` (the normalization rules of a
// .model file, e.g. nmt_nfkc) as Hugging Face tokenizers applies it. The blob is
//   u32 little-endian trie size in bytes | darts-clone double-array trie (u32 units) | replacement
//   strings, each ended by NUL (a trie value is the byte offset of its replacement).
// The double array is read here because no library of this project reads darts-clone's format
// (sentencepiece does, but only behind its own Normalizer, which reports no alignments).
// tokenizers walks the text by extended grapheme clusters (Pango's cursor positions here): a cluster
// under 6 bytes is looked up whole (the shortest trie key that is a prefix of it wins, and replaces
// the whole cluster), otherwise, or when nothing matches, each character is looked up alone.
#include <glib.h>
#include <pango/pango.h>

#include <algorithm>

#include "atlas/core/error.hpp"
#include "tokenize/normalizer.hpp"
#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {
namespace {

class Precompiled final : public Normalizer {
 public:
  explicit Precompiled(const std::string& base64) {
    const bool alphabet = base64.size() % 4 == 0 &&
                          base64.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
                              std::string::npos;
    ATLAS_CHECK(alphabet, FormatError, "Precompiled: precompiled_charsmap is not base64");
    gsize len = 0;
    guchar* raw = g_base64_decode(base64.c_str(), &len);
    const std::string blob(reinterpret_cast<const char*>(raw), len);
    g_free(raw);
    ATLAS_CHECK(blob.size() >= 4, FormatError, "Precompiled: precompiled_charsmap holds {} bytes, expected at least 4",
                blob.size());
    const uint32_t trie_bytes = read_u32(blob, 0);
    ATLAS_CHECK(trie_bytes >= 4 && 4 + static_cast<uint64_t>(trie_bytes) <= blob.size(), FormatError,
                "Precompiled: precompiled_charsmap's trie size {} does not fit its {} bytes", trie_bytes, blob.size());
    array_.resize(trie_bytes / 4);
    for (size_t i = 0; i < array_.size(); ++i) array_[i] = read_u32(blob, 4 + 4 * i);
    normalized_ = blob.substr(4 + static_cast<size_t>(trie_bytes / 4) * 4);
    for (size_t at = 0; at < normalized_.size();) {  // NUL-separated UTF-8 strings
      const size_t end = std::min(normalized_.find('\0', at), normalized_.size());
      check_utf8(std::string_view(normalized_).substr(at, end - at), "precompiled_charsmap's replacement strings");
      at = end + 1;
    }
  }

  void normalize(NormalizedString& s) const override {
    if (s.text.empty()) return;
    std::vector<std::pair<char32_t, int>> dest;
    dest.reserve(s.text.size());
    bool modified = false;
    const auto graphemes = grapheme_bounds(s.text);
    for (size_t g = 0; g + 1 < graphemes.size(); ++g) {
      const std::string_view cluster(s.text.data() + graphemes[g], graphemes[g + 1] - graphemes[g]);
      if (cluster.size() < 6) {
        if (const auto norm = transform(cluster)) {
          modified = true;
          replace(dest, cluster, *norm);
          continue;
        }
      }
      size_t pos = 0;
      while (pos < cluster.size()) {
        const size_t start = pos;
        const char32_t c = next_char(cluster, pos);
        const std::string_view part = cluster.substr(start, pos - start);
        if (const auto norm = transform(part)) {
          modified = true;
          replace(dest, part, *norm);
        } else {
          dest.emplace_back(c, 0);
        }
      }
    }
    if (modified) s.transform(dest);
  }

 private:
  static uint32_t read_u32(const std::string& b, size_t at) {
    return static_cast<uint32_t>(static_cast<unsigned char>(b[at])) |
           static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8 |
           static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16 |
           static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3])) << 24;
  }

  /// Byte offsets of the grapheme cluster boundaries, 0 and size() included.
  static std::vector<size_t> grapheme_bounds(const std::string& text) {
    std::vector<size_t> starts;  // byte offset of every character
    for (size_t pos = 0; pos < text.size(); pos += utf8_len(static_cast<unsigned char>(text[pos]))) starts.push_back(pos);
    std::vector<PangoLogAttr> attrs(starts.size() + 1);
    pango_default_break(text.data(), static_cast<int>(text.size()), nullptr, attrs.data(),
                        static_cast<int>(attrs.size()));
    std::vector<size_t> bounds{0};
    for (size_t i = 1; i < starts.size(); ++i) {
      if (attrs[i].is_cursor_position) bounds.push_back(starts[i]);
    }
    bounds.push_back(text.size());
    return bounds;
  }

  uint32_t unit(size_t pos) const {
    ATLAS_CHECK(pos < array_.size(), FormatError, "Precompiled: precompiled_charsmap's trie is corrupt (unit {} of {})",
                pos, array_.size());
    return array_[pos];
  }
  static uint32_t offset_of(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
  static uint32_t label_of(uint32_t u) { return u & ((1u << 31) | 0xFFu); }
  static bool has_leaf(uint32_t u) { return ((u >> 8) & 1u) == 1u; }
  static uint32_t value_of(uint32_t u) { return u & ((1u << 31) - 1); }

  /// The replacement of the shortest trie key that is a prefix of `chunk` (spm_precompiled's transform).
  std::optional<std::string_view> transform(std::string_view chunk) const {
    size_t node = 0;
    uint32_t u = unit(node);
    node ^= offset_of(u);
    for (unsigned char c : chunk) {
      if (c == 0) break;
      node ^= c;
      u = unit(node);
      if (label_of(u) != c) return std::nullopt;
      node ^= offset_of(u);
      if (has_leaf(u)) {
        const size_t at = value_of(unit(node));
        ATLAS_CHECK(at <= normalized_.size(), FormatError,
                    "Precompiled: precompiled_charsmap points at byte {} of {} replacement bytes", at, normalized_.size());
        const size_t end = normalized_.find('\0', at);
        return std::string_view(normalized_).substr(at, (end == std::string::npos ? normalized_.size() : end) - at);
      }
    }
    return std::nullopt;
  }

  /// tokenizers' precompiled `replace`: the new characters replace the old ones one for one; extra
  /// new characters are insertions, fewer new ones remove the rest after the last one emitted so far.
  static void replace(std::vector<std::pair<char32_t, int>>& dest, std::string_view old_part, std::string_view new_part) {
    int old_count = 0, new_count = 0;
    for (size_t p = 0; p < old_part.size(); p += utf8_len(static_cast<unsigned char>(old_part[p]))) ++old_count;
    for (size_t p = 0; p < new_part.size();) {
      dest.emplace_back(next_char(new_part, p), 0);
      ++new_count;
    }
    const int diff = new_count - old_count;
    if (diff > 0) {
      for (int k = 0; k < diff; ++k) dest[dest.size() - 1 - static_cast<size_t>(k)].second = 1;
    } else if (diff < 0 && !dest.empty()) {
      dest.back().second += diff;
    }
  }

  std::vector<uint32_t> array_;
  std::string normalized_;
};

}  // namespace

std::unique_ptr<Normalizer> make_precompiled(const std::string& base64_charsmap) {
  return std::make_unique<Precompiled>(base64_charsmap);
}

}  // namespace atlas::tokenize::detail
