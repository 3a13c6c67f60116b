// `atlas visualize`: option checks, figure dispatch, batches over layers/heads/inputs on a thread pool.
#include "atlas/render/visualize.hpp"

#include <pango/pangocairo.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "atlas/core/error.hpp"
#include "atlas/render/attention_data.hpp"
#include "atlas/render/style.hpp"
#include "render/figures.hpp"
#include "render/output.hpp"

namespace atlas::render {
namespace fs = std::filesystem;

std::vector<std::string> figure_kinds() { return {"heatmap", "grid", "flow", "flowgraph", "contrast", "profile"}; }

double parse_length_pt(const std::string& text, int dpi, const std::string& what) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(text, &pos);
  } catch (...) {
    pos = 0;
  }
  const std::string unit = text.substr(pos);
  double pt = -1;
  if (pos > 0) {
    if (unit.empty() || unit == "in") pt = v * 72;
    else if (unit == "cm") pt = v * 72 / 2.54;
    else if (unit == "mm") pt = v * 72 / 25.4;
    else if (unit == "pt") pt = v;
    else if (unit == "px") pt = v * 72.0 / dpi;
  }
  ATLAS_CHECK(pt > 0 && std::isfinite(pt), InputError,
              "{} '{}': expected a positive length like 6in, 15cm, 1800px or 432pt", what, text);
  return pt;
}

namespace {

// The PDF/EPS date: SOURCE_DATE_EPOCH when set, else the input's own creation time, else the epoch —
// never the clock, so the same input gives the same bytes.
std::string fixed_date(const AttentionData& d) {
  if (const char* e = std::getenv("SOURCE_DATE_EPOCH"); e && *e) {
    std::time_t t = static_cast<std::time_t>(std::strtoll(e, nullptr, 10));
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return buf;
  }
  if (d.created.size() >= 19) return d.created.substr(0, 19);
  return "1970-01-01T00:00:00";
}

struct Job {
  std::string kind;
  size_t input = 0;
  std::string layer, head;  // selections for this figure
  fs::path output;
};

Figure build(const std::string& kind, const FigureRequest& req) {
  if (kind == "heatmap") return heatmap_figure(req);
  if (kind == "grid") return grid_figure(req);
  if (kind == "flow") return flow_figure(req);
  if (kind == "flowgraph") return flowgraph_figure(req);
  if (kind == "contrast") return contrast_figure(req);
  return profile_figure(req);
}

// Kind defaults for --layer / --head.
std::pair<std::string, std::string> default_selection(const std::string& kind) {
  if (kind == "heatmap") return {"", "mean"};
  // One matrix by default: eight overlaid heads of every link are unreadable (--head all asks for them).
  if (kind == "flow") return {"", "mean"};
  if (kind == "contrast") return {"", "mean"};
  return {"all", "all"};
}

std::string first_index(const std::vector<int64_t>& v) { return std::to_string(v.front()); }

std::string expand_pattern(const std::string& pattern, const std::map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{') {
      size_t e = pattern.find('}', i);
      ATLAS_CHECK(e != std::string::npos, InputError, "--name-pattern '{}': unclosed '{{'", pattern);
      std::string key = pattern.substr(i + 1, e - i - 1);
      auto it = vars.find(key);
      ATLAS_CHECK(it != vars.end(), InputError,
                  "--name-pattern '{}': unknown field '{{{}}}' (known: stem, kind, layer, head, sel, ext)",
                  pattern, key);
      out += it->second;
      i = e;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

}  // namespace

std::vector<fs::path> visualize(const VisualizeOptions& o) {
  const auto kinds = figure_kinds();
  ATLAS_CHECK(std::find(kinds.begin(), kinds.end(), o.kind) != kinds.end(), InputError,
              "unknown figure kind '{}' (known: {})", o.kind, fmt::join(kinds, ", "));
  ATLAS_CHECK(!o.inputs.empty(), InputError, "visualize {}: no input NPZ given", o.kind);
  if (o.kind == "contrast")
    ATLAS_CHECK(o.inputs.size() == 2, InputError, "visualize contrast takes exactly two inputs, got {}", o.inputs.size());
  ATLAS_CHECK(!o.output.empty(), InputError, "visualize: no output given (-o FILE or -o DIR/)");
  ATLAS_CHECK(o.threshold >= 0 && o.threshold <= 1, InputError, "--threshold must be in [0, 1], got {}", o.threshold);
  ATLAS_CHECK(o.top_links >= 0, InputError, "--top-links must be 0 (all) or more, got {}", o.top_links);

  // Style and colour map first: a bad style must fail before any input is read.
  const Style style = load_style(o.style);
  if (!o.colormap.empty()) Colormap::get(o.colormap);

  std::vector<AttentionData> data;
  const auto& ak = o.attention_kind;
  ATLAS_CHECK(ak.empty() || ak == "encoder" || ak == "decoder" || ak == "cross" || ak == format::kSelfAttention ||
                  ak == format::kEncoderAttention || ak == format::kDecoderAttention || ak == format::kCrossAttention,
              InputError, "unknown --kind '{}' (expected encoder, decoder or cross)", ak);
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    const auto& in = o.inputs[i];
    const format::AttentionData* pre = i < o.loaded.size() ? o.loaded[i].get() : nullptr;
    if (pre && ak.empty() && pre->kind == format::kSelfAttention) {
      data.push_back(*pre);
      check_finite(data.back());
    } else {
      data.push_back(load_attention(in.string(), ak));
    }
    if (o.words) data.back() = word_level_document(data.back());
  }
  for (const auto& d : data)
    ATLAS_CHECK(!d.keys_differ() || o.kind == "heatmap", InputError,
                "visualize {}: cross-attention is not square (decoder queries x encoder keys); draw it as a heatmap",
                o.kind);

  const std::string out_str = o.output.string();
  const bool to_dir = (!out_str.empty() && out_str.back() == '/') || fs::is_directory(o.output);
  const bool batch_over_inputs = o.kind != "contrast" && data.size() > 1;
  const bool batch = to_dir || o.all_layers || o.all_heads || batch_over_inputs;
  ATLAS_CHECK(!batch || to_dir, InputError,
              "several figures (--all-layers / --all-heads / several inputs) need a directory: -o DIR/");
  ATLAS_CHECK(!(o.all_layers || o.all_heads) || o.kind == "heatmap" || o.kind == "flow" || o.kind == "contrast" ||
                  (o.kind == "grid" && !o.all_heads),
              InputError, "--all-layers / --all-heads apply to heatmap, flow and contrast (and --all-layers to grid)");
  ATLAS_CHECK(o.kind == "contrast" || (o.layer_b.empty() && o.head_b.empty()), InputError,
              "--layer-b / --head-b apply to contrast only, not to {}", o.kind);

  std::string ext = o.format;
  if (!ext.empty() && ext[0] == '.') ext = ext.substr(1);
  if (to_dir) {
    std::error_code ec;
    fs::create_directories(o.output, ec);
    ATLAS_CHECK(fs::is_directory(o.output), InputError, "cannot create output directory '{}': {}", out_str,
                ec ? ec.message() : "not a directory");
    format_of(fs::path("x." + ext));  // validates --format
  } else {
    format_of(o.output);
  }

  // Expand the batch into jobs; each selection is checked now so errors come before any file.
  const auto [def_layer, def_head] = default_selection(o.kind);
  std::vector<Job> jobs;
  const size_t n_inputs = o.kind == "contrast" ? 1 : data.size();
  for (size_t in = 0; in < n_inputs; ++in) {
    const AttentionData& d = data[in];
    std::vector<std::string> layer_specs, head_specs;
    if (o.all_layers)
      for (int64_t l : d.layers) layer_specs.push_back(std::to_string(l));
    else
      layer_specs.push_back(o.layer.empty() ? (def_layer.empty() ? first_index(d.layers) : def_layer) : o.layer);
    if (o.all_heads)
      for (int64_t h : d.heads) head_specs.push_back(std::to_string(h));
    else
      head_specs.push_back(o.head.empty() ? def_head : o.head);
    for (const auto& ls : layer_specs)
      for (const auto& hs : head_specs) {
        Job j{o.kind, in, ls, hs, {}};
        if (to_dir) {
          // File names carry the model indices selected ("-1" and "1-3" resolved: L4, L1+2+3).
          auto name_of = [](const std::string& spec, const Selection& s, const std::vector<int64_t>& index) {
            if (spec == "mean" || spec == "all") return spec;
            std::vector<int64_t> ids;
            for (int64_t p : s.positions) ids.push_back(index[p]);
            return fmt::format("{}", fmt::join(ids, "+"));
          };
          const std::string ln = name_of(ls, parse_selection(ls, d.layers, "layer", d.path.string(), ""), d.layers);
          const std::string hn = name_of(hs, parse_selection(hs, d.heads, "head", d.path.string(), ""), d.heads);
          std::string sel;
          if (o.kind == "heatmap" || o.kind == "flow" || o.kind == "contrast") sel = fmt::format("_L{}_H{}", ln, hn);
          else if (o.kind == "grid" && o.all_layers) sel = fmt::format("_L{}", ln);
          std::map<std::string, std::string> vars = {
              {"stem", d.path.stem().string()}, {"kind", o.kind}, {"layer", ln}, {"head", hn}, {"sel", sel}, {"ext", ext}};
          j.output = o.output / expand_pattern(o.name_pattern, vars);
        } else {
          j.output = o.output;
        }
        parse_selection(ls, d.layers, "layer", d.path.string(), "");
        parse_selection(hs, d.heads, "head", d.path.string(), "");
        if (o.kind == "contrast") {
          if (!o.layer_b.empty()) parse_selection(o.layer_b, data[1].layers, "layer", data[1].path.string(), "", "--layer-b");
          if (!o.head_b.empty()) parse_selection(o.head_b, data[1].heads, "head", data[1].path.string(), "", "--head-b");
        }
        jobs.push_back(std::move(j));
      }
  }

  auto run_job = [&](const Job& job) {
    const AttentionData& d = data[job.input];
    FigureRequest req;
    req.data = &d;
    req.other = o.kind == "contrast" ? &data[1] : nullptr;
    req.style = &style;
    req.options = &o;
    req.layers = parse_selection(job.layer, d.layers, "layer", d.path.string(), "");
    req.heads = parse_selection(job.head, d.heads, "head", d.path.string(), "");
    if (o.kind == "contrast") {
      const AttentionData& b = data[1];
      if (!o.layer_b.empty()) req.other_layers = parse_selection(o.layer_b, b.layers, "layer", b.path.string(), "", "--layer-b");
      if (!o.head_b.empty()) req.other_heads = parse_selection(o.head_b, b.heads, "head", b.path.string(), "", "--head-b");
    }
    if (o.kind == "heatmap" || o.kind == "contrast") {
      // One matrix: a list of several layers/heads is shown as their mean.
      for (Selection* s : {&req.layers, &req.heads, &req.other_layers, &req.other_heads})
        if (s->positions.size() > 1) s->mean = true;
    }
    if (o.kind == "flowgraph") req.heads.mean = true;  // edges are the head mean by definition
    if (!o.width.empty()) req.width = parse_length_pt(o.width, o.dpi, "--width");
    if (!o.height.empty()) req.height = parse_length_pt(o.height, o.dpi, "--height");
    if (req.height == 0 && style.height > 0) req.height = style.height * 72;
    Figure fig = build(o.kind, req);
    Provenance prov;
    prov.title = fig.title;
    std::string cmd = o.command_line.empty() ? "atlas visualize " + o.kind : o.command_line;
    prov.subject = fmt::format("command: {}; model: {}; checkpoint sha256: {}; input: {}{}", cmd,
                               d.model_path.empty() ? "?" : d.model_path,
                               d.checkpoint_sha256.empty() ? "?" : d.checkpoint_sha256, d.path.filename().string(),
                               d.command_line.empty() ? "" : "; extract: " + d.command_line);
    prov.date = fixed_date(d);
    write_figure(job.output, fig, style, o.dpi, prov);
  };

  std::vector<fs::path> written;
  if (jobs.size() == 1) {
    run_job(jobs[0]);
    written.push_back(jobs[0].output);
    return written;
  }
  unsigned n_threads = o.jobs > 0 ? unsigned(o.jobs) : std::max(1u, std::thread::hardware_concurrency());
  n_threads = std::min<unsigned>(n_threads, unsigned(jobs.size()));
  std::atomic<size_t> next{0};
  std::mutex err_mutex;
  std::exception_ptr first_error;
  auto worker = [&] {
    for (size_t i; (i = next++) < jobs.size();) {
      try {
        run_job(jobs[i]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(err_mutex);
        if (!first_error) first_error = std::current_exception();
        next = jobs.size();
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < n_threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (first_error) std::rethrow_exception(first_error);
  for (const auto& j : jobs) written.push_back(j.output);
  return written;
}

Image read_png(const fs::path& path) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
    std::string why = cairo_status_to_string(cairo_surface_status(s));
    cairo_surface_destroy(s);
    ATLAS_FAIL(FormatError, "cannot read PNG '{}': {}", path.string(), why);
  }
  cairo_surface_flush(s);
  Image img;
  img.width = cairo_image_surface_get_width(s);
  img.height = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  const bool has_alpha = cairo_image_surface_get_format(s) == CAIRO_FORMAT_ARGB32;
  img.rgba.resize(size_t(img.width) * img.height * 4);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      uint32_t px;
      std::memcpy(&px, data + y * stride + x * 4, 4);
      uint8_t a = has_alpha ? uint8_t(px >> 24) : 255;
      uint8_t r = uint8_t(px >> 16), g = uint8_t(px >> 8), b = uint8_t(px);
      if (a > 0 && a < 255) {  // cairo stores premultiplied alpha
        r = uint8_t(std::min(255, r * 255 / a));
        g = uint8_t(std::min(255, g * 255 / a));
        b = uint8_t(std::min(255, b * 255 / a));
      }
      uint8_t* o = img.rgba.data() + (size_t(y) * img.width + x) * 4;
      o[0] = r; o[1] = g; o[2] = b; o[3] = a;
    }
  cairo_surface_destroy(s);
  return img;
}

int unknown_glyph_count(const std::string& text, const std::string& font) {
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 8, 8);
  cairo_t* cr = cairo_create(s);
  PangoLayout* layout = pango_cairo_create_layout(cr);
  PangoFontDescription* desc = pango_font_description_from_string(font.c_str());
  pango_font_description_set_absolute_size(desc, 10 * PANGO_SCALE);
  pango_layout_set_font_description(layout, desc);
  pango_font_description_free(desc);
  pango_layout_set_text(layout, text.c_str(), -1);
  int n = pango_layout_get_unknown_glyphs_count(layout);
  g_object_unref(layout);
  cairo_destroy(cr);
  cairo_surface_destroy(s);
  return n;
}

}  // namespace atlas::render
