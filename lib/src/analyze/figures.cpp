// Head maps and distance profiles for the analyze reports (render's drawing toolkit).
#include "atlas/analyze/figures.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/render/style.hpp"
#include "render/draw.hpp"
#include "render/figures.hpp"
#include "render/output.hpp"

namespace atlas::analyze {

namespace {
void write(const std::filesystem::path& path, const render::Figure& f, const render::Style& style,
           const FigureOptions& o) {
  render::Provenance prov;
  prov.title = f.title;
  prov.subject = o.command_line;
  check_output_path(path);
  render::write_figure(path, f, style, o.dpi, prov);
}
}  // namespace

void write_head_map(const std::filesystem::path& path, const nlohmann::json& heads, const std::string& key,
                    const std::string& title, const std::string& subtitle, const std::string& label,
                    const FigureOptions& o) {
  using namespace atlas::render;
  const Style style = load_style(o.style);
  std::vector<int64_t> layers, hs;
  for (const auto& h : heads) {
    layers.push_back(h["layer"].get<int64_t>());
    hs.push_back(h["head"].get<int64_t>());
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  std::sort(hs.begin(), hs.end());
  hs.erase(std::unique(hs.begin(), hs.end()), hs.end());
  ATLAS_CHECK(!layers.empty() && !hs.empty(), InputError, "no heads to draw");
  Matrix m;
  m.rows = int64_t(layers.size());
  m.cols = int64_t(hs.size());
  m.values.assign(size_t(m.rows * m.cols), 0.0f);
  m.mask.assign(size_t(m.rows * m.cols), 1);
  double vmin = 1e300, vmax = -1e300;
  for (const auto& h : heads) {
    const auto li = std::lower_bound(layers.begin(), layers.end(), h["layer"].get<int64_t>()) - layers.begin();
    const auto hi = std::lower_bound(hs.begin(), hs.end(), h["head"].get<int64_t>()) - hs.begin();
    if (!h.contains(key) || !h[key].is_number()) continue;
    const double v = h[key].get<double>();
    m.values[size_t(li * m.cols + hi)] = float(v);
    m.mask[size_t(li * m.cols + hi)] = 0;
    vmin = std::min(vmin, v);
    vmax = std::max(vmax, v);
  }
  if (vmin > vmax) vmin = 0, vmax = 1;
  if (vmax - vmin < 1e-9) vmax = vmin + 1e-3;
  std::vector<std::string> rl, cl;
  for (int64_t l : layers) rl.push_back(fmt::format("L{}", l));
  for (int64_t h : hs) cl.push_back(fmt::format("H{}", h));
  const double Wmax = std::max(style.width, 4.5) * 72;
  const double th = title_height(style, title, subtitle);
  const double fh = measure_text(style, "Ag", style.tick_size).height;
  const double rlab = max_text_width(style, rl, style.tick_size) + 4;
  const double cbw = colorbar_width(style, vmin, vmax, label);
  const double x0 = style.margin + rlab;
  const double cell = std::min((Wmax - x0 - style.margin - cbw - 8) / double(m.cols), 28.0);
  // As wide as the map (and the title) need: a small model's map is not stretched across the page.
  const double title_w = std::max(measure_text(style, title, style.title_size, true).width,
                                  measure_text(style, subtitle, style.label_size).width) + 2 * style.margin;
  const double W = std::min(Wmax, std::max(x0 + cell * double(m.cols) + 8 + cbw + style.margin, title_w));
  const double top = style.margin + th + 2;
  const double H = top + cell * double(m.rows) + fh + 6 + style.margin;
  const Colormap& cmap = Colormap::get(style.colormap);
  MatrixStyle ms;
  ms.cmap = &cmap;
  ms.vmin = vmin;
  ms.vmax = vmax;
  ms.values = cell >= 14;
  ms.hatch = true;
  Figure f;
  f.width = W;
  f.height = H;
  f.title = title;
  f.draw = [=, &style, &cmap](cairo_t* cr) {
    draw_title(cr, style, W, title, subtitle);
    draw_matrix(cr, style, m, x0, top, cell, cell, ms);
    for (int64_t r = 0; r < m.rows; ++r)
      draw_text(cr, style, rl[size_t(r)], style.tick_size, x0 - 3, top + (double(r) + 0.5) * cell, 1, 0.5, style.foreground);
    for (int64_t c = 0; c < m.cols; ++c)
      draw_text(cr, style, cl[size_t(c)], style.tick_size, x0 + (double(c) + 0.5) * cell, top + double(m.rows) * cell + 3,
                0.5, 0, style.foreground);
    draw_colorbar(cr, style, cmap, x0 + double(m.cols) * cell + 8, top, double(m.rows) * cell, vmin, vmax, label);
  };
  write(path, f, style, o);
}

void write_distance_figure(const std::filesystem::path& path, const nlohmann::json& report, const FigureOptions& o) {
  using namespace atlas::render;
  const Style style = load_style(o.style);
  const auto& layers = report["layers"];
  ATLAS_CHECK(!layers.empty(), InputError, "no layers to draw");
  // x: bin index (log2 distance); y: ratio to uniform, log-scaled.
  const size_t nb = layers[0]["bins"].size();
  double ymin = 1e300, ymax = -1e300;
  for (const auto& l : layers)
    for (const auto& b : l["bins"])
      if (b["ratio"].is_number() && b["ratio"].get<double>() > 0) {
        ymin = std::min(ymin, b["ratio"].get<double>());
        ymax = std::max(ymax, b["ratio"].get<double>());
      }
  if (ymin > ymax) ymin = 0.1, ymax = 10;
  double ly0 = std::floor(std::log10(std::min(ymin, 1.0))), ly1 = std::ceil(std::log10(std::max(ymax, 1.0)));
  if (ly1 - ly0 < 1) ly1 = ly0 + 1;
  const std::string model = report.value("model", "");
  const std::string title = fmt::format("{}{}attention by distance \u00B7 {} documents, {} tokens", model,
                                        model.empty() ? "" : " \u00B7 ", report.value("documents", 0), report.value("tokens", 0));
  const std::string subtitle = "mass per log2 distance bin relative to a uniform row (1 = no preference)";
  const double W = std::max(style.width, 6.0) * 72, H = W * 0.55;
  const double th = title_height(style, title, subtitle);
  const double fh = measure_text(style, "Ag", style.tick_size).height;
  const double lh = measure_text(style, "Ag", style.label_size).height;
  std::vector<std::string> names;
  for (const auto& l : layers)
    names.push_back(fmt::format("L{} ({:.1f}\u00D7 local)", l["layer"].get<int64_t>(),
                                l["proximal_preference"].is_number() ? l["proximal_preference"].get<double>() : 0.0));
  const double legend_w = max_text_width(style, names, style.tick_size) + 20;
  const double left = style.margin + lh + 4 + measure_text(style, "1000", style.tick_size).width + 4;
  const double right = W - style.margin - legend_w;
  const double top = style.margin + th + 4, bottom = H - style.margin - lh - fh - 8;
  ATLAS_CHECK(right - left > 40 && bottom - top > 40, InputError, "figure too small");
  auto X = [=](double b) { return left + (right - left) * b / std::max<double>(1, double(nb) - 1); };
  auto Y = [=](double v) { return bottom - (bottom - top) * (std::log10(v) - ly0) / (ly1 - ly0); };
  std::vector<std::string> xlabels;
  for (const auto& b : layers[0]["bins"])
    xlabels.push_back(b["from"] == b["to"] ? fmt::format("{}", b["from"].get<int64_t>())
                                           : fmt::format("{}\u2013{}", b["from"].get<int64_t>(), b["to"].get<int64_t>()));
  const Colormap& cmap = Colormap::get(style.colormap);
  Figure f;
  f.width = W;
  f.height = H;
  f.title = title;
  f.draw = [=, &style, &cmap](cairo_t* cr) {
    draw_title(cr, style, W, title, subtitle);
    cairo_set_line_width(cr, style.line_width * 0.8);
    for (double e = ly0; e <= ly1 + 1e-9; e += 1) {
      const double v = std::pow(10.0, e);
      set_color(cr, e == 0 ? style.muted : style.masked);
      cairo_move_to(cr, left, Y(v));
      cairo_line_to(cr, right, Y(v));
      cairo_stroke(cr);
      draw_text(cr, style, format_tick(v, v), style.tick_size, left - 3.5, Y(v), 1, 0.5, style.foreground);
    }
    const int step = label_step((right - left) / std::max<double>(1, double(nb)), max_text_width(style, xlabels, style.tick_size) + 4);
    for (size_t b = 0; b < nb; b += size_t(step))
      draw_text(cr, style, xlabels[b], style.tick_size, X(double(b)), bottom + 3.5, 0.5, 0, style.foreground);
    draw_text(cr, style, "token distance |i \u2212 j| (log2 bins)", style.label_size, (left + right) / 2, bottom + fh + 5, 0.5,
              0, style.foreground);
    draw_text(cr, style, "mass / uniform", style.label_size, style.margin, (top + bottom) / 2, 0.5, 0, style.foreground, 90);
    draw_frame(cr, style, left, top, right - left, bottom - top);
    const size_t L = layers.size();
    for (size_t li = 0; li < L; ++li) {
      set_color(cr, cmap.at(L > 1 ? 0.9 * double(li) / double(L - 1) : 0.0));
      cairo_set_line_width(cr, std::max(0.8, style.line_width * 1.5));
      bool started = false;
      const auto& bins = layers[li]["bins"];
      for (size_t b = 0; b < bins.size(); ++b) {
        if (!bins[b]["ratio"].is_number() || bins[b]["ratio"].get<double>() <= 0) { started = false; continue; }
        const double x = X(double(b)), y = Y(bins[b]["ratio"].get<double>());
        if (!started) cairo_move_to(cr, x, y);
        else cairo_line_to(cr, x, y);
        started = true;
      }
      cairo_stroke(cr);
      const double yy = top + 4 + double(li) * fh * 1.3 + fh / 2;
      cairo_move_to(cr, right + 6, yy);
      cairo_line_to(cr, right + 14, yy);
      cairo_stroke(cr);
      draw_text(cr, style, names[li], style.tick_size, right + 16, yy, 0, 0.5, style.foreground);
    }
  };
  write(path, f, style, o);
}

}  // namespace atlas::analyze
