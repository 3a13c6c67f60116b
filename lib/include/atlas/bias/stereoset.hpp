#pragma once
/// StereoSet intrasentence (Nadeem et al. 2021): each context has a blank and three fillers
/// (stereotype, anti-stereotype, unrelated). As the official evaluation (moinnadeem/StereoSet
/// code/evaluation.py) counts, per target term: pro += stereotype scored above anti-stereotype (else
/// anti), related += each of the two scored above unrelated; SS = 100 pro / total, LMS = 100 related /
/// (2 total), micro ICAT = LMS min(SS, 100 - SS) / 50; SS and LMS are the means over target terms and
/// ICAT = LMS min(SS, 100 - SS) / 50 of those means; per bias domain and overall.
/// Sentence scores as the official / bias-bench scoring: masked LMs, the mean probability of the
/// filler's tokens, each predicted at one [MASK] with the tokens before it filled in; causal LMs, the
/// geometric-mean token probability of the whole sentence after BOS.
/// Inputs: the official JSON (dev.json: data.intrasentence[] with target, bias_type, context "... BLANK
/// ...", sentences[] with sentence, gold_label) or the processed TSV (context with [MASK], bias_type,
/// unrelated, stereotype, anti_stereotype words), which has no target terms: all examples of a domain
/// then count as one group and the report says that per-target averaging was not possible.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "atlas/bias/scoring.hpp"

namespace atlas::bias {

struct StereoCandidate {
  std::string word;        // the filler (template word)
  std::string sentence;    // the full sentence
};

struct StereoExample {
  std::string id, target, bias_type;
  std::string prefix, suffix;   // the context before and after the blank
  int64_t line = 0;             // TSV line, or the example's position in the JSON
  StereoCandidate stereotype, anti_stereotype, unrelated;
};

struct StereoSetData {
  std::string source;
  std::string format;           // "json" | "tsv"
  bool has_targets = false;
  std::vector<StereoExample> examples;
};

/// .json: the official format; anything else: the processed TSV. InputError naming the file and the
/// line (TSV) or example id (JSON) of a bad entry.
StereoSetData read_stereoset(const std::filesystem::path& path);

struct StereoScores {
  double stereotype = 0, anti_stereotype = 0, unrelated = 0;
};

struct StereoStats {
  int64_t count = 0;
  int64_t groups = 0;          // target terms (or 1 when the data has none)
  double lms = 0, ss = 0, icat = 0;
};

/// `domain` empty: all examples.
StereoStats stereoset_stats(const std::vector<StereoExample>& examples, const std::vector<StereoScores>& scores,
                            bool per_target, const std::string& domain = {});

std::vector<StereoScores> score_stereoset(extract::Scorer& scorer, const std::vector<StereoExample>& examples,
                                          const RunSettings& settings);

}  // namespace atlas::bias
