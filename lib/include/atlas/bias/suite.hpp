#pragma once
/// Bias suites (configs/bias/*.yaml, format in docs/bias.md): templates with {slots} filled from word
/// lists, and counterfactual pairs of words (he/she, his/her ...). Each template instance is one
/// sentence of group A (as written) and its counterfactual of group B, made by swapping every pair
/// word (whole words, case kept: He -> She) and nothing else. Explicit sentence pairs may be given too;
/// their sides must differ only in pair words. Every error names the file and line (yaml-cpp marks).
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace atlas::bias {

struct SuiteWord {
  std::string word;
  std::optional<double> pct_female;   // real-world statistic (e.g. Winogender's BLS column)
};

struct SuiteTemplate {
  std::string text;                   // with {slot} placeholders
  std::string target;                 // a pair word of group A in the text (the pronoun), or a slot
  std::string attribute;              // the slot whose word is the attribute
  int64_t line = 0;
};

/// One counterfactual item: the same sentence for group A and group B.
struct SuiteItem {
  std::string template_text;
  std::string attribute_word;          // the word filling the attribute slot
  std::string sentence_a, sentence_b;
  /// Byte spans [begin, end) of the target and attribute words in each sentence.
  std::pair<size_t, size_t> target_a, target_b, attribute_a, attribute_b;
  std::optional<double> pct_female;    // of the attribute word, when the list gives it
  int64_t line = 0;                    // the template's (or pair's) line in the suite file
};

struct Suite {
  std::string name, description, source;   // source: where the word lists / statistics come from
  std::filesystem::path path;
  std::string sha256;
  std::string group_a = "A", group_b = "B";
  std::map<std::string, std::vector<SuiteWord>> lists;
  std::vector<std::pair<std::string, std::string>> pairs;   // group A word -> group B word
  std::vector<SuiteTemplate> templates;
  std::vector<std::string> thresholds;                       // --fail-if expressions kept in the suite
  std::vector<SuiteItem> items;                              // expanded
};

/// Parses and expands a suite; ConfigError "FILE:LINE: ..." for an unknown key or slot, an empty list,
/// a template without its target or attribute, or an explicit pair whose sides differ in more than
/// the swapped words.
Suite parse_suite(const std::string& yaml_text, const std::string& source);
Suite load_suite(const std::filesystem::path& path);

/// Swaps every pair word of `text` (whole words; the case of the first letter is kept).
/// `to_b`: A -> B, else B -> A.
std::string swap_words(const std::string& text, const std::vector<std::pair<std::string, std::string>>& pairs,
                       bool to_b = true);

}  // namespace atlas::bias
