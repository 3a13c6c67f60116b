// analyze coref: pronoun -> candidate antecedent attention per head, WinoBias accuracy per head.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "atlas/analyze/cases.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/process/words.hpp"
#include "analyze/word_tools.hpp"

namespace atlas::analyze {
namespace fs = std::filesystem;

namespace {

int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::vector<std::string> out;
  std::istringstream in(read_file(p));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '\'' || c == '-'; }

}  // namespace

/// The word holding code point `pos` of segment 0 (the text), or -1.
int64_t word_at(const std::vector<process::Word>& words, int64_t pos) {
  for (size_t w = 0; w < words.size(); ++w)
    if (!words[w].special && words[w].segment == 0 && words[w].begin <= pos && pos < words[w].end) return int64_t(w);
  return -1;
}

/// Word-level attention from word `a` to word `b` of one head's [n, n] matrix: the mean over a's
/// tokens of the sum over b's tokens (Clark et al. 2019).
double word_attention_between(const float* m, int64_t n, const process::Word& a, const process::Word& b) {
  double s = 0;
  for (int64_t i : a.tokens)
    for (int64_t j : b.tokens) s += m[i * n + j];
  return a.tokens.empty() ? 0 : s / double(a.tokens.size());
}

std::vector<CorefExample> read_winobias(const fs::path& file, std::vector<SkippedDocument>* rejected) {
  ATLAS_CHECK(fs::is_regular_file(file), InputError, "WinoBias file '{}' does not exist", file.string());
  std::vector<std::string> occupations;
  for (const char* list : {"male_occupations.txt", "female_occupations.txt"}) {
    const fs::path p = file.parent_path() / list;
    if (fs::is_regular_file(p))
      for (auto& l : read_lines(p))
        if (!l.empty()) occupations.push_back(lower(l));
  }
  const std::string name = file.filename().string();
  const std::string subset = name.rfind("pro_", 0) == 0 ? "pro" : name.rfind("anti_", 0) == 0 ? "anti" : "";
  std::vector<CorefExample> out;
  const auto lines = read_lines(file);
  for (size_t ln = 0; ln < lines.size(); ++ln) {
    const std::string& raw = lines[ln];
    if (raw.find_first_not_of(" \t") == std::string::npos) continue;
    CorefExample ex;
    ex.id = fmt::format("{}:{}", name, ln + 1);
    ex.subset = subset;
    auto reject = [&](const std::string& why) {
      if (rejected) rejected->push_back({ex.id, why});
    };
    size_t p = 0;
    while (p < raw.size() && std::isdigit(static_cast<unsigned char>(raw[p]))) ++p;
    while (p < raw.size() && raw[p] == ' ') ++p;
    std::vector<Span> brackets;
    std::vector<std::pair<size_t, size_t>> bracket_bytes;
    Span open{-1, -1};
    size_t open_byte = 0;
    for (; p < raw.size(); ++p) {
      const char c = raw[p];
      if (c == '[') {
        open[0] = code_points(ex.text);
        open_byte = ex.text.size();
      } else if (c == ']') {
        open[1] = code_points(ex.text);
        brackets.push_back(open);
        bracket_bytes.emplace_back(open_byte, ex.text.size());
      } else {
        ex.text += c;
      }
    }
    // The first bracket is the antecedent, the next the pronoun; later ones repeat the pronoun
    // ("[he] needed to cut [his] hair") and are not needed.
    if (brackets.size() < 2) {
      reject(fmt::format("expected two [bracketed] spans (antecedent, pronoun), found {}", brackets.size()));
      continue;
    }
    ex.pronoun = brackets[1];
    // Candidates: occupations (or nouns after "the"), each by its last word.
    const std::string low = lower(ex.text);
    std::vector<std::pair<size_t, size_t>> found;   // byte spans of the head words
    auto add_found = [&](size_t b, size_t e) {
      for (size_t k = 1; k < bracket_bytes.size(); ++k)
        if (b >= bracket_bytes[k].first && e <= bracket_bytes[k].second) return;   // a pronoun
      for (const auto& f : found)
        if (f.first == b) return;
      found.emplace_back(b, e);
    };
    if (!occupations.empty()) {
      for (const auto& occ : occupations) {
        for (size_t at = low.find(occ); at != std::string::npos; at = low.find(occ, at + 1)) {
          const size_t end = at + occ.size();
          if ((at > 0 && word_char(low[at - 1])) || (end < low.size() && std::isalnum(static_cast<unsigned char>(low[end]))))
            continue;
          const size_t head = occ.rfind(' ') == std::string::npos ? at : at + occ.rfind(' ') + 1;
          add_found(head, end);
        }
      }
    } else {
      for (size_t at = low.find("the "); at != std::string::npos; at = low.find("the ", at + 1)) {
        if (at > 0 && word_char(low[at - 1])) continue;
        size_t b = at + 4, e = b;
        while (e < low.size() && word_char(low[e])) ++e;
        if (e > b) add_found(b, e);
      }
    }
    std::sort(found.begin(), found.end());
    for (const auto& [b, e] : found) {
      const Span s{code_points(ex.text.substr(0, b)), code_points(ex.text.substr(0, e))};
      if (s[0] >= brackets[0][0] && s[1] <= brackets[0][1]) ex.gold = int(ex.candidates.size());
      ex.candidates.push_back(s);
      ex.candidate_words.push_back(ex.text.substr(b, e - b));
    }
    if (ex.candidates.size() < 2 || ex.gold < 0) {
      reject(fmt::format("found {} candidate antecedent(s){}", ex.candidates.size(),
                         ex.gold < 0 ? " and none inside the first bracket" : ""));
      continue;
    }
    out.push_back(std::move(ex));
  }
  return out;
}

void CorefScores::add(const format::AttentionData& doc, const CorefExample& ex) {
  ATLAS_CHECK(doc.q == doc.k && !doc.keys_differ(), InputError, "{}: coref needs self-attention", doc.source);
  if (acc_.empty()) {
    layers_ = doc.layers;
    heads_ = doc.heads;
    acc_.assign(layers_.size() * heads_.size(), Acc{});
  }
  ATLAS_CHECK(doc.layers == layers_ && doc.heads == heads_, InputError, "{}: layers / heads differ from the first example",
              doc.source);
  const auto words = process::segment_words(doc);
  const int64_t pw = word_at(words, ex.pronoun[0]);
  ATLAS_CHECK(pw >= 0, InputError, "{}: no word at the pronoun (code point {})", ex.id, ex.pronoun[0]);
  std::vector<int64_t> cw;
  for (const auto& c : ex.candidates) {
    const int64_t w = word_at(words, c[0]);
    ATLAS_CHECK(w >= 0, InputError, "{}: no word at candidate code point {}", ex.id, c[0]);
    ATLAS_CHECK(w != pw, InputError, "{}: a candidate shares the pronoun's word '{}'", ex.id, words[size_t(pw)].text);
    cw.push_back(w);
  }
  ++examples_;
  chance_ += 1.0 / double(cw.size());
  // The baseline that needs no attention: the candidate nearest before the pronoun.
  int nearest = -1;
  for (size_t c = 0; c < ex.candidates.size(); ++c)
    if (ex.candidates[c][0] < ex.pronoun[0] && (nearest < 0 || ex.candidates[c][0] > ex.candidates[size_t(nearest)][0]))
      nearest = int(c);
  nearest_correct_ += nearest == ex.gold;
  for (int64_t li = 0; li < doc.num_layers; ++li)
    for (int64_t hi = 0; hi < doc.num_heads; ++hi) {
      const float* m = doc.matrix(li, hi);
      std::vector<double> att;
      for (int64_t w : cw) att.push_back(word_attention_between(m, doc.q, words[size_t(pw)], words[size_t(w)]));
      const double top = *std::max_element(att.begin(), att.end());
      const bool unique_top = std::count(att.begin(), att.end(), top) == 1;
      const bool correct = unique_top && att[size_t(ex.gold)] == top;
      Acc& a = acc_[size_t(li * doc.num_heads + hi)];
      ++a.n;
      a.correct += correct;
      auto& sub = a.subset[ex.subset];
      ++sub[0];
      sub[1] += correct;
      a.gold += att[size_t(ex.gold)];
      double other = 0;
      for (size_t c = 0; c < att.size(); ++c)
        if (int(c) != ex.gold) other = std::max(other, att[c]);
      a.other += other;
    }
}

nlohmann::json CorefScores::to_json(size_t top) const {
  nlohmann::json heads = nlohmann::json::array();
  std::vector<std::pair<double, size_t>> rank;
  for (size_t li = 0; li < layers_.size(); ++li)
    for (size_t hi = 0; hi < heads_.size(); ++hi) {
      const Acc& a = acc_[li * heads_.size() + hi];
      const double n = double(std::max<int64_t>(1, a.n));
      nlohmann::json h = {{"layer", layers_[li]}, {"head", heads_[hi]}, {"examples", a.n},
                          {"accuracy", number_or_null(a.n ? a.correct / n : NAN)},
                          {"gold_attention", number_or_null(a.n ? a.gold / n : NAN)},
                          {"other_attention", number_or_null(a.n ? a.other / n : NAN)}};
      for (const auto& [name, nc] : a.subset)
        if (!name.empty()) h["accuracy_" + name] = number_or_null(nc[0] ? double(nc[1]) / double(nc[0]) : NAN);
      // Rank by accuracy, then by the gold's margin.
      rank.emplace_back((a.n ? a.correct / n : 0) + 1e-6 * (a.gold - a.other) / n, heads.size());
      heads.push_back(std::move(h));
    }
  std::sort(rank.begin(), rank.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  nlohmann::json best = nlohmann::json::array();
  for (size_t i = 0; i < rank.size() && i < top; ++i) best.push_back(heads[rank[i].second]);
  return {{"examples", examples_},
          {"chance", number_or_null(examples_ ? chance_ / double(examples_) : NAN)},
          {"nearest_baseline", number_or_null(examples_ ? double(nearest_correct_) / double(examples_) : NAN)},
          {"best_accuracy", best.empty() ? nlohmann::json(nullptr) : best[0]["accuracy"]},
          {"heads", heads},
          {"top", best}};
}

nlohmann::json coref_document(const format::AttentionData& doc, const std::string& pronoun,
                              const std::vector<std::string>& candidates, const std::string& gold) {
  ATLAS_CHECK(doc.q == doc.k && !doc.keys_differ(), InputError, "{}: coref needs self-attention", doc.source);
  ATLAS_CHECK(!candidates.empty(), InputError, "coref: give the candidate antecedents (--candidates Mom,Lucy)");
  const auto words = process::segment_words(doc);
  const int64_t pw = process::find_word(words, pronoun, doc.source);
  std::vector<int64_t> cw;
  for (const auto& c : candidates) cw.push_back(process::find_word(words, c, doc.source));
  int gi = -1;
  if (!gold.empty()) {
    const auto it = std::find(candidates.begin(), candidates.end(), gold);
    ATLAS_CHECK(it != candidates.end(), InputError, "--gold '{}' is not one of the candidates ({})", gold,
                fmt::join(candidates, ", "));
    gi = int(it - candidates.begin());
  }
  nlohmann::json heads = nlohmann::json::array();
  std::vector<std::pair<double, size_t>> rank;
  for (int64_t li = 0; li < doc.num_layers; ++li)
    for (int64_t hi = 0; hi < doc.num_heads; ++hi) {
      const float* m = doc.matrix(li, hi);
      nlohmann::json att = nlohmann::json::object();
      double best = -1, margin = std::numeric_limits<double>::infinity();
      std::string most;
      std::vector<double> v;
      for (size_t c = 0; c < cw.size(); ++c) {
        v.push_back(word_attention_between(m, doc.q, words[size_t(pw)], words[size_t(cw[c])]));
        att[candidates[c]] = v.back();
        if (v.back() > best) { best = v.back(); most = candidates[c]; }
      }
      if (gi >= 0) {
        double other = 0;
        for (size_t c = 0; c < v.size(); ++c)
          if (int(c) != gi) other = std::max(other, v[c]);
        margin = v[size_t(gi)] - other;
      } else {
        margin = best;
      }
      rank.emplace_back(margin, heads.size());
      nlohmann::json h = {{"layer", doc.layers[size_t(li)]}, {"head", doc.heads[size_t(hi)]}, {"attention", att},
                          {"most_attended", most}};
      if (gi >= 0) h["gold_margin"] = margin;
      heads.push_back(std::move(h));
    }
  std::sort(rank.begin(), rank.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  nlohmann::json top = nlohmann::json::array();
  for (size_t i = 0; i < rank.size() && i < 10; ++i) top.push_back(heads[rank[i].second]);
  size_t gold_heads = 0;
  for (const auto& h : heads) gold_heads += gi >= 0 && h["most_attended"] == gold;
  nlohmann::json r = {{"pronoun", words[size_t(pw)].text}, {"candidates", candidates}, {"heads", heads}, {"top", top}};
  if (gi >= 0) {
    r["gold"] = gold;
    r["heads_choosing_gold"] = gold_heads;
    r["share_choosing_gold"] = double(gold_heads) / double(std::max<size_t>(1, heads.size()));
  }
  return r;
}

}  // namespace atlas::analyze
