// Token classes for the focus metrics: special, punctuation, function / content words (by the words
// of atlas/process/words.hpp and a lexicon), and sentences.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "atlas/analyze/heads.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/utf8.hpp"
#include "atlas/core/version.hpp"
#include "atlas/process/words.hpp"

namespace atlas::analyze {
namespace fs = std::filesystem;

namespace {

std::vector<fs::path> lexicon_dirs() {
  std::vector<fs::path> dirs;
  if (const char* d = std::getenv("ATLAS_LEXICON_DIR"); d && *d) dirs.emplace_back(d);
  dirs.push_back(fs::path(source_dir()) / "configs" / "lexicons");
#ifdef ATLAS_SOURCE_DIR
  dirs.push_back(fs::path(ATLAS_SOURCE_DIR) / "configs" / "lexicons");
#endif
  return dirs;
}

bool is_punct_cp(char32_t c) {
  if (c < 0x80) return std::ispunct(static_cast<int>(c)) != 0;
  return (c >= 0x2010 && c <= 0x205E) ||   // General Punctuation: dashes, quotes, ellipsis
         (c >= 0x3000 && c <= 0x303F && c != 0x3000) ||   // CJK symbols and punctuation
         (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
         (c >= 0xFF5B && c <= 0xFF65) || c == 0x00A1 || c == 0x00BF || c == 0x00AB || c == 0x00BB ||
         c == 0x00B7 || c == 0x0964 || c == 0x0965 || c == 0x060C || c == 0x061F || c == 0x06D4;
}
bool is_space_cp(char32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x2581 || c == 0x0120 || c == 0x3000 || c == 0xA0; }

// Only punctuation once spaces (and the Ġ / ▁ markers) are set aside; never empty.
bool only_punct(const std::string& s) {
  if (!utf8::valid(s)) return false;
  bool any = false;
  for (char32_t c : utf8::decode(s)) {
    if (is_space_cp(c)) continue;
    if (!is_punct_cp(c)) return false;
    any = true;
  }
  return any;
}

bool has_alnum(const std::string& s) {
  if (!utf8::valid(s)) return true;
  for (char32_t c : utf8::decode(s))
    if (!is_space_cp(c) && !is_punct_cp(c)) return true;
  return false;
}

bool ends_sentence(const std::string& word) {
  std::string w = word;
  while (!w.empty() && (w.back() == ' ' || w.back() == '"' || w.back() == '\'' || w.back() == ')')) w.pop_back();
  if (w.empty()) return false;
  const char b = w.back();
  if (b == '.' || b == '!' || b == '?') return true;
  for (const char* full : {"\u3002", "\uFF01", "\uFF1F", "\u2026"})
    if (w.size() >= 3 && w.compare(w.size() - 3, 3, full) == 0) return true;
  return false;
}

}  // namespace

Lexicon load_lexicon(const std::string& language, const fs::path& path) {
  Lexicon lex;
  lex.language = language;
  fs::path file = path;
  if (file.empty()) {
    const auto dirs = lexicon_dirs();
    for (const auto& d : dirs)
      if (fs::is_regular_file(d / (language + ".txt"))) {
        file = d / (language + ".txt");
        break;
      }
    if (file.empty()) {
      std::vector<std::string> have;
      std::error_code ec;
      for (const auto& d : dirs)
        for (const auto& e : fs::directory_iterator(d, ec))
          if (e.path().extension() == ".txt") have.push_back(e.path().stem().string());
      std::sort(have.begin(), have.end());
      have.erase(std::unique(have.begin(), have.end()), have.end());
      ATLAS_FAIL(InputError, "no function-word lexicon for language '{}' (configs/lexicons/{}.txt); have: {}", language,
                 language, have.empty() ? "none" : fmt::format("{}", fmt::join(have, ", ")));
    }
  }
  lex.path = file;
  std::istringstream in(read_file(file));
  std::string line;
  while (std::getline(in, line)) {
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t b = 0;
    while (b < line.size() && std::isspace(static_cast<unsigned char>(line[b]))) ++b;
    if (b < line.size()) lex.function_words.insert(process::word_key(line.substr(b)));
  }
  ATLAS_CHECK(!lex.function_words.empty(), InputError, "lexicon '{}' holds no words", file.string());
  return lex;
}

TokenClasses classify_tokens(const format::AttentionData& doc, const Lexicon& lexicon) {
  const int64_t n = doc.q;
  TokenClasses c;
  c.special.assign(size_t(n), 0);
  c.punct.assign(size_t(n), 0);
  c.function.assign(size_t(n), 0);
  c.content.assign(size_t(n), 0);
  c.sentence.assign(size_t(n), 0);
  for (int64_t t = 0; t < n; ++t) {
    c.special[t] = t < int64_t(doc.special.size()) && doc.special[t];
    const std::string& label = t < int64_t(doc.token_labels.size()) ? doc.token_labels[t] : doc.tokens[t];
    c.punct[t] = !c.special[t] && only_punct(label);
  }
  const std::vector<process::Word> words = process::segment_words(doc);
  int32_t sentence = 0;
  bool seen_content = false;   // a special token closes a sentence only after some text
  int64_t segment = 0;
  bool just_ended = false;     // the word before ended a sentence: a special token after it closes that one
  for (const auto& w : words) {
    if (w.segment != segment) {
      segment = w.segment;
      if (seen_content) ++sentence;
      seen_content = false;
    }
    const std::string key = process::word_key(w.text);
    const bool function = !w.special && lexicon.contains(key);
    const bool content = !w.special && !function && has_alnum(w.text);
    const int32_t here = w.special && just_ended && sentence > 0 ? sentence - 1 : sentence;
    for (int64_t t : w.tokens) {
      if (t < 0 || t >= n) continue;
      c.sentence[t] = here;
      if (c.special[t]) continue;
      c.function[t] = function;
      c.content[t] = content && !c.punct[t];
    }
    if (w.special) {
      if (seen_content) {
        ++sentence;
        seen_content = false;
        just_ended = true;
      }
    } else {
      seen_content = true;
      just_ended = false;
      if (ends_sentence(w.text)) {
        ++sentence;
        seen_content = false;
        just_ended = true;
      }
    }
  }
  return c;
}

}  // namespace atlas::analyze
