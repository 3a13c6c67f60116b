// profile: per-layer statistics. Left: mean attention by token distance (query − key) per layer.
// Right: entropy of each head's attention rows (bits, averaged over queries) as an L x H heatmap.
#include <algorithm>
#include <cmath>

#include "atlas/core/error.hpp"
#include "render/draw.hpp"
#include "render/figures.hpp"

namespace atlas::render {

Figure profile_figure(const FigureRequest& req) {
  const AttentionData& d = *req.data;
  const Style& style = *req.style;
  const VisualizeOptions& o = *req.options;
  const auto vis = visible_tokens(d, o.hide_special);
  const auto& lp = req.layers.positions;
  const auto& hp = req.heads.positions;
  const int64_t L = static_cast<int64_t>(lp.size()), Hn = static_cast<int64_t>(hp.size());
  const int64_t T = static_cast<int64_t>(vis.size());

  // Distance profile: mean over heads and queries of A[q][q - dist] (visible tokens only).
  std::vector<std::vector<double>> dist(size_t(L), std::vector<double>(size_t(T), 0.0));
  double ymax = 0;
  for (int64_t li = 0; li < L; ++li) {
    std::vector<double> count(size_t(T), 0.0);
    for (int64_t h : hp) {
      const float* a = d.matrix(lp[li], h);
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          if (vis[j] >= d.k) continue;
          dist[li][i - j] += a[vis[i] * d.k + vis[j]];
          count[i - j] += 1;
        }
    }
    for (int64_t t = 0; t < T; ++t) {
      dist[li][t] = count[t] > 0 ? dist[li][t] / count[t] : 0;
      ymax = std::max(ymax, dist[li][t]);
    }
  }
  ymax = ymax > 0 ? ymax * 1.06 : 1;  // headroom: a peak must not run into the frame
  // Entropy per head.
  Matrix ent;
  ent.rows = L;
  ent.cols = Hn;
  double emax = 0;
  for (int64_t li = 0; li < L; ++li)
    for (int64_t h : hp) {
      const float* a = d.matrix(lp[li], h);
      double total = 0;
      for (int64_t i : vis) {
        double e = 0;
        for (int64_t j = 0; j < d.k; ++j) {
          const double p = a[i * d.k + j];
          if (p > 0) e -= p * std::log2(p);
        }
        total += e;
      }
      ent.values.push_back(float(total / double(T)));
      emax = std::max(emax, double(ent.values.back()));
    }
  if (emax <= 0) emax = 1;
  // The colour scale spans the heads' range: from 0 every head of a model tends to look alike.
  double emin = *std::min_element(ent.values.begin(), ent.values.end());
  emin = std::floor(emin * 10) / 10;
  if (emin >= emax) emin = 0;

  const std::string title = !o.title.empty() ? o.title
      : fmt::format("{} \u00B7 attention profile \u00B7 {} layers \u00D7 {} heads", model_label(d), L, Hn);
  const std::string subtitle = text_excerpt(d);
  const Colormap& cmap = Colormap::get(o.colormap.empty() ? style.colormap : o.colormap);
  std::vector<std::string> row_labels, col_labels;
  for (int64_t l : lp) row_labels.push_back(fmt::format("L{}", d.layers[l]));
  for (int64_t h : hp) col_labels.push_back(fmt::format("H{}", d.heads[h]));

  const double W = req.width > 0 ? req.width : std::max(style.width, 6.5) * 72;
  const double th = title_height(style, title, subtitle);
  const double fh = measure_text(style, "Ag", style.tick_size).height;
  const double lh = measure_text(style, "Ag", style.label_size).height;
  const double H = req.height > 0 ? req.height : std::max(W * 0.45, 2 * style.margin + th + 140);
  const double top = style.margin + th + lh + 4;
  const double bottom = H - style.margin - lh - fh - 8;
  ATLAS_CHECK(bottom - top > 30, InputError, "figure is too small for a profile; give a larger --height");
  // Left panel geometry.
  const auto yticks = nice_ticks(0, ymax, 4);
  double ytw = 0;
  for (double t : yticks) ytw = std::max(ytw, measure_text(style, format_tick(t, yticks.size() > 1 ? yticks[1] - yticks[0] : 1), style.tick_size).width);
  const double legend_w = L <= 16 ? max_text_width(style, row_labels, style.tick_size) + 18 : 0;
  const double lx0 = style.margin + lh + 4 + ytw + 4;
  const double lx1 = lx0 + (W - 2 * style.margin) * 0.52 - (lh + ytw + 8) - legend_w;
  // Right panel geometry.
  const double rlab = max_text_width(style, row_labels, style.tick_size) + 4;
  const double cbw = colorbar_width(style, emin, emax, "entropy (bits)");
  const double rx0 = lx1 + legend_w + 18 + rlab;
  const double avail_w = W - style.margin - cbw - 8 - rx0;
  const double cell = std::min(avail_w / Hn, (bottom - top) / L);
  ATLAS_CHECK(cell > 0.5 && lx1 - lx0 > 20, InputError, "figure is too narrow for a profile; give a larger --width");
  const bool values = o.values || (L * Hn <= 64 && cell >= 12);

  Figure f;
  f.width = W;
  f.height = H;
  f.title = title;
  f.draw = [=, &style, &cmap](cairo_t* cr) {
    draw_title(cr, style, W, title, subtitle);
    // --- distance profile ---
    const double pw = lx1 - lx0, ph = bottom - top;
    const double xmax = std::max<int64_t>(1, T - 1);
    auto X = [&](double v) { return lx0 + pw * v / xmax; };
    auto Y = [&](double v) { return bottom - ph * v / ymax; };
    draw_text(cr, style, "mean attention by distance", style.label_size, lx0 + pw / 2, top - 4, 0.5, 1, style.foreground);
    cairo_set_line_width(cr, style.line_width * 0.8);
    set_color(cr, style.foreground);
    const auto xticks = nice_ticks(0, xmax, 5);
    for (double t : xticks) {
      cairo_move_to(cr, X(t), bottom);
      cairo_line_to(cr, X(t), bottom + 2.5);
      cairo_stroke(cr);
      draw_text(cr, style, format_tick(t, 1), style.tick_size, X(t), bottom + 3.5, 0.5, 0, style.foreground);
    }
    for (double t : yticks) {
      cairo_move_to(cr, lx0 - 2.5, Y(t));
      cairo_line_to(cr, lx0, Y(t));
      cairo_stroke(cr);
      draw_text(cr, style, format_tick(t, yticks.size() > 1 ? yticks[1] - yticks[0] : 1), style.tick_size, lx0 - 3.5,
                Y(t), 1, 0.5, style.foreground);
    }
    draw_text(cr, style, "token distance (query \u2212 key)", style.label_size, lx0 + pw / 2, bottom + fh + 5, 0.5, 0,
              style.foreground);
    draw_text(cr, style, "attention", style.label_size, style.margin, top + ph / 2, 0.5, 0, style.foreground, 90);
    cairo_save(cr);
    cairo_rectangle(cr, lx0, top, pw, ph);
    cairo_clip(cr);
    cairo_set_line_width(cr, std::max(0.8, style.line_width * 1.5));
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (int64_t li = 0; li < L; ++li) {
      set_color(cr, cmap.at(L > 1 ? 0.9 * li / double(L - 1) : 0.0));
      for (int64_t t = 0; t < T; ++t) {
        if (t == 0) cairo_move_to(cr, X(t), Y(dist[li][t]));
        else cairo_line_to(cr, X(t), Y(dist[li][t]));
      }
      cairo_stroke(cr);
    }
    cairo_restore(cr);
    draw_frame(cr, style, lx0, top, pw, ph);
    if (legend_w > 0) {
      const int step = label_step(fh * 1.2, fh);
      for (int64_t li = 0; li < L; li += step) {
        const double y = top + 4 + li * fh * 1.2 + fh / 2;
        set_color(cr, cmap.at(L > 1 ? 0.9 * li / double(L - 1) : 0.0));
        cairo_set_line_width(cr, 1.5);
        cairo_move_to(cr, lx1 + 6, y);
        cairo_line_to(cr, lx1 + 14, y);
        cairo_stroke(cr);
        draw_text(cr, style, row_labels[li], style.tick_size, lx1 + 16, y, 0, 0.5, style.foreground);
      }
    }
    // --- entropy heatmap ---
    draw_text(cr, style, "entropy per head (bits)", style.label_size, rx0 + cell * Hn / 2, top - 4, 0.5, 1, style.foreground);
    MatrixStyle ms;
    ms.cmap = &cmap;
    ms.vmin = emin;
    ms.vmax = emax;
    ms.values = values;
    draw_matrix(cr, style, ent, rx0, top, cell, cell, ms);
    const int rs = line_step(cell, style.tick_size), cs = label_step(cell, max_text_width(style, col_labels, style.tick_size));
    for (int64_t li = 0; li < L; li += rs)
      draw_text(cr, style, row_labels[li], style.tick_size, rx0 - 3, top + (li + 0.5) * cell, 1, 0.5, style.foreground);
    for (int64_t h = 0; h < Hn; h += cs)
      draw_text(cr, style, col_labels[h], style.tick_size, rx0 + (h + 0.5) * cell, top + L * cell + 3, 0.5, 0, style.foreground);
    draw_colorbar(cr, style, cmap, rx0 + Hn * cell + 8, top, L * cell, emin, emax, "entropy (bits)");
  };
  return f;
}

}  // namespace atlas::render
