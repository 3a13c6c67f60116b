// Head metrics for the page's table and the gender-swap panel (internal.hpp).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

#include "serve/internal.hpp"

namespace atlas::serve {

nlohmann::json head_metrics(const format::AttentionData& a) {
  using nlohmann::json;
  json entropy = json::array(), sink = json::array(), previous = json::array(), self = json::array();
  for (int64_t l = 0; l < a.num_layers; ++l) {
    json e = json::array(), s = json::array(), p = json::array(), d = json::array();
    for (int64_t h = 0; h < a.num_heads; ++h) {
      const float* m = a.matrix(l, h);
      double ent = 0, snk = 0, prev = 0, slf = 0;
      int64_t rows = 0, prev_rows = 0;
      for (int64_t i = 0; i < a.q; ++i) {
        double row_h = 0;
        for (int64_t k = 0; k < a.k; ++k) {
          const double x = m[i * a.k + k];
          if (x > 0) row_h -= x * std::log(x);
        }
        ent += row_h;
        snk += m[i * a.k];
        if (i < a.k) slf += m[i * a.k + i];
        if (i >= 1 && i - 1 < a.k) {
          prev += m[i * a.k + i - 1];
          ++prev_rows;
        }
        ++rows;
      }
      auto r4 = [](double v) { return std::round(v * 1e4) / 1e4; };
      e.push_back(r4(rows ? ent / double(rows) : 0));
      s.push_back(r4(rows ? snk / double(rows) : 0));
      p.push_back(r4(prev_rows ? prev / double(prev_rows) : 0));
      d.push_back(r4(rows ? slf / double(rows) : 0));
    }
    entropy.push_back(e);
    sink.push_back(s);
    previous.push_back(p);
    self.push_back(d);
  }
  return {{"layers", a.layers}, {"heads", a.heads}, {"entropy", entropy}, {"sink", sink},
          {"previous", previous}, {"self", self}};
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
