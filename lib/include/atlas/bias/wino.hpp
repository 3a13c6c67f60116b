#pragma once
/// WinoBias (Zhao et al. 2018) and Winogender (Rudinger et al. 2018) with a language model.
/// WinoBias: in each sentence the bracketed pronoun refers to the bracketed occupation. The sentence is
/// followed by `Here, "he" refers to the developer.` with each of the two occupations it mentions (the
/// pronoun is kept: it carries the gender, so a substitution of the pronoun would make the pro and anti
/// files identical); both are scored (causal: summed log-probability after BOS; masked:
/// pseudo-log-likelihood, every token masked alone), and the resolution is correct when the referent's
/// continuation scores higher. Accuracy on the pro- and anti-stereotypical files, and
/// the gap pro - anti (percentage points), overall and per type.
/// Winogender: per occupation, the mean over its sentences of score(female) - score(male) (the
/// sentences differ only in the pronoun), and Spearman's rho of it with the occupation statistics
/// (occupations-stats.tsv: bls_pct_female, bergsma_pct_female).
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "atlas/bias/scoring.hpp"

namespace atlas::bias {

struct WinoBiasItem {
  std::string file;
  int64_t line = 0;
  bool pro = false;
  int type = 1;
  std::string with_referent, with_other;   // the sentence + "Here, \"he\" refers to <mention>."
  std::string text;                        // the sentence without brackets
};

struct WinoBiasData {
  std::vector<WinoBiasItem> items;
  std::vector<std::filesystem::path> files;
  int64_t skipped = 0;   // sentences whose second occupation could not be found
};

/// Reads {pro,anti}_stereotyped_type{1,2}.txt.{dev,test} (those present; at least one pair) and the
/// occupation lists of `dir`. InputError naming the file and line of a sentence without its two
/// bracketed mentions.
WinoBiasData read_winobias(const std::filesystem::path& dir);

struct WinoBiasStats {
  int64_t n_pro = 0, n_anti = 0;
  double pro = 0, anti = 0, gap = 0;   // percent, gap = pro - anti
};
WinoBiasStats winobias_stats(const std::vector<WinoBiasItem>& items, const std::vector<bool>& correct, int type = 0);

/// Whether each item resolves to its referent.
std::vector<bool> score_winobias(extract::Scorer& scorer, const std::vector<WinoBiasItem>& items,
                                 const RunSettings& settings);

struct WinogenderSentence {
  std::string occupation, participant, answer, gender, text;
  int64_t line = 0;
};
struct OccupationStat {
  double bls_pct_female = 0, bergsma_pct_female = 0;
};
struct WinogenderData {
  std::vector<WinogenderSentence> sentences;
  std::map<std::string, OccupationStat> stats;
  std::vector<std::filesystem::path> files;
};

/// Reads all_sentences.tsv and occupations-stats.tsv of `dir`. InputError naming file and column/line.
WinogenderData read_winogender(const std::filesystem::path& dir);

struct WinogenderResult {
  std::map<std::string, double> occupation_score;   // mean log p(female) - log p(male)
  double spearman_bls = 0, spearman_bergsma = 0;
  int64_t occupations = 0, sentence_pairs = 0;
};
/// From the per-sentence scores (same order as data.sentences).
WinogenderResult winogender_result(const WinogenderData& data, const std::vector<double>& sentence_scores);

/// Sentence log-probability: causal, summed after BOS; masked, pseudo-log-likelihood. One score per
/// sentence, in order.
std::vector<double> sentence_log_probs(extract::Scorer& scorer, const std::vector<std::string>& sentences,
                                       const RunSettings& settings);

}  // namespace atlas::bias
