// --report FILE.pdf: a multi-page A4 PDF drawn with the `visualize` toolkit (render/draw.hpp) and
// styles: 1. summary table with confidence intervals and provenance; 2. per-occupation scores against
// real-world statistics; 3. head-sensitivity heatmap and the ranked heads; 4. the worst examples with
// their word-level attention. Pages without data say so instead of disappearing.
#include <cairo-pdf.h>
#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "atlas/bias/audit.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/render/style.hpp"
#include "render/draw.hpp"

namespace atlas::bias {
namespace fs = std::filesystem;
using nlohmann::json;
using render::Color;
using render::Style;

namespace {

constexpr double kW = 595.28, kH = 841.89, kM = 48;   // A4 in points, margin

std::string f2(const json& v, int digits = 2) {
  if (v.is_null()) return "n/a";
  if (v.is_number()) return fmt::format("{:.{}f}", v.get<double>(), digits);
  return v.dump();
}

class Page {
 public:
  Page(cairo_t* cr, const Style& s) : cr_(cr), s_(s) {}
  double y = kM;
  void title(const std::string& t, const std::string& sub = {}) {
    render::draw_text(cr_, s_, t, 15, kM, y, 0, 0, s_.foreground, 0, true);
    y += 22;
    if (!sub.empty()) {
      render::draw_text(cr_, s_, sub, 8, kM, y, 0, 0, s_.muted);
      y += 14;
    }
    y += 6;
  }
  void heading(const std::string& t) {
    y += 6;
    render::draw_text(cr_, s_, t, 10.5, kM, y, 0, 0, s_.foreground, 0, true);
    y += 16;
  }
  void line(const std::string& t, double size = 7.5, const Color* c = nullptr, double indent = 0) {
    render::draw_text(cr_, s_, t, size, kM + indent, y, 0, 0, c ? *c : s_.foreground);
    y += size * 1.45;
  }
  /// A table: header row in bold, columns at the given x offsets (from the margin).
  void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
             const std::vector<double>& xs) {
    for (size_t i = 0; i < header.size(); ++i)
      render::draw_text(cr_, s_, header[i], 7.5, kM + xs[i], y, 0, 0, s_.foreground, 0, true);
    y += 11;
    render::set_color(cr_, s_.muted);
    cairo_set_line_width(cr_, 0.4);
    cairo_move_to(cr_, kM, y - 1.5);
    cairo_line_to(cr_, kW - kM, y - 1.5);
    cairo_stroke(cr_);
    for (const auto& r : rows) {
      for (size_t i = 0; i < r.size() && i < xs.size(); ++i)
        render::draw_text(cr_, s_, r[i], 7.5, kM + xs[i], y, 0, 0, s_.foreground);
      y += 10.5;
    }
    y += 4;
  }
  cairo_t* cr() { return cr_; }
  const Style& style() { return s_; }

 private:
  cairo_t* cr_;
  const Style& s_;
};

void summary_page(Page& p, const json& rep) {
  p.title("Bias audit", fmt::format("atlas {} (git {})", rep.value("atlas_version", ""), rep.value("git_revision", "")));
  const json& m = rep["model"];
  p.heading("Provenance");
  p.line(fmt::format("model        {} ({}, {} LM)", m.value("path", ""), m.value("model_class", ""), m.value("kind", "")));
  p.line(fmt::format("checkpoint   sha256 {}", m.value("checkpoint_sha256", "")));
  p.line(fmt::format("tokenizer    {}{}", m.value("tokenizer", ""), m.value("do_lower_case", false) ? " (uncased)" : ""));
  for (const auto& [name, d] : rep["datasets"].items()) {
    const json files = d.is_array() ? d : json::array({d});
    for (const auto& f : files)
      p.line(fmt::format("{:<12} {}  sha256 {}", name, fs::path(f.value("path", "")).filename().string(),
                         f.value("sha256", "").substr(0, 16) + "…"));
  }
  p.line(fmt::format("seed         {}   limit {}", rep.value("seed", 0), rep.value("limit", 0)));
  const std::string cl = rep.value("command_line", "");
  for (size_t at = 0, n = 0; at < cl.size() && n < 4; at += 105, ++n)
    p.line((at == 0 ? "command      " : "             ") + cl.substr(at, 105) + (n == 3 && at + 105 < cl.size() ? "…" : ""));

  if (rep.contains("crows_pairs")) {
    const json& c = rep["crows_pairs"];
    p.heading(fmt::format("CrowS-Pairs ({})", c.value("method", "")));
    p.line(c.value("score", ""), 7, &p.style().muted);
    std::vector<std::vector<std::string>> rows;
    auto row = [&](const std::string& n, const json& s) {
      rows.push_back({n, f2(s["metric"]), f2(s["stereotype"]), f2(s["anti_stereotype"]), f2(s["neutral"]),
                      std::to_string(s["n"].get<int64_t>())});
    };
    row("overall", c["overall"]);
    for (const auto& [t, s] : c["per_bias_type"].items()) row(t, s);
    p.table({"bias type", "metric %", "stereotype %", "anti-stereotype %", "neutral %", "n"}, rows,
            {0, 120, 190, 270, 370, 440});
  }
  if (rep.contains("stereoset")) {
    const json& s = rep["stereoset"];
    p.heading(fmt::format("StereoSet intrasentence ({})", s.value("format", "")));
    if (s.contains("note")) {
      p.line("The processed TSV has no target terms: SS and LMS are pooled over each domain's examples,", 7,
             &p.style().muted);
      p.line("not averaged over target terms as the official evaluation does.", 7, &p.style().muted);
    }
    std::vector<std::vector<std::string>> rows;
    auto row = [&](const std::string& n, const json& v) {
      rows.push_back({n, f2(v["ss"]), f2(v["lms"]), f2(v["icat"]), std::to_string(v["count"].get<int64_t>()),
                      std::to_string(v["groups"].get<int64_t>())});
    };
    row("overall", s["overall"]);
    for (const auto& [d, v] : s["per_domain"].items()) row(d, v);
    p.table({"domain", "SS", "LMS", "ICAT", "n", "targets"}, rows, {0, 120, 190, 260, 330, 390});
  }
  if (rep.contains("winobias")) {
    const json& w = rep["winobias"];
    p.heading("WinoBias (which occupation the pronoun refers to, scored by the LM)");
    std::vector<std::vector<std::string>> rows;
    for (const char* k : {"overall", "type1", "type2"})
      rows.push_back({k, f2(w[k]["pro"]), f2(w[k]["anti"]), f2(w[k]["gap"]),
                      fmt::format("{} / {}", w[k]["n_pro"].get<int64_t>(), w[k]["n_anti"].get<int64_t>())});
    p.table({"", "pro %", "anti %", "gap (pp)", "n pro / anti"}, rows, {0, 120, 190, 260, 330});
  }
  if (rep.contains("winogender")) {
    const json& w = rep["winogender"];
    p.heading("Winogender");
    p.line(fmt::format("Spearman rho of the per-occupation gender score with BLS % female: {}   with Bergsma: {}   "
                       "({} occupations, {} sentence pairs)",
                       f2(w["spearman_bls"], 3), f2(w["spearman_bergsma"], 3), w["occupations"].get<int64_t>(),
                       w["sentence_pairs"].get<int64_t>()));
  }
  if (rep.contains("suite")) {
    const json& s = rep["suite"];
    const json& g = s["logprob_gap"];
    const json& a = s["attention"];
    p.heading(fmt::format("Suite {} ({} vs {}, {} pairs)", s.value("name", ""), s["groups"][0].get<std::string>(),
                          s["groups"][1].get<std::string>(), s["pairs"].get<int64_t>()));
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"log-prob gap A - B", f2(g["mean"], 3), fmt::format("[{}, {}]", f2(g["ci_low"], 3), f2(g["ci_high"], 3)),
                    fmt::format("{:.3g}", g["p_value"].get<double>())});
    for (const auto& h : a["top_heads"]) {
      if (rows.size() > 6) break;
      rows.push_back({fmt::format("attention L{} H{}", h["layer"].get<int64_t>(), h["head"].get<int64_t>()),
                      f2(h["mean_difference"], 4), fmt::format("[{}, {}]", f2(h["ci_low"], 4), f2(h["ci_high"], 4)),
                      fmt::format("{:.3g} (q {:.3g})", h["p_value"].get<double>(), h["q_value"].get<double>())});
    }
    p.table({"measure", "mean", "95% CI (bootstrap)", "p (permutation)"}, rows, {0, 150, 230, 360});
    p.line(fmt::format("{} of {} heads significant after Benjamini-Hochberg (q < {}); bias-attention ratio A {} / B {}",
                       a["significant_heads"].get<int64_t>(), a["heads_tested"].get<int64_t>(), f2(a["alpha"]),
                       f2(a["bias_attention_ratio"]["a"], 3), f2(a["bias_attention_ratio"]["b"], 3)));
    if (s.contains("note")) p.line(s["note"].get<std::string>(), 7, &p.style().muted);
  }
}

/// A scatter plot of (x, y) points with labels, in the box (x0, y0, w, h).
void scatter(cairo_t* cr, const Style& st, double x0, double y0, double w, double h,
             const std::vector<std::tuple<double, double, std::string>>& pts, const std::string& xl,
             const std::string& yl, const std::string& title) {
  render::draw_text(cr, st, title, 9.5, x0, y0 - 16, 0, 0, st.foreground, 0, true);
  render::draw_frame(cr, st, x0, y0, w, h);
  if (pts.empty()) {
    render::draw_text(cr, st, "no data", 8, x0 + w / 2, y0 + h / 2, 0.5, 0.5, st.muted);
    return;
  }
  double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
  for (const auto& [x, y, l] : pts) {
    xmin = std::min(xmin, x);
    xmax = std::max(xmax, x);
    ymin = std::min(ymin, y);
    ymax = std::max(ymax, y);
  }
  if (xmax == xmin) xmax = xmin + 1;
  if (ymax == ymin) ymax = ymin + 1;
  const double px = (xmax - xmin) * 0.05, py = (ymax - ymin) * 0.08;
  xmin -= px;
  xmax += px;
  ymin -= py;
  ymax += py;
  auto X = [&](double v) { return x0 + (v - xmin) / (xmax - xmin) * w; };
  auto Y = [&](double v) { return y0 + h - (v - ymin) / (ymax - ymin) * h; };
  const auto xt = render::nice_ticks(xmin, xmax, 6), yt = render::nice_ticks(ymin, ymax, 5);
  const double xs = xt.size() > 1 ? xt[1] - xt[0] : 1, ys = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double t : xt)
    if (t >= xmin && t <= xmax) render::draw_text(cr, st, render::format_tick(t, xs), 6.5, X(t), y0 + h + 3, 0.5, 0, st.foreground);
  for (double t : yt)
    if (t >= ymin && t <= ymax) render::draw_text(cr, st, render::format_tick(t, ys), 6.5, x0 - 3, Y(t), 1, 0.5, st.foreground);
  if (ymin < 0 && ymax > 0) {
    render::set_color(cr, st.muted);
    cairo_set_line_width(cr, 0.4);
    cairo_move_to(cr, x0, Y(0));
    cairo_line_to(cr, x0 + w, Y(0));
    cairo_stroke(cr);
  }
  render::draw_text(cr, st, xl, 7.5, x0 + w / 2, y0 + h + 14, 0.5, 0, st.foreground);
  render::draw_text(cr, st, yl, 7.5, x0 - 30, y0 + h / 2, 0.5, 1, st.foreground, 90);
  const Color dot = st.head_colors.empty() ? st.accent : st.head_colors[0];
  for (const auto& [x, y, l] : pts) {
    render::set_color(cr, dot);
    cairo_new_path(cr);
    cairo_arc(cr, X(x), Y(y), 1.8, 0, 2 * M_PI);
    cairo_fill(cr);
    render::draw_text(cr, st, l, 4.8, X(x) + 2.5, Y(y), 0, 0.5, st.muted);
  }
}

void occupation_page(Page& p, const json& rep, const json& details) {
  p.title("Occupations against real-world statistics",
          "each point an occupation; x: % women (BLS, as the suite or Winogender's occupations-stats.tsv give it)");
  cairo_t* cr = p.cr();
  const Style& st = p.style();
  std::vector<std::tuple<double, double, std::string>> a, b;
  if (rep.contains("suite"))
    for (const auto& e : rep["suite"]["per_attribute"])
      if (!e["pct_female"].is_null())
        a.emplace_back(e["pct_female"].get<double>(), e["logprob_gap_b_minus_a"].get<double>(), e["word"].get<std::string>());
  if (details.contains("winogender_occupations"))
    for (const auto& e : details["winogender_occupations"])
      if (!e["bls_pct_female"].is_null())
        b.emplace_back(e["bls_pct_female"].get<double>(), e["score"].get<double>(), e["occupation"].get<std::string>());
  const double h = 270;
  std::string ta = "Suite: log p(group B) - log p(group A) per attribute word";
  if (rep.contains("suite")) ta += fmt::format("   (Spearman {})", f2(rep["suite"]["spearman_pct_female"], 3));
  scatter(cr, st, kM + 40, p.y + 24, kW - 2 * kM - 50, h, a, "% female (statistics)", "log-prob gap B - A", ta);
  p.y += h + 24 + 50;
  std::string tb = "Winogender: mean log p(she) - log p(he) per occupation";
  if (rep.contains("winogender")) tb += fmt::format("   (Spearman {})", f2(rep["winogender"]["spearman_bls"], 3));
  scatter(cr, st, kM + 40, p.y + 24, kW - 2 * kM - 50, h, b, "% female (BLS)", "log-prob gap female - male", tb);
}

void heads_page(Page& p, const json& rep) {
  p.title("Head sensitivity", "attention from the target word to the attribute word: mean difference group A - group B");
  if (!rep.contains("suite")) {
    p.line("No suite was run (--suite): attention measures need counterfactual templates.");
    return;
  }
  const json& s = rep["suite"];
  int64_t L = 0, H = 0;
  for (const auto& h : s["heads"]) {
    L = std::max(L, h["layer"].get<int64_t>() + 1);
    H = std::max(H, h["head"].get<int64_t>() + 1);
  }
  render::Matrix m;
  m.rows = L;
  m.cols = H;
  m.values.assign(static_cast<size_t>(L * H), 0.f);
  double vmax = 1e-9;
  for (const auto& h : s["heads"]) {
    const double v = h["mean_difference"].is_null() ? 0.0 : h["mean_difference"].get<double>();
    m.values[static_cast<size_t>(h["layer"].get<int64_t>() * H + h["head"].get<int64_t>())] = static_cast<float>(v);
    vmax = std::max(vmax, std::fabs(v));
  }
  const Style& st = p.style();
  cairo_t* cr = p.cr();
  const render::Colormap& cmap = render::Colormap::get(st.diverging_colormap);
  const double cell = std::min(28.0, std::min((kW - 2 * kM - 90) / static_cast<double>(H), 300.0 / static_cast<double>(L)));
  const double x0 = kM + 40, y0 = p.y + 10;
  render::MatrixStyle ms;
  ms.cmap = &cmap;
  ms.vmin = -vmax;
  ms.vmax = vmax;
  ms.values = false;
  render::draw_matrix(cr, st, m, x0, y0, cell, cell, ms);
  render::draw_frame(cr, st, x0, y0, cell * static_cast<double>(H), cell * static_cast<double>(L));
  for (const auto& h : s["heads"]) {
    if (!h["significant"].get<bool>()) continue;
    const double cx = x0 + (static_cast<double>(h["head"].get<int64_t>()) + 0.5) * cell;
    const double cy = y0 + (static_cast<double>(h["layer"].get<int64_t>()) + 0.5) * cell;
    render::draw_text(cr, st, "*", std::max(6.0, cell * 0.45), cx, cy, 0.5, 0.5, st.foreground, 0, true);
  }
  for (int64_t l = 0; l < L; ++l)
    render::draw_text(cr, st, std::to_string(l), 6.5, x0 - 4, y0 + (static_cast<double>(l) + 0.5) * cell, 1, 0.5, st.foreground);
  for (int64_t h = 0; h < H; ++h)
    render::draw_text(cr, st, std::to_string(h), 6.5, x0 + (static_cast<double>(h) + 0.5) * cell, y0 - 3, 0.5, 1, st.foreground);
  render::draw_text(cr, st, "head", 7.5, x0 + cell * static_cast<double>(H) / 2, y0 - 12, 0.5, 1, st.foreground);
  render::draw_text(cr, st, "layer", 7.5, x0 - 18, y0 + cell * static_cast<double>(L) / 2, 0.5, 1, st.foreground, 90);
  render::draw_colorbar(cr, st, cmap, x0 + cell * static_cast<double>(H) + 12, y0, cell * static_cast<double>(L), -vmax,
                        vmax, "attention difference A - B");
  p.y = y0 + cell * static_cast<double>(L) + 20;
  p.line("* significant after Benjamini-Hochberg over all heads (q < 0.05); CIs: percentile bootstrap of the mean "
         "paired difference; p: sign-flip permutation test.",
         7, &st.muted);
  p.heading("Most bias-sensitive heads");
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : s["attention"]["top_heads"])
    rows.push_back({fmt::format("L{} H{}", h["layer"].get<int64_t>(), h["head"].get<int64_t>()), f2(h["attention_a"], 4),
                    f2(h["attention_b"], 4), f2(h["mean_difference"], 4),
                    fmt::format("[{}, {}]", f2(h["ci_low"], 4), f2(h["ci_high"], 4)),
                    fmt::format("{:.3g}", h["p_value"].get<double>()), fmt::format("{:.3g}", h["q_value"].get<double>()),
                    fmt::format("{} / {}", f2(h["ratio_a"], 2), f2(h["ratio_b"], 2))});
  p.table({"head", "attention A", "attention B", "difference", "95% CI", "p", "q", "ratio A / B"}, rows,
          {0, 50, 110, 170, 230, 330, 375, 420});
}

void examples_page(Page& p, const json& details) {
  p.title("Worst examples", "largest attention difference at the most sensitive head");
  p.line("Shade: attention from the target word (underlined) to each token, word level; the attribute word is boxed.", 7,
         &p.style().muted);
  p.y += 4;
  const Style& st = p.style();
  cairo_t* cr = p.cr();
  const render::Colormap& cmap = render::Colormap::get(st.colormap);
  if (details.contains("suite_examples")) {
    for (const auto& ex : details["suite_examples"]) {
      p.line(fmt::format("layer {} head {}: attention difference {:+.4f}, log-prob gap {:+.3f}", ex["layer"].get<int64_t>(),
                         ex["head"].get<int64_t>(), ex["difference"].get<double>(), ex["logprob_gap"].get<double>()),
             8, nullptr);
      for (const auto& side : ex["sides"]) {
        double x = kM + 8;
        const auto& toks = side["tokens"];
        const auto& row = side["row"];
        double rmax = 1e-9;
        for (const auto& v : row) rmax = std::max(rmax, v.get<double>());
        const std::vector<int64_t> tgt = side["target"].get<std::vector<int64_t>>(),
                                   att = side["attribute"].get<std::vector<int64_t>>();
        for (size_t k = 0; k < toks.size(); ++k) {
          const std::string label = render::display_label(toks[k].get<std::string>(), 14);
          const double w = render::measure_text(st, label, 7.5).width + 5;
          if (x + w > kW - kM) break;
          const double v = row[k].get<double>() / rmax;
          render::set_color(cr, cmap.at(v));
          cairo_rectangle(cr, x, p.y - 1, w - 1, 12);
          cairo_fill(cr);
          const Color text = v > 0.6 ? Color{0, 0, 0, 1} : Color{1, 1, 1, 1};
          render::draw_text(cr, st, label, 7.5, x + 2, p.y + 5, 0, 0.5, text);
          if (std::find(tgt.begin(), tgt.end(), static_cast<int64_t>(k)) != tgt.end()) {
            render::set_color(cr, st.accent);
            cairo_set_line_width(cr, 1.2);
            cairo_move_to(cr, x, p.y + 12.5);
            cairo_line_to(cr, x + w - 1, p.y + 12.5);
            cairo_stroke(cr);
          }
          if (std::find(att.begin(), att.end(), static_cast<int64_t>(k)) != att.end()) {
            render::set_color(cr, st.accent);
            cairo_set_line_width(cr, 0.9);
            cairo_rectangle(cr, x, p.y - 1, w - 1, 12);
            cairo_stroke(cr);
          }
          x += w;
        }
        p.y += 17;
      }
      p.y += 6;
      if (p.y > kH - 200) break;
    }
  } else {
    p.line("No suite was run: no word-level attention examples.", 7.5);
  }
  if (details.contains("crows_pairs")) {
    p.heading("CrowS-Pairs: the pairs the model prefers most in the stereotypical direction");
    std::vector<const json*> rows;
    for (const auto& r : details["crows_pairs"]) rows.push_back(&r);
    auto margin = [](const json* r) { return (*r)["sent_more_score"].get<double>() - (*r)["sent_less_score"].get<double>(); };
    std::stable_sort(rows.begin(), rows.end(), [&](const json* a, const json* b) { return margin(a) > margin(b); });
    for (size_t i = 0; i < std::min<size_t>(6, rows.size()) && p.y < kH - kM - 30; ++i) {
      const json& r = *rows[i];
      auto cut = [](std::string s) { return s.size() > 120 ? s.substr(0, 120) + "…" : s; };
      p.line(fmt::format("#{} {} ({}): {:.4g} vs {:.4g}", r["index"].get<int64_t>(), r["bias_type"].get<std::string>(),
                         r["direction"].get<std::string>(), r["sent_more_score"].get<double>(),
                         r["sent_less_score"].get<double>()),
             7.5);
      p.line("more: " + cut(r["sent_more"].get<std::string>()), 7, &st.muted, 10);
      p.line("less: " + cut(r["sent_less"].get<std::string>()), 7, &st.muted, 10);
    }
  }
}

}  // namespace

void write_pdf_report(const AuditResult& result, const fs::path& path, const std::string& style_name) {
  const Style style = render::load_style(style_name);
  write_atomically(path, [&](const fs::path& tmp) {
    cairo_surface_t* surface = cairo_pdf_surface_create(tmp.c_str(), kW, kH);
    ATLAS_CHECK(cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS, IoError, "cannot create '{}'", path.string());
    const json& rep = result.report;
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, "Attention Atlas bias audit");
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR,
                                   fmt::format("atlas {}", rep.value("atlas_version", "")).c_str());
    cairo_pdf_surface_set_metadata(
        surface, CAIRO_PDF_METADATA_SUBJECT,
        fmt::format("{} | model {} sha256 {}", rep.value("command_line", ""), rep["model"].value("path", ""),
                    rep["model"].value("checkpoint_sha256", ""))
            .c_str());
    // A fixed date: the same audit gives the same bytes.
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATE_DATE, "2000-01-01T00:00:00");
    cairo_t* cr = cairo_create(surface);
    auto page = [&](auto&& draw) {
      render::set_color(cr, style.background);
      cairo_paint(cr);
      Page p(cr, style);
      draw(p);
      cairo_show_page(cr);
    };
    page([&](Page& p) { summary_page(p, rep); });
    page([&](Page& p) { occupation_page(p, rep, result.details); });
    page([&](Page& p) { heads_page(p, rep); });
    page([&](Page& p) { examples_page(p, result.details); });
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    const cairo_status_t status = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    ATLAS_CHECK(status == CAIRO_STATUS_SUCCESS, IoError, "cannot write '{}': {}", path.string(),
                cairo_status_to_string(status));
  });
}

}  // namespace atlas::bias
