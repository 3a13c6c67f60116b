#pragma once
/// Subword -> word segmentation and word-level attention (Clark et al. 2019, "What Does BERT Look
/// At?", §4.2): attention TO a word is the sum over its pieces, attention FROM a word the mean over
/// its pieces, so every row of a word-level matrix still sums to what a token row summed to.
///
/// Words come from the document's text and token offsets (docs/formats/attention-npz.md):
///  - the text is split at whitespace; punctuation stays with the word it touches ("cookie," is one
///    word), so a word is what a reader calls one;
///  - characters of scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer,
///    Myanmar, Tibetan) are one word each, and punctuation right after them joins them;
///  - a token belongs to the word holding its first non-space character; a token whose offsets span
///    several words merges them (a word is never split), so byte-fallback pieces `<0xE5><0xB0><0x8F>`
///    that all cover 小 make the word 小; a token covering only whitespace (`▁` alone) joins the next
///    word of its segment (else the previous one);
///  - special tokens (`<s>`, `[CLS]`, `[SEP]`) are words of their own;
///  - a sentence pair (`token_type_ids`, `meta.input.text_pair`) is segmented per segment, its
///    offsets indexing its own text.
/// Without offsets or text (`--ids` input, files from elsewhere), the token strings decide: a piece
/// starting with `Ġ` / `▁` / a space starts a word, `##` continues one (WordPiece), and consecutive
/// byte pieces are decoded to characters.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "atlas/format/attention.hpp"

namespace atlas::process {

struct Word {
  std::string text;              ///< the word as written (UTF-8); a special token's string
  int64_t begin = -1, end = -1;  ///< [begin, end) in code points of its segment's text; -1 -1: special / no text
  std::vector<int64_t> tokens;   ///< token positions, ascending
  bool special = false;          ///< a template token (<s>, [CLS] ...)
  int64_t segment = 0;           ///< 0, or 1 for the second text of a pair
  /// 1-based occurrence among the words with the same key (lower-case, without surrounding
  /// punctuation): the `2` of `she#2`.
  int64_t occurrence = 1;
};

/// What segmentation reads: one token axis of a document.
struct TokenAxis {
  std::vector<std::string> tokens;                   ///< vocabulary strings
  std::vector<std::array<int64_t, 2>> offsets;       ///< code points; empty or -1 -1 where unknown
  std::vector<uint8_t> special;                      ///< empty: none
  std::vector<int64_t> token_type_ids;               ///< empty: one segment
  std::string text, text_pair;                       ///< what the offsets index (segment 0, 1)
};

/// The query axis of a document (for self-attention also its key axis).
TokenAxis query_axis(const format::AttentionData& doc);

/// Splits a token axis into words; every token lands in exactly one word, words are in text order.
std::vector<Word> segment_words(const TokenAxis& axis);
inline std::vector<Word> segment_words(const format::AttentionData& doc) { return segment_words(query_axis(doc)); }

/// The word -> token mapping as a vector: word_of[t] = index of the word holding token t.
std::vector<int64_t> word_of_token(const std::vector<Word>& words, int64_t num_tokens);

/// One [Q, K] matrix to [Wq, Wk]: out[a][b] = mean over query tokens i of a of sum over key tokens
/// j of b of m[i][j]. `out` holds Wq*Wk floats.
void word_matrix(const float* m, int64_t q, int64_t k, const std::vector<Word>& query_words,
                 const std::vector<Word>& key_words, float* out);

/// Every matrix of `doc` ([L, H, Q, K]) to words: [L, H, Wq, Wk], row-major.
std::vector<float> word_attention(const format::AttentionData& doc, const std::vector<Word>& query_words,
                                  const std::vector<Word>& key_words);

/// The whole document at word level, in the attention layout: tokens become words (`tokens` and
/// `token_labels` the word texts, `offsets` the word spans, `special` the special words,
/// `input_ids` the first token's id), attention becomes word_attention. Self-attention only (the
/// key axis of cross-attention has no offsets in AttentionData): InputError otherwise.
format::AttentionData to_word_level(const format::AttentionData& doc);

/// Finds a word for `--focus`: "Lucy" (the first occurrence), "she#2" (the second), matched
/// exactly first, then by key (case and surrounding punctuation ignored). A word that is a special
/// token matches its string ("[CLS]"). InputError listing the words when it is not there.
int64_t find_word(const std::vector<Word>& words, std::string_view spec, std::string_view where = "");

/// The key find_word and Word::occurrence compare: ASCII lower-case, leading and trailing
/// punctuation removed (a word that is only punctuation keeps it).
std::string word_key(std::string_view text);

}  // namespace atlas::process
