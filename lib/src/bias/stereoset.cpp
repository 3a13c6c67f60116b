#include "atlas/bias/stereoset.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/json.hpp"
#include "bias/table.hpp"

namespace atlas::bias {
namespace {

std::string strip_punctuation(std::string s) {
  // Python's s.translate(str.maketrans('', '', string.punctuation)).
  static const std::string punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return punct.find(c) != std::string::npos; }), s.end());
  return s;
}

std::vector<std::string> split_spaces(const std::string& s) {
  // Python's str.split(" "): every single space separates (empty fields kept).
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t sp = s.find(' ', start);
    out.push_back(s.substr(start, sp == std::string::npos ? std::string::npos : sp - start));
    if (sp == std::string::npos) break;
    start = sp + 1;
  }
  return out;
}

StereoSetData read_json(const std::filesystem::path& path) {
  StereoSetData d;
  d.source = path.string();
  d.format = "json";
  d.has_targets = true;
  const nlohmann::json j = parse_json(read_file(path), d.source);
  ATLAS_CHECK(j.is_object() && j.contains("data") && j["data"].is_object() && j["data"].contains("intrasentence") &&
                  j["data"]["intrasentence"].is_array(),
              InputError, "{}: expected the StereoSet JSON format (data.intrasentence[])", d.source);
  int64_t n = 0;
  for (const auto& ex : j["data"]["intrasentence"]) {
    ++n;
    StereoExample e;
    e.line = n;
    auto str = [&](const nlohmann::json& o, const char* key) {
      ATLAS_CHECK(o.is_object() && o.contains(key) && o[key].is_string(), InputError,
                  "{}: intrasentence example {} has no string '{}'", d.source, n, key);
      return o[key].get<std::string>();
    };
    e.id = str(ex, "id");
    e.target = str(ex, "target");
    e.bias_type = str(ex, "bias_type");
    const std::string context = str(ex, "context");
    const size_t blank = context.find("BLANK");
    ATLAS_CHECK(blank != std::string::npos, InputError, "{}: example '{}' has no BLANK in its context", d.source, e.id);
    e.prefix = context.substr(0, blank);
    e.suffix = context.substr(blank + 5);
    // The official loader: the word of each sentence at the index of the context's word holding BLANK.
    const auto words = split_spaces(context);
    size_t word_idx = words.size();
    for (size_t i = 0; i < words.size(); ++i)
      if (words[i].find("BLANK") != std::string::npos) word_idx = i;
    ATLAS_CHECK(ex.contains("sentences") && ex["sentences"].is_array(), InputError, "{}: example '{}' has no sentences",
                d.source, e.id);
    std::set<std::string> seen;
    for (const auto& s : ex["sentences"]) {
      const std::string sentence = str(s, "sentence"), label = str(s, "gold_label");
      const auto sw = split_spaces(sentence);
      ATLAS_CHECK(word_idx < sw.size(), InputError, "{}: example '{}': sentence '{}' is shorter than its context",
                  d.source, e.id, sentence);
      StereoCandidate c{strip_punctuation(sw[word_idx]), sentence};
      if (label == "stereotype") e.stereotype = c;
      else if (label == "anti-stereotype") e.anti_stereotype = c;
      else if (label == "unrelated") e.unrelated = c;
      else ATLAS_FAIL(InputError, "{}: example '{}': unknown gold_label '{}'", d.source, e.id, label);
      seen.insert(label);
    }
    ATLAS_CHECK(seen.size() == 3, InputError,
                "{}: example '{}' needs one stereotype, anti-stereotype and unrelated sentence", d.source, e.id);
    d.examples.push_back(std::move(e));
  }
  return d;
}

StereoSetData read_tsv(const std::filesystem::path& path) {
  StereoSetData d;
  d.source = path.string();
  d.format = "tsv";
  const detail::Table t = detail::read_table(path, '\t', false, 5);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    StereoExample e;
    e.line = t.lines[r];
    e.id = std::to_string(e.line);
    e.bias_type = row[1];
    const std::string& context = row[0];
    const size_t m = context.find("[MASK]");
    ATLAS_CHECK(m != std::string::npos, InputError, "{}:{}: the context has no [MASK]", d.source, e.line);
    ATLAS_CHECK(context.find("[MASK]", m + 1) == std::string::npos, InputError, "{}:{}: the context has two [MASK]s",
                d.source, e.line);
    e.prefix = context.substr(0, m);
    e.suffix = context.substr(m + 6);
    auto cand = [&](const std::string& w) {
      ATLAS_CHECK(!w.empty(), InputError, "{}:{}: an empty filler word", d.source, e.line);
      return StereoCandidate{w, e.prefix + w + e.suffix};
    };
    e.unrelated = cand(row[2]);
    e.stereotype = cand(row[3]);
    e.anti_stereotype = cand(row[4]);
    d.examples.push_back(std::move(e));
  }
  ATLAS_CHECK(!d.examples.empty(), InputError, "{}: no examples", d.source);
  return d;
}

}  // namespace

StereoSetData read_stereoset(const std::filesystem::path& path) {
  std::error_code ec;
  ATLAS_CHECK(std::filesystem::exists(path, ec), InputError, "dataset file '{}' does not exist", path.string());
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".json" ? read_json(path) : read_tsv(path);
}

StereoStats stereoset_stats(const std::vector<StereoExample>& examples, const std::vector<StereoScores>& scores,
                            bool per_target, const std::string& domain) {
  struct Counts {
    double pro = 0, anti = 0, related = 0, total = 0;
  };
  std::map<std::string, Counts> per;
  StereoStats s;
  for (size_t i = 0; i < examples.size(); ++i) {
    if (!domain.empty() && examples[i].bias_type != domain) continue;
    Counts& c = per[per_target ? examples[i].target : std::string("all")];
    const StereoScores& sc = scores[i];
    if (sc.stereotype > sc.anti_stereotype) c.pro += 1;
    else c.anti += 1;
    if (sc.stereotype > sc.unrelated) c.related += 1;
    if (sc.anti_stereotype > sc.unrelated) c.related += 1;
    c.total += 1;
  }
  if (per.empty()) {
    s.lms = s.ss = s.icat = std::nan("");
    return s;
  }
  double lms = 0, ss = 0;
  for (const auto& [term, c] : per) {
    s.count += static_cast<int64_t>(c.total);
    ss += 100.0 * (c.pro / c.total);
    lms += (c.related / (c.total * 2.0)) * 100.0;
  }
  s.groups = static_cast<int64_t>(per.size());
  s.ss = ss / static_cast<double>(per.size());
  s.lms = lms / static_cast<double>(per.size());
  s.icat = s.lms * (std::min(s.ss, 100.0 - s.ss) / 50.0);
  return s;
}

std::vector<StereoScores> score_stereoset(extract::Scorer& scorer, const std::vector<StereoExample>& examples,
                                          const RunSettings& settings) {
  const extract::ScorerInfo& info = scorer.info();
  QueryPlan plan;
  std::vector<std::array<std::vector<size_t>, 3>> handles(examples.size());
  std::vector<int64_t> front, back;
  if (!info.causal) {
    const tokenize::Encoding probe = scorer.encode("a", true);
    size_t i = 0;
    while (i < probe.size() && probe.special_mask[i]) front.push_back(probe.ids[i++]);
    size_t j = probe.size();
    while (j > i && probe.special_mask[j - 1]) --j;
    back.assign(probe.ids.begin() + static_cast<std::ptrdiff_t>(j), probe.ids.end());
  }
  for (size_t e = 0; e < examples.size(); ++e) {
    const StereoExample& ex = examples[e];
    const StereoCandidate* cands[3] = {&ex.stereotype, &ex.anti_stereotype, &ex.unrelated};
    std::vector<int64_t> prefix, suffix;
    if (!info.causal) {
      auto strip = [](std::string s) {
        while (!s.empty() && s.back() == ' ') s.pop_back();
        while (!s.empty() && s.front() == ' ') s.erase(s.begin());
        return s;
      };
      const std::string p = strip(ex.prefix), q = strip(ex.suffix);
      if (!p.empty()) prefix = scorer.encode(p, false).ids;
      if (!q.empty()) suffix = scorer.encode(q, false).ids;
    }
    for (int k = 0; k < 3; ++k) {
      if (info.causal) {
        handles[e][k].push_back(plan.add(causal_query(causal_sentence_ids(scorer, cands[k]->sentence))));
        continue;
      }
      const std::vector<int64_t> word = scorer.encode(cands[k]->word, false).ids;
      ATLAS_CHECK(!word.empty(), InputError, "StereoSet example '{}': the word '{}' has no tokens", ex.id,
                  cands[k]->word);
      for (size_t idx = 0; idx < word.size(); ++idx) {
        extract::ScoreQuery q;
        q.ids = front;
        q.ids.insert(q.ids.end(), prefix.begin(), prefix.end());
        q.ids.insert(q.ids.end(), word.begin(), word.begin() + static_cast<std::ptrdiff_t>(idx));
        const auto pos = static_cast<int64_t>(q.ids.size());
        q.ids.push_back(info.mask_id);
        q.ids.insert(q.ids.end(), suffix.begin(), suffix.end());
        q.ids.insert(q.ids.end(), back.begin(), back.end());
        q.picks.emplace_back(pos, word[idx]);
        handles[e][k].push_back(plan.add(std::move(q)));
      }
    }
  }
  plan.run(scorer, settings);
  std::vector<StereoScores> out(examples.size());
  for (size_t e = 0; e < examples.size(); ++e) {
    double v[3];
    for (int k = 0; k < 3; ++k) {
      std::vector<double> lp;
      for (size_t h : handles[e][k]) lp.insert(lp.end(), plan.result(h).begin(), plan.result(h).end());
      if (info.causal) {
        v[k] = std::exp(mean(lp));
      } else {
        double p = 0;
        for (double x : lp) p += std::exp(x);
        v[k] = p / static_cast<double>(lp.size());
      }
    }
    out[e] = {v[0], v[1], v[2]};
  }
  return out;
}

}  // namespace atlas::bias
