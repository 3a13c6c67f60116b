#pragma once
/// The three case studies (docs/metrics.md, "analyze coref / long / multilingual"):
///  - coref: attention from a pronoun word to its candidate antecedents, per head; on a labelled
///    set in WinoBias format (Zhao et al. 2018) the accuracy of "the most attended candidate is the
///    gold antecedent" per head (cf. Clark et al. 2019, §5 coreference heads);
///  - long: attention mass by token distance per layer, in log2 bins, and the proximal preference;
///  - multilingual: per-head statistics per language of parallel sentences, and a cross-language
///    alignment score (attention from a word of one sentence to its counterpart in the other when
///    both are encoded together).
/// Word-level attention throughout: atlas/process/words.hpp (to a word: sum over its tokens; from a
/// word: mean over its tokens; Clark et al. 2019).
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "atlas/analyze/documents.hpp"
#include "atlas/analyze/heads.hpp"
#include "atlas/format/attention.hpp"

namespace atlas::analyze {

// ---- coref -------------------------------------------------------------------------------------

/// A character span [begin, end) in code points of the text.
using Span = std::array<int64_t, 2>;

struct CorefExample {
  std::string id;                  ///< "pro_stereotyped_type1.txt.dev:12"
  std::string text;                ///< brackets removed
  Span pronoun{-1, -1};
  std::vector<Span> candidates;    ///< head nouns of the candidate antecedents
  std::vector<std::string> candidate_words;
  int gold = -1;                   ///< index into candidates
  std::string subset;              ///< "pro" / "anti" (from the file name), or ""
};

/// Reads a WinoBias file: "N [The developer] argued with the designer because [he] ...": the second
/// bracket is the pronoun, the first the gold antecedent; the candidates are the occupations of the
/// sentence (male_occupations.txt / female_occupations.txt next to the file, else every noun after
/// "the"), their last word standing for them. Lines that do not give two candidates are returned in
/// `rejected` with the reason.
std::vector<CorefExample> read_winobias(const std::filesystem::path& file, std::vector<SkippedDocument>* rejected);

/// Per-head accumulation of "most attended candidate = gold" over examples.
class CorefScores {
 public:
  /// Adds one document; InputError when the pronoun or a candidate is not a word of it.
  void add(const format::AttentionData& doc, const CorefExample& example);
  /// {"examples", "heads": [{"layer", "head", "accuracy", "accuracy_pro", "accuracy_anti",
  ///  "gold_attention", "other_attention"}], "top": [...the best 10 heads], "chance": ...,
  ///  "nearest_baseline": the accuracy of always choosing the candidate nearest before the pronoun}
  nlohmann::json to_json(size_t top = 10) const;

 private:
  struct Acc {
    int64_t n = 0, correct = 0;
    std::map<std::string, std::array<int64_t, 2>> subset;   // subset -> {n, correct}
    double gold = 0, other = 0;
  };
  std::vector<int64_t> layers_, heads_;
  std::vector<Acc> acc_;
  int64_t examples_ = 0;
  int64_t nearest_correct_ = 0;   // the gold is the candidate nearest before the pronoun
  double chance_ = 0;   // sum of 1 / #candidates
};

/// One document, named words: per head the word-level attention from `pronoun` (a word: "she",
/// "she#2") to each candidate. {"pronoun", "candidates", "heads": [{"layer", "head", "attention":
/// {cand: w}, "most_attended"}], "top": ...}; with `gold` (one of the candidates) the heads are
/// ranked by the gold's margin over the best other candidate.
nlohmann::json coref_document(const format::AttentionData& doc, const std::string& pronoun,
                              const std::vector<std::string>& candidates, const std::string& gold);

// ---- long --------------------------------------------------------------------------------------

/// Attention mass by token distance, binned by log2: bin 0 = distance 0, bin b >= 1 = [2^(b-1), 2^b).
class DistanceProfile {
 public:
  explicit DistanceProfile(int64_t local_window = 8) : local_(local_window) {}
  void add(const format::AttentionData& doc);
  void add_matrix(int64_t li, int64_t hi, const float* a, int64_t n, bool causal);
  void reset(std::vector<int64_t> layers, std::vector<int64_t> heads);
  /// {"local_window", "max_distance", "layers": [{"layer", "proximal_preference", "local_mass",
  ///  "bins": [{"from", "to", "mass", "per_key", "ratio"}]}], "heads": [{"layer", "head",
  ///  "proximal_preference", "local_mass", "mean_distance"}]}
  nlohmann::json to_json() const;
  static int bin_of(int64_t distance);

 private:
  struct Acc {
    std::vector<double> mass, pairs, uniform;   // per bin: sum of a_ij, count of (i,j), sum of 1/n_i
    double local = 0, local_uniform = 0, dist = 0;
    int64_t queries = 0;
  };
  int64_t local_;
  int64_t max_distance_ = 0;
  std::vector<int64_t> layers_, heads_;
  std::vector<Acc> acc_;
};

// ---- multilingual ------------------------------------------------------------------------------

struct ParallelSet {
  std::vector<std::string> languages;             ///< column names (header) or --languages
  std::vector<std::vector<std::string>> rows;     ///< rows[r][c]
};
/// Tab-separated parallel sentences; the first line is a header of language codes unless
/// `languages` is given. Rows with another number of fields are InputErrors naming the line.
ParallelSet read_parallel(const std::filesystem::path& file, const std::vector<std::string>& languages);

/// A bilingual dictionary: "source<TAB>target" word pairs (word_key-normalised).
using Dictionary = std::multimap<std::string, std::string>;
Dictionary read_dictionary(const std::filesystem::path& file);

/// Cross-language alignment: the document is "A B" (sentence A, a space, sentence B), `split` the
/// code-point offset where B starts. For each word of B its counterpart in A is the word with the
/// same key (identical string: names, numbers), else a dictionary translation, else the word at the
/// same relative position. Per head: the mean attention from B's words to their counterparts
/// ("alignment"), the share whose most attended word of A is the counterpart ("accuracy"), and the
/// uniform baseline 1 / (words of A).
class AlignmentScores {
 public:
  void add(const format::AttentionData& doc, int64_t split, const Dictionary& dictionary);
  nlohmann::json to_json(size_t top = 10) const;

 private:
  struct Acc {
    double attention = 0, baseline = 0;
    int64_t words = 0, correct = 0;
  };
  std::vector<int64_t> layers_, heads_;
  std::vector<Acc> acc_;
  int64_t pairs_ = 0;
  std::map<std::string, int64_t> how_;   // identical / dictionary / position
};

}  // namespace atlas::analyze
