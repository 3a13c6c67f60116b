#include "render/draw.hpp"

#include <fmt/format.h>
#include <pango/pangocairo.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "atlas/core/utf8.hpp"
#include "atlas/render/visualize.hpp"

namespace atlas::render {
namespace {

// Unhinted metrics make text layout independent of the output resolution, so a PNG at 100 dpi and
// a PDF place every label at the same spot.
PangoLayout* make_layout(cairo_t* cr, const Style& style, const std::string& text, double size, bool bold) {
  PangoContext* ctx = pango_cairo_create_context(cr);
  cairo_font_options_t* opts = cairo_font_options_create();
  cairo_font_options_set_hint_metrics(opts, CAIRO_HINT_METRICS_OFF);
  cairo_font_options_set_hint_style(opts, CAIRO_HINT_STYLE_NONE);
  cairo_font_options_set_antialias(opts, CAIRO_ANTIALIAS_GRAY);
  pango_cairo_context_set_font_options(ctx, opts);
  cairo_font_options_destroy(opts);
  pango_cairo_context_set_resolution(ctx, 72.0);
  PangoLayout* layout = pango_layout_new(ctx);
  g_object_unref(ctx);
  PangoFontDescription* desc = pango_font_description_from_string(style.font.c_str());
  pango_font_description_set_absolute_size(desc, size * PANGO_SCALE);
  if (bold) pango_font_description_set_weight(desc, PANGO_WEIGHT_BOLD);
  pango_layout_set_font_description(layout, desc);
  pango_font_description_free(desc);
  pango_layout_set_text(layout, text.c_str(), -1);
  return layout;
}

cairo_t* scratch_context() {
  // One per thread: batch rendering measures text from several threads at once.
  thread_local std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface(
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 4, 4), cairo_surface_destroy);
  thread_local std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr(cairo_create(surface.get()), cairo_destroy);
  return cr.get();
}

}  // namespace

void set_color(cairo_t* cr, const Color& c) { cairo_set_source_rgba(cr, c.r, c.g, c.b, c.a); }

TextSize measure_text(const Style& style, const std::string& text, double size, bool bold) {
  // The extents depend only on font, size, weight and text (the scratch context's options are
  // fixed), and figures measure the same labels many times (each axis twice, in two layout passes):
  // remembered per thread, so a served figure does not lay out every label four times.
  thread_local std::unordered_map<std::string, TextSize> cache;
  std::string key = fmt::format("{}\x1f{}\x1f{:a}\x1f", bold ? 'b' : 'r', style.font, size);
  key += text;
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  PangoLayout* layout = make_layout(scratch_context(), style, text, size, bold);
  PangoRectangle logical;
  pango_layout_get_extents(layout, nullptr, &logical);
  g_object_unref(layout);
  const TextSize out{logical.width / double(PANGO_SCALE), logical.height / double(PANGO_SCALE)};
  if (cache.size() >= 16384) cache.clear();
  cache.emplace(std::move(key), out);
  return out;
}

void draw_text(cairo_t* cr, const Style& style, const std::string& text, double size, double x, double y,
               double ax, double ay, const Color& color, double angle_deg, bool bold) {
  if (text.empty()) return;
  PangoLayout* layout = make_layout(cr, style, text, size, bold);
  PangoRectangle logical;
  pango_layout_get_extents(layout, nullptr, &logical);
  const double w = logical.width / double(PANGO_SCALE), h = logical.height / double(PANGO_SCALE);
  cairo_save(cr);
  cairo_translate(cr, x, y);
  if (angle_deg != 0) cairo_rotate(cr, -angle_deg * M_PI / 180.0);
  cairo_move_to(cr, -ax * w - logical.x / double(PANGO_SCALE), -ay * h - logical.y / double(PANGO_SCALE));
  set_color(cr, color);
  pango_cairo_show_layout(cr, layout);
  cairo_restore(cr);
  g_object_unref(layout);
}

double title_height(const Style& style, const std::string& title, const std::string& subtitle) {
  if (!style.show_title || (title.empty() && subtitle.empty())) return 0;
  double h = 0;
  if (!title.empty()) h += measure_text(style, title, style.title_size, true).height;
  if (!subtitle.empty()) h += measure_text(style, subtitle, style.tick_size).height + 1;
  return h + style.title_size * 0.6;
}

void draw_title(cairo_t* cr, const Style& style, double width, const std::string& title, const std::string& subtitle) {
  if (!style.show_title) return;
  double y = style.margin;
  if (!title.empty()) {
    draw_text(cr, style, title, style.title_size, width / 2, y, 0.5, 0, style.foreground, 0, true);
    y += measure_text(style, title, style.title_size, true).height + 1;
  }
  if (!subtitle.empty()) draw_text(cr, style, subtitle, style.tick_size, width / 2, y, 0.5, 0, style.muted);
}

std::string display_label(const std::string& label, int max_chars) {
  std::u32string cps;
  try {
    cps = utf8::decode(label);
  } catch (...) {
    cps = U"\uFFFD";
  }
  std::u32string out;
  for (char32_t c : cps) {
    if (c == U'\n') out += U'\u21B5';        // ↵
    else if (c == U'\t') out += U'\u21E5';   // ⇥
    else if (c == U'\r') out += U'\u240D';
    else if (c < 0x20 || c == 0x7f) out += U'\uFFFD';
    else out += c;
  }
  const bool blank = std::all_of(out.begin(), out.end(), [](char32_t c) { return c == U' '; });
  if (blank) return out.empty() ? "\u2205" : "\u2423";  // ∅ / ␣
  // Leading spaces (Ġ / ▁ word starts) would only shift the label off its tick.
  size_t first = out.find_first_not_of(U' ');
  size_t last = out.find_last_not_of(U' ');
  out = out.substr(first, last - first + 1);
  if (max_chars > 1 && out.size() > static_cast<size_t>(max_chars)) out = out.substr(0, max_chars - 1) + U"\u2026";
  return utf8::encode(out);
}

int label_step(double pitch, double font_height) {
  if (pitch <= 0) return 1;
  int step = static_cast<int>(std::ceil(font_height * 1.05 / pitch));
  return std::max(1, step);
}

int line_step(double pitch, double font_size) {
  // The ink of a line (ascender to descender) is about one em; Pango's logical height adds a line
  // gap that neighbouring labels may share, so thinning on it would drop labels that fit.
  if (pitch <= 0) return 1;
  return std::max(1, static_cast<int>(std::ceil(font_size * 0.95 / pitch)));
}

std::string format_cell_value(double v) {
  // Always "0.58", never ".58": readers of a table expect the leading zero.
  std::string s = fmt::format("{:.2f}", v);
  if (s == "-0.00") return "0.00";
  if (s.rfind("-", 0) == 0) s = "\u2212" + s.substr(1);
  return s;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double f : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = f * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return ticks;
}

std::string format_tick(double v, double step) {
  int decimals = 0;
  while (decimals < 6 && std::abs(step * std::pow(10.0, decimals) - std::round(step * std::pow(10.0, decimals))) > 1e-6)
    ++decimals;
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s.rfind("-", 0) == 0) s = "\u2212" + s.substr(1);  // a real minus sign
  return s;
}

namespace {
double tick_step(const std::vector<double>& t) { return t.size() > 1 ? t[1] - t[0] : 1.0; }
}  // namespace

double colorbar_width(const Style& style, double vmin, double vmax, const std::string& label) {
  auto ticks = nice_ticks(vmin, vmax);
  double tw = 0;
  for (double t : ticks) tw = std::max(tw, measure_text(style, format_tick(t, tick_step(ticks)), style.tick_size).width);
  double lw = label.empty() ? 0 : measure_text(style, label, style.label_size).height + 3;
  return style.colorbar_width + 3 + tw + 3 + lw;
}

void draw_colorbar(cairo_t* cr, const Style& style, const Colormap& cmap, double x, double y, double height,
                   double vmin, double vmax, const std::string& label) {
  // The bar is a 1 x 256 image scaled up without interpolation: the colours are the table's.
  cairo_surface_t* img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 256);
  unsigned char* data = cairo_image_surface_get_data(img);
  const int stride = cairo_image_surface_get_stride(img);
  for (int i = 0; i < 256; ++i) {
    const uint8_t* e = cmap.entry(255 - i);
    uint32_t px = (uint32_t(e[0]) << 16) | (uint32_t(e[1]) << 8) | e[2];
    std::memcpy(data + i * stride, &px, 4);
  }
  cairo_surface_mark_dirty(img);
  const double w = style.colorbar_width;
  cairo_save(cr);
  cairo_rectangle(cr, x, y, w, height);
  cairo_clip(cr);
  cairo_translate(cr, x, y);
  cairo_scale(cr, w, height / 256.0);
  cairo_set_source_surface(cr, img, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_paint(cr);
  cairo_restore(cr);
  cairo_surface_destroy(img);
  draw_frame(cr, style, x, y, w, height);

  auto ticks = nice_ticks(vmin, vmax);
  double tw = 0;
  set_color(cr, style.foreground);
  cairo_set_line_width(cr, style.line_width);
  for (double t : ticks) {
    if (vmax <= vmin) break;
    double ty = y + height * (1 - (t - vmin) / (vmax - vmin));
    cairo_move_to(cr, x + w, ty);
    cairo_line_to(cr, x + w + 2.5, ty);
    cairo_stroke(cr);
    std::string s = format_tick(t, tick_step(ticks));
    tw = std::max(tw, measure_text(style, s, style.tick_size).width);
    draw_text(cr, style, s, style.tick_size, x + w + 3.5, ty, 0, 0.5, style.foreground);
  }
  if (!label.empty())
    draw_text(cr, style, label, style.label_size, x + w + 3 + tw + 3, y + height / 2, 0.5, 0, style.foreground, 90);
}

void draw_frame(cairo_t* cr, const Style& style, double x, double y, double w, double h) {
  cairo_save(cr);
  set_color(cr, style.foreground);
  cairo_set_line_width(cr, style.line_width * 0.8);
  cairo_rectangle(cr, x, y, w, h);
  cairo_stroke(cr);
  cairo_restore(cr);
}

namespace {

void hatch_masked(cairo_t* cr, const Style& style, const Matrix& m, double x, double y, double cw, double ch) {
  // Clip to the union of masked cells, then draw diagonal lines across it.
  cairo_save(cr);
  cairo_new_path(cr);
  bool any = false;
  for (int64_t i = 0; i < m.rows; ++i) {
    int64_t j = 0;
    while (j < m.cols) {
      if (!m.masked(i, j)) { ++j; continue; }
      int64_t j0 = j;
      while (j < m.cols && m.masked(i, j)) ++j;
      cairo_rectangle(cr, x + j0 * cw, y + i * ch, (j - j0) * cw, ch);
      any = true;
    }
  }
  if (!any) { cairo_restore(cr); return; }
  cairo_clip(cr);
  set_color(cr, style.hatch);
  cairo_set_line_width(cr, 0.35);
  const double w = m.cols * cw, h = m.rows * ch, gap = 2.5;
  for (double d = -h; d < w; d += gap) {
    cairo_move_to(cr, x + d, y + h);
    cairo_line_to(cr, x + d + h, y);
  }
  cairo_stroke(cr);
  cairo_restore(cr);
}

double luminance(const Color& c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; }

}  // namespace

void draw_matrix(cairo_t* cr, const Style& style, const Matrix& m, double x, double y, double cw, double ch,
                 const MatrixStyle& ms) {
  const Colormap& cmap = *ms.cmap;
  const double span = ms.vmax > ms.vmin ? ms.vmax - ms.vmin : 1.0;
  auto norm = [&](float v) { return (v - ms.vmin) / span; };
  const bool as_image = ms.force_image || m.rows * m.cols > 64 * 64;
  if (as_image) {
    cairo_surface_t* img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, int(m.cols), int(m.rows));
    unsigned char* data = cairo_image_surface_get_data(img);
    const int stride = cairo_image_surface_get_stride(img);
    auto byte = [](double v) { return uint32_t(std::lround(std::clamp(v, 0.0, 1.0) * 255)); };
    const uint32_t masked_px = (byte(style.masked.r) << 16) | (byte(style.masked.g) << 8) | byte(style.masked.b);
    for (int64_t i = 0; i < m.rows; ++i) {
      auto* row = reinterpret_cast<uint32_t*>(data + i * stride);
      for (int64_t j = 0; j < m.cols; ++j) {
        if (m.masked(i, j)) { row[j] = masked_px; continue; }
        const uint8_t* e = cmap.entry(Colormap::index_of(norm(m.at(i, j))));
        row[j] = (uint32_t(e[0]) << 16) | (uint32_t(e[1]) << 8) | e[2];
      }
    }
    cairo_surface_mark_dirty(img);
    cairo_save(cr);
    cairo_rectangle(cr, x, y, m.cols * cw, m.rows * ch);
    cairo_clip(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, cw, ch);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(img);
  } else {
    cairo_save(cr);
    // Without antialiasing adjacent cells meet without hairline seams in raster output.
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
    // A run of cells of one colour in a row is one piece (the colormap has 256 entries, so
    // neighbouring cells often share one: near-zero attention, masked cells), and all pieces of a
    // colour are one path, stroked: a line through the middle of the row, as wide as a cell, with
    // butt caps covers the run's rectangle exactly. A vector file's size and writing time go with the
    // numbers written: 4 per piece (10 for a filled rectangle) and a colour per path, not per cell.
    auto colour_of = [&](int64_t i, int64_t j) { return m.masked(i, j) ? -1 : Colormap::index_of(norm(m.at(i, j))); };
    struct Piece {
      int colour;
      int64_t row, begin, end;
    };
    std::vector<Piece> pieces;
    for (int64_t i = 0; i < m.rows && m.cols > 0; ++i) {
      int c = colour_of(i, 0);
      for (int64_t j = 0; j < m.cols;) {
        int64_t end = j + 1;
        int next = c;
        while (end < m.cols && (next = colour_of(i, end)) == c) ++end;
        pieces.push_back({c, i, j, end});
        j = end;
        c = next;   // the colour of the cell at `end`
      }
    }
    // By colour, in order of first appearance (row-major), so the file does not depend on the sort.
    std::vector<int> first(257, -1);   // colour -1 (masked), then the 256 entries
    std::vector<int> order;
    for (const Piece& p : pieces)
      if (first[size_t(p.colour + 1)] < 0) {
        first[size_t(p.colour + 1)] = int(order.size());
        order.push_back(p.colour);
      }
    std::stable_sort(pieces.begin(), pieces.end(), [&](const Piece& a, const Piece& b) {
      return first[size_t(a.colour + 1)] < first[size_t(b.colour + 1)];
    });
    cairo_set_line_width(cr, ch);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
    for (size_t k = 0; k < pieces.size();) {
      const int c = pieces[k].colour;
      const uint8_t* e = c < 0 ? nullptr : cmap.entry(c);
      set_color(cr, c < 0 ? style.masked : Color{e[0] / 255.0, e[1] / 255.0, e[2] / 255.0, 1.0});
      for (; k < pieces.size() && pieces[k].colour == c; ++k) {
        const Piece& p = pieces[k];
        const double yc = y + (double(p.row) + 0.5) * ch;
        cairo_move_to(cr, x + double(p.begin) * cw, yc);
        cairo_line_to(cr, x + double(p.end) * cw, yc);
      }
      cairo_stroke(cr);
    }
    cairo_restore(cr);
  }
  if (ms.hatch && !m.mask.empty() && std::min(cw, ch) >= 1.0) hatch_masked(cr, style, m, x, y, cw, ch);

  if (ms.values) {
    // Shrink the numbers to fit a cell, but never below a legible 3 pt.
    bool negative = false;
    for (float v : m.values) negative = negative || v < -0.005f;
    const std::string widest = negative ? "\u22120.00" : "0.00";
    double size = style.value_size;
    const double wmax = measure_text(style, widest, size).width;
    if (wmax > cw * 0.9) size *= cw * 0.9 / wmax;
    if (size >= 3.0 && measure_text(style, widest, size).height <= ch * 1.05) {
      for (int64_t i = 0; i < m.rows; ++i)
        for (int64_t j = 0; j < m.cols; ++j) {
          if (m.masked(i, j)) continue;
          float v = m.at(i, j);
          const std::string s = format_cell_value(v);
          Color bg = cmap.at(norm(v));
          Color fg = luminance(bg) < 0.5 ? Color{1, 1, 1, 1} : Color{0, 0, 0, 1};
          draw_text(cr, style, s, size, x + (j + 0.5) * cw, y + (i + 0.5) * ch, 0.5, 0.5, fg);
        }
    }
  }
  draw_frame(cr, style, x, y, m.cols * cw, m.rows * ch);
}

}  // namespace atlas::render
