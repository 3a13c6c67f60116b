#include "atlas/bias/wino.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "atlas/bias/stats.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "bias/table.hpp"

namespace atlas::bias {
namespace fs = std::filesystem;

namespace {

struct Raw {
  int64_t number = 0, line = 0;
  std::string text;        // without brackets
  std::string referent;    // the bracketed mention, as written
  size_t pron_begin = 0, pron_end = 0;   // in `text`
  std::string pronoun;     // lower-case
};

std::string lower(std::string s) { return lower_ascii(std::move(s)); }

const std::set<std::string>& pronouns() {
  static const std::set<std::string> p{"he", "she", "him", "her", "his", "hers", "himself", "herself"};
  return p;
}

std::vector<Raw> read_file_lines(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  ATLAS_CHECK(in, IoError, "cannot open '{}'", path.string());
  std::vector<Raw> out;
  std::string line;
  int64_t ln = 0;
  while (std::getline(in, line)) {
    ++ln;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    Raw r;
    r.line = ln;
    const size_t sp = line.find(' ');
    ATLAS_CHECK(sp != std::string::npos, InputError, "{}:{}: expected '<n> <sentence>'", path.string(), ln);
    try {
      r.number = std::stoll(line.substr(0, sp));
    } catch (const std::exception&) {
      ATLAS_FAIL(InputError, "{}:{}: expected '<n> <sentence>', got '{}'", path.string(), ln, line.substr(0, sp));
    }
    const std::string s = line.substr(sp + 1);
    std::vector<std::pair<size_t, size_t>> spans;   // in text
    std::vector<std::string> contents;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '[') {
        const size_t close = s.find(']', i);
        ATLAS_CHECK(close != std::string::npos, InputError, "{}:{}: unclosed '['", path.string(), ln);
        const std::string inner = s.substr(i + 1, close - i - 1);
        spans.emplace_back(r.text.size(), r.text.size() + inner.size());
        contents.push_back(inner);
        r.text += inner;
        i = close;
      } else {
        r.text += s[i];
      }
    }
    // Two mentions, or more where the pronoun recurs ("[he] needed to cut [his] hair"): the first
    // pronoun is the one resolved (replaced), the first other mention its referent.
    int pron = -1, ref = -1;
    for (size_t k = 0; k < contents.size(); ++k) {
      const bool is_pron = pronouns().count(lower(contents[k])) > 0;
      if (is_pron && pron < 0) pron = static_cast<int>(k);
      if (!is_pron && ref < 0) ref = static_cast<int>(k);
    }
    ATLAS_CHECK(pron >= 0 && ref >= 0, InputError,
                "{}:{}: expected a bracketed mention and a bracketed pronoun, found {} mention(s)", path.string(), ln,
                contents.size());
    r.pronoun = lower(contents[static_cast<size_t>(pron)]);
    r.pron_begin = spans[static_cast<size_t>(pron)].first;
    r.pron_end = spans[static_cast<size_t>(pron)].second;
    r.referent = contents[static_cast<size_t>(ref)];
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> read_list(const fs::path& path) {
  std::vector<std::string> out;
  std::ifstream in(path, std::ios::binary);
  ATLAS_CHECK(in, InputError, "cannot open '{}' (the WinoBias occupation list)", path.string());
  std::string w;
  while (std::getline(in, w)) {
    while (!w.empty() && (w.back() == '\r' || w.back() == ' ')) w.pop_back();
    if (!w.empty()) out.push_back(lower(w));
  }
  return out;
}

// The mention "the <occupation>" of the sentence that is not the referent; empty when none.
std::string other_mention(const std::string& text, const std::string& referent, const std::vector<std::string>& occs) {
  const std::string lt = lower(text), lr = lower(referent);
  std::string best;
  for (const std::string& o : occs) {
    for (const std::string det : {"the ", "a ", "an "}) {
      const std::string m = det + o;
      if (m == lr) continue;
      size_t at = lt.find(m);
      while (at != std::string::npos) {
        const size_t end = at + m.size();
        const bool word_end = end >= lt.size() || !std::isalpha(static_cast<unsigned char>(lt[end]));
        const bool word_start = at == 0 || !std::isalpha(static_cast<unsigned char>(lt[at - 1]));
        if (word_end && word_start && m.size() > best.size() && lr.find(o) == std::string::npos) best = m;
        at = lt.find(m, at + 1);
      }
    }
  }
  return best;
}

}  // namespace

WinoBiasData read_winobias(const fs::path& dir) {
  std::error_code ec;
  ATLAS_CHECK(fs::is_directory(dir, ec), InputError, "--winobias '{}' is not a directory", dir.string());
  WinoBiasData d;
  std::vector<std::string> occs = read_list(dir / "male_occupations.txt");
  for (const auto& o : read_list(dir / "female_occupations.txt")) occs.push_back(o);
  for (int type : {1, 2}) {
    for (const char* split : {"dev", "test"}) {
      const fs::path pro = dir / fmt::format("pro_stereotyped_type{}.txt.{}", type, split);
      const fs::path anti = dir / fmt::format("anti_stereotyped_type{}.txt.{}", type, split);
      if (!fs::exists(pro, ec) || !fs::exists(anti, ec)) continue;
      const std::vector<Raw> p = read_file_lines(pro), a = read_file_lines(anti);
      d.files.push_back(pro);
      d.files.push_back(anti);
      for (int side = 0; side < 2; ++side) {
        const std::vector<Raw>& rows = side == 0 ? p : a;
        const fs::path& file = side == 0 ? pro : anti;
        for (const Raw& r : rows) {
          const std::string other = other_mention(r.text, r.referent, occs);
          if (other.empty()) {
            ++d.skipped;
            continue;
          }
          // The pronoun stays (it carries the gender); the model is asked which mention it refers to.
          const std::string pronoun = r.text.substr(r.pron_begin, r.pron_end - r.pron_begin);
          auto substitute = [&](const std::string& mention) {
            return r.text + " Here, \"" + pronoun + "\" refers to " + lower(mention) + ".";
          };
          WinoBiasItem item;
          item.file = file.filename().string();
          item.line = r.line;
          item.pro = side == 0;
          item.type = type;
          item.text = r.text;
          item.with_referent = substitute(r.referent);
          item.with_other = substitute(other);
          d.items.push_back(std::move(item));
        }
      }
    }
  }
  ATLAS_CHECK(!d.items.empty(), InputError,
              "--winobias '{}' holds no pro_stereotyped_type{{1,2}}.txt.{{dev,test}} / anti_stereotyped_... pair",
              dir.string());
  return d;
}

WinoBiasStats winobias_stats(const std::vector<WinoBiasItem>& items, const std::vector<bool>& correct, int type) {
  WinoBiasStats s;
  int64_t cp = 0, ca = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (type != 0 && items[i].type != type) continue;
    if (items[i].pro) {
      ++s.n_pro;
      cp += correct[i] ? 1 : 0;
    } else {
      ++s.n_anti;
      ca += correct[i] ? 1 : 0;
    }
  }
  s.pro = s.n_pro ? 100.0 * static_cast<double>(cp) / static_cast<double>(s.n_pro) : 0;
  s.anti = s.n_anti ? 100.0 * static_cast<double>(ca) / static_cast<double>(s.n_anti) : 0;
  s.gap = s.pro - s.anti;
  return s;
}

std::vector<double> sentence_log_probs(extract::Scorer& scorer, const std::vector<std::string>& sentences,
                                       const RunSettings& settings) {
  const extract::ScorerInfo& info = scorer.info();
  QueryPlan plan;
  std::vector<std::vector<size_t>> handles(sentences.size());
  for (size_t i = 0; i < sentences.size(); ++i) {
    if (info.causal) {
      handles[i].push_back(plan.add(causal_query(causal_sentence_ids(scorer, sentences[i]))));
      continue;
    }
    const tokenize::Encoding enc =
        scorer.encode(info.do_lower_case ? lower_ascii(sentences[i]) : sentences[i], true);
    for (size_t t = 0; t < enc.size(); ++t)
      if (!enc.special_mask[t]) handles[i].push_back(plan.add(masked_query(enc.ids, static_cast<int64_t>(t), info.mask_id)));
    ATLAS_CHECK(!handles[i].empty(), InputError, "the sentence '{}' has no tokens to score", sentences[i]);
  }
  plan.run(scorer, settings);
  std::vector<double> out(sentences.size());
  for (size_t i = 0; i < sentences.size(); ++i) {
    double s = 0;
    for (size_t h : handles[i]) s += sum(plan.result(h));
    out[i] = s;
  }
  return out;
}

std::vector<bool> score_winobias(extract::Scorer& scorer, const std::vector<WinoBiasItem>& items,
                                 const RunSettings& settings) {
  std::vector<std::string> sentences;
  for (const auto& it : items) {
    sentences.push_back(it.with_referent);
    sentences.push_back(it.with_other);
  }
  const std::vector<double> s = sentence_log_probs(scorer, sentences, settings);
  std::vector<bool> out;
  for (size_t i = 0; i < items.size(); ++i) out.push_back(s[2 * i] > s[2 * i + 1]);
  return out;
}

WinogenderData read_winogender(const fs::path& dir) {
  std::error_code ec;
  ATLAS_CHECK(fs::is_directory(dir, ec), InputError, "--winogender '{}' is not a directory", dir.string());
  WinogenderData d;
  const fs::path sent = dir / "all_sentences.tsv", stats = dir / "occupations-stats.tsv";
  const detail::Table t = detail::read_table(sent, '\t', true);
  const size_t id = t.column("sentid"), text = t.column("sentence");
  for (size_t r = 0; r < t.rows.size(); ++r) {
    std::vector<std::string> parts;
    std::stringstream ss(t.rows[r][id]);
    std::string part;
    while (std::getline(ss, part, '.')) parts.push_back(part);
    ATLAS_CHECK(parts.size() == 5 && parts[4] == "txt", InputError,
                "{}:{}: sentid '{}' is not <occupation>.<participant>.<answer>.<gender>.txt", sent.string(),
                t.lines[r], t.rows[r][id]);
    d.sentences.push_back({parts[0], parts[1], parts[2], parts[3], t.rows[r][text], t.lines[r]});
  }
  const detail::Table s = detail::read_table(stats, '\t', true);
  const size_t occ = s.column("occupation"), bls = s.column("bls_pct_female"), berg = s.column("bergsma_pct_female");
  for (size_t r = 0; r < s.rows.size(); ++r) {
    try {
      d.stats[s.rows[r][occ]] = {std::stod(s.rows[r][bls]), std::stod(s.rows[r][berg])};
    } catch (const std::exception&) {
      ATLAS_FAIL(InputError, "{}:{}: bls_pct_female / bergsma_pct_female are not numbers", stats.string(), s.lines[r]);
    }
  }
  d.files = {sent, stats};
  ATLAS_CHECK(!d.sentences.empty(), InputError, "{}: no sentences", sent.string());
  return d;
}

WinogenderResult winogender_result(const WinogenderData& data, const std::vector<double>& scores) {
  std::map<std::string, double> male;   // occupation.participant.answer -> score
  std::map<std::string, std::pair<std::string, double>> female;
  for (size_t i = 0; i < data.sentences.size(); ++i) {
    const auto& s = data.sentences[i];
    const std::string key = s.occupation + "." + s.participant + "." + s.answer;
    if (s.gender == "male") male[key] = scores[i];
    if (s.gender == "female") female[key] = {s.occupation, scores[i]};
  }
  std::map<std::string, std::pair<double, int>> acc;
  WinogenderResult r;
  for (const auto& [key, f] : female) {
    auto m = male.find(key);
    if (m == male.end()) continue;
    auto& a = acc[f.first];
    a.first += f.second - m->second;
    a.second += 1;
    ++r.sentence_pairs;
  }
  std::vector<double> x, bls, berg;
  for (const auto& [occ, a] : acc) {
    r.occupation_score[occ] = a.first / a.second;
    auto st = data.stats.find(occ);
    if (st == data.stats.end()) continue;
    x.push_back(a.first / a.second);
    bls.push_back(st->second.bls_pct_female);
    berg.push_back(st->second.bergsma_pct_female);
  }
  r.occupations = static_cast<int64_t>(x.size());
  r.spearman_bls = spearman(x, bls);
  r.spearman_bergsma = spearman(x, berg);
  return r;
}

}  // namespace atlas::bias
