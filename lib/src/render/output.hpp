#pragma once
// Writing a Figure to PNG / SVG / PDF / EPS, atomically and reproducibly.
#include <filesystem>
#include <string>

#include "render/draw.hpp"

namespace atlas::render {

enum class Format { Png, Svg, Pdf, Eps };

/// From the extension (.png .svg .pdf .eps, case-insensitive); InputError otherwise.
Format format_of(const std::filesystem::path& path);

/// What a file records about how it was made (PDF info dictionary, SVG/EPS comments).
struct Provenance {
  std::string title;
  std::string subject;   ///< command line, model, checkpoint hash
  std::string date;      ///< ISO 8601 "YYYY-MM-DDThh:mm:ss"; fixed so the same input gives the same bytes
};

/// Draws `figure` into `path` (format by extension): PNG at `dpi`, vector formats in points.
void write_figure(const std::filesystem::path& path, const Figure& figure, const Style& style, int dpi,
                  const Provenance& provenance);

}  // namespace atlas::render
