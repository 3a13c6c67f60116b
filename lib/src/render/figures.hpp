#pragma once
// The figure kinds. Each builds a Figure (size + draw function) from a FigureRequest.
#include <string>
#include <vector>

#include "atlas/render/attention_data.hpp"
#include "atlas/render/visualize.hpp"
#include "atlas/render/style.hpp"
#include "render/figure.hpp"

namespace atlas::render {

/// Stored layers or heads chosen by --layer / --head: positions into AttentionData::layers/heads,
/// and whether they are averaged into one.
struct Selection {
  std::vector<int64_t> positions;
  bool mean = false;
  std::string describe(const std::vector<int64_t>& index, const char* what) const;
};

/// "3", "0,2,5", "1-4", "mean", "all" (model indices) → positions; InputError naming the file when
/// an index is not stored. `fallback` is used when `text` is empty.
Selection parse_selection(const std::string& text, const std::vector<int64_t>& index, const char* what,
                          const std::string& file, const std::string& fallback, const std::string& flag = "");

struct FigureRequest {
  const AttentionData* data = nullptr;
  const AttentionData* other = nullptr;  // contrast: the second input
  const Style* style = nullptr;
  const VisualizeOptions* options = nullptr;
  Selection layers, heads;
  Selection other_layers, other_heads;  // contrast: B's selection; no positions = A's model indices
  double width = 0, height = 0;  // pt; 0 = the kind's default
};

Figure heatmap_figure(const FigureRequest& req);
Figure grid_figure(const FigureRequest& req);
Figure flow_figure(const FigureRequest& req);
Figure flowgraph_figure(const FigureRequest& req);
Figure contrast_figure(const FigureRequest& req);

/// What contrast draws: A, B and A − B over the compared positions, each panel's own labels, how B
/// was aligned to A, and what was left unpaired (docs/visualize.md, "contrast").
struct ContrastPanels {
  Matrix a, b, diff;
  std::vector<std::string> labels_a, labels_b, labels_d;
  std::string alignment;
  std::vector<std::string> unpaired;
  Selection layers_b, heads_b;
  double vmax = 0, dmax = 0;  // largest unmasked value of A and B; largest |A − B|
};
ContrastPanels contrast_panels(const FigureRequest& req);
Figure profile_figure(const FigureRequest& req);

// ---- helpers shared by the kinds (figures_common.cpp) ----

/// Mean of the selected layers x heads, row-major [Q, K].
std::vector<float> mean_matrix(const AttentionData& d, const Selection& layers, const Selection& heads);
/// Token positions shown (special tokens dropped with --hide-special).
std::vector<int64_t> visible_tokens(const AttentionData& d, bool hide_special);
/// The visible positions that are also key columns (self-attention: all of them). Cross-attention
/// has its own key tokens (the encoder's): all of them, special ones dropped with `hide_special`.
std::vector<int64_t> visible_key_columns(const AttentionData& d, const std::vector<int64_t>& visible,
                                         bool hide_special = false);
/// Labels of `positions` as displayed (token_labels, or tokens with --raw-tokens).
std::vector<std::string> token_display(const AttentionData& d, const VisualizeOptions& o,
                                       const std::vector<int64_t>& positions, const Style& style);
/// Labels of key columns `positions` (the encoder's tokens for cross-attention).
std::vector<std::string> key_token_display(const AttentionData& d, const VisualizeOptions& o,
                                           const std::vector<int64_t>& positions, const Style& style);
/// `full[Q,K]` restricted to visible rows/cols, with the causal mask.
Matrix restrict_matrix(const AttentionData& d, const std::vector<float>& full, const std::vector<int64_t>& rows,
                       const std::vector<int64_t>& cols);
/// Model name and a short excerpt of the input text for titles.
std::string model_label(const AttentionData& d);
std::string text_excerpt(const AttentionData& d, size_t max_chars = 60);
/// A token chosen by index ("7") or by its label text ("cat"); InputError listing tokens otherwise.
int64_t find_token(const AttentionData& d, const std::string& spec, const char* flag);
// ---- word level (words.cpp, over atlas/process/words.hpp) ----

/// True when the document's axis is already words: written by `atlas process words` (an op "words"
/// in meta.process) or converted by word_level_document.
bool is_word_level(const AttentionData& d);
/// The document at word level (process::to_word_level), marked so is_word_level holds.
AttentionData word_level_document(const AttentionData& d);
/// Alignment keys of the positions of `d` (words: process::word_key; special tokens as they are).
std::vector<std::string> word_keys(const AttentionData& d);
/// Query positions chosen by `--focus` / `--target` SPEC: a token index ("7"), a token's label
/// ("cat"), else a word ("Lucy", "she#2" = its second occurrence): at token level the word's
/// tokens, at word level the word itself. InputError listing the words otherwise.
std::vector<int64_t> find_positions(const AttentionData& d, const std::string& spec, const char* flag);

/// Widest of `labels` at `size`.
double max_text_width(const Style& style, const std::vector<std::string>& labels, double size);

}  // namespace atlas::render
