// flowgraph: how information moves through the layers. Nodes are tokens at each layer boundary;
// edges use the head-mean attention made residual-aware, 0.5*A + 0.5*I with rows renormalised
// (Abnar & Zuidema 2020, "Quantifying Attention Flow"). Paths into --target are emphasised by their
// rollout contribution.
#include <algorithm>
#include <cmath>

#include "atlas/core/error.hpp"
#include "render/draw.hpp"
#include "render/figures.hpp"

namespace atlas::render {

Figure flowgraph_figure(const FigureRequest& req) {
  const AttentionData& d = *req.data;
  const Style& style = *req.style;
  const VisualizeOptions& o = *req.options;
  ATLAS_CHECK(d.q == d.k, InputError, "flowgraph needs self-attention (Q = K); '{}' has Q = {}, K = {}",
              d.source, d.q, d.k);
  const auto vis = visible_tokens(d, o.hide_special);
  const auto labels = token_display(d, o, vis, style);
  const int64_t T = static_cast<int64_t>(vis.size());
  int64_t target = vis.back();
  // A word of several tokens: its last piece, the one that has read the whole word.
  if (!o.target.empty()) target = find_positions(d, o.target, "target").back();
  const auto tpos = std::find(vis.begin(), vis.end(), target);
  ATLAS_CHECK(tpos != vis.end(), InputError, "--target {}: token is hidden by --hide-special", o.target);
  const int64_t t_index = tpos - vis.begin();

  // Residual-aware, head-mean attention per selected layer, restricted to the visible tokens.
  const auto& lp = req.layers.positions;
  const int64_t L = static_cast<int64_t>(lp.size());
  std::vector<std::vector<double>> A;  // [L][T*T]
  for (int64_t l : lp) {
    Selection one;
    one.positions = {l};
    auto m = mean_matrix(d, one, req.heads);
    std::vector<double> r(size_t(T * T));
    for (int64_t i = 0; i < T; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < T; ++j) {
        double v = 0.5 * m[vis[i] * d.k + vis[j]] + (i == j ? 0.5 : 0.0);
        r[i * T + j] = v;
        sum += v;
      }
      for (int64_t j = 0; j < T; ++j) r[i * T + j] /= sum > 0 ? sum : 1;
    }
    A.push_back(std::move(r));
  }
  // Relevance of every node for the target, from the top down: r_l = r_{l+1} A_l.
  std::vector<std::vector<double>> rel(size_t(L + 1), std::vector<double>(size_t(T), 0.0));
  rel[L][t_index] = 1;
  for (int64_t l = L - 1; l >= 0; --l)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j) rel[l][j] += rel[l + 1][i] * A[l][i * T + j];

  const std::string title = !o.title.empty() ? o.title
      : fmt::format("{} \u00B7 attention flow to \u201C{}\u201D \u00B7 {}", model_label(d),
                    display_label(d.token_labels[target], 20), req.heads.describe(d.heads, "head"));
  const std::string subtitle = fmt::format("edges: 0.5\u00B7A + 0.5\u00B7I (renormalised) \u2265 {:g}; "
                                           "coloured: share of the flow into the target", o.threshold);
  const double W = req.width > 0 ? req.width : style.width * 72;
  const double th = title_height(style, title, subtitle);
  const double fh = measure_text(style, "Ag", style.tick_size).height;
  const double lh = measure_text(style, "Ag", style.label_size).height;
  const double label_w = max_text_width(style, labels, style.tick_size);
  double pitch = fh * 1.4;
  if (req.height > 0) pitch = (req.height - 2 * style.margin - th - 2 * lh - 8) / T;
  ATLAS_CHECK(pitch > 0.5, InputError, "figure is too small for {} tokens", T);
  const double H = req.height > 0 ? req.height : 2 * style.margin + th + 2 * lh + 8 + pitch * T;
  const double x0 = style.margin + label_w + 6, x1 = W - style.margin - label_w - 6;
  const double y0 = style.margin + th + lh + 4;
  ATLAS_CHECK(x1 - x0 > 10 * L, InputError, "figure is too narrow for {} layers; give a larger --width", L);
  const double dx = (x1 - x0) / std::max<int64_t>(1, L);
  std::vector<std::string> col_names = {"input"};
  for (int64_t l : lp) col_names.push_back(fmt::format("L{}", d.layers[l]));
  const double threshold = o.threshold;
  const Colormap& cmap = Colormap::get(o.colormap.empty() ? style.colormap : o.colormap);

  Figure f;
  f.width = W;
  f.height = H;
  f.title = title;
  f.draw = [=, &style, &cmap](cairo_t* cr) {
    draw_title(cr, style, W, title, subtitle);
    auto node_y = [&](int64_t i) { return y0 + (i + 0.5) * pitch; };
    const int col_step = label_step(dx, max_text_width(style, col_names, style.label_size) * 0.9);
    for (int64_t c = 0; c <= L; c += col_step)
      draw_text(cr, style, col_names[c], style.label_size, x0 + c * dx, y0 - 2, 0.5, 1, style.muted);
    draw_text(cr, style, "layer output \u2192", style.label_size, (x0 + x1) / 2, y0 + T * pitch + 3, 0.5, 0, style.muted);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    // Faint context edges first, then the emphasised paths on top.
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t l = 0; l < L; ++l) {
        double max_flow = 0;
        for (int64_t i = 0; i < T; ++i)
          for (int64_t j = 0; j < T; ++j) max_flow = std::max(max_flow, rel[l + 1][i] * A[l][i * T + j]);
        for (int64_t i = 0; i < T; ++i)
          for (int64_t j = 0; j < T; ++j) {
            const double w = A[l][i * T + j];
            if (w < threshold || i == j) continue;
            const double flow = max_flow > 0 ? rel[l + 1][i] * w / max_flow : 0;
            const bool emph = flow > 0.05;
            if ((pass == 1) != emph) continue;
            Color c = emph ? style.accent : style.muted;
            c.a = emph ? 0.25 + 0.75 * flow : 0.08 + 0.5 * w;
            set_color(cr, c);
            cairo_set_line_width(cr, emph ? 0.4 + 2.4 * flow : 0.2 + 1.0 * w);
            cairo_move_to(cr, x0 + l * dx, node_y(j));
            cairo_line_to(cr, x0 + (l + 1) * dx, node_y(i));
            cairo_stroke(cr);
          }
      }
    // Nodes coloured by their relevance for the target.
    const double r = std::clamp(pitch * 0.28, 0.6, 3.5);
    for (int64_t c = 0; c <= L; ++c) {
      double mx = *std::max_element(rel[c].begin(), rel[c].end());
      for (int64_t i = 0; i < T; ++i) {
        set_color(cr, cmap.at(mx > 0 ? rel[c][i] / mx : 0));
        cairo_arc(cr, x0 + c * dx, node_y(i), r, 0, 2 * M_PI);
        cairo_fill_preserve(cr);
        set_color(cr, style.foreground);
        cairo_set_line_width(cr, 0.3);
        cairo_stroke(cr);
      }
    }
    const int step = line_step(pitch, style.tick_size);
    for (int64_t i = 0; i < T; i += step) {
      draw_text(cr, style, labels[i], style.tick_size, x0 - r - 3, node_y(i), 1, 0.5, style.foreground);
      const bool is_t = i == t_index;
      draw_text(cr, style, labels[i], style.tick_size, x1 + r + 3, node_y(i), 0, 0.5,
                is_t ? style.accent : style.foreground, 0, is_t);
    }
    if (t_index % step != 0)
      draw_text(cr, style, labels[t_index], style.tick_size, x1 + r + 3, node_y(t_index), 0, 0.5, style.accent, 0, true);
  };
  return f;
}

}  // namespace atlas::render
