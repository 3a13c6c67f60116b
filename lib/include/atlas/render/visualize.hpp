#pragma once
/// `atlas visualize`: publication figures of attention NPZ files with Cairo + Pango.
///   heatmap   one layer/head (or the mean), tokens on both axes, colour bar, masked causal triangle
///   grid      selected layers x heads as small multiples on a shared colour scale ("model view")
///   flow      "head view": two token columns joined by lines whose width/opacity follow attention
///   flowgraph information flow through the layers (head mean, 0.5*A + 0.5*I), paths to a target
///   contrast  two inputs side by side and their difference (diverging map, symmetric scale)
///   profile   attention by token distance per layer, entropy per head (L x H)
/// Output format follows the extension: .png (dpi), .svg, .pdf (metadata, reproducible), .eps.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "atlas/format/attention.hpp"

namespace atlas::render {

struct VisualizeOptions {
  std::string kind;                               ///< heatmap|grid|flow|flowgraph|contrast|profile
  std::vector<std::filesystem::path> inputs;      ///< contrast takes exactly two
  std::filesystem::path output;                   ///< a file, or a directory ("dir/") for batches
  std::string attention_kind;  ///< member drawn: "" (attention, else encoder_attention), encoder, decoder, cross
  std::string layer;        ///< model layer index, list ("0,2", "1-3"), or "mean"; "" = kind default
  std::string head;         ///< same for heads
  std::string layer_b;      ///< contrast: B's layers when they differ from A's ("" = the same model layers)
  std::string head_b;       ///< contrast: B's heads ("" = the same heads as A)
  bool all_layers = false;  ///< batch: one figure per stored layer
  bool all_heads = false;   ///< batch: one figure per stored head
  int dpi = 300;
  std::string width, height;  ///< "6in", "15cm", "1800px", "432pt"; "" = style / kind default
  std::string style = "paper";
  std::string colormap;       ///< overrides the style's map
  std::optional<double> vmin, vmax;
  bool values = false;        ///< print cell values (small matrices)
  bool hide_special = false;  ///< drop template tokens (<s>, [CLS], …) from both axes
  bool raw_tokens = false;    ///< vocabulary strings (Ġ, ▁, ##) instead of token_labels
  bool words = false;         ///< word level: inputs converted from tokens + offsets + text (files from
                              ///< `atlas process words` already are)
  double threshold = 0.05;    ///< flow / flowgraph: links below are not drawn
  int top_links = 3;          ///< flow: at most this many links per query and head (strongest first); 0 = all
  std::string focus;          ///< flow: keep one query's links: token index, token text, or word ("Lucy", "she#2")
  std::string target;         ///< flowgraph: output token whose paths are emphasised (as --focus; a word: its last token)
  std::string title;          ///< overrides the generated title
  std::string format = "png"; ///< batch: extension of the files written into the directory
  std::string name_pattern = "{stem}_{kind}{sel}.{ext}";  ///< batch file names
  int jobs = 0;               ///< batch threads; 0 = hardware concurrency
  std::string command_line;   ///< provenance recorded in PDF/SVG metadata
  /// `atlas serve`: inputs[i] already read (format::load_attention(inputs[i]), self-attention), used
  /// instead of reading the file again when attention_kind is "" (which resolves to the same member);
  /// null or missing entries are read as usual. The figure is the same either way.
  std::vector<std::shared_ptr<const format::AttentionData>> loaded;
};

/// Renders the figure(s) and returns the files written (each atomically: temp file + rename).
std::vector<std::filesystem::path> visualize(const VisualizeOptions& options);

/// Figure kinds, in documentation order.
std::vector<std::string> figure_kinds();

/// An 8-bit RGBA image (straight alpha), read back from a PNG (for tests and tools).
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgba;  ///< row-major, 4 bytes per pixel
  const uint8_t* pixel(int x, int y) const { return rgba.data() + (size_t(y) * width + x) * 4; }
};
Image read_png(const std::filesystem::path& path);

/// Glyphs Pango could not find in any installed font for `text` set in `font` (0 = all present).
int unknown_glyph_count(const std::string& text, const std::string& font = "DejaVu Sans");

/// A number as figures print it in cells (--values, profile): two decimals with a leading zero and a
/// real minus sign, "0.58", "\u22120.03", "1.84"; a value that rounds to zero is "0.00", never "\u22120.00".
std::string format_cell_value(double v);

/// Figure size in points from "6in" / "15cm" / "1800px" (px use `dpi`) / "432pt" / a bare number
/// (inches); InputError otherwise.
double parse_length_pt(const std::string& text, int dpi, const std::string& what);

}  // namespace atlas::render
