// grid ("model view"): layers down, heads across, every panel on one shared colour scale.
#include <algorithm>

#include "atlas/core/error.hpp"
#include "render/draw.hpp"
#include "render/figures.hpp"

namespace atlas::render {

Figure grid_figure(const FigureRequest& req) {
  const AttentionData& d = *req.data;
  const Style& style = *req.style;
  const VisualizeOptions& o = *req.options;
  const auto vis = visible_tokens(d, o.hide_special);
  const std::vector<int64_t> cols = visible_key_columns(d, vis);
  const auto& lp = req.layers.positions;
  const auto& hp = req.heads.positions;
  const int64_t R = static_cast<int64_t>(lp.size()), C = static_cast<int64_t>(hp.size());

  std::vector<Matrix> panels;
  double vmax_auto = 0;
  for (int64_t l : lp)
    for (int64_t h : hp) {
      const float* a = d.matrix(l, h);
      Matrix m = restrict_matrix(d, std::vector<float>(a, a + d.q * d.k), vis, cols);
      for (int64_t i = 0; i < m.rows; ++i)
        for (int64_t j = 0; j < m.cols; ++j)
          if (!m.masked(i, j)) vmax_auto = std::max(vmax_auto, double(m.at(i, j)));
      panels.push_back(std::move(m));
    }
  const Colormap& cmap = Colormap::get(o.colormap.empty() ? style.colormap : o.colormap);
  const double vmin = o.vmin.value_or(0.0);
  const double vmax = o.vmax.value_or(vmax_auto > 0 ? vmax_auto : 1.0);
  ATLAS_CHECK(vmax > vmin, InputError, "colour scale is empty: vmin {} >= vmax {}", vmin, vmax);

  const std::string title = !o.title.empty() ? o.title
      : fmt::format("{} \u00B7 {} layers \u00D7 {} heads \u00B7 {} tokens", model_label(d), R, C, vis.size());
  const std::string subtitle = text_excerpt(d);
  const std::string cbar_label = "attention weight";

  std::vector<std::string> row_labels, col_labels;
  // Index -1: an axis that `atlas process` aggregated (rollout, aggregate --over heads).
  for (int64_t l : lp) row_labels.push_back(d.layers[l] < 0 ? "agg." : fmt::format("L{}", d.layers[l]));
  for (int64_t h : hp) col_labels.push_back(d.heads[h] < 0 ? "agg." : fmt::format("H{}", d.heads[h]));
  const double W = req.width > 0 ? req.width : style.width * 72;
  const double th = title_height(style, title, subtitle);
  const double fh = measure_text(style, "Ag", style.label_size).height;
  const double row_w = max_text_width(style, row_labels, style.label_size) + 4;
  const double cbw = colorbar_width(style, vmin, vmax, cbar_label);
  const double gap = std::max(1.5, std::min(4.0, W / C * 0.04));
  const double axis_title = fh + 2;
  const double aw = W - 2 * style.margin - axis_title - row_w - 10 - cbw;
  double panel = (aw - gap * (C - 1)) / C;
  const double aspect = double(vis.size()) / double(cols.size());  // rows / cols of one panel
  if (req.height > 0) {
    const double ah = req.height - 2 * style.margin - th - fh - 4 - axis_title;
    panel = std::min(panel, (ah - gap * (R - 1)) / R / aspect);
  } else {
    // Few columns, many rows (a rollout: layers x one aggregated head): keep the page at most about
    // 1.4 times as tall as wide instead of one full-width panel per row.
    panel = std::min(panel, (1.4 * aw - gap * (R - 1)) / R / aspect);
  }
  ATLAS_CHECK(panel > 1, InputError, "figure is too small for {} x {} panels; give a larger --width/--height", R, C);
  const double panel_h = panel * aspect;
  const double grid_w = C * panel + (C - 1) * gap, grid_h = R * panel_h + (R - 1) * gap;
  const double H = req.height > 0 ? req.height : 2 * style.margin + th + axis_title + fh + 4 + grid_h;
  const double block_w = axis_title + row_w + grid_w + 10 + cbw;
  const double x0 = (W - block_w) / 2 + axis_title + row_w;
  const double y0 = style.margin + th + axis_title + fh + 4;
  const double cell_w = panel / double(cols.size()), cell_h = panel_h / double(vis.size());

  Figure f;
  f.width = W;
  f.height = H;
  f.title = title;
  f.draw = [=, &style, &cmap](cairo_t* cr) {
    draw_title(cr, style, W, title, subtitle);
    MatrixStyle ms;
    ms.cmap = &cmap;
    ms.vmin = vmin;
    ms.vmax = vmax;
    ms.hatch = false;  // at this size hatching is noise; the masked grey is enough
    ms.force_image = true;
    const int col_step = label_step(panel + gap, max_text_width(style, col_labels, style.label_size) * 0.8);
    const int row_step = label_step(panel_h + gap, fh);
    draw_text(cr, style, "head", style.label_size, x0 + grid_w / 2, y0 - fh - 4 - axis_title, 0.5, 0, style.foreground);
    draw_text(cr, style, "layer", style.label_size, x0 - row_w - 2, y0 + grid_h / 2, 0.5, 1, style.foreground, 90);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) {
        const double x = x0 + c * (panel + gap), y = y0 + r * (panel_h + gap);
        draw_matrix(cr, style, panels[r * C + c], x, y, cell_w, cell_h, ms);
        if (r == 0 && c % col_step == 0)
          draw_text(cr, style, col_labels[c], style.label_size, x + panel / 2, y - 3, 0.5, 1, style.foreground);
        if (c == 0 && r % row_step == 0)
          draw_text(cr, style, row_labels[r], style.label_size, x - 4, y + panel_h / 2, 1, 0.5, style.foreground);
      }
    draw_colorbar(cr, style, cmap, x0 + grid_w + 10, y0, std::min(grid_h, std::max(grid_h * 0.6, 120.0)), vmin, vmax,
                  cbar_label);
  };
  return f;
}

}  // namespace atlas::render
