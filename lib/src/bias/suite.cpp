#include "atlas/bias/suite.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"

namespace atlas::bias {
namespace {

constexpr size_t kMaxItems = 200000;

[[noreturn]] void fail_at(const std::string& source, const YAML::Node& node, const std::string& what) {
  const YAML::Mark m = node.Mark();
  if (m.line >= 0) throw ConfigError(fmt::format("{}:{}: {}", source, m.line + 1, what));
  throw ConfigError(fmt::format("{}: {}", source, what));
}

std::string scalar(const std::string& source, const YAML::Node& node, const std::string& what) {
  if (!node || !node.IsScalar()) fail_at(source, node, fmt::format("{} must be a string", what));
  return node.Scalar();
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '\'' || (c & 0x80); }

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// Words with their byte spans (letters, digits, apostrophes and non-ASCII bytes).
std::vector<std::pair<size_t, size_t>> word_spans(const std::string& s) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = 0;
  while (i < s.size()) {
    if (!is_word_char(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_word_char(s[j])) ++j;
    out.emplace_back(i, j);
    i = j;
  }
  return out;
}

std::string keep_case(const std::string& like, std::string word) {
  if (!like.empty() && !word.empty() && std::isupper(static_cast<unsigned char>(like[0])))
    word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
  return word;
}

/// First whole-word occurrence of `word` (case-insensitive) at or after `from`.
std::optional<std::pair<size_t, size_t>> find_word(const std::string& s, const std::string& word, size_t from = 0) {
  const std::string lw = lower(word);
  for (const auto& [b, e] : word_spans(s))
    if (b >= from && lower(s.substr(b, e - b)) == lw) return std::make_pair(b, e);
  return std::nullopt;
}

struct Piece {
  bool slot = false;
  std::string text;   // literal text, or the slot name
};

std::vector<Piece> split_template(const std::string& source, const YAML::Node& node, const std::string& text) {
  std::vector<Piece> out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t open = text.find('{', i);
    if (open == std::string::npos) {
      out.push_back({false, text.substr(i)});
      break;
    }
    if (open > i) out.push_back({false, text.substr(i, open - i)});
    const size_t close = text.find('}', open);
    if (close == std::string::npos) fail_at(source, node, fmt::format("unclosed '{{' in template '{}'", text));
    const std::string name = text.substr(open + 1, close - open - 1);
    if (name.empty()) fail_at(source, node, fmt::format("empty slot '{{}}' in template '{}'", text));
    out.push_back({true, name});
    i = close + 1;
  }
  return out;
}

}  // namespace

std::string swap_words(const std::string& text, const std::vector<std::pair<std::string, std::string>>& pairs,
                       bool to_b) {
  std::string out;
  size_t last = 0;
  for (const auto& [b, e] : word_spans(text)) {
    out += text.substr(last, b - last);
    const std::string w = text.substr(b, e - b), lw = lower(w);
    std::string repl = w;
    for (const auto& [a, bw] : pairs) {
      if (lower(to_b ? a : bw) == lw) {
        repl = keep_case(w, to_b ? bw : a);
        break;
      }
    }
    out += repl;
    last = e;
  }
  return out + text.substr(last);
}

namespace {
Suite parse_suite_impl(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}: invalid YAML: {}", source, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap()) fail_at(source, root, "a suite is a YAML mapping (name, pairs, lists, templates ...)");
  Suite s;
  static const std::set<std::string> keys{"name",  "description", "source",    "groups",   "pairs",
                                          "lists", "pair_lists",  "templates", "sentences", "thresholds"};
  for (const auto& kv : root) {
    const std::string k = kv.first.as<std::string>();
    if (!keys.count(k))
      fail_at(source, kv.first,
              fmt::format("unknown key '{}' (expected name, description, source, groups, pairs, lists, pair_lists, "
                          "templates, sentences, thresholds)",
                          k));
  }
  s.name = root["name"] ? scalar(source, root["name"], "name") : std::string("suite");
  if (root["description"]) s.description = scalar(source, root["description"], "description");
  if (root["source"]) s.source = scalar(source, root["source"], "source");
  if (const YAML::Node g = root["groups"]) {
    if (!g.IsSequence() || g.size() != 2) fail_at(source, g, "groups must list two names, e.g. [male, female]");
    s.group_a = scalar(source, g[0], "groups[0]");
    s.group_b = scalar(source, g[1], "groups[1]");
  }
  auto read_pair = [&](const YAML::Node& p, const std::string& what) {
    if (!p.IsSequence() || p.size() != 2) fail_at(source, p, fmt::format("{} must be [word of {}, word of {}]", what, s.group_a, s.group_b));
    return std::make_pair(scalar(source, p[0], what), scalar(source, p[1], what));
  };
  if (const YAML::Node p = root["pairs"]) {
    if (!p.IsSequence()) fail_at(source, p, "pairs must be a list of [a, b] word pairs");
    std::set<std::string> seen;
    for (const auto& e : p) {
      auto pr = read_pair(e, "a pair");
      if (!seen.insert(lower(pr.first)).second)
        fail_at(source, e, fmt::format("the word '{}' has two pairs", pr.first));
      s.pairs.push_back(std::move(pr));
    }
  }
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> pair_lists;
  std::map<std::string, int64_t> slot_lines;
  if (const YAML::Node l = root["lists"]) {
    if (!l.IsMap()) fail_at(source, l, "lists must map list names to lists of words");
    for (const auto& kv : l) {
      const std::string name = kv.first.as<std::string>();
      if (!kv.second.IsSequence()) fail_at(source, kv.second, fmt::format("list '{}' must be a list", name));
      if (kv.second.size() == 0) fail_at(source, kv.second, fmt::format("list '{}' is empty", name));
      std::vector<SuiteWord> words;
      for (const auto& w : kv.second) {
        SuiteWord sw;
        if (w.IsMap()) {
          sw.word = scalar(source, w["word"], fmt::format("list '{}': word", name));
          if (w["pct_female"]) {
            try {
              sw.pct_female = w["pct_female"].as<double>();
            } catch (const YAML::Exception&) {
              fail_at(source, w["pct_female"], fmt::format("list '{}': pct_female must be a number", name));
            }
          }
          for (const auto& f : w) {
            const std::string fk = f.first.as<std::string>();
            if (fk != "word" && fk != "pct_female")
              fail_at(source, f.first, fmt::format("list '{}': unknown key '{}' (expected word, pct_female)", name, fk));
          }
        } else {
          sw.word = scalar(source, w, fmt::format("list '{}': word", name));
        }
        if (sw.word.empty()) fail_at(source, w, fmt::format("list '{}' has an empty word", name));
        words.push_back(std::move(sw));
      }
      s.lists[name] = std::move(words);
    }
  }
  if (const YAML::Node l = root["pair_lists"]) {
    if (!l.IsMap()) fail_at(source, l, "pair_lists must map names to lists of [a, b] pairs");
    for (const auto& kv : l) {
      const std::string name = kv.first.as<std::string>();
      if (!kv.second.IsSequence()) fail_at(source, kv.second, fmt::format("pair list '{}' must be a list", name));
      if (kv.second.size() == 0) fail_at(source, kv.second, fmt::format("pair list '{}' is empty", name));
      if (s.lists.count(name)) fail_at(source, kv.first, fmt::format("'{}' is both a list and a pair list", name));
      for (const auto& p : kv.second) pair_lists[name].push_back(read_pair(p, fmt::format("pair list '{}'", name)));
    }
  }
  if (const YAML::Node t = root["thresholds"]) {
    if (!t.IsSequence()) fail_at(source, t, "thresholds must be a list of --fail-if expressions");
    for (const auto& e : t) s.thresholds.push_back(scalar(source, e, "a threshold"));
  }

  // Templates: every combination of the slots' words.
  if (const YAML::Node ts = root["templates"]) {
    if (!ts.IsSequence()) fail_at(source, ts, "templates must be a list");
    for (const auto& t : ts) {
      if (!t.IsMap()) fail_at(source, t, "a template is a mapping: {text, target, attribute}");
      for (const auto& f : t) {
        const std::string fk = f.first.as<std::string>();
        if (fk != "text" && fk != "target" && fk != "attribute")
          fail_at(source, f.first, fmt::format("unknown template key '{}' (expected text, target, attribute)", fk));
      }
      SuiteTemplate tp;
      tp.text = scalar(source, t["text"], "template text");
      tp.target = scalar(source, t["target"], "template target");
      tp.attribute = scalar(source, t["attribute"], "template attribute");
      tp.line = t.Mark().line + 1;
      const std::vector<Piece> pieces = split_template(source, t["text"], tp.text);
      std::vector<std::string> slots;
      for (const Piece& p : pieces) {
        if (!p.slot) continue;
        if (!s.lists.count(p.text) && !pair_lists.count(p.text))
          fail_at(source, t["text"], fmt::format("unknown slot '{{{}}}' in template '{}' (lists: {})", p.text, tp.text,
                                                 [&] {
                                                   std::string names;
                                                   for (const auto& [n, _] : s.lists) names += (names.empty() ? "" : ", ") + n;
                                                   for (const auto& [n, _] : pair_lists) names += (names.empty() ? "" : ", ") + n;
                                                   return names;
                                                 }()));
        if (std::find(slots.begin(), slots.end(), p.text) == slots.end()) slots.push_back(p.text);
      }
      if (!s.lists.count(tp.attribute) || std::find(slots.begin(), slots.end(), tp.attribute) == slots.end())
        fail_at(source, t["attribute"],
                fmt::format("attribute '{}' must be a word-list slot of the template '{}'", tp.attribute, tp.text));
      const bool target_is_slot = pair_lists.count(tp.target) > 0;
      if (target_is_slot) {
        if (std::find(slots.begin(), slots.end(), tp.target) == slots.end())
          fail_at(source, t["target"], fmt::format("target slot '{}' is not in the template '{}'", tp.target, tp.text));
      } else {
        bool literal = false;
        for (const Piece& p : pieces)
          if (!p.slot && find_word(p.text, tp.target)) literal = true;
        const bool paired = std::any_of(s.pairs.begin(), s.pairs.end(),
                                        [&](const auto& pr) { return lower(pr.first) == lower(tp.target); });
        if (!literal || !paired)
          fail_at(source, t["target"],
                  fmt::format("target '{}' must be a pair word of group {} written in the template '{}', or a pair "
                              "list slot",
                              tp.target, s.group_a, tp.text));
      }
      // Odometer over the slots.
      std::vector<size_t> sizes;
      for (const auto& sl : slots) sizes.push_back(s.lists.count(sl) ? s.lists[sl].size() : pair_lists[sl].size());
      std::vector<size_t> idx(slots.size(), 0);
      for (;;) {
        SuiteItem it;
        it.template_text = tp.text;
        it.line = tp.line;
        std::string a, b;
        for (const Piece& p : pieces) {
          if (!p.slot) {
            a += p.text;
            b += swap_words(p.text, s.pairs);
            continue;
          }
          const size_t k = static_cast<size_t>(std::find(slots.begin(), slots.end(), p.text) - slots.begin());
          if (s.lists.count(p.text)) {
            const SuiteWord& w = s.lists[p.text][idx[k]];
            if (p.text == tp.attribute && it.attribute_word.empty()) {
              it.attribute_a = {a.size(), a.size() + w.word.size()};
              it.attribute_b = {b.size(), b.size() + w.word.size()};
              it.attribute_word = w.word;
              it.pct_female = w.pct_female;
            }
            a += w.word;
            b += w.word;
          } else {
            const auto& pr = pair_lists[p.text][idx[k]];
            if (p.text == tp.target && it.target_a.second == 0) {
              it.target_a = {a.size(), a.size() + pr.first.size()};
              it.target_b = {b.size(), b.size() + pr.second.size()};
            }
            a += pr.first;
            b += pr.second;
          }
        }
        if (!target_is_slot) {
          // The first occurrence outside the attribute word; the swap keeps word positions.
          auto ta = find_word(a, tp.target);
          const auto wa = word_spans(a), wb = word_spans(b);
          if (!ta || wa.size() != wb.size()) fail_at(source, t["text"], "internal: the swap changed the word count");
          const size_t wi = static_cast<size_t>(std::find(wa.begin(), wa.end(), *ta) - wa.begin());
          it.target_a = *ta;
          it.target_b = wb[wi];
        }
        it.sentence_a = std::move(a);
        it.sentence_b = std::move(b);
        s.items.push_back(std::move(it));
        if (s.items.size() > kMaxItems)
          fail_at(source, t, fmt::format("the suite expands to more than {} items", kMaxItems));
        size_t d = 0;
        while (d < idx.size() && ++idx[d] == sizes[d]) idx[d++] = 0;
        if (d == idx.size()) break;
      }
      s.templates.push_back(std::move(tp));
    }
  }

  // Explicit pairs: both sides written out; they may differ only in pair words.
  if (const YAML::Node ss = root["sentences"]) {
    if (!ss.IsSequence()) fail_at(source, ss, "sentences must be a list of {a, b, target, attribute}");
    for (const auto& e : ss) {
      if (!e.IsMap()) fail_at(source, e, "an explicit pair is a mapping: {a, b, target, attribute}");
      for (const auto& f : e) {
        const std::string fk = f.first.as<std::string>();
        if (fk != "a" && fk != "b" && fk != "target" && fk != "attribute" && fk != "pct_female")
          fail_at(source, f.first,
                  fmt::format("unknown sentence key '{}' (expected a, b, target, attribute, pct_female)", fk));
      }
      SuiteItem it;
      it.line = e.Mark().line + 1;
      it.sentence_a = scalar(source, e["a"], "sentence a");
      it.sentence_b = scalar(source, e["b"], "sentence b");
      const std::string target = scalar(source, e["target"], "sentence target");
      it.attribute_word = scalar(source, e["attribute"], "sentence attribute");
      if (e["pct_female"]) it.pct_female = e["pct_female"].as<double>();
      it.template_text = it.sentence_a;
      const auto wa = word_spans(it.sentence_a), wb = word_spans(it.sentence_b);
      auto differs = [&] {
        if (wa.size() != wb.size()) return true;
        size_t last_a = 0, last_b = 0;
        for (size_t i = 0; i < wa.size(); ++i) {
          const std::string x = it.sentence_a.substr(wa[i].first, wa[i].second - wa[i].first);
          const std::string y = it.sentence_b.substr(wb[i].first, wb[i].second - wb[i].first);
          if (it.sentence_a.substr(last_a, wa[i].first - last_a) != it.sentence_b.substr(last_b, wb[i].first - last_b))
            return true;
          last_a = wa[i].second;
          last_b = wb[i].second;
          if (x == y) continue;
          if (swap_words(x, s.pairs) != y) return true;
        }
        return it.sentence_a.substr(last_a) != it.sentence_b.substr(last_b);
      };
      if (differs())
        fail_at(source, e,
                fmt::format("the sides of the pair '{}' / '{}' differ in more than the swapped words (pairs)",
                            it.sentence_a, it.sentence_b));
      auto ta = find_word(it.sentence_a, target);
      if (!ta) fail_at(source, e["target"], fmt::format("target '{}' is not a word of '{}'", target, it.sentence_a));
      const size_t wi = static_cast<size_t>(std::find(wa.begin(), wa.end(), *ta) - wa.begin());
      it.target_a = *ta;
      it.target_b = wb[wi];
      const size_t at = it.sentence_a.find(it.attribute_word);
      if (at == std::string::npos)
        fail_at(source, e["attribute"],
                fmt::format("attribute '{}' is not in '{}'", it.attribute_word, it.sentence_a));
      const size_t shift = it.sentence_b.find(it.attribute_word);
      if (shift == std::string::npos)
        fail_at(source, e["attribute"], fmt::format("attribute '{}' is not in '{}'", it.attribute_word, it.sentence_b));
      it.attribute_a = {at, at + it.attribute_word.size()};
      it.attribute_b = {shift, shift + it.attribute_word.size()};
      s.items.push_back(std::move(it));
    }
  }
  if (s.items.empty()) fail_at(source, root, "the suite has no templates and no sentences");
  return s;
}
}  // namespace

Suite parse_suite(const std::string& yaml_text, const std::string& source) {
  try {
    return parse_suite_impl(yaml_text, source);
  } catch (const YAML::Exception& e) {   // a conversion yaml-cpp refuses (a key that is a list ...)
    throw ConfigError(fmt::format("{}:{}: {}", source, e.mark.line + 1, e.msg));
  }
}

Suite load_suite(const std::filesystem::path& path) {
  std::error_code ec;
  ATLAS_CHECK(std::filesystem::exists(path, ec), InputError, "suite file '{}' does not exist", path.string());
  const std::string text = read_file(path);
  Suite s = parse_suite(text, path.string());
  s.path = path;
  s.sha256 = sha256_hex(text);
  return s;
}

}  // namespace atlas::bias
