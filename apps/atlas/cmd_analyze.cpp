// atlas analyze: numbers about attention (lib/include/atlas/analyze/), each subcommand a report that
// --json prints and --fail-if gates on (apps/atlas/gating.hpp).
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "atlas/analyze/cluster.hpp"
#include "atlas/analyze/detect.hpp"
#include "atlas/analyze/documents.hpp"
#include "atlas/analyze/heads.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/version.hpp"
#include "atlas/extract/extract.hpp"
#include "atlas/format/meta.hpp"
#include "commands.hpp"
#include "gating.hpp"

namespace atlas::cli {
namespace {

// Flags every analyze subcommand has: --json, --fail-if, and where the report goes.
struct ReportFlags {
  bool json = false;
  bool csv = false;
  std::string output;
  std::shared_ptr<std::vector<std::string>> fail_if;
};

std::shared_ptr<ReportFlags> add_report_flags(CLI::App* cmd, bool csv, const std::string& output_help) {
  auto f = std::make_shared<ReportFlags>();
  cmd->add_flag("--json", f->json, "Print the report as JSON on stdout");
  if (csv) cmd->add_flag("--csv", f->csv, "Print one CSV line per head on stdout");
  if (!output_help.empty()) cmd->add_option("--output,-o", f->output, output_help);
  f->fail_if = add_fail_if(cmd);
  return f;
}

// Where the report came from and what made it (style: outputs carry their provenance).
nlohmann::json provenance(const std::string& command) {
  return {{"command", command}, {"tool", "atlas"}, {"version", version()}, {"git_revision", git_revision()},
          {"command_line", command_line()}, {"created", format::utc_now_iso()}};
}

void write_text(const std::string& path, const std::string& text) {
  check_output_path(path);
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    ATLAS_CHECK(out.good(), IoError, "cannot write '{}'", tmp.string());
  });
}

std::string num(const nlohmann::json& v, int digits = 3) {
  if (!v.is_number()) return "-";
  return fmt::format("{:.{}f}", v.get<double>(), digits);
}

// Model-running flags shared by the subcommands that can run a model.
struct ModelFlags {
  std::string model, tokenizer, device = "cpu";
  int threads = 0;
};
void add_model_flags(CLI::App* cmd, ModelFlags& m, bool required) {
  auto* opt = cmd->add_option("--model,-m", m.model, "Model folder (as for atlas extract)");
  if (required) opt->required();
  cmd->add_option("--tokenizer", m.tokenizer, "Tokenizer folder (default: the model's)");
  cmd->add_option("--threads", m.threads, "CPU threads (0: all cores)");
  cmd->add_option("--device", m.device, "cpu, cuda or cuda:N")->capture_default_str();
}
void fill_run(extract::RunOptions& r, const ModelFlags& m) {
  r.model_dir = m.model;
  r.tokenizer_dir = m.tokenizer;
  r.threads = m.threads;
  r.device = m.device;
  r.command_line = command_line();
}

// ---- heads ------------------------------------------------------------------------------------

void print_heads_table(const nlohmann::json& report) {
  fmt::print("model      {}\n", report.value("model", ""));
  fmt::print("documents  {} ({} tokens), {} skipped\n", report["documents"].get<int64_t>(),
             report["tokens"].get<int64_t>(), report["skipped_count"].get<int64_t>());
  for (const auto& s : report["skipped"]) fmt::print("  skipped  {}: {}\n", s["id"].get<std::string>(), s["error"].get<std::string>());
  fmt::print("{:>5} {:>4} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}\n", "layer", "head", "entropy",
             "dist", "sink", "self", "prev", "long", "conf", "sparse", "punct");
  for (const auto& h : report["heads"])
    fmt::print("{:>5} {:>4} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}\n", h["layer"].get<int64_t>(),
               h["head"].get<int64_t>(), num(h["entropy"]), num(h["mean_distance"], 2), num(h["sink_mass"]),
               num(h["self"]), num(h["prev_token"]), num(h["long_range"]), num(h["mean_confidence"]),
               num(h["sparsity"]), num(h["punct_mass"]));
}

Command add_heads(CLI::App* parent) {
  auto* cmd = parent->add_subcommand("heads", "Per layer and head: entropy, distance, sink / self / previous-token mass, confidence, sparsity, focus");
  cmd->footer(R"(
Examples:
  atlas analyze heads lily.npz
  atlas analyze heads store/ --json > heads.json          # every document of a store
  atlas analyze heads --model M --input corpus.txt --csv  # run the corpus directly
  atlas analyze heads store/ -o heads.npz --fail-if 'max(sink_mass) > 0.9'
Definitions: docs/metrics.md.)");
  auto input = std::make_shared<std::string>();
  auto corpus = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto kind = std::make_shared<std::string>();
  auto lang = std::make_shared<std::string>("en");
  auto lexicon = std::make_shared<std::string>();
  auto input_format = std::make_shared<std::string>("auto");
  auto text_field = std::make_shared<std::string>("text");
  auto column = std::make_shared<std::string>("text");
  auto limit = std::make_shared<int64_t>(0);
  auto window = std::make_shared<int64_t>(0);
  auto model = std::make_shared<ModelFlags>();
  cmd->add_option("input", *input, "Attention NPZ, store folder, or STORE:DOC");
  add_model_flags(cmd, *model, false);
  cmd->add_option("--input,-i", *corpus, "With --model: a corpus file (text lines, JSONL, CSV, TSV) run directly");
  cmd->add_option("--text,-t", *text, "With --model: one text");
  cmd->add_option("--input-format", *input_format, "With --input: auto, text, jsonl, csv, tsv")->capture_default_str();
  cmd->add_option("--text-field", *text_field, "JSONL text field")->capture_default_str();
  cmd->add_option("--column", *column, "CSV/TSV text column")->capture_default_str();
  cmd->add_option("--limit", *limit, "With --input: the first N records only");
  cmd->add_option("--window", *window, "With --input: split longer documents into windows of N tokens");
  cmd->add_option("--kind", *kind, "Attention member: attention (default), encoder, decoder");
  cmd->add_option("--lang", *lang, "Function-word lexicon: configs/lexicons/LANG.txt")->capture_default_str();
  cmd->add_option("--lexicon", *lexicon, "Function-word lexicon file (one word a line)");
  auto flags = add_report_flags(cmd, true, "Also write the metrics: .npz (docs/formats/head-metrics.md), .json or .csv");
  return {cmd, [=] {
    analyze::DocumentSource src;
    src.kind = *kind;
    const bool with_model = !model->model.empty();
    ATLAS_CHECK(with_model || !input->empty(), InputError,
                "analyze heads: give an attention file or store, or --model M with --input FILE or --text STR");
    ATLAS_CHECK(!(with_model && !input->empty()), InputError,
                "analyze heads: give either an input file/store or --model, not both");
    std::optional<format::AttentionData> single;
    if (with_model) {
      ATLAS_CHECK(corpus->empty() != text->empty(), InputError, "analyze heads --model: give --input FILE or --text STR");
      if (!corpus->empty()) {
        extract::CorpusOptions o;
        fill_run(o, *model);
        o.input.path = *corpus;
        o.input.format = corpus::parse_input_format(*input_format);
        o.input.text_field = *text_field;
        o.input.column = *column;
        o.max_documents = *limit;
        o.window = *window;
        o.dtype = "float16";
        src.corpus = o;
      } else {
        extract::ExtractOptions o;
        fill_run(o, *model);
        o.text = *text;
        single = analyze::run_model(o);
      }
    } else {
      src.spec = *input;
    }
    const analyze::Lexicon lex = analyze::load_lexicon(*lang, *lexicon);
    analyze::HeadStats stats;
    analyze::SourceSummary summary;
    auto visit = [&](const format::AttentionData& doc, const std::string&) {
      stats.add(doc, analyze::classify_tokens(doc, lex));
    };
    if (single) {
      visit(*single, "");
      summary.source = "--text";
      summary.documents = 1;
      summary.tokens = single->q;
      summary.model = analyze::model_json(*single);
    } else {
      summary = analyze::for_each_document(src, visit);
    }
    analyze::require_documents(summary);
    nlohmann::json report = provenance("analyze heads");
    report["model"] = summary.model.value("name", "");
    report["model_info"] = summary.model;
    report.update(summary.to_json());
    report["lexicon"] = {{"language", lex.language}, {"path", lex.path.string()}, {"words", lex.function_words.size()}};
    report.update(stats.to_json());
    if (!flags->output.empty()) {
      const std::filesystem::path out(flags->output);
      if (out.extension() == ".json") write_text(flags->output, report.dump(2) + "\n");
      else if (out.extension() == ".csv") write_text(flags->output, analyze::heads_csv(stats));
      else {
        check_output_path(out);
        analyze::write_metrics_npz(out, stats, report);
      }
    }
    if (flags->json) fmt::print("{}\n", report.dump(2));
    else if (flags->csv) fmt::print("{}", analyze::heads_csv(stats));
    else print_heads_table(report);
    if (!flags->output.empty() && !flags->json && !flags->csv) fmt::print("wrote      {}\n", flags->output);
    return apply_gates(*cmd, *flags->fail_if, report);
  }};
}

// ---- detect -----------------------------------------------------------------------------------

Command add_detect(CLI::App* parent) {
  auto* cmd = parent->add_subcommand("detect", "Previous-token, duplicate-token and induction scores per head (TransformerLens) on repeated random tokens");
  cmd->footer(R"(
Examples:
  atlas analyze detect --model examples/models/stories260K
  atlas analyze detect --model M --length 64 --sequences 16 --seed 1 --json
  atlas analyze detect --model M --fail-if 'max(induction) < 0.2'   # exit 3: no induction head)");
  auto model = std::make_shared<ModelFlags>();
  add_model_flags(cmd, *model, true);
  auto opts = std::make_shared<analyze::DetectOptions>();
  cmd->add_option("--length", opts->length, "Random tokens per copy (L)")->capture_default_str();
  cmd->add_option("--sequences", opts->sequences, "Sequences averaged")->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Random seed")->capture_default_str();
  auto flags = add_report_flags(cmd, false, "Also write the report as JSON to this file");
  return {cmd, [=] {
    analyze::DetectOptions o = *opts;
    fill_run(o.run, *model);
    nlohmann::json report = provenance("analyze detect");
    report.update(analyze::run_detect(o));
    if (!flags->output.empty()) write_text(flags->output, report.dump(2) + "\n");
    if (flags->json) {
      fmt::print("{}\n", report.dump(2));
    } else {
      fmt::print("model      {}: {} sequences of 2 x {} random tokens (seed {})\n", report["model"].get<std::string>(),
                 o.sequences, o.length, o.seed);
      fmt::print("{:>5} {:>4} {:>10} {:>10} {:>10}\n", "layer", "head", "prev_token", "duplicate", "induction");
      for (const auto& h : report["heads"])
        fmt::print("{:>5} {:>4} {:>10} {:>10} {:>10}\n", h["layer"].get<int64_t>(), h["head"].get<int64_t>(),
                   num(h["prev_token"]), num(h["duplicate_token"]), num(h["induction"]));
      for (const char* k : {"prev_token", "duplicate_token", "induction"}) {
        const auto& t = report["top"][k];
        fmt::print("top {:<16} layer {} head {} ({})\n", k, t["layer"].get<int64_t>(), t["head"].get<int64_t>(),
                   num(t["score"]));
      }
    }
    return apply_gates(*cmd, *flags->fail_if, report);
  }};
}

// ---- cluster ----------------------------------------------------------------------------------

Command add_cluster(CLI::App* parent) {
  auto* cmd = parent->add_subcommand("cluster", "Group heads by their metrics (k-means, k by silhouette), a 2-D projection figure, named clusters");
  cmd->footer(R"(
Examples:
  atlas analyze heads store/ -o heads.json && atlas analyze cluster heads.json -o clusters.png
  atlas analyze cluster heads.npz --k 4 --metrics prev_token,sink_mass,self,entropy --json)");
  auto input = std::make_shared<std::string>();
  auto opts = std::make_shared<analyze::ClusterOptions>();
  auto metrics = std::make_shared<std::string>();
  auto style = std::make_shared<std::string>("paper");
  auto dpi = std::make_shared<int>(300);
  cmd->add_option("input", *input, "analyze heads / detect JSON report, or a head-metrics .npz")->required();
  cmd->add_option("--k", opts->k, "Number of clusters (default: the best silhouette over 2..8)");
  cmd->add_option("--seed", opts->seed, "Random seed of k-means++")->capture_default_str();
  cmd->add_option("--metrics", *metrics, "Comma-separated metrics to cluster on (default: all)");
  cmd->add_option("--style", *style, "Figure style (paper, slides, dark, or a .yaml)")->capture_default_str();
  cmd->add_option("--dpi", *dpi, "PNG resolution")->capture_default_str();
  auto flags = add_report_flags(cmd, false, "The projection figure: .png, .svg or .pdf (a .json writes the report)");
  return {cmd, [=] {
    analyze::ClusterOptions o = *opts;
    if (!metrics->empty()) {
      std::string m = *metrics;
      size_t start = 0;
      while (start <= m.size()) {
        size_t comma = m.find(',', start);
        if (comma == std::string::npos) comma = m.size();
        std::string name = m.substr(start, comma - start);
        name.erase(0, name.find_first_not_of(' '));
        name.erase(name.find_last_not_of(' ') + 1);
        if (!name.empty()) o.features.push_back(name);
        start = comma + 1;
      }
    }
    const analyze::HeadTable table = analyze::read_head_table(*input, o.features);
    nlohmann::json report = provenance("analyze cluster");
    report.update(analyze::cluster_heads(table, o));
    if (!flags->output.empty()) {
      if (std::filesystem::path(flags->output).extension() == ".json") write_text(flags->output, report.dump(2) + "\n");
      else analyze::write_cluster_figure(flags->output, report, *style, *dpi, command_line());
    }
    if (flags->json) {
      fmt::print("{}\n", report.dump(2));
    } else {
      fmt::print("heads      {} from {} ({} metrics)\n", report["heads"].size(), *input, report["features"].size());
      std::string sil;
      for (auto it = report["silhouette"].begin(); it != report["silhouette"].end(); ++it)
        sil += fmt::format(" k={}:{:.3f}", it.key(), it.value().get<double>());
      fmt::print("silhouette{}\n", sil);
      fmt::print("k          {}\n", report["k"].get<int>());
      for (const auto& c : report["clusters"]) {
        std::string members;
        for (const auto& m : c["members"]) members += (members.empty() ? "" : " ") + m.get<std::string>();
        fmt::print("cluster {} {:<24} {:>3} heads  {} z={:+.2f}: {}\n", c["id"].get<int>(), c["name"].get<std::string>(),
                   c["size"].get<int>(), c["dominant_metric"].get<std::string>(), c["dominant_z"].get<double>(), members);
      }
      if (!flags->output.empty()) fmt::print("wrote      {}\n", flags->output);
    }
    return apply_gates(*cmd, *flags->fail_if, report);
  }};
}

}  // namespace

Command add_analyze(CLI::App& app) {
  auto* sub = app.add_subcommand("analyze", "Numbers about attention: head metrics, head detectors, clusters, case studies");
  sub->require_subcommand(1);
  sub->footer(R"(
Every analyze command takes --json (the report) and --fail-if 'EXPR' (exit 3 when it holds; grammar:
docs/metrics.md, Gating). Definitions of every metric: docs/metrics.md.)");
  // One line per analyze subcommand (each returns its CLI::App and what runs it).
  const CommandList subs = {
      add_heads(sub),
      add_detect(sub),
      add_cluster(sub),
  };
  return {sub, [subs]() -> int {
            for (const auto& c : subs)
              if (c.app->parsed()) return c.run();
            return 2;
          }};
}

}  // namespace atlas::cli
