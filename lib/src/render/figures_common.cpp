#include <algorithm>
#include <cctype>

#include "atlas/core/error.hpp"
#include "atlas/core/index_list.hpp"
#include "atlas/core/utf8.hpp"
#include "render/draw.hpp"
#include "render/figures.hpp"

namespace atlas::render {

std::string Selection::describe(const std::vector<int64_t>& index, const char* what) const {
  std::vector<int64_t> ids;
  for (int64_t p : positions) ids.push_back(index[p]);
  // `atlas process` stores an aggregated axis with size 1 and index -1 (rollout, --over heads).
  if (index.size() == 1 && index[0] < 0) return fmt::format("{}s aggregated", what);
  if (mean && positions.size() == 1) return fmt::format("{} {}", what, ids[0]);
  if (!mean) {
    if (ids.size() == 1) return fmt::format("{} {}", what, ids[0]);
    // "heads 0–7" reads better in a title than "head 0,1,2,3,4,5,6,7".
    bool contiguous = ids.size() > 2;
    for (size_t i = 1; i < ids.size() && contiguous; ++i) contiguous = ids[i] == ids[i - 1] + 1;
    if (contiguous) return fmt::format("{}s {}\u2013{}", what, ids.front(), ids.back());
    return fmt::format("{}s {}", what, fmt::join(ids, ", "));
  }
  if (positions.size() == index.size()) return fmt::format("mean of {} {}s", index.size(), what);
  return fmt::format("mean of {}s {}", what, fmt::join(ids, ","));
}

Selection parse_selection(const std::string& text_in, const std::vector<int64_t>& index, const char* what,
                          const std::string& file, const std::string& fallback, const std::string& flag_in) {
  const std::string text = text_in.empty() ? fallback : text_in;
  Selection sel;
  // "mean" is visualize's own form: every stored index, averaged into one matrix. Everything else
  // ("all", "3", "0,2", "1-3", "-1") is the index-list grammar every subcommand shares.
  sel.mean = text == "mean";
  const std::string flag = flag_in.empty() ? std::string("--") + what : flag_in;
  sel.positions = select_indices(sel.mean ? "all" : text, index, IndexAxis{flag, what, fmt::format("'{}'", file)});
  return sel;
}

std::vector<float> mean_matrix(const AttentionData& d, const Selection& layers, const Selection& heads) {
  std::vector<double> acc(static_cast<size_t>(d.q * d.k), 0.0);
  for (int64_t l : layers.positions)
    for (int64_t h : heads.positions) {
      const float* a = d.matrix(l, h);
      for (size_t i = 0; i < acc.size(); ++i) acc[i] += a[i];
    }
  const double n = double(layers.positions.size() * heads.positions.size());
  std::vector<float> out(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) out[i] = static_cast<float>(acc[i] / n);
  return out;
}

std::vector<int64_t> visible_tokens(const AttentionData& d, bool hide_special) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < d.q; ++i)
    if (!(hide_special && d.special[i])) out.push_back(i);
  ATLAS_CHECK(!out.empty(), InputError, "'{}': every token is special; nothing left to show without --hide-special",
              d.source);
  return out;
}

std::vector<int64_t> visible_key_columns(const AttentionData& d, const std::vector<int64_t>& visible,
                                         bool hide_special) {
  std::vector<int64_t> cols;
  if (d.keys_differ()) {
    for (int64_t j = 0; j < d.k; ++j)
      if (!(hide_special && d.key_special[j])) cols.push_back(j);
    ATLAS_CHECK(!cols.empty(), InputError, "'{}': every key token is special; nothing left to show without --hide-special",
                d.source);
    return cols;
  }
  for (int64_t j : visible)
    if (j < d.k) cols.push_back(j);
  return cols;
}

std::vector<std::string> token_display(const AttentionData& d, const VisualizeOptions& o,
                                       const std::vector<int64_t>& positions, const Style& style) {
  std::vector<std::string> out;
  const auto& src = o.raw_tokens ? d.tokens : d.token_labels;
  for (int64_t p : positions) out.push_back(display_label(src[p], style.max_label_chars));
  return out;
}

std::vector<std::string> key_token_display(const AttentionData& d, const VisualizeOptions& o,
                                           const std::vector<int64_t>& positions, const Style& style) {
  std::vector<std::string> out;
  const auto& src = o.raw_tokens ? d.key_tokens : d.key_token_labels;
  for (int64_t p : positions) out.push_back(display_label(src[p], style.max_label_chars));
  return out;
}

Matrix restrict_matrix(const AttentionData& d, const std::vector<float>& full, const std::vector<int64_t>& rows,
                       const std::vector<int64_t>& cols) {
  Matrix m;
  m.rows = static_cast<int64_t>(rows.size());
  m.cols = static_cast<int64_t>(cols.size());
  m.values.resize(static_cast<size_t>(m.rows * m.cols));
  if (d.causal_mask()) m.mask.assign(m.values.size(), 0);
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j) {
      m.values[i * m.cols + j] = full[rows[i] * d.k + cols[j]];
      if (d.causal_mask()) m.mask[i * m.cols + j] = d.is_masked(rows[i], cols[j]);
    }
  return m;
}

std::string model_label(const AttentionData& d) {
  std::string label = d.model_name.empty() ? d.path.stem().string() : d.model_name;
  // What `atlas process` (or --words) made of the attention, so a rollout is not read as a head.
  if (d.meta && d.meta->process.is_array()) {
    std::vector<std::string> ops;
    for (const auto& step : d.meta->process)
      if (step.is_object() && step.contains("op") && step["op"].is_string()) ops.push_back(step["op"].get<std::string>());
    if (!ops.empty()) label += fmt::format(" \u00B7 {}", fmt::join(ops, " \u2192 "));
  }
  return label;
}

std::string text_excerpt(const AttentionData& d, size_t max_chars) {
  std::string text = d.text;
  if (text.empty()) {
    for (const auto& t : d.token_labels) text += t;
  }
  std::u32string cps;
  try {
    cps = utf8::decode(text);
  } catch (...) {
    return {};
  }
  for (auto& c : cps)
    if (c == U'\n' || c == U'\t' || c == U'\r') c = U' ';
  size_t a = cps.find_first_not_of(U' ');
  if (a == std::u32string::npos) return {};
  cps = cps.substr(a);
  if (cps.size() > max_chars) cps = cps.substr(0, max_chars - 1) + U"\u2026";
  return "\u201C" + utf8::encode(cps) + "\u201D";
}

int64_t find_token(const AttentionData& d, const std::string& spec, const char* flag) {
  if (!spec.empty() && std::all_of(spec.begin(), spec.end(), [](unsigned char c) { return std::isdigit(c); })) {
    int64_t i = std::stoll(spec);
    ATLAS_CHECK(i < d.q, InputError, "--{} {}: '{}' has {} tokens (0..{})", flag, spec, d.source, d.q, d.q - 1);
    return i;
  }
  auto trim = [](std::string s) {
    s = display_label(s, 0);
    return s;
  };
  const std::string want = trim(spec);
  for (int64_t i = 0; i < d.q; ++i)
    if (trim(d.token_labels[i]) == want || d.tokens[i] == spec) return i;
  std::vector<std::string> shown;
  for (int64_t i = 0; i < std::min<int64_t>(d.q, 30); ++i) shown.push_back(trim(d.token_labels[i]));
  ATLAS_FAIL(InputError, "--{} '{}': no such token in '{}' (tokens: {}{})", flag, spec, d.source,
             fmt::join(shown, " "), d.q > 30 ? " …" : "");
}

double max_text_width(const Style& style, const std::vector<std::string>& labels, double size) {
  double w = 0;
  for (const auto& l : labels) w = std::max(w, measure_text(style, l, size).width);
  return w;
}

}  // namespace atlas::render
