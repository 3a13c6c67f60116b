// The head-cluster figure: heads in the plane of the first two principal components, one colour per
// cluster, each head labelled L<l>H<h>, a legend naming the clusters. Drawn with render's toolkit
// (the same fonts, styles and output writers as `atlas visualize`).
#include <algorithm>
#include <cmath>

#include "atlas/analyze/cluster.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/render/style.hpp"
#include "render/draw.hpp"
#include "render/output.hpp"

namespace atlas::analyze {

void write_cluster_figure(const std::filesystem::path& path, const nlohmann::json& report, const std::string& style_name,
                          int dpi, const std::string& command_line) {
  using namespace atlas::render;
  const Style style = load_style(style_name);
  const auto& heads = report["heads"];
  const auto& clusters = report["clusters"];
  ATLAS_CHECK(!heads.empty(), InputError, "no heads to draw");
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& h : heads) {
    x0 = std::min(x0, h["x"].get<double>());
    x1 = std::max(x1, h["x"].get<double>());
    y0 = std::min(y0, h["y"].get<double>());
    y1 = std::max(y1, h["y"].get<double>());
  }
  const double padx = std::max(0.5, (x1 - x0) * 0.08), pady = std::max(0.5, (y1 - y0) * 0.08);
  x0 -= padx; x1 += padx; y0 -= pady; y1 += pady;

  const std::string model = report.value("model", "");
  const std::string title = fmt::format("{}{}head clusters \u00B7 k = {} (silhouette {:.2f})", model,
                                        model.empty() ? "" : " \u00B7 ", report["k"].get<int>(),
                                        report["best_silhouette"].get<double>());
  const std::string subtitle = fmt::format("k-means on {} standardised metrics, PCA projection", report["features"].size());
  const double W = std::max(style.width, 6.5) * 72, H = W * 0.62;
  const double th = title_height(style, title, subtitle);
  const double fh = measure_text(style, "Ag", style.tick_size).height;
  const double lh = measure_text(style, "Ag", style.label_size).height;
  std::vector<std::string> legend;
  for (const auto& c : clusters)
    legend.push_back(fmt::format("{} ({})", c["name"].get<std::string>(), c["size"].get<int>()));
  double legend_w = 0;
  for (const auto& l : legend) legend_w = std::max(legend_w, measure_text(style, l, style.tick_size).width);
  legend_w += 16;
  const auto xt = nice_ticks(x0, x1, 5), yt = nice_ticks(y0, y1, 5);
  double ytw = 0;
  for (double t : yt) ytw = std::max(ytw, measure_text(style, format_tick(t, yt.size() > 1 ? yt[1] - yt[0] : 1), style.tick_size).width);
  const double left = style.margin + lh + 4 + ytw + 4;
  const double right = W - style.margin - legend_w - 10;
  const double top = style.margin + th + 4;
  const double bottom = H - style.margin - lh - fh - 8;
  ATLAS_CHECK(right - left > 40 && bottom - top > 40, InputError, "figure too small for the cluster plot");
  auto X = [=](double v) { return left + (right - left) * (v - x0) / (x1 - x0); };
  auto Y = [=](double v) { return bottom - (bottom - top) * (v - y0) / (y1 - y0); };
  const auto ev = report["explained_variance"];
  const std::string xl = fmt::format("PC1 ({:.0f} % of variance)", 100 * ev[0].get<double>());
  const std::string yl = fmt::format("PC2 ({:.0f} % of variance)", 100 * ev[1].get<double>());
  const std::vector<Color> palette = style.head_colors.empty() ? okabe_ito() : style.head_colors;
  const bool label_heads = heads.size() <= 200;

  Figure f;
  f.width = W;
  f.height = H;
  f.title = title;
  f.draw = [=, &style](cairo_t* cr) {
    draw_title(cr, style, W, title, subtitle);
    cairo_set_line_width(cr, style.line_width * 0.8);
    set_color(cr, style.foreground);
    for (double t : xt) {
      if (t < x0 || t > x1) continue;
      cairo_move_to(cr, X(t), bottom);
      cairo_line_to(cr, X(t), bottom + 2.5);
      cairo_stroke(cr);
      draw_text(cr, style, format_tick(t, xt.size() > 1 ? xt[1] - xt[0] : 1), style.tick_size, X(t), bottom + 3.5, 0.5, 0,
                style.foreground);
    }
    for (double t : yt) {
      if (t < y0 || t > y1) continue;
      cairo_move_to(cr, left - 2.5, Y(t));
      cairo_line_to(cr, left, Y(t));
      cairo_stroke(cr);
      draw_text(cr, style, format_tick(t, yt.size() > 1 ? yt[1] - yt[0] : 1), style.tick_size, left - 3.5, Y(t), 1, 0.5,
                style.foreground);
    }
    draw_text(cr, style, xl, style.label_size, (left + right) / 2, bottom + fh + 5, 0.5, 0, style.foreground);
    draw_text(cr, style, yl, style.label_size, style.margin, (top + bottom) / 2, 0.5, 0, style.foreground, 90);
    draw_frame(cr, style, left, top, right - left, bottom - top);
    cairo_save(cr);
    cairo_rectangle(cr, left, top, right - left, bottom - top);
    cairo_clip(cr);
    for (const auto& h : heads) {
      const int c = h["cluster"].get<int>();
      const double px = X(h["x"].get<double>()), py = Y(h["y"].get<double>());
      Color col = palette[size_t(c) % palette.size()];
      set_color(cr, col);
      cairo_arc(cr, px, py, 2.6, 0, 2 * M_PI);
      cairo_fill_preserve(cr);
      set_color(cr, style.background);
      cairo_set_line_width(cr, 0.4);
      cairo_stroke(cr);
    }
    // Labels after every point, so no point's outline cuts through a label.
    for (const auto& h : heads) {
      if (!label_heads) break;
      const double px = X(h["x"].get<double>()), py = Y(h["y"].get<double>());
      draw_text(cr, style, fmt::format("L{}H{}", h["layer"].get<int64_t>(), h["head"].get<int64_t>()),
                style.tick_size * 0.8, px + 3.5, py - 1, 0, 1, style.muted);
    }
    cairo_restore(cr);
    // Legend.
    const double lx = right + 12;
    double ly = top + 2;
    for (size_t c = 0; c < legend.size(); ++c) {
      set_color(cr, palette[c % palette.size()]);
      cairo_arc(cr, lx + 3, ly + fh / 2, 2.8, 0, 2 * M_PI);
      cairo_fill(cr);
      draw_text(cr, style, legend[c], style.tick_size, lx + 9, ly + fh / 2, 0, 0.5, style.foreground);
      ly += fh * 1.5;
    }
  };
  Provenance prov;
  prov.title = title;
  prov.subject = command_line;
  prov.date = report.value("created", "").substr(0, 19);
  check_output_path(path);
  write_figure(path, f, style, dpi, prov);
}

}  // namespace atlas::analyze
