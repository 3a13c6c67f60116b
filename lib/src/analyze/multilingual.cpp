// analyze multilingual: parallel sentences, per-language head statistics, cross-language alignment.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "atlas/analyze/cases.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/process/words.hpp"
#include "analyze/word_tools.hpp"

namespace atlas::analyze {
namespace fs = std::filesystem;

namespace {
std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return out;
}
}  // namespace

ParallelSet read_parallel(const fs::path& file, const std::vector<std::string>& languages) {
  ATLAS_CHECK(fs::is_regular_file(file), InputError, "parallel file '{}' does not exist", file.string());
  ParallelSet set;
  std::istringstream in(read_file(file));
  std::string line;
  int64_t ln = 0;
  while (std::getline(in, line)) {
    ++ln;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto fields = split_tabs(line);
    if (set.languages.empty()) {
      if (!languages.empty()) {
        set.languages = languages;
      } else {
        set.languages = fields;
        continue;
      }
    }
    ATLAS_CHECK(fields.size() == set.languages.size(), InputError,
                "{}:{}: {} tab-separated fields, expected {} ({})", file.string(), ln, fields.size(),
                set.languages.size(), fmt::join(set.languages, ", "));
    set.rows.push_back(std::move(fields));
  }
  ATLAS_CHECK(set.languages.size() >= 2, InputError,
              "{}: parallel sentences need at least two languages (columns), got {}", file.string(), set.languages.size());
  ATLAS_CHECK(!set.rows.empty(), InputError, "{}: no sentences", file.string());
  return set;
}

Dictionary read_dictionary(const fs::path& file) {
  Dictionary d;
  std::istringstream in(read_file(file));
  std::string line;
  int64_t ln = 0;
  while (std::getline(in, line)) {
    ++ln;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto f = split_tabs(line);
    ATLAS_CHECK(f.size() == 2, InputError, "{}:{}: expected 'source<TAB>target', got {} fields", file.string(), ln, f.size());
    d.emplace(process::word_key(f[0]), process::word_key(f[1]));
  }
  return d;
}

void AlignmentScores::add(const format::AttentionData& doc, int64_t split, const Dictionary& dictionary) {
  ATLAS_CHECK(doc.q == doc.k && !doc.keys_differ(), InputError, "{}: alignment needs self-attention", doc.source);
  if (acc_.empty()) {
    layers_ = doc.layers;
    heads_ = doc.heads;
    acc_.assign(layers_.size() * heads_.size(), Acc{});
  }
  ATLAS_CHECK(doc.layers == layers_ && doc.heads == heads_, InputError, "{}: layers / heads differ", doc.source);
  const auto words = process::segment_words(doc);
  std::vector<int64_t> a, b;   // word indices of sentence A and B
  for (size_t w = 0; w < words.size(); ++w) {
    if (words[w].special || words[w].begin < 0) continue;
    (words[w].begin < split ? a : b).push_back(int64_t(w));
  }
  ATLAS_CHECK(!a.empty() && !b.empty(), InputError, "{}: both sentences need words (got {} and {})", doc.source, a.size(),
              b.size());
  // Counterpart in A of each word of B.
  std::vector<int64_t> counterpart(b.size(), -1);
  for (size_t k = 0; k < b.size(); ++k) {
    const std::string key = process::word_key(words[size_t(b[k])].text);
    for (int64_t w : a)
      if (process::word_key(words[size_t(w)].text) == key) { counterpart[k] = w; break; }
    if (counterpart[k] >= 0) { ++how_["identical"]; continue; }
    // Dictionary entries map A's words to B's: look for an A word translating to this one.
    for (int64_t w : a) {
      const auto range = dictionary.equal_range(process::word_key(words[size_t(w)].text));
      for (auto it = range.first; it != range.second && counterpart[k] < 0; ++it)
        if (it->second == key) counterpart[k] = w;
      if (counterpart[k] >= 0) break;
    }
    if (counterpart[k] >= 0) { ++how_["dictionary"]; continue; }
    const double rel = b.size() > 1 ? double(k) / double(b.size() - 1) : 0.0;
    counterpart[k] = a[size_t(std::lround(rel * double(a.size() - 1)))];
    ++how_["position"];
  }
  ++pairs_;
  for (int64_t li = 0; li < doc.num_layers; ++li)
    for (int64_t hi = 0; hi < doc.num_heads; ++hi) {
      const float* m = doc.matrix(li, hi);
      Acc& acc = acc_[size_t(li * doc.num_heads + hi)];
      for (size_t k = 0; k < b.size(); ++k) {
        const auto& from = words[size_t(b[k])];
        double best = -1, target = 0;
        int64_t best_w = -1;
        for (int64_t w : a) {
          const double v = word_attention_between(m, doc.q, from, words[size_t(w)]);
          if (w == counterpart[k]) target = v;
          if (v > best) { best = v; best_w = w; }
        }
        acc.attention += target;
        acc.baseline += 1.0 / double(a.size());
        acc.correct += best_w == counterpart[k];
        ++acc.words;
      }
    }
}

nlohmann::json AlignmentScores::to_json(size_t top) const {
  nlohmann::json heads = nlohmann::json::array();
  std::vector<std::pair<double, size_t>> rank;
  for (size_t li = 0; li < layers_.size(); ++li)
    for (size_t hi = 0; hi < heads_.size(); ++hi) {
      const Acc& a = acc_[li * heads_.size() + hi];
      const double n = double(std::max<int64_t>(1, a.words));
      heads.push_back({{"layer", layers_[li]},
                       {"head", heads_[hi]},
                       {"alignment", number_or_null(a.words ? a.attention / n : NAN)},
                       {"accuracy", number_or_null(a.words ? double(a.correct) / n : NAN)},
                       {"baseline", number_or_null(a.words ? a.baseline / n : NAN)}});
      rank.emplace_back(a.words ? a.attention / n : 0, heads.size() - 1);
    }
  std::sort(rank.begin(), rank.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  nlohmann::json best = nlohmann::json::array();
  for (size_t i = 0; i < rank.size() && i < top; ++i) best.push_back(heads[rank[i].second]);
  return {{"pairs", pairs_}, {"counterparts", how_}, {"heads", heads}, {"top", best},
          {"best_alignment", best.empty() ? nlohmann::json(nullptr) : best[0]["alignment"]}};
}

}  // namespace atlas::analyze
