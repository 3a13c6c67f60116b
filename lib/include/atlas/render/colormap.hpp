#pragma once
/// Colour maps and colours of Atlas figures. Sequential maps are matplotlib's perceptually uniform
/// 256-entry tables (viridis, magma, inferno, plasma, cividis) plus greys; diverging maps (rdbu,
/// rdbu_r, coolwarm) are for differences on a symmetric scale. Head colours are Okabe-Ito
/// (colour-blind safe).
#include <cstdint>
#include <string>
#include <vector>

namespace atlas::render {

/// An sRGB colour with alpha, each channel in [0, 1].
struct Color {
  double r = 0, g = 0, b = 0, a = 1;
};

/// Parses "#rrggbb" or "#rrggbbaa"; ConfigError naming `where` otherwise.
Color parse_color(const std::string& text, const std::string& where);
/// "#rrggbb" (alpha dropped) — used in docs and error messages.
std::string to_hex(const Color& c);

class Colormap {
 public:
  /// Looks a map up by name (case-insensitive); ConfigError listing the known names otherwise.
  static const Colormap& get(const std::string& name);
  static std::vector<std::string> names();

  const std::string& name() const { return name_; }
  bool diverging() const { return diverging_; }
  /// Table index for t in [0, 1] as matplotlib picks it: floor(t * 256), clamped to 0..255.
  static int index_of(double t);
  /// Colour at t in [0, 1] (clamped), exactly the 8-bit table entry.
  Color at(double t) const;
  /// The 8-bit entry i (0..255) as r, g, b bytes.
  const uint8_t* entry(int i) const { return table_[i]; }

  Colormap(std::string name, const uint8_t (*table)[3], bool diverging)
      : name_(std::move(name)), table_(table), diverging_(diverging) {}

 private:
  std::string name_;
  const uint8_t (*table_)[3];
  bool diverging_;
};

/// The 8 Okabe-Ito colours without black, the default head palette.
std::vector<Color> okabe_ito();

}  // namespace atlas::render
