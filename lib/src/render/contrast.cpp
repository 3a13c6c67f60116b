// contrast: input A, input B and A − B on a symmetric diverging scale. When the tokenisations differ,
// B is projected onto A's tokens through their character offsets: a query row of A averages the B
// rows it overlaps (by overlap length); a key column of A collects the attention B gives to the
// B tokens it overlaps (split by the share of each B token it covers).
#include <algorithm>
#include <cmath>

#include "atlas/core/error.hpp"
#include "render/align.hpp"
#include "render/draw.hpp"
#include "render/figures.hpp"

namespace atlas::render {

namespace {

// overlap[i][p]: characters shared by A token i and B token p; special tokens match in order.
std::vector<double> overlaps(const AttentionData& a, const AttentionData& b) {
  std::vector<double> ov(size_t(a.q * b.q), 0.0);
  std::vector<int64_t> sa, sb;
  for (int64_t i = 0; i < a.q; ++i)
    if (a.offsets[i][0] < 0) sa.push_back(i);
  for (int64_t p = 0; p < b.q; ++p)
    if (b.offsets[p][0] < 0) sb.push_back(p);
  for (size_t n = 0; n < std::min(sa.size(), sb.size()); ++n) ov[sa[n] * b.q + sb[n]] = 1;
  for (int64_t i = 0; i < a.q; ++i) {
    if (a.offsets[i][0] < 0) continue;
    for (int64_t p = 0; p < b.q; ++p) {
      if (b.offsets[p][0] < 0) continue;
      const int64_t lo = std::max(a.offsets[i][0], b.offsets[p][0]);
      const int64_t hi = std::min(a.offsets[i][1], b.offsets[p][1]);
      if (hi > lo) ov[i * b.q + p] = double(hi - lo);
    }
  }
  return ov;
}

}  // namespace

ContrastPanels contrast_panels(const FigureRequest& req) {
  const AttentionData& a = *req.data;
  const AttentionData& b = *req.other;
  const Style& style = *req.style;
  ContrastPanels cp;
  auto& [A, B, D, labels_a, labels_b, labels_d, alignment, unpaired, lb, hb, vmax_ab, dmax] = cp;
  const VisualizeOptions& o = *req.options;
  ATLAS_CHECK(a.q == a.k && b.q == b.k, InputError, "contrast needs self-attention inputs (Q = K)");
  // B's own selection (--layer-b / --head-b), or else the same model layers/heads as A.
  auto same_as_a = [](const Selection& sa, const std::vector<int64_t>& a_index, auto position) {
    Selection sb;
    sb.mean = sa.mean;
    for (int64_t p : sa.positions) sb.positions.push_back(position(a_index[p]));
    return sb;
  };
  lb = !req.other_layers.positions.empty() ? req.other_layers
      : same_as_a(req.layers, a.layers, [&](int64_t l) { return b.layer_position(l); });
  hb = !req.other_heads.positions.empty() ? req.other_heads
      : same_as_a(req.heads, a.heads, [&](int64_t h) { return b.head_position(h); });
  const auto ma = mean_matrix(a, req.layers, req.heads);
  const auto mb = mean_matrix(b, lb, hb);

  // What is compared with what. Same tokens: cell by cell. Same text, other tokenisation: B projected
  // onto A's tokens through the offsets. Different texts: pairs of positions (tokens when the counts
  // agree, else words aligned by align_sequences), each panel labelled with its own tokens or words.
  const bool same_text = a.text == b.text || a.text.empty() || b.text.empty();
  std::vector<std::pair<int64_t, int64_t>> pairs;  // Pairs mode: (position in A, position in B)
  std::vector<float> projected;                     // Project mode: B on A's tokens, [Qa, Ka]
  const AttentionData* pa = &a;                     // the documents the pairs index (words, maybe)
  const AttentionData* pb = &b;
  std::vector<float> wa, wb;                        // their matrices
  AttentionData words_a, words_b;
  const bool word_level = is_word_level(a) && is_word_level(b);
  const char* unit = word_level ? "words" : "tokens";
  if (a.tokens == b.tokens) {
    projected = mb;
    alignment = fmt::format("same {}", unit);
  } else if (same_text && !word_level) {
    ATLAS_CHECK(!a.offsets.empty() && !b.offsets.empty(), InputError,
                "contrast: '{}' and '{}' have different tokens and no 'offsets' to align them", a.source,
                b.source);
    projected.assign(size_t(a.q * a.k), 0.0f);
    const auto ov = overlaps(a, b);
    std::vector<double> row_w(ov.size()), col_w(ov.size());
    for (int64_t i = 0; i < a.q; ++i) {
      double s = 0;
      for (int64_t p = 0; p < b.q; ++p) s += ov[i * b.q + p];
      for (int64_t p = 0; p < b.q; ++p) row_w[i * b.q + p] = s > 0 ? ov[i * b.q + p] / s : 0;
    }
    for (int64_t p = 0; p < b.q; ++p) {
      double len = b.offsets[p][0] < 0 ? 1.0 : double(std::max<int64_t>(1, b.offsets[p][1] - b.offsets[p][0]));
      for (int64_t j = 0; j < a.q; ++j) col_w[j * b.q + p] = ov[j * b.q + p] / len;
    }
    std::vector<double> tmp(size_t(a.q * b.q), 0.0);  // rows projected: [Qa, Kb]
    for (int64_t i = 0; i < a.q; ++i)
      for (int64_t p = 0; p < b.q; ++p)
        if (double w = row_w[i * b.q + p]; w > 0)
          for (int64_t c = 0; c < b.k; ++c) tmp[i * b.k + c] += w * mb[p * b.k + c];
    for (int64_t i = 0; i < a.q; ++i)
      for (int64_t j = 0; j < a.k; ++j) {
        double s = 0;
        for (int64_t c = 0; c < b.k; ++c) s += tmp[i * b.k + c] * col_w[j * b.q + c];
        projected[i * a.k + j] = float(s);
      }
    alignment = fmt::format("B ({} tokens) aligned to A ({} tokens) by character offsets", b.q, a.q);
  } else if (a.q == b.q) {
    // A minimal pair of equal length ("Lily … She" / "Tom … He"): position by position.
    for (int64_t i = 0; i < a.q; ++i) pairs.emplace_back(i, i);
    wa = ma;
    wb = mb;
    alignment = fmt::format("{} {} each, compared position by position", a.q, unit);
  } else {
    // Different texts of different length: compare word by word.
    if (!is_word_level(a)) {
      words_a = word_level_document(a);
      pa = &words_a;
    }
    if (!is_word_level(b)) {
      words_b = word_level_document(b);
      pb = &words_b;
    }
    wa = mean_matrix(*pa, req.layers, req.heads);
    wb = mean_matrix(*pb, lb, hb);
    if (pa->q == pb->q) {
      for (int64_t i = 0; i < pa->q; ++i) pairs.emplace_back(i, i);
      alignment = fmt::format("{} and {} tokens; {} words each, compared position by position", a.q, b.q, pa->q);
    } else {
      pairs = align_sequences(word_keys(*pa), word_keys(*pb));
      alignment = fmt::format("{} and {} words aligned as difflib does, {} pairs", pa->q, pb->q, pairs.size());
    }
  }

  if (pairs.empty()) {
    const auto vis = visible_tokens(a, o.hide_special);
    A = restrict_matrix(a, ma, vis, vis);
    B = restrict_matrix(a, projected, vis, vis);
    labels_a = token_display(a, o, vis, style);
    labels_b = labels_d = labels_a;
  } else {
    std::vector<int64_t> ra, rb;
    for (auto [i, j] : pairs)
      if (!(o.hide_special && (pa->special[i] || pb->special[j]))) {
        ra.push_back(i);
        rb.push_back(j);
      }
    ATLAS_CHECK(!ra.empty(), InputError, "contrast: nothing left to compare without --hide-special");
    A = restrict_matrix(*pa, wa, ra, ra);
    B = restrict_matrix(*pb, wb, rb, rb);
    labels_a = token_display(*pa, o, ra, style);
    labels_b = token_display(*pb, o, rb, style);
    for (size_t n = 0; n < ra.size(); ++n)
      labels_d.push_back(labels_a[n] == labels_b[n] ? labels_a[n] : labels_a[n] + "/" + labels_b[n]);
    // Words left out of the comparison are named, not dropped silently.
    std::vector<uint8_t> used_a(size_t(pa->q), 0), used_b(size_t(pb->q), 0);
    for (auto [i, j] : pairs) used_a[size_t(i)] = used_b[size_t(j)] = 1;
    for (int64_t i = 0; i < pa->q; ++i)
      if (!used_a[size_t(i)]) unpaired.push_back("A " + display_label(pa->token_labels[i], 12));
    for (int64_t j = 0; j < pb->q; ++j)
      if (!used_b[size_t(j)]) unpaired.push_back("B " + display_label(pb->token_labels[j], 12));
  }
  D = A;
  for (size_t n = 0; n < D.values.size(); ++n) {
    D.values[n] = A.values[n] - B.values[n];
    const bool masked = (!A.mask.empty() && A.mask[n]) || (!B.mask.empty() && B.mask[n]);
    if (!D.mask.empty() || masked) {
      if (D.mask.empty()) D.mask.assign(D.values.size(), 0);
      D.mask[n] = masked;
    }
    if (masked) continue;
    vmax_ab = std::max({vmax_ab, double(A.values[n]), double(B.values[n])});
    dmax = std::max(dmax, double(std::abs(D.values[n])));
  }
  if (vmax_ab <= 0) vmax_ab = 1;
  if (dmax <= 0) dmax = 1e-3;
  return cp;
}

Figure contrast_figure(const FigureRequest& req) {
  const AttentionData& a = *req.data;
  const AttentionData& b = *req.other;
  const Style& style = *req.style;
  const VisualizeOptions& o = *req.options;
  const ContrastPanels cp = contrast_panels(req);
  const Matrix A = cp.a, B = cp.b, D = cp.diff;
  const auto &labels_a = cp.labels_a, &labels_b = cp.labels_b, &labels_d = cp.labels_d;
  const auto &alignment = cp.alignment;
  const auto& unpaired = cp.unpaired;
  const Selection &lb = cp.layers_b, &hb = cp.heads_b;
  const double vmax_ab = cp.vmax, dmax = cp.dmax;
  const char* unit = is_word_level(a) && is_word_level(b) ? "words" : "tokens";
  const double vmin = o.vmin.value_or(0.0), vmax = o.vmax.value_or(vmax_ab);
  const Colormap& seq = Colormap::get(o.colormap.empty() ? style.colormap : o.colormap);
  const Colormap& div = Colormap::get(style.diverging_colormap);

  // Name only what tells A from B: the file when the inputs differ, the layers/heads when those do.
  const std::string la = req.layers.describe(a.layers, "layer"), lb_desc = lb.describe(b.layers, "layer");
  const std::string ha = req.heads.describe(a.heads, "head"), hb_desc = hb.describe(b.heads, "head");
  const std::string stem_a = a.path.stem().string(), stem_b = b.path.stem().string();
  auto side = [&](const std::string& stem, const std::string& l, const std::string& h) {
    std::vector<std::string> parts;
    if (stem_a != stem_b) parts.push_back(stem);
    if (la != lb_desc) parts.push_back(l);
    if (ha != hb_desc) parts.push_back(h);
    if (parts.empty()) parts.push_back(stem);
    return fmt::format("{}", fmt::join(parts, " \u00B7 "));
  };
  const std::string name_a = side(stem_a, la, ha), name_b = side(stem_b, lb_desc, hb_desc);
  std::vector<std::string> shared = {model_label(a)};
  if (la == lb_desc) shared.push_back(la);
  if (ha == hb_desc) shared.push_back(ha);
  const std::string title = !o.title.empty() ? o.title : fmt::format("{}", fmt::join(shared, " \u00B7 "));
  std::string subtitle = a.text == b.text || b.text.empty()
      ? text_excerpt(a) + (a.tokens == b.tokens ? "" : "; " + alignment)
      : fmt::format("A {} \u00B7 B {}; {}", text_excerpt(a, 56), text_excerpt(b, 56), alignment);
  if (!unpaired.empty())
    subtitle += fmt::format("; unpaired: {}{}", fmt::join(unpaired.begin(), unpaired.begin() + std::min<size_t>(unpaired.size(), 6), ", "),
                            unpaired.size() > 6 ? ", \u2026" : "");
  const std::vector<std::string> panel_names = {"A: " + name_a, "B: " + name_b, "A \u2212 B"};
  // Default width: wide enough that every token label gets its own line (up to 10 in); the
  // panels share one row so A, B and their difference read across at the same token.
  const double lh = measure_text(style, "Ag", style.label_size).height;
  const double cb1 = colorbar_width(style, vmin, vmax, "attention"), cb2 = colorbar_width(style, -dmax, dmax, "difference");
  // Row labels left of A, and left of B and of A − B where theirs differ from A's.
  const double ylab = max_text_width(style, labels_a, style.tick_size) + 4;
  const double ylab_b = labels_b != labels_a ? max_text_width(style, labels_b, style.tick_size) + 4 : 0;
  const double ylab_d = labels_d != labels_a ? max_text_width(style, labels_d, style.tick_size) + 4 : 0;
  const size_t n_cells = labels_a.size();
  const double gap = 14;
  const double fixed_w = 2 * style.margin + ylab + ylab_b + ylab_d + 3 * gap + 6 + cb1 + 6 + cb2;
  const double min_w = std::max(style.width, 7.0) * 72;
  const double W = req.width > 0 ? req.width
      : std::clamp(fixed_w + 3 * style.tick_size * double(n_cells), min_w, std::max(min_w, 10.0 * 72));
  const double th = title_height(style, title, subtitle);
  double P = (W - fixed_w) / 3;
  const double xlab_w = std::max({max_text_width(style, labels_a, style.tick_size),
                                  max_text_width(style, labels_b, style.tick_size),
                                  max_text_width(style, labels_d, style.tick_size)});
  const double fh = measure_text(style, "Ag", style.tick_size).height;
  // A given --height may shrink the panels, and the rotation depends on the final cell.
  for (int pass = 0; pass < 2; ++pass) {
    const bool rot = xlab_w > P / double(n_cells) * 0.92;
    const double xh = (rot ? xlab_w : fh) + 4;
    if (req.height > 0) P = std::min(P, req.height - 2 * style.margin - th - lh - 4 - xh);
  }
  ATLAS_CHECK(P > 10, InputError, "figure is too small for a contrast of {} {}", n_cells, unit);
  const double cell = P / double(n_cells);
  const bool rotate = xlab_w > cell * 0.92;
  const double xlab_h = (rotate ? xlab_w : fh) + 4;
  const double H = req.height > 0 ? req.height : 2 * style.margin + th + lh + 4 + P + xlab_h;
  const double y0 = style.margin + th + lh + 4;
  const double xa = style.margin + ylab, xb = xa + P + gap + ylab_b, xc1 = xb + P + 6, xd = xc1 + cb1 + gap + ylab_d, xc2 = xd + P + 6;

  Figure f;
  f.width = W;
  f.height = H;
  f.title = title;
  const bool values = o.values;
  f.draw = [=, &style, &seq, &div](cairo_t* cr) {
    draw_title(cr, style, W, title, subtitle);
    MatrixStyle ms;
    ms.cmap = &seq;
    ms.vmin = vmin;
    ms.vmax = vmax;
    ms.values = values;
    MatrixStyle md = ms;
    md.cmap = &div;
    md.vmin = -dmax;
    md.vmax = dmax;
    const double xs[3] = {xa, xb, xd};
    const Matrix* ms_[3] = {&A, &B, &D};
    // Rotated before thinned: a vertical label needs only a line's height.
    const int xstep = rotate ? line_step(cell, style.tick_size) : 1, ystep = line_step(cell, style.tick_size);
    const std::vector<std::string>* labels[3] = {&labels_a, &labels_b, &labels_d};
    const bool own_rows[3] = {true, ylab_b > 0, ylab_d > 0};
    for (int p = 0; p < 3; ++p) {
      draw_text(cr, style, panel_names[p], style.label_size, xs[p] + P / 2, y0 - 3, 0.5, 1, style.foreground);
      draw_matrix(cr, style, *ms_[p], xs[p], y0, cell, cell, p == 2 ? md : ms);
      const auto& lab = *labels[p];
      for (size_t j = 0; j < lab.size(); j += xstep) {
        const double x = xs[p] + (j + 0.5) * cell;
        if (rotate) draw_text(cr, style, lab[j], style.tick_size, x, y0 + P + 3, 1, 0.5, style.foreground, 90);
        else draw_text(cr, style, lab[j], style.tick_size, x, y0 + P + 3, 0.5, 0, style.foreground);
      }
      if (own_rows[p])
        for (size_t i = 0; i < lab.size(); i += ystep)
          draw_text(cr, style, lab[i], style.tick_size, xs[p] - 3, y0 + (i + 0.5) * cell, 1, 0.5, style.foreground);
    }
    draw_colorbar(cr, style, seq, xc1, y0, P, vmin, vmax, "attention");
    draw_colorbar(cr, style, div, xc2, y0, P, -dmax, dmax, "difference");
  };
  return f;
}

}  // namespace atlas::render
