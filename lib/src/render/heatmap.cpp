// heatmap: one layer/head (or a mean), query tokens down, key tokens across, colour bar on the right.
#include <algorithm>
#include <cmath>

#include "atlas/core/error.hpp"
#include "render/draw.hpp"
#include "render/figures.hpp"

namespace atlas::render {

namespace {

double value_max(const Matrix& m) {
  double v = 0;
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j)
      if (!m.masked(i, j)) v = std::max(v, double(m.at(i, j)));
  return v > 0 ? v : 1.0;
}

/// " · cross-attention" etc. for the members of an encoder-decoder; "" for plain `attention`.
std::string kind_caption(const AttentionData& d) {
  if (d.kind == format::kEncoderAttention) return " \u00B7 encoder";
  if (d.kind == format::kDecoderAttention) return " \u00B7 decoder";
  if (d.kind == format::kCrossAttention) return " \u00B7 cross-attention";
  return "";
}

}  // namespace

/// Draws token labels along the left and bottom of a matrix; returns nothing, sizes come from
/// token_axis_extent.
struct TokenAxes {
  bool rotate_x = true;
  double y_width = 0, x_height = 0;
};

TokenAxes token_axes_extent(const Style& style, const std::vector<std::string>& ylabels,
                            const std::vector<std::string>& xlabels, double cell) {
  TokenAxes t;
  const double fh = measure_text(style, "Ag", style.tick_size).height;
  t.y_width = ylabels.empty() ? 0 : max_text_width(style, ylabels, style.tick_size) + 4;
  const double xw = max_text_width(style, xlabels, style.tick_size);
  t.rotate_x = xw > cell * 0.92;
  t.x_height = xlabels.empty() ? 0 : (t.rotate_x ? xw : fh) + 4;
  return t;
}

void draw_token_axes(cairo_t* cr, const Style& style, const std::vector<std::string>& ylabels,
                     const std::vector<std::string>& xlabels, double x0, double y0, double cw, double ch,
                     const TokenAxes& axes) {
  // Labels turn vertical before any is dropped: a rotated label needs only a line's height.
  const int ystep = line_step(ch, style.tick_size);
  const int xstep = axes.rotate_x ? line_step(cw, style.tick_size) : 1;
  set_color(cr, style.foreground);
  cairo_set_line_width(cr, style.line_width * 0.8);
  for (size_t i = 0; i < ylabels.size(); i += ystep) {
    const double y = y0 + (i + 0.5) * ch;
    draw_text(cr, style, ylabels[i], style.tick_size, x0 - 3, y, 1, 0.5, style.foreground);
  }
  const double ybottom = y0 + ch * 0;  // labels hang below the matrix: caller passes y0 = bottom edge
  (void)ybottom;
  for (size_t j = 0; j < xlabels.size(); j += xstep) {
    const double x = x0 + (j + 0.5) * cw;
    if (axes.rotate_x)
      draw_text(cr, style, xlabels[j], style.tick_size, x, y0 + 0, 1, 0.5, style.foreground, 90);
    else
      draw_text(cr, style, xlabels[j], style.tick_size, x, y0 + 0, 0.5, 0, style.foreground);
  }
}

Figure heatmap_figure(const FigureRequest& req) {
  const AttentionData& d = *req.data;
  const Style& style = *req.style;
  const VisualizeOptions& o = *req.options;
  const auto vis = visible_tokens(d, o.hide_special);
  const std::vector<int64_t> cols = visible_key_columns(d, vis, o.hide_special);
  Matrix m = restrict_matrix(d, mean_matrix(d, req.layers, req.heads), vis, cols);
  const auto labels = token_display(d, o, vis, style);
  const auto xlabels = key_token_display(d, o, cols, style);  // cross-attention: the encoder's tokens
  const Colormap& cmap = Colormap::get(o.colormap.empty() ? style.colormap : o.colormap);
  const double vmin = o.vmin.value_or(0.0);
  const double vmax = o.vmax.value_or(value_max(m));
  ATLAS_CHECK(vmax > vmin, InputError, "colour scale is empty: vmin {} >= vmax {}", vmin, vmax);

  const std::string title = !o.title.empty() ? o.title
      : fmt::format("{}{} \u00B7 {} \u00B7 {}", model_label(d), kind_caption(d), req.layers.describe(d.layers, "layer"),
                    req.heads.describe(d.heads, "head"));
  const std::string subtitle = text_excerpt(d);
  const std::string cbar_label = "attention weight";
  const std::string key_axis = d.keys_differ() ? "encoder key (attended to)" : "key (attended to)";
  const std::string query_axis = d.keys_differ() ? "decoder query (attending)" : "query (attending)";

  const double W = req.width > 0 ? req.width : style.width * 72;
  const double th = title_height(style, title, subtitle);
  const double axis_title_h = measure_text(style, "Ag", style.label_size).height + 2;
  const double cbw = colorbar_width(style, vmin, vmax, cbar_label);
  // Cell size from the width; the label extents depend on the cell (rotation), so settle in two passes.
  double cell = 20;
  TokenAxes axes;
  for (int pass = 0; pass < 2; ++pass) {
    axes = token_axes_extent(style, labels, xlabels, cell);
    const double aw = W - 2 * style.margin - axis_title_h - axes.y_width - 10 - cbw;
    cell = std::min(aw / m.cols, 28.0);
    if (req.height > 0) {
      const double ah = req.height - 2 * style.margin - th - axes.x_height - axis_title_h;
      cell = std::min(cell, ah / m.rows);
    }
  }
  ATLAS_CHECK(cell > 0.05, InputError, "figure is too small for {} tokens; give a larger --width/--height", m.cols);
  axes = token_axes_extent(style, labels, xlabels, cell);
  const double plot_w = cell * m.cols, plot_h = cell * m.rows;
  const double H = req.height > 0 ? req.height : 2 * style.margin + th + plot_h + axes.x_height + axis_title_h;
  const double block_w = axis_title_h + axes.y_width + plot_w + 10 + cbw;
  const double x0 = (W - block_w) / 2 + axis_title_h + axes.y_width;
  const double y0 = style.margin + th;

  Figure f;
  f.width = W;
  f.height = H;
  f.title = title;
  const bool values = o.values;
  f.draw = [=, &style, &cmap](cairo_t* cr) {
    draw_title(cr, style, W, title, subtitle);
    MatrixStyle ms;
    ms.cmap = &cmap;
    ms.vmin = vmin;
    ms.vmax = vmax;
    ms.values = values;
    draw_matrix(cr, style, m, x0, y0, cell, cell, ms);
    draw_token_axes(cr, style, labels, {}, x0, y0, cell, cell, axes);
    draw_token_axes(cr, style, {}, xlabels, x0, y0 + plot_h + 3, cell, cell, axes);
    draw_text(cr, style, key_axis, style.label_size, x0 + plot_w / 2, y0 + plot_h + axes.x_height + 1,
              0.5, 0, style.foreground);
    draw_text(cr, style, query_axis, style.label_size, x0 - axes.y_width - 2, y0 + plot_h / 2, 0.5, 1,
              style.foreground, 90);
    draw_colorbar(cr, style, cmap, x0 + plot_w + 10, y0, plot_h, vmin, vmax, cbar_label);
  };
  return f;
}

}  // namespace atlas::render
