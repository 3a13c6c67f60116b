#pragma once
/// Figure styles: fonts, sizes, colours and margins, loaded from YAML templates
/// (configs/styles/{paper,slides,dark}.yaml; every key documented in docs/visualize.md).
#include <filesystem>
#include <string>
#include <vector>

#include "atlas/render/colormap.hpp"

namespace atlas::render {

struct Style {
  std::string name = "paper";
  std::string font = "DejaVu Sans";  ///< Pango family list; fontconfig supplies fallbacks per script
  double title_size = 9;             ///< pt
  double label_size = 7.5;           ///< axis titles, row/column labels (pt)
  double tick_size = 6.5;            ///< token labels and tick labels (pt)
  double value_size = 5.5;           ///< numbers printed in cells (pt, shrunk to fit)
  Color background{1, 1, 1, 1};
  Color foreground{0.1, 0.1, 0.1, 1};  ///< text, axes, ticks
  Color muted{0.45, 0.45, 0.45, 1};    ///< secondary text (subtitles), faint edges
  Color masked{0.90, 0.90, 0.90, 1};   ///< cells that cannot attend (causal upper triangle)
  Color hatch{0.70, 0.70, 0.70, 1};    ///< hatch lines over masked cells
  Color accent{0.84, 0.37, 0.0, 1};    ///< emphasised paths (flowgraph)
  std::string colormap = "viridis";
  std::string diverging_colormap = "rdbu_r";
  std::vector<Color> head_colors = okabe_ito();
  double margin = 10;           ///< pt around the figure
  double line_width = 0.6;      ///< axes and ticks (pt)
  double colorbar_width = 8;    ///< pt
  double width = 6.0;           ///< default figure width (in)
  double height = 0;            ///< default figure height (in); 0 = chosen per figure kind
  int max_label_chars = 14;     ///< longer token labels are cut with "…"
  bool show_title = true;
};

/// `name_or_path`: a built-in name ("paper", "slides", "dark" → configs/styles/NAME.yaml, searched
/// in $ATLAS_STYLE_DIR then the source tree) or a path to a .yaml file. Unknown keys, bad colours or
/// unknown colour maps are ConfigErrors naming the file and the key.
Style load_style(const std::string& name_or_path);
/// Parses YAML text over the defaults; `source` names the file in errors.
Style parse_style(const std::string& yaml_text, const std::string& source);
/// Every key a style file may hold, in documentation order.
std::vector<std::string> style_keys();

}  // namespace atlas::render
