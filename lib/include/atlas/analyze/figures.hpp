#pragma once
/// Figures of the analyze reports, drawn with render's toolkit (styles, fonts, PNG/SVG/PDF writers
/// of `atlas visualize`): a layer x head map of one per-head number (coref accuracy, detector
/// scores, any heads metric) and the attention-by-distance lines of `analyze long`.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace atlas::analyze {

struct FigureOptions {
  std::string style = "paper";
  int dpi = 300;
  std::string command_line;
};

/// `heads`: records with "layer", "head" and `key` (numbers or null). Title and colour-bar label as
/// given; cells print their values when there is room.
void write_head_map(const std::filesystem::path& path, const nlohmann::json& heads, const std::string& key,
                    const std::string& title, const std::string& subtitle, const std::string& label,
                    const FigureOptions& options);

/// The `analyze long` report: per layer, the `ratio` of each log2 distance bin (observed mass over a
/// uniform row's) on a log-scaled distance axis; 1 = no preference.
void write_distance_figure(const std::filesystem::path& path, const nlohmann::json& report, const FigureOptions& options);

}  // namespace atlas::analyze
