#include "atlas/render/style.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/version.hpp"

namespace atlas::render {
namespace fs = std::filesystem;

std::vector<std::string> style_keys() {
  return {"name",       "font",          "title_size",    "label_size",         "tick_size",
          "value_size", "background",    "foreground",    "muted",              "masked",
          "hatch",      "accent",        "colormap",      "diverging_colormap", "head_colors",
          "margin",     "line_width",    "colorbar_width", "width",             "height",
          "max_label_chars", "show_title"};
}

namespace {

template <class T>
T scalar(const YAML::Node& node, const std::string& source, const std::string& key) {
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    ATLAS_FAIL(ConfigError, "style '{}': key '{}' has a value of the wrong type", source, key);
  }
}

double positive(const YAML::Node& node, const std::string& source, const std::string& key, bool allow_zero) {
  double v = scalar<double>(node, source, key);
  ATLAS_CHECK(allow_zero ? v >= 0 : v > 0, ConfigError, "style '{}': key '{}' must be {}, got {}",
              source, key, allow_zero ? ">= 0" : "> 0", v);
  return v;
}

}  // namespace

namespace {
Style parse_style_unchecked(const std::string& yaml_text, const std::string& source);
}  // namespace

// Every yaml-cpp conversion a key-specific check missed is still one ConfigError naming the style.
Style parse_style(const std::string& yaml_text, const std::string& source) {
  try {
    return parse_style_unchecked(yaml_text, source);
  } catch (const YAML::Exception& e) {
    ATLAS_FAIL(ConfigError, "style '{}': {}", source, e.what());
  }
}

namespace {
Style parse_style_unchecked(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    ATLAS_FAIL(ConfigError, "style '{}': not valid YAML: {}", source, e.what());
  }
  Style s;
  if (root.IsNull()) return s;
  ATLAS_CHECK(root.IsMap(), ConfigError, "style '{}': expected a mapping of keys to values", source);
  const auto keys = style_keys();
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    const std::string where = fmt::format("style '{}': key '{}'", source, key);
    if (std::find(keys.begin(), keys.end(), key) == keys.end())
      ATLAS_FAIL(ConfigError, "style '{}': unknown key '{}' (known: {})", source, key, fmt::join(keys, ", "));
    if (key == "name") s.name = scalar<std::string>(v, source, key);
    else if (key == "font") s.font = scalar<std::string>(v, source, key);
    else if (key == "title_size") s.title_size = positive(v, source, key, false);
    else if (key == "label_size") s.label_size = positive(v, source, key, false);
    else if (key == "tick_size") s.tick_size = positive(v, source, key, false);
    else if (key == "value_size") s.value_size = positive(v, source, key, false);
    else if (key == "background") s.background = parse_color(scalar<std::string>(v, source, key), where);
    else if (key == "foreground") s.foreground = parse_color(scalar<std::string>(v, source, key), where);
    else if (key == "muted") s.muted = parse_color(scalar<std::string>(v, source, key), where);
    else if (key == "masked") s.masked = parse_color(scalar<std::string>(v, source, key), where);
    else if (key == "hatch") s.hatch = parse_color(scalar<std::string>(v, source, key), where);
    else if (key == "accent") s.accent = parse_color(scalar<std::string>(v, source, key), where);
    else if (key == "colormap" || key == "diverging_colormap") {
      std::string name = scalar<std::string>(v, source, key);
      try {
        Colormap::get(name);
      } catch (const ConfigError& e) {
        ATLAS_FAIL(ConfigError, "{}: {}", where, e.what());
      }
      (key == "colormap" ? s.colormap : s.diverging_colormap) = name;
    } else if (key == "head_colors") {
      ATLAS_CHECK(v.IsSequence() && v.size() > 0, ConfigError, "{}: expected a non-empty list of colours", where);
      s.head_colors.clear();
      for (const auto& c : v) s.head_colors.push_back(parse_color(scalar<std::string>(c, source, key), where));
    } else if (key == "margin") s.margin = positive(v, source, key, true);
    else if (key == "line_width") s.line_width = positive(v, source, key, false);
    else if (key == "colorbar_width") s.colorbar_width = positive(v, source, key, false);
    else if (key == "width") s.width = positive(v, source, key, false);
    else if (key == "height") s.height = positive(v, source, key, true);
    else if (key == "max_label_chars") s.max_label_chars = static_cast<int>(positive(v, source, key, false));
    else if (key == "show_title") s.show_title = scalar<bool>(v, source, key);
  }
  return s;
}
}  // namespace

Style load_style(const std::string& name_or_path) {
  if (name_or_path.empty() || name_or_path == "default") return Style{};
  fs::path path(name_or_path);
  const bool is_path = name_or_path.find('/') != std::string::npos || path.extension() == ".yaml" ||
                       path.extension() == ".yml";
  if (!is_path) {
    std::vector<fs::path> dirs;
    if (const char* d = std::getenv("ATLAS_STYLE_DIR"); d && *d) dirs.emplace_back(d);
    dirs.push_back(fs::path(source_dir()) / "configs" / "styles");
    dirs.push_back(fs::path(ATLAS_SOURCE_DIR) / "configs" / "styles");
    fs::path found;
    for (const auto& d : dirs) {
      if (fs::is_regular_file(d / (name_or_path + ".yaml"))) {
        found = d / (name_or_path + ".yaml");
        break;
      }
    }
    ATLAS_CHECK(!found.empty(), ConfigError, "unknown style '{}': no {}.yaml in {}", name_or_path,
                name_or_path, (dirs.front()).string());
    path = found;
  }
  ATLAS_CHECK(fs::is_regular_file(path), ConfigError, "style file '{}' does not exist", path.string());
  Style s = parse_style(read_file(path), path.string());
  return s;
}

}  // namespace atlas::render
