// flow ("head view"): queries on the left, keys on the right, one line per link whose width and
// opacity follow the weight; one Okabe-Ito colour per head, heads overlaid.
#include <algorithm>
#include <cmath>

#include "atlas/core/error.hpp"
#include "render/draw.hpp"
#include "render/figures.hpp"

namespace atlas::render {

Figure flow_figure(const FigureRequest& req) {
  const AttentionData& d = *req.data;
  const Style& style = *req.style;
  const VisualizeOptions& o = *req.options;
  ATLAS_CHECK(req.layers.positions.size() == 1 || req.layers.mean, InputError,
              "flow shows one layer (or --layer mean); got {} layers", req.layers.positions.size());
  const auto vis = visible_tokens(d, o.hide_special);
  const auto labels = token_display(d, o, vis, style);
  // --focus: a token, or a word (all of its pieces at token level).
  std::vector<int64_t> focus = o.focus.empty() ? std::vector<int64_t>{} : find_positions(d, o.focus, "focus");
  focus.erase(std::remove_if(focus.begin(), focus.end(),
                             [&](int64_t t) { return std::find(vis.begin(), vis.end(), t) == vis.end(); }),
              focus.end());
  ATLAS_CHECK(o.focus.empty() || !focus.empty(), InputError, "--focus {}: token is hidden by --hide-special", o.focus);
  auto focused = [focus](int64_t t) { return std::find(focus.begin(), focus.end(), t) != focus.end(); };
  std::string focus_label;
  for (int64_t t : focus) focus_label += d.token_labels[t];
  if (o.focus.find('#') != std::string::npos) focus_label = o.focus;  // "she#2": which occurrence

  // One matrix per drawn head (or one head-mean).
  struct Layer {
    std::vector<float> a;
    Color color;
    std::string name;
  };
  std::vector<Layer> heads;
  Selection one_layer = req.layers;
  if (req.heads.mean) {
    // One matrix: the accent colour, darker than the first head colour, so weak links stay visible.
    heads.push_back({mean_matrix(d, one_layer, req.heads), style.accent, "mean"});
  } else {
    for (size_t n = 0; n < req.heads.positions.size(); ++n) {
      Selection h;
      h.positions = {req.heads.positions[n]};
      heads.push_back({mean_matrix(d, one_layer, h), style.head_colors[n % style.head_colors.size()],
                       fmt::format("H{}", d.heads[req.heads.positions[n]])});
    }
  }

  const std::string title = !o.title.empty() ? o.title
      : fmt::format("{} \u00B7 {} \u00B7 {}{}", model_label(d), req.layers.describe(d.layers, "layer"),
                    req.heads.describe(d.heads, "head"),
                    focus.empty() ? "" : fmt::format(" \u00B7 from \u201C{}\u201D", display_label(focus_label, 20)));
  const std::string subtitle =
      o.top_links > 0
          ? fmt::format("per query the {} strongest link{} \u2265 {:g}{}; width and opacity \u221D attention", o.top_links,
                        o.top_links == 1 ? "" : "s", o.threshold, heads.size() > 1 ? " of each head" : "")
          : fmt::format("links \u2265 {:g}; width and opacity \u221D attention", o.threshold);
  // The links drawn: per head and query, those at or above the threshold, at most top_links of them
  // (the strongest). Drawn weakest first so the strong ones stay on top.
  struct Link {
    size_t head, a, b;
    float w;
  };
  std::vector<Link> links;
  for (size_t hn = 0; hn < heads.size(); ++hn)
    for (size_t a = 0; a < vis.size(); ++a) {
      if (!focus.empty() && !focused(vis[a])) continue;
      std::vector<Link> row;
      for (size_t b = 0; b < vis.size(); ++b) {
        if (vis[b] >= d.k) continue;
        const float w = heads[hn].a[vis[a] * d.k + vis[b]];
        if (w >= o.threshold && w > 0) row.push_back({hn, a, b, w});
      }
      std::sort(row.begin(), row.end(), [](const Link& x, const Link& y) { return x.w > y.w || (x.w == y.w && x.b < y.b); });
      if (o.top_links > 0 && row.size() > size_t(o.top_links)) row.resize(size_t(o.top_links));
      links.insert(links.end(), row.begin(), row.end());
    }
  std::stable_sort(links.begin(), links.end(), [](const Link& x, const Link& y) { return x.w < y.w; });
  const double W = req.width > 0 ? req.width : std::min(style.width * 72, 4.5 * 72);
  const double th = title_height(style, title, subtitle);
  const double fh = measure_text(style, "Ag", style.tick_size).height;
  const double lh = measure_text(style, "Ag", style.label_size).height;
  const double legend_h = heads.size() > 1 || req.heads.mean ? lh + 6 : 0;
  const double header_h = lh + 4;
  const double label_w = max_text_width(style, labels, style.tick_size);
  const double n = double(vis.size());
  double pitch = fh * 1.35;
  if (req.height > 0) pitch = (req.height - 2 * style.margin - th - legend_h - header_h) / n;
  ATLAS_CHECK(pitch > 0.5, InputError, "figure is too small for {} tokens", vis.size());
  const double H = req.height > 0 ? req.height : 2 * style.margin + th + legend_h + header_h + pitch * n;
  const double xl = style.margin + label_w + 4, xr = W - style.margin - label_w - 4;
  ATLAS_CHECK(xr - xl > 20, InputError, "figure is too narrow for these token labels; give a larger --width");
  const double y0 = style.margin + th + legend_h + header_h;

  Figure f;
  f.width = W;
  f.height = H;
  f.title = title;
  f.draw = [=, &style](cairo_t* cr) {
    draw_title(cr, style, W, title, subtitle);
    // Legend: a swatch per head.
    if (legend_h > 0) {
      double total = 0;
      for (const auto& h : heads) total += 12 + measure_text(style, h.name, style.label_size).width + 8;
      double x = (W - total) / 2, y = style.margin + th + lh / 2;
      for (const auto& h : heads) {
        set_color(cr, h.color);
        cairo_rectangle(cr, x, y - 3, 9, 6);
        cairo_fill(cr);
        draw_text(cr, style, h.name, style.label_size, x + 12, y, 0, 0.5, style.foreground);
        x += 12 + measure_text(style, h.name, style.label_size).width + 8;
      }
    }
    draw_text(cr, style, "query", style.label_size, xl, y0 - 3, 1, 1, style.muted);
    draw_text(cr, style, "key", style.label_size, xr, y0 - 3, 0, 1, style.muted);
    const int step = line_step(pitch, style.tick_size);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
    const double alpha_scale = heads.size() > 1 ? 0.8 : 1.0;
    for (const Link& link : links) {
      const double w = link.w;
      Color c = heads[link.head].color;
      c.a = std::clamp(0.15 + 0.85 * w, 0.0, 1.0) * alpha_scale;
      set_color(cr, c);
      cairo_set_line_width(cr, 0.25 + 2.75 * std::sqrt(w) * std::min(1.0, pitch / 8.0));
      const double ya = y0 + (link.a + 0.5) * pitch, yb = y0 + (link.b + 0.5) * pitch;
      cairo_move_to(cr, xl + 2, ya);
      cairo_curve_to(cr, xl + (xr - xl) * 0.35, ya, xr - (xr - xl) * 0.35, yb, xr - 2, yb);
      cairo_stroke(cr);
    }
    for (size_t a = 0; a < vis.size(); a += step) {
      const double y = y0 + (a + 0.5) * pitch;
      const bool emph = focused(vis[a]);
      draw_text(cr, style, labels[a], style.tick_size, xl - 3, y, 1, 0.5, emph ? style.accent : style.foreground, 0, emph);
      draw_text(cr, style, labels[a], style.tick_size, xr + 3, y, 0, 0.5, style.foreground);
    }
  };
  return f;
}

}  // namespace atlas::render
