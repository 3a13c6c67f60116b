#include "atlas/render/colormap.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "atlas/core/error.hpp"
#include "render/colormap_data.hpp"

namespace atlas::render {
namespace {

const std::vector<Colormap>& registry() {
  static const std::vector<Colormap> maps = {
      {"viridis", detail::kViridisData, false}, {"magma", detail::kMagmaData, false},
      {"inferno", detail::kInfernoData, false}, {"plasma", detail::kPlasmaData, false},
      {"cividis", detail::kCividisData, false}, {"greys", detail::kGreysData, false},
      {"rdbu", detail::kRdbuData, true},        {"rdbu_r", detail::kRdbuRData, true},
      {"coolwarm", detail::kCoolwarmData, true},
  };
  return maps;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

const Colormap& Colormap::get(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& map : registry())
    if (map.name() == lower) return map;
  ATLAS_FAIL(ConfigError, "unknown colour map '{}' (known: {})", name, fmt::join(names(), ", "));
}

std::vector<std::string> Colormap::names() {
  std::vector<std::string> out;
  for (const auto& map : registry()) out.push_back(map.name());
  return out;
}

int Colormap::index_of(double t) {
  if (!(t > 0)) return 0;  // also NaN
  return std::min(255, static_cast<int>(t * 256.0));
}

Color Colormap::at(double t) const {
  const uint8_t* e = table_[index_of(t)];
  return {e[0] / 255.0, e[1] / 255.0, e[2] / 255.0, 1.0};
}

Color parse_color(const std::string& text, const std::string& where) {
  bool ok = (text.size() == 7 || text.size() == 9) && text[0] == '#';
  for (size_t i = 1; ok && i < text.size(); ++i) ok = hex_digit(text[i]) >= 0;
  ATLAS_CHECK(ok, ConfigError, "{}: expected a colour '#rrggbb' or '#rrggbbaa', got '{}'", where, text);
  auto byte = [&](size_t i) { return (hex_digit(text[i]) * 16 + hex_digit(text[i + 1])) / 255.0; };
  return {byte(1), byte(3), byte(5), text.size() == 9 ? byte(7) : 1.0};
}

std::string to_hex(const Color& c) {
  auto b = [](double v) { return static_cast<int>(std::lround(std::clamp(v, 0.0, 1.0) * 255)); };
  return fmt::format("#{:02x}{:02x}{:02x}", b(c.r), b(c.g), b(c.b));
}

std::vector<Color> okabe_ito() {
  // Okabe & Ito (2008), "Color Universal Design"; black is left out (it is the text colour) and the
  // yellow, faint on white, comes late so that figures with few heads do not use it.
  static const char* kHex[] = {"#e69f00", "#56b4e9", "#009e73", "#0072b2",
                               "#d55e00", "#cc79a7", "#f0e442", "#999999"};
  std::vector<Color> out;
  for (const char* h : kHex) out.push_back(parse_color(h, "okabe_ito"));
  return out;
}

}  // namespace atlas::render
