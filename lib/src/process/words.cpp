#include "atlas/process/words.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <glib.h>

#include <algorithm>
#include <numeric>

#include "atlas/core/error.hpp"
#include "atlas/core/utf8.hpp"

namespace atlas::process {
namespace {

// Unicode properties from GLib (already linked for Pango): White_Space, general category P*, and
// the script of a character.
bool is_space(char32_t c) { return g_unichar_isspace(static_cast<gunichar>(c)) || c == 0x200B; }
bool is_punct(char32_t c) { return g_unichar_ispunct(static_cast<gunichar>(c)); }

// Scripts written without spaces between words: one word per character.
bool is_unspaced(char32_t c) {
  switch (g_unichar_get_script(static_cast<gunichar>(c))) {
    case G_UNICODE_SCRIPT_HAN:
    case G_UNICODE_SCRIPT_HIRAGANA:
    case G_UNICODE_SCRIPT_KATAKANA:
    case G_UNICODE_SCRIPT_THAI:
    case G_UNICODE_SCRIPT_LAO:
    case G_UNICODE_SCRIPT_KHMER:
    case G_UNICODE_SCRIPT_MYANMAR:
    case G_UNICODE_SCRIPT_TIBETAN:
      return true;
    default:
      return false;
  }
}

struct UnionFind {
  std::vector<int64_t> parent;
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int64_t find(int64_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(int64_t a, int64_t b) {
    a = find(a), b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

// A word under construction: its tokens and its span in the segment's text.
struct Draft {
  std::vector<int64_t> tokens;
  int64_t begin = -1, end = -1;   // code points
  std::string text;               // fallback path: decoded bytes
  bool special = false;
  int64_t segment = 0;
};

// Words of one segment from its text and the tokens' offsets.
void segment_with_offsets(const std::u32string& text, const std::vector<int64_t>& toks, const TokenAxis& axis,
                          int64_t segment, std::vector<Draft>& out) {
  const int64_t n = static_cast<int64_t>(text.size());
  // Units: maximal runs of non-space characters, every unspaced-script character on its own;
  // punctuation right after an unspaced character joins it ("文。").
  std::vector<int64_t> unit(static_cast<size_t>(n), -1);
  std::vector<std::array<int64_t, 2>> span;
  for (int64_t i = 0; i < n;) {
    if (is_space(text[i])) {
      ++i;
      continue;
    }
    if (is_unspaced(text[i])) {
      int64_t j = i + 1;
      while (j < n && is_punct(text[j]) && !is_unspaced(text[j])) ++j;
      for (int64_t c = i; c < j; ++c) unit[c] = static_cast<int64_t>(span.size());
      span.push_back({i, j});
      i = j;
      continue;
    }
    int64_t j = i;
    while (j < n && !is_space(text[j]) && !is_unspaced(text[j])) ++j;
    for (int64_t c = i; c < j; ++c) unit[c] = static_cast<int64_t>(span.size());
    span.push_back({i, j});
    i = j;
  }
  const int64_t units = static_cast<int64_t>(span.size());
  UnionFind uf(static_cast<size_t>(units));
  std::vector<int64_t> home(toks.size(), -1);
  for (size_t t = 0; t < toks.size(); ++t) {
    int64_t b = std::clamp<int64_t>(axis.offsets[toks[t]][0], 0, n);
    int64_t e = std::clamp<int64_t>(axis.offsets[toks[t]][1], b, n);
    for (int64_t c = b; c < e; ++c) {
      if (unit[c] < 0) continue;
      if (home[t] < 0) home[t] = unit[c];
      uf.unite(home[t], unit[c]);
    }
    if (home[t] < 0) {
      // Only whitespace (a lone `▁`, `Ġ`, "\n"): the next word, else the previous one.
      for (int64_t c = e; c < n && home[t] < 0; ++c) home[t] = unit[c];
      for (int64_t c = std::min(b, n) - 1; c >= 0 && home[t] < 0; --c) home[t] = unit[c];
    }
  }
  std::vector<int64_t> draft_of(static_cast<size_t>(units), -1);
  for (size_t t = 0; t < toks.size(); ++t) {
    if (home[t] < 0) {  // a segment with no visible character at all: the token alone
      Draft d;
      d.tokens = {toks[t]};
      d.segment = segment;
      d.text = axis.tokens[toks[t]];
      out.push_back(std::move(d));
      continue;
    }
    int64_t root = uf.find(home[t]);
    if (draft_of[root] < 0) {
      draft_of[root] = static_cast<int64_t>(out.size());
      Draft d;
      d.segment = segment;
      out.push_back(std::move(d));
    }
    out[draft_of[root]].tokens.push_back(toks[t]);
  }
  // Spans of the merged units.
  for (int64_t u = 0; u < units; ++u) {
    int64_t d = draft_of[uf.find(u)];
    if (d < 0) continue;
    Draft& w = out[d];
    w.begin = w.begin < 0 ? span[u][0] : std::min(w.begin, span[u][0]);
    w.end = std::max(w.end, span[u][1]);
  }
  for (Draft& w : out)
    if (w.segment == segment && w.begin >= 0 && w.text.empty())
      w.text = utf8::encode(std::u32string_view(text).substr(w.begin, w.end - w.begin));
}

// GPT-2's byte-level alphabet (bytes_to_unicode in openai/gpt-2 encoder.py), inverted.
int byte_of_gpt2_char(char32_t c) {
  auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
  if (c < 256 && printable(static_cast<int>(c))) return static_cast<int>(c);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (printable(b)) continue;
    if (c == static_cast<char32_t>(256 + n)) return b;
    ++n;
  }
  return -1;
}

// The bytes a token stands for, without offsets: sentencepiece `▁` = space and `<0xNN>` byte pieces,
// GPT-2 byte-level characters, WordPiece `##` continuation.
std::string token_bytes(const std::string& token, bool byte_level, bool& continuation) {
  continuation = false;
  if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>') {
    return std::string(1, static_cast<char>(std::stoi(token.substr(3, 2), nullptr, 16)));
  }
  if (token.compare(0, 2, "##") == 0 && token.size() > 2) {
    continuation = true;
    return token.substr(2);
  }
  if (!utf8::valid(token)) return token;
  std::u32string cps = utf8::decode(token);
  std::string out;
  if (byte_level) {
    for (char32_t c : cps) {
      int b = byte_of_gpt2_char(c);
      if (b < 0) return token;  // not a byte-level string after all
      out += static_cast<char>(b);
    }
    return out;
  }
  for (char32_t c : cps) utf8::append(out, c == 0x2581 ? U' ' : c);
  return out;
}

bool starts_with_space(const std::string& s) { return !s.empty() && (s[0] == ' ' || s[0] == '\n' || s[0] == '\t'); }

std::string trim_spaces(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n\r");
  size_t e = s.find_last_not_of(" \t\n\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// First / last code point of complete UTF-8 text, 0 when there is none or the text is incomplete.
char32_t first_char(const std::string& s) {
  std::string t = trim_spaces(s);
  if (t.empty() || !utf8::valid(t)) return 0;
  return utf8::decode(t).front();
}
char32_t last_char(const std::string& s) {
  std::string t = trim_spaces(s);
  if (t.empty() || !utf8::valid(t)) return 0;
  return utf8::decode(t).back();
}

// Words of one segment from the token strings alone.
void segment_from_tokens(const std::vector<int64_t>& toks, const TokenAxis& axis, int64_t segment,
                         std::vector<Draft>& out) {
  bool wordpiece = false, byte_level = false;
  for (int64_t t : toks) {
    const std::string& s = axis.tokens[t];
    if (s.compare(0, 2, "##") == 0 && s.size() > 2) wordpiece = true;
    if (s.find("\xC4\xA0") != std::string::npos) byte_level = true;  // Ġ
  }
  Draft* cur = nullptr;
  for (int64_t t : toks) {
    bool continuation = false;
    std::string bytes = token_bytes(axis.tokens[t], byte_level, continuation);
    bool start = cur == nullptr;
    if (!start) {
      const bool complete = utf8::valid(cur->text);
      if (wordpiece) {
        // Punctuation pieces stay with the word before them ("cookie" ",").
        bool punct_only = !bytes.empty() && utf8::valid(bytes);
        if (punct_only)
          for (char32_t c : utf8::decode(bytes)) punct_only = punct_only && is_punct(c);
        start = !continuation && !punct_only;
      } else if (starts_with_space(bytes)) {
        start = complete && !trim_spaces(cur->text).empty();
      } else if (complete && !trim_spaces(cur->text).empty()) {
        // Unspaced scripts: a character is a word. A piece that finishes an incomplete character
        // (byte pieces) stays.
        char32_t next = first_char(bytes);
        start = is_unspaced(last_char(cur->text)) ? !(next && is_punct(next) && !is_unspaced(next))
                                                  : (next && is_unspaced(next));
      }
    }
    if (start) {
      Draft d;
      d.segment = segment;
      out.push_back(std::move(d));
      cur = &out.back();
    }
    cur->tokens.push_back(t);
    cur->text += bytes;
  }
  for (Draft& w : out)
    if (w.segment == segment && !w.special) {
      std::string t = trim_spaces(w.text);
      w.text = t.empty() ? w.text : t;
      if (!utf8::valid(w.text)) {
        // A cut-off byte sequence: show it as the tokens were.
        std::string raw;
        for (int64_t tok : w.tokens) raw += axis.tokens[tok];
        w.text = raw;
      }
    }
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

TokenAxis query_axis(const format::AttentionData& doc) {
  TokenAxis a;
  a.tokens = doc.tokens;
  a.offsets = doc.offsets;
  a.special = doc.special;
  a.token_type_ids = doc.token_type_ids;
  a.text = doc.text;
  a.text_pair = doc.text_pair;
  return a;
}

std::string word_key(std::string_view text) {
  if (!utf8::valid(text)) return std::string(text);
  std::u32string cps = utf8::decode(text);
  size_t b = 0, e = cps.size();
  while (b < e && is_punct(cps[b])) ++b;
  while (e > b && is_punct(cps[e - 1])) --e;
  if (b == e) return ascii_lower(text);
  return ascii_lower(utf8::encode(std::u32string_view(cps).substr(b, e - b)));
}

std::vector<Word> segment_words(const TokenAxis& axis) {
  const int64_t q = static_cast<int64_t>(axis.tokens.size());
  ATLAS_CHECK(axis.offsets.empty() || static_cast<int64_t>(axis.offsets.size()) == q, InputError,
              "word segmentation: {} offsets for {} tokens", axis.offsets.size(), q);
  ATLAS_CHECK(axis.special.empty() || static_cast<int64_t>(axis.special.size()) == q, InputError,
              "word segmentation: {} special flags for {} tokens", axis.special.size(), q);
  ATLAS_CHECK(axis.token_type_ids.empty() || static_cast<int64_t>(axis.token_type_ids.size()) == q, InputError,
              "word segmentation: {} token_type_ids for {} tokens", axis.token_type_ids.size(), q);
  auto is_special = [&](int64_t t) { return !axis.special.empty() && axis.special[t] != 0; };
  auto segment_of = [&](int64_t t) { return axis.token_type_ids.empty() ? int64_t{0} : std::min<int64_t>(axis.token_type_ids[t], 1); };
  auto has_offsets = [&](int64_t t) {
    return !axis.offsets.empty() && axis.offsets[t][0] >= 0 && axis.offsets[t][1] >= axis.offsets[t][0];
  };

  std::vector<Draft> drafts;
  // Special tokens are words of their own; the others are segmented per segment, each with its
  // own text when offsets and text are there, else from the token strings.
  for (int64_t t = 0; t < q; ++t)
    if (is_special(t)) {
      Draft d;
      d.tokens = {t};
      d.text = axis.tokens[t];
      d.special = true;
      d.segment = segment_of(t);
      drafts.push_back(std::move(d));
    }
  for (int64_t seg = 0; seg < 2; ++seg) {
    const std::string& text = seg == 0 ? axis.text : axis.text_pair;
    std::vector<int64_t> toks, no_offsets;
    for (int64_t t = 0; t < q; ++t) {
      if (is_special(t) || segment_of(t) != seg) continue;
      (has_offsets(t) && !text.empty() ? toks : no_offsets).push_back(t);
    }
    if (!toks.empty()) {
      ATLAS_CHECK(utf8::valid(text), InputError, "word segmentation: the text of segment {} is not valid UTF-8", seg);
      segment_with_offsets(utf8::decode(text), toks, axis, seg, drafts);
    }
    if (!no_offsets.empty()) {
      // Runs of consecutive tokens without offsets.
      std::vector<int64_t> run;
      for (size_t i = 0; i <= no_offsets.size(); ++i) {
        if (i < no_offsets.size() && (run.empty() || no_offsets[i] == run.back() + 1)) {
          run.push_back(no_offsets[i]);
          continue;
        }
        segment_from_tokens(run, axis, seg, drafts);
        run.clear();
        if (i < no_offsets.size()) run.push_back(no_offsets[i]);
      }
    }
  }

  std::sort(drafts.begin(), drafts.end(), [](const Draft& a, const Draft& b) { return a.tokens.front() < b.tokens.front(); });
  std::vector<Word> words;
  words.reserve(drafts.size());
  std::vector<std::pair<std::string, int64_t>> seen;
  for (Draft& d : drafts) {
    Word w;
    std::sort(d.tokens.begin(), d.tokens.end());
    w.tokens = std::move(d.tokens);
    w.text = std::move(d.text);
    w.begin = d.begin;
    w.end = d.end;
    w.special = d.special;
    w.segment = d.segment;
    std::string key = word_key(w.text);
    auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& p) { return p.first == key; });
    if (it == seen.end()) {
      seen.emplace_back(key, 1);
    } else {
      w.occurrence = ++it->second;
    }
    words.push_back(std::move(w));
  }
  return words;
}

std::vector<int64_t> word_of_token(const std::vector<Word>& words, int64_t num_tokens) {
  std::vector<int64_t> of(static_cast<size_t>(num_tokens), -1);
  for (size_t w = 0; w < words.size(); ++w)
    for (int64_t t : words[w].tokens) {
      ATLAS_CHECK(t >= 0 && t < num_tokens, InputError, "word '{}' holds token {}, but there are {} tokens",
                  words[w].text, t, num_tokens);
      of[t] = static_cast<int64_t>(w);
    }
  for (int64_t t = 0; t < num_tokens; ++t)
    ATLAS_CHECK(of[t] >= 0, InputError, "token {} belongs to no word", t);
  return of;
}

void word_matrix(const float* m, int64_t q, int64_t k, const std::vector<Word>& query_words,
                 const std::vector<Word>& key_words, float* out) {
  const std::vector<int64_t> wq = word_of_token(query_words, q), wk = word_of_token(key_words, k);
  const int64_t nk = static_cast<int64_t>(key_words.size());
  std::vector<double> acc(query_words.size() * key_words.size(), 0.0);
  for (int64_t i = 0; i < q; ++i) {
    double* row = acc.data() + wq[i] * nk;
    for (int64_t j = 0; j < k; ++j) row[wk[j]] += m[i * k + j];
  }
  for (size_t a = 0; a < query_words.size(); ++a) {
    const double n = static_cast<double>(query_words[a].tokens.size());
    for (int64_t b = 0; b < nk; ++b) out[a * nk + b] = static_cast<float>(acc[a * nk + b] / n);
  }
}

std::vector<float> word_attention(const format::AttentionData& doc, const std::vector<Word>& query_words,
                                  const std::vector<Word>& key_words) {
  const int64_t wq = static_cast<int64_t>(query_words.size()), wk = static_cast<int64_t>(key_words.size());
  std::vector<float> out(static_cast<size_t>(doc.num_layers * doc.num_heads * wq * wk));
  for (int64_t l = 0; l < doc.num_layers; ++l)
    for (int64_t h = 0; h < doc.num_heads; ++h)
      word_matrix(doc.matrix(l, h), doc.q, doc.k, query_words, key_words,
                  out.data() + (l * doc.num_heads + h) * wq * wk);
  return out;
}

format::AttentionData to_word_level(const format::AttentionData& doc) {
  ATLAS_CHECK(!doc.keys_differ() && doc.q == doc.k, InputError,
              "{}: word level needs self-attention (query and key tokens the same); '{}' is [{}, {}]", doc.source,
              doc.kind, doc.q, doc.k);
  const std::vector<Word> words = segment_words(doc);
  format::AttentionData out = doc;
  out.attention = word_attention(doc, words, words);
  const int64_t w = static_cast<int64_t>(words.size());
  out.q = out.k = w;
  out.tokens.clear();
  out.token_labels.clear();
  out.offsets.clear();
  out.special.clear();
  out.input_ids.clear();
  out.token_type_ids.clear();
  for (const Word& word : words) {
    out.tokens.push_back(word.text);
    out.token_labels.push_back(word.text);
    out.offsets.push_back({word.begin, word.end});
    out.special.push_back(word.special ? 1 : 0);
    if (!doc.input_ids.empty()) out.input_ids.push_back(doc.input_ids[word.tokens.front()]);
    if (!doc.token_type_ids.empty()) out.token_type_ids.push_back(word.segment);
  }
  out.key_tokens = out.tokens;
  out.key_token_labels = out.token_labels;
  out.key_special = out.special;
  return out;
}

int64_t find_word(const std::vector<Word>& words, std::string_view spec, std::string_view where) {
  std::string_view name = spec;
  int64_t nth = 1;
  size_t hash = spec.rfind('#');
  if (hash != std::string_view::npos && hash > 0 && hash + 1 < spec.size()) {
    std::string num(spec.substr(hash + 1));
    if (num.find_first_not_of("0123456789") == std::string::npos) {
      nth = std::stoll(num);
      name = spec.substr(0, hash);
    }
  }
  ATLAS_CHECK(nth >= 1, InputError, "--focus '{}': occurrences count from 1 (word#1 is the first)", spec);
  for (int pass = 0; pass < 2; ++pass) {
    const std::string key = word_key(name);
    int64_t seen = 0;
    for (size_t i = 0; i < words.size(); ++i) {
      bool match = pass == 0 ? words[i].text == name : word_key(words[i].text) == key;
      if (match && ++seen == nth) return static_cast<int64_t>(i);
    }
  }
  std::vector<std::string> listed;
  for (size_t i = 0; i < words.size() && i < 40; ++i)
    listed.push_back(words[i].occurrence > 1 ? fmt::format("{}#{}", words[i].text, words[i].occurrence) : words[i].text);
  ATLAS_FAIL(InputError, "word '{}' is not in {} (words: {}{})", spec, where.empty() ? "the text" : where,
             fmt::join(listed, " "), words.size() > 40 ? " ..." : "");
}

}  // namespace atlas::process
