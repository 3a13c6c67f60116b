// Head metrics for the page's table and the gender-swap panel (internal.hpp).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

#include "serve/internal.hpp"

namespace atlas::serve {

nlohmann::json head_metrics(const format::AttentionData& a, const analyze::Lexicon& lexicon) {
  using nlohmann::json;
  analyze::HeadStats stats;
  stats.add(a, analyze::classify_tokens(a, lexicon));
  const auto& names = analyze::head_metric_names();
  auto number_or_null = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };   // as the CLI's JSON
  const int64_t L = int64_t(stats.layers().size()), H = int64_t(stats.heads().size());
  json out = {{"layers", stats.layers()}, {"heads", stats.heads()},
              {"metrics", std::vector<std::string>(names.begin(), names.end())}};
  for (int m = 0; m < analyze::kNumHeadMetrics; ++m) {
    json rows = json::array();
    for (int64_t li = 0; li < L; ++li) {
      json row = json::array();
      for (int64_t hi = 0; hi < H; ++hi) row.push_back(number_or_null(stats.value(li, hi, m)));
      rows.push_back(std::move(row));
    }
    out[names[size_t(m)]] = std::move(rows);
  }
  json queries = json::array();
  for (int64_t li = 0; li < L; ++li) {
    json row = json::array();
    for (int64_t hi = 0; hi < H; ++hi) row.push_back(stats.queries(li, hi));
    queries.push_back(std::move(row));
  }
  out["queries"] = std::move(queries);
  out["sink"] = out["sink_mass"];        // the names the page used before
  out["previous"] = out["prev_token"];
  out["lexicon"] = {{"language", lexicon.language}, {"path", lexicon.path.string()},
                    {"words", lexicon.function_words.size()}};
  return out;
}

namespace {
bool is_word_byte(unsigned char c) { return std::isalnum(c) || c >= 0x80 || c == '\''; }
}  // namespace

GenderSwap gender_swap(const std::string& text) {
  static const std::map<std::string, std::string> kPairs = [] {
    std::map<std::string, std::string> m;
    const std::pair<const char*, const char*> pairs[] = {
        {"he", "she"},         {"him", "her"},          {"his", "her"},           {"himself", "herself"},
        {"man", "woman"},      {"men", "women"},        {"boy", "girl"},          {"boys", "girls"},
        {"father", "mother"},  {"fathers", "mothers"},  {"son", "daughter"},      {"sons", "daughters"},
        {"brother", "sister"}, {"brothers", "sisters"}, {"king", "queen"},        {"kings", "queens"},
        {"husband", "wife"},   {"husbands", "wives"},   {"uncle", "aunt"},        {"nephew", "niece"},
        {"mr", "mrs"},         {"sir", "madam"},        {"gentleman", "lady"},    {"gentlemen", "ladies"},
        {"dad", "mom"},        {"grandfather", "grandmother"}, {"prince", "princess"}, {"male", "female"},
        {"boyfriend", "girlfriend"}, {"actor", "actress"}, {"waiter", "waitress"}};
    for (const auto& [a, b] : pairs) {
      m[a] = b;
      if (!m.count(b)) m[b] = a;
    }
    m["her"] = "his";   // object "her" would be "him"; telling them apart needs a parser
    m["hers"] = "his";
    return m;
  }();
  GenderSwap out;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_word_byte(static_cast<unsigned char>(text[i]))) {
      out.text += text[i++];
      continue;
    }
    size_t j = i;
    while (j < text.size() && is_word_byte(static_cast<unsigned char>(text[j]))) ++j;
    const std::string word = text.substr(i, j - i);
    std::string low = word;
    for (char& c : low) c = char(std::tolower(static_cast<unsigned char>(c)));
    auto it = kPairs.find(low);
    if (it == kPairs.end()) {
      out.text += word;
    } else {
      std::string rep = it->second;
      const bool all_upper = word.size() > 1 && std::all_of(word.begin(), word.end(), [](char c) {
        return !std::isalpha(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c));
      });
      if (all_upper) {
        for (char& c : rep) c = char(std::toupper(static_cast<unsigned char>(c)));
      } else if (std::isupper(static_cast<unsigned char>(word[0]))) {
        rep[0] = char(std::toupper(static_cast<unsigned char>(rep[0])));
      }
      out.text += rep;
      out.words.push_back(word + "\u2192" + rep);
      ++out.replacements;
    }
    i = j;
  }
  return out;
}

}  // namespace atlas::serve
