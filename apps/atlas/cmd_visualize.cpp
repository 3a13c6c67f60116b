// atlas visualize KIND INPUT.npz... -o OUT: flags → atlas::render::VisualizeOptions → visualize().
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "atlas/analyze/cluster.hpp"
#include "atlas/analyze/figures.hpp"
#include "atlas/core/error.hpp"
#include "atlas/io/npz.hpp"
#include "atlas/render/colormap.hpp"
#include "atlas/render/visualize.hpp"
#include "commands.hpp"

namespace atlas::cli {

namespace {

/// A head-metrics NPZ of `atlas analyze heads -o` (docs/formats/head-metrics.md), not attention.
bool is_head_metrics_npz(const std::filesystem::path& path) {
  std::error_code ec;
  if (path.extension() != ".npz" || !std::filesystem::is_regular_file(path, ec)) return false;
  const io::NpzReader npz(path);
  return npz.contains("metric_names") && npz.contains("metrics") && !npz.contains("attention");
}

/// `visualize profile heads.npz`: one metric of every head as a layer x head map.
std::filesystem::path head_metrics_profile(const render::VisualizeOptions& o, const std::string& metric) {
  const analyze::HeadTable t = analyze::read_head_table(o.inputs.at(0));
  size_t m = 0;
  while (m < t.features.size() && t.features[m] != metric) ++m;
  ATLAS_CHECK(m < t.features.size(), InputError, "--metric '{}': '{}' holds no such metric (has: {})", metric,
              o.inputs[0].string(), fmt::join(t.features, ", "));
  nlohmann::json heads = nlohmann::json::array();
  for (size_t i = 0; i < t.layer.size(); ++i) {
    const double v = t.values[i][m];
    heads.push_back({{"layer", t.layer[i]}, {"head", t.head[i]}, {metric, std::isfinite(v) ? nlohmann::json(v) : nullptr}});
  }
  std::filesystem::path out = o.output;
  ATLAS_CHECK(!out.empty() && out.has_extension(), InputError,
              "-o '{}': a head-metrics profile is one figure: give a file name ending in .png, .svg or .pdf", out.string());
  analyze::FigureOptions fo;
  fo.style = o.style;
  fo.dpi = o.dpi;
  fo.command_line = o.command_line;
  analyze::write_head_map(out, heads, metric, o.title.empty() ? fmt::format("{} per head", metric) : o.title,
                          o.inputs[0].filename().string(), metric, fo);
  return out;
}

}  // namespace

Command add_visualize(CLI::App& app) {
  auto* sub = app.add_subcommand("visualize", "Render attention figures (PNG, SVG, PDF, EPS) from extract NPZ files");
  auto opts = std::make_shared<render::VisualizeOptions>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto output = std::make_shared<std::string>();
  auto vmin = std::make_shared<double>(0), vmax = std::make_shared<double>(0);
  sub->footer(fmt::format(
      "Kinds: heatmap (one layer/head or mean), grid (layers x heads), flow (head view), flowgraph (information "
      "flow to --target), contrast (two inputs and their difference), profile (distance and entropy).\n"
      "Colour maps: {}. Styles: paper, slides, dark or a .yaml file (docs/visualize.md).\n\n"
      "Examples:\n"
      "  atlas extract --model examples/models/stories260K -o story.npz \\\n"
      "      --text \"Once upon a time, there was a little girl named Lily. She loved to play outside.\"\n"
      "  atlas visualize heatmap   story.npz -o heatmap.png --layer 2 --head 3\n"
      "  atlas visualize grid      story.npz -o grid.pdf\n"
      "  atlas visualize flow      story.npz -o flow.svg --layer 3 --focus Lily --threshold 0.02\n"
      "  atlas visualize flowgraph story.npz -o flowgraph.png --target She\n"
      "  atlas visualize contrast  story.npz story.npz -o contrast.png --layer 0 --layer-b 4 --head mean\n"
      "  atlas visualize contrast  lily.npz tom.npz -o pair.png --words --layer 2   # he/she pair, word by word\n"
      "  atlas visualize flow      story.npz -o she.png --words --focus she#1 --layer 3\n"
      "  atlas visualize profile   story.npz -o profile.png\n"
      "  atlas visualize heatmap   t5.npz -o cross.png --kind cross --layer 1 --head mean   # encoder-decoder\n"
      "  atlas visualize heatmap   story.npz -o figs/ --all-layers --all-heads --format pdf -j 4   # batch\n"
      "  atlas visualize heatmap   story.npz -o dark.png --layer 4 --head 0 --style dark --colormap magma",
      fmt::join(render::Colormap::names(), ", ")));
  sub->add_option("kind", opts->kind, "Figure kind")->required()->check(CLI::IsMember(render::figure_kinds()));
  sub->add_option("inputs", *inputs, "Attention NPZ file(s) from `atlas extract` (contrast: two)")->required();
  sub->add_option("-o,--output", *output, "Output .png/.svg/.pdf/.eps, or DIR/ for several figures")->required();
  sub->add_option("--kind", opts->attention_kind,
                  "Encoder-decoders: which attention to draw: encoder, decoder or cross (default: attention, else encoder)")
      ->check(CLI::IsMember({"encoder", "decoder", "cross"}));
  sub->add_option("--layer", opts->layer, "Model layer: index, list 0,2, range 1-3, 'mean' or 'all'");
  sub->add_option("--head", opts->head, "Head: index, list, range, 'mean' or 'all'");
  sub->add_option("--layer-b", opts->layer_b, "contrast: B's layer(s) when they differ from --layer (e.g. two layers of one file)");
  sub->add_option("--head-b", opts->head_b, "contrast: B's head(s) when they differ from --head");
  sub->add_flag("--all-layers", opts->all_layers, "One figure per stored layer (into -o DIR/)");
  sub->add_flag("--all-heads", opts->all_heads, "One figure per stored head (into -o DIR/)");
  sub->add_option("--dpi", opts->dpi, "PNG resolution")->capture_default_str();
  sub->add_option("--width", opts->width, "Figure width: 6in, 15cm, 1800px, 432pt (default from the style)");
  sub->add_option("--height", opts->height, "Figure height (default: fitted to the content)");
  sub->add_option("--style", opts->style, "Style name (paper, slides, dark) or path to a .yaml")->capture_default_str();
  sub->add_option("--colormap", opts->colormap, "Colour map (overrides the style)");
  auto* vmin_opt = sub->add_option("--vmin", *vmin, "Lower end of the colour scale");
  auto* vmax_opt = sub->add_option("--vmax", *vmax, "Upper end of the colour scale (default: largest value)");
  sub->add_flag("--values", opts->values, "Print values in the cells (small matrices)");
  sub->add_flag("--hide-special", opts->hide_special, "Leave out special tokens (<s>, [CLS], [SEP])");
  sub->add_flag("--words", opts->words,
                "Word level: attention to a word summed over its tokens, from a word averaged (any kind; "
                "files from `atlas process words` are already words)");
  sub->add_flag("--raw-tokens", opts->raw_tokens, "Show vocabulary strings (Ġ, ▁, ##) instead of readable labels");
  sub->add_option("--threshold", opts->threshold, "flow/flowgraph: hide links below this weight")->capture_default_str();
  sub->add_option("--top-links", opts->top_links, "flow: at most N strongest links per query and head (0 = all above --threshold)")
      ->capture_default_str();
  sub->add_option("--focus", opts->focus, "flow: keep only this query's links: token index or text, or a word (Lucy, she#2 = 2nd occurrence)");
  sub->add_option("--target", opts->target, "flowgraph: output token or word whose paths are emphasised (default: last)");
  sub->add_option("--title", opts->title, "Replace the generated title");
  sub->add_option("--format", opts->format, "Batch: file format in the directory (png, svg, pdf, eps)")->capture_default_str();
  sub->add_option("--name-pattern", opts->name_pattern, "Batch: file names; fields {stem} {kind} {layer} {head} {sel} {ext}")
      ->capture_default_str();
  sub->add_option("-j,--jobs", opts->jobs, "Batch: parallel renders (0 = all cores)")->capture_default_str();

  auto metric = std::make_shared<std::string>("entropy");
  sub->add_option("--metric", *metric,
                  "profile of a head-metrics NPZ (`atlas analyze heads -o heads.npz`): the metric drawn as a "
                  "layer x head map (entropy, sink_mass, prev_token, ...)")
      ->capture_default_str();

  return {sub, [opts, inputs, output, vmin, vmax, vmin_opt, vmax_opt, metric] {
            render::VisualizeOptions o = *opts;
            for (const auto& in : *inputs) o.inputs.emplace_back(in);
            o.output = *output;
            if (vmin_opt->count() > 0) o.vmin = *vmin;
            if (vmax_opt->count() > 0) o.vmax = *vmax;
            o.command_line = command_line();
            if (o.kind == "profile" && o.inputs.size() == 1 && is_head_metrics_npz(o.inputs[0])) {
              fmt::print("{}\n", head_metrics_profile(o, *metric).string());
              return 0;
            }
            auto written = render::visualize(o);
            for (const auto& p : written) fmt::print("{}\n", p.string());
            return 0;
          }};
}

}  // namespace atlas::cli
