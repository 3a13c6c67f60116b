// atlas analyze: numbers about attention (lib/include/atlas/analyze/), each subcommand a report that
// --json prints and --fail-if gates on (apps/atlas/gating.hpp).
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>

#include "atlas/analyze/cases.hpp"
#include "atlas/analyze/cluster.hpp"
#include "atlas/analyze/detect.hpp"
#include "atlas/analyze/documents.hpp"
#include "atlas/analyze/figures.hpp"
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
  std::string figure, figure_metric, style = "paper";
  int dpi = 300;
  std::shared_ptr<std::vector<std::string>> fail_if;
  analyze::FigureOptions figure_options() const { return {style, dpi, command_line()}; }
};

// --figure FILE (+ --metric for per-head maps), --style, --dpi.
void add_figure_flags(CLI::App* cmd, ReportFlags& f, const std::string& what, const std::string& default_metric) {
  cmd->add_option("--figure", f.figure, "Write a figure (.png .svg .pdf): " + what);
  if (!default_metric.empty()) {
    f.figure_metric = default_metric;
    cmd->add_option("--metric", f.figure_metric, "The per-head value the figure shows")->capture_default_str();
  }
  cmd->add_option("--style", f.style, "Figure style (paper, slides, dark, or a .yaml)")->capture_default_str();
  cmd->add_option("--dpi", f.dpi, "PNG resolution")->capture_default_str();
}

// A layer x head map of `metric` from the report's heads records.
void head_map(const ReportFlags& f, const nlohmann::json& heads, const std::string& title, const std::string& subtitle) {
  if (f.figure.empty()) return;
  ATLAS_CHECK(!heads.empty() && heads[0].contains(f.figure_metric), InputError, "--metric '{}' is not a per-head field (have: {})",
              f.figure_metric, heads.empty() ? std::string("none") : [&] {
                std::string k;
                for (auto it = heads[0].begin(); it != heads[0].end(); ++it)
                  if (it.value().is_number() && it.key() != "layer" && it.key() != "head") k += (k.empty() ? "" : ", ") + it.key();
                return k;
              }());
  analyze::write_head_map(f.figure, heads, f.figure_metric, title, subtitle, f.figure_metric, f.figure_options());
}

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
  add_figure_flags(cmd, *flags, "a layer x head map of --metric", "sink_mass");
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
    head_map(*flags, report["heads"], fmt::format("{} \u00B7 {} per head", report["model"].get<std::string>(), flags->figure_metric),
             fmt::format("{} documents, {} tokens (docs/metrics.md)", summary.documents, summary.tokens));
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
  add_figure_flags(cmd, *flags, "a layer x head map of --metric", "induction");
  return {cmd, [=] {
    analyze::DetectOptions o = *opts;
    fill_run(o.run, *model);
    nlohmann::json report = provenance("analyze detect");
    report.update(analyze::run_detect(o));
    if (!flags->output.empty()) write_text(flags->output, report.dump(2) + "\n");
    head_map(*flags, report["heads"], fmt::format("{} \u00B7 {} score per head", report["model"].get<std::string>(), flags->figure_metric),
             fmt::format("{} sequences of 2 \u00D7 {} random tokens (seed {})", o.sequences, o.length, o.seed));
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

// Splits "a,b, c" into names.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string name = text.substr(start, comma - start);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    if (!name.empty()) out.push_back(name);
    start = comma + 1;
  }
  return out;
}

void print_top(const nlohmann::json& top, const std::vector<std::string>& keys) {
  for (const auto& h : top) {
    std::string line = fmt::format("  layer {} head {}", h["layer"].get<int64_t>(), h["head"].get<int64_t>());
    for (const auto& k : keys)
      if (h.contains(k)) line += fmt::format("  {} {}", k, num(h[k]));
    fmt::print("{}\n", line);
  }
}

// ---- coref ------------------------------------------------------------------------------------

Command add_coref(CLI::App* parent) {
  auto* cmd = parent->add_subcommand("coref", "Pronoun resolution: attention from a pronoun to candidate antecedents per head; WinoBias accuracy per head");
  cmd->footer(R"(
Examples:
  atlas analyze coref lily.npz --pronoun she --candidates Mom,Lucy --gold Lucy
  atlas analyze coref --model M --text "Mom told Lucy that she could have a cookie." --pronoun she --candidates Mom,Lucy
  atlas analyze coref --model M --winobias ../shared/data/bias/winobias/pro_stereotyped_type1.txt.dev --json
Words: subword tokens joined (atlas/process/words.hpp); 'she#2' is the second 'she'.)");
  auto input = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto pronoun = std::make_shared<std::string>();
  auto candidates = std::make_shared<std::string>();
  auto gold = std::make_shared<std::string>();
  auto winobias = std::make_shared<std::vector<std::string>>();
  auto limit = std::make_shared<int64_t>(0);
  auto top = std::make_shared<size_t>(10);
  auto model = std::make_shared<ModelFlags>();
  cmd->add_option("input", *input, "Attention NPZ or STORE:DOC (or --model with --text / --winobias)");
  add_model_flags(cmd, *model, false);
  cmd->add_option("--text,-t", *text, "With --model: the text");
  cmd->add_option("--pronoun", *pronoun, "The pronoun word (she, she#2)");
  cmd->add_option("--candidates", *candidates, "Candidate antecedent words, comma-separated");
  cmd->add_option("--gold", *gold, "The correct antecedent (one of the candidates): heads ranked by its margin");
  cmd->add_option("--winobias", *winobias, "With --model: WinoBias file(s) ([antecedent] ... [pronoun]); a folder: every *.dev and *.test in it");
  cmd->add_option("--limit", *limit, "WinoBias: the first N sentences of each file");
  cmd->add_option("--top", *top, "Heads listed")->capture_default_str();
  auto flags = add_report_flags(cmd, false, "Also write the report as JSON to this file");
  add_figure_flags(cmd, *flags, "a layer x head map of the WinoBias accuracy (or, for one text, of the gold's margin)", "");
  return {cmd, [=] {
    nlohmann::json report = provenance("analyze coref");
    if (!winobias->empty()) {
      ATLAS_CHECK(!model->model.empty(), InputError, "analyze coref --winobias needs --model M");
      std::vector<std::filesystem::path> files;
      for (const auto& w : *winobias) {
        if (std::filesystem::is_directory(w)) {
          std::vector<std::filesystem::path> found;
          for (const auto& e : std::filesystem::directory_iterator(w)) {
            const std::string ext = e.path().extension().string();
            if (ext == ".dev" || ext == ".test") found.push_back(e.path());
          }
          std::sort(found.begin(), found.end());
          ATLAS_CHECK(!found.empty(), InputError, "--winobias '{}': no *.dev or *.test files in the folder", w);
          files.insert(files.end(), found.begin(), found.end());
        } else {
          files.emplace_back(w);
        }
      }
      std::vector<analyze::SkippedDocument> rejected;
      std::vector<analyze::CorefExample> examples;
      for (const auto& f : files) {
        auto ex = analyze::read_winobias(f, &rejected);
        if (*limit > 0 && int64_t(ex.size()) > *limit) ex.resize(size_t(*limit));
        examples.insert(examples.end(), ex.begin(), ex.end());
      }
      ATLAS_CHECK(!examples.empty(), InputError, "--winobias: no usable sentence ({} rejected{}{})", rejected.size(),
                  rejected.empty() ? "" : ", first: ", rejected.empty() ? "" : rejected.front().error);
      std::map<std::string, size_t> by_id;
      std::vector<analyze::ModelInput> inputs;
      for (size_t i = 0; i < examples.size(); ++i) {
        by_id[examples[i].id] = i;
        inputs.push_back({examples[i].id, examples[i].text, std::nullopt});
      }
      extract::RunOptions run;
      fill_run(run, *model);
      analyze::CorefScores scores;
      analyze::SourceSummary summary = analyze::run_model_batch(run, inputs, [&](const format::AttentionData& doc, const std::string& id) {
        scores.add(doc, examples.at(by_id.at(id)));
      });
      analyze::require_documents(summary);
      for (const auto& r : rejected) summary.skipped.push_back(r);
      summary.source = fmt::format("{} WinoBias file(s)", files.size());
      report["model"] = summary.model.value("name", "");
      report["model_info"] = summary.model;
      report.update(summary.to_json());
      nlohmann::json fl = nlohmann::json::array();
      for (const auto& f : files) fl.push_back(f.string());
      report["winobias"] = fl;
      report.update(scores.to_json(*top));
      ReportFlags f = *flags;
      f.figure_metric = "accuracy";
      head_map(f, report["heads"], fmt::format("{} \u00B7 WinoBias: most attended candidate = antecedent", report["model"].get<std::string>()),
               fmt::format("accuracy per head over {} sentences (chance {:.2f}, nearest-candidate baseline {:.2f})",
                           report["examples"].get<int64_t>(), report["chance"].get<double>(), report["nearest_baseline"].get<double>()));
    } else {
      ATLAS_CHECK(!pronoun->empty() && !candidates->empty(), InputError,
                  "analyze coref: give --pronoun WORD and --candidates A,B (or --winobias FILE)");
      format::AttentionData doc;
      if (!model->model.empty()) {
        ATLAS_CHECK(!text->empty() && input->empty(), InputError, "analyze coref --model: give --text STR (not an input file)");
        extract::ExtractOptions o;
        fill_run(o, *model);
        o.text = *text;
        doc = analyze::run_model(o);
      } else {
        ATLAS_CHECK(!input->empty(), InputError, "analyze coref: give an attention file, or --model M --text STR");
        doc = format::load_attention(*input);
      }
      report["model"] = doc.model_name;
      report["model_info"] = analyze::model_json(doc);
      report["source"] = input->empty() ? "--text" : *input;
      report["text"] = doc.text;
      report.update(analyze::coref_document(doc, *pronoun, split_list(*candidates), *gold));
      if (!flags->figure.empty()) {
        ReportFlags f = *flags;
        nlohmann::json heads = report["heads"];
        const std::string shown = gold->empty() ? split_list(*candidates).front() : *gold;
        for (auto& h : heads) h["value"] = gold->empty() ? h["attention"][shown] : h["gold_margin"];
        f.figure_metric = "value";
        analyze::write_head_map(f.figure, heads, "value",
                                fmt::format("{} \u00B7 '{}' \u2192 {}", report["model"].get<std::string>(), *pronoun, shown),
                                gold->empty() ? "word-level attention per head" : "attention to the gold minus the best other candidate",
                                gold->empty() ? "attention" : "margin", f.figure_options());
      }
    }
    if (!flags->output.empty()) write_text(flags->output, report.dump(2) + "\n");
    if (flags->json) {
      fmt::print("{}\n", report.dump(2));
    } else if (report.contains("examples")) {
      fmt::print("model      {}\n", report["model"].get<std::string>());
      fmt::print("sentences  {} scored, {} skipped; chance {}, nearest-candidate baseline {}\n",
                 report["examples"].get<int64_t>(), report["skipped_count"].get<int64_t>(), num(report["chance"]),
                 num(report["nearest_baseline"]));
      fmt::print("heads whose most attended candidate is the gold antecedent most often:\n");
      print_top(report["top"], {"accuracy", "accuracy_pro", "accuracy_anti", "gold_attention", "other_attention"});
    } else {
      fmt::print("pronoun    '{}' -> {}\n", report["pronoun"].get<std::string>(), *candidates);
      if (report.contains("gold"))
        fmt::print("gold       {}: chosen by {} of {} heads\n", report["gold"].get<std::string>(),
                   report["heads_choosing_gold"].get<int64_t>(), report["heads"].size());
      for (const auto& h : report["top"]) {
        std::string att;
        for (auto it = h["attention"].begin(); it != h["attention"].end(); ++it)
          att += fmt::format("  {} {:.3f}", it.key(), it.value().get<double>());
        fmt::print("  layer {} head {}{}  -> {}\n", h["layer"].get<int64_t>(), h["head"].get<int64_t>(), att,
                   h["most_attended"].get<std::string>());
      }
    }
    return apply_gates(*cmd, *flags->fail_if, report);
  }};
}

// ---- long -------------------------------------------------------------------------------------

Command add_long(CLI::App* parent) {
  auto* cmd = parent->add_subcommand("long", "Long texts: attention mass by token distance per layer (log2 bins), proximal preference");
  cmd->footer(R"(
Examples:
  atlas analyze long store/                                     # every document of a store, streamed
  atlas analyze long --model M --input books.txt --window 512   # run long texts directly, in windows
  atlas analyze long doc.npz --local 16 --json)");
  auto input = std::make_shared<std::string>();
  auto corpus = std::make_shared<std::string>();
  auto input_format = std::make_shared<std::string>("auto");
  auto text_field = std::make_shared<std::string>("text");
  auto limit = std::make_shared<int64_t>(0);
  auto window = std::make_shared<int64_t>(0);
  auto local = std::make_shared<int64_t>(8);
  auto model = std::make_shared<ModelFlags>();
  cmd->add_option("input", *input, "Attention NPZ, store folder, or STORE:DOC");
  add_model_flags(cmd, *model, false);
  cmd->add_option("--input,-i", *corpus, "With --model: a corpus file run directly");
  cmd->add_option("--input-format", *input_format, "auto, text, jsonl, csv, tsv")->capture_default_str();
  cmd->add_option("--text-field", *text_field, "JSONL text field")->capture_default_str();
  cmd->add_option("--limit", *limit, "The first N records only");
  cmd->add_option("--window", *window, "Split longer documents into windows of N tokens");
  cmd->add_option("--local", *local, "Distance up to which a key counts as proximal")->capture_default_str();
  auto flags = add_report_flags(cmd, false, "Also write the report as JSON to this file");
  add_figure_flags(cmd, *flags, "mass by log2 distance per layer, relative to uniform", "");
  return {cmd, [=] {
    analyze::DocumentSource src;
    if (!model->model.empty()) {
      ATLAS_CHECK(!corpus->empty() && input->empty(), InputError, "analyze long --model: give --input FILE (not an attention file)");
      extract::CorpusOptions o;
      fill_run(o, *model);
      o.input.path = *corpus;
      o.input.format = corpus::parse_input_format(*input_format);
      o.input.text_field = *text_field;
      o.max_documents = *limit;
      o.window = *window;
      o.dtype = "float16";
      src.corpus = o;
    } else {
      ATLAS_CHECK(!input->empty(), InputError, "analyze long: give an attention file or store, or --model M --input FILE");
      src.spec = *input;
    }
    analyze::DistanceProfile profile(*local);
    const analyze::SourceSummary summary = analyze::for_each_document(src, [&](const format::AttentionData& doc, const std::string&) {
      profile.add(doc);
    });
    analyze::require_documents(summary);
    nlohmann::json report = provenance("analyze long");
    report["model"] = summary.model.value("name", "");
    report["model_info"] = summary.model;
    report.update(summary.to_json());
    report.update(profile.to_json());
    if (!flags->output.empty()) write_text(flags->output, report.dump(2) + "\n");
    if (!flags->figure.empty()) analyze::write_distance_figure(flags->figure, report, flags->figure_options());
    if (flags->json) {
      fmt::print("{}\n", report.dump(2));
    } else {
      fmt::print("model      {}\n", report["model"].get<std::string>());
      fmt::print("documents  {} ({} tokens, longest distance {}), {} skipped\n", report["documents"].get<int64_t>(),
                 report["tokens"].get<int64_t>(), report["max_distance"].get<int64_t>(), report["skipped_count"].get<int64_t>());
      for (const auto& s : report["skipped"]) fmt::print("  skipped  {}: {}\n", s["id"].get<std::string>(), s["error"].get<std::string>());
      std::string hdr = fmt::format("{:>5} {:>9} {:>7}", "layer", "proximal", "local");
      for (const auto& b : report["layers"][0]["bins"])
        hdr += fmt::format(" {:>7}", b["from"] == b["to"] ? fmt::format("d={}", b["from"].get<int64_t>())
                                                           : fmt::format("{}-{}", b["from"].get<int64_t>(), b["to"].get<int64_t>()));
      fmt::print("{}   (mass per bin; proximal = local mass / uniform's, d <= {})\n", hdr, *local);
      for (const auto& l : report["layers"]) {
        std::string line = fmt::format("{:>5} {:>9} {:>7}", l["layer"].get<int64_t>(), num(l["proximal_preference"], 2),
                                       num(l["local_mass"]));
        for (const auto& b : l["bins"]) line += fmt::format(" {:>7}", num(b["mass"]));
        fmt::print("{}\n", line);
      }
    }
    return apply_gates(*cmd, *flags->fail_if, report);
  }};
}

// ---- multilingual -----------------------------------------------------------------------------

Command add_multilingual(CLI::App* parent) {
  auto* cmd = parent->add_subcommand("multilingual", "Parallel sentences: head statistics per language, cross-language alignment of words to their counterparts");
  cmd->footer(R"(
Examples:
  atlas analyze multilingual --model M --input parallel.tsv            # header: en<TAB>de
  atlas analyze multilingual --model M --input p.tsv --languages en,fr --dictionary en-fr.tsv --json
Alignment: each pair is encoded as "A B"; a word of B attends to its counterpart in A (the same
string, else a dictionary translation, else the word at the same relative position).)");
  auto input = std::make_shared<std::string>();
  auto languages = std::make_shared<std::string>();
  auto dictionary = std::make_shared<std::string>();
  auto limit = std::make_shared<int64_t>(0);
  auto top = std::make_shared<size_t>(10);
  auto model = std::make_shared<ModelFlags>();
  add_model_flags(cmd, *model, true);
  cmd->add_option("--input,-i", *input, "Tab-separated parallel sentences (first line: language codes)")->required();
  cmd->add_option("--languages", *languages, "Language codes of the columns when the file has no header");
  cmd->add_option("--dictionary", *dictionary, "Word pairs 'source<TAB>target' for the counterpart heuristic");
  cmd->add_option("--limit", *limit, "The first N rows only");
  cmd->add_option("--top", *top, "Heads listed")->capture_default_str();
  auto flags = add_report_flags(cmd, false, "Also write the report as JSON to this file");
  return {cmd, [=] {
    analyze::ParallelSet set = analyze::read_parallel(*input, split_list(*languages));
    if (*limit > 0 && int64_t(set.rows.size()) > *limit) set.rows.resize(size_t(*limit));
    const analyze::Dictionary dict = dictionary->empty() ? analyze::Dictionary{} : analyze::read_dictionary(*dictionary);
    extract::RunOptions run;
    fill_run(run, *model);
    // One batch: every sentence alone (per-language statistics) and each row's first column paired
    // with every other ("A B", alignment).
    std::vector<analyze::ModelInput> inputs;
    std::map<std::string, std::pair<size_t, int64_t>> pair_of;   // id -> (target language, split)
    for (size_t r = 0; r < set.rows.size(); ++r) {
      for (size_t c = 0; c < set.languages.size(); ++c)
        inputs.push_back({fmt::format("{}:{}", set.languages[c], r + 1), set.rows[r][c], std::nullopt});
      int64_t split = 0;
      for (unsigned char ch : set.rows[r][0]) split += (ch & 0xC0) != 0x80;
      for (size_t c = 1; c < set.languages.size(); ++c) {
        const std::string id = fmt::format("{}-{}:{}", set.languages[0], set.languages[c], r + 1);
        inputs.push_back({id, set.rows[r][0] + " " + set.rows[r][c], std::nullopt});
        pair_of[id] = {c, split + 1};
      }
    }
    std::map<std::string, analyze::HeadStats> stats;
    std::map<std::string, std::optional<analyze::Lexicon>> lexicons;
    for (const auto& l : set.languages) {
      try {
        lexicons[l] = analyze::load_lexicon(l);
      } catch (const InputError&) {
        lexicons[l] = std::nullopt;   // no lexicon: function / content mass stay 0 for it
      }
    }
    std::vector<analyze::AlignmentScores> align(set.languages.size());
    const analyze::Lexicon empty_lexicon{"none", {}, {}};
    const analyze::SourceSummary summary = analyze::run_model_batch(run, inputs, [&](const format::AttentionData& doc, const std::string& id) {
      const auto p = pair_of.find(id);
      if (p != pair_of.end()) {
        align[p->second.first].add(doc, p->second.second, dict);
        return;
      }
      const std::string lang = id.substr(0, id.rfind(':'));
      const auto& lex = lexicons[lang];
      stats[lang].add(doc, analyze::classify_tokens(doc, lex ? *lex : empty_lexicon));
    });
    analyze::require_documents(summary);
    nlohmann::json report = provenance("analyze multilingual");
    report["model"] = summary.model.value("name", "");
    report["model_info"] = summary.model;
    report.update(summary.to_json());
    report["languages"] = set.languages;
    report["rows"] = set.rows.size();
    nlohmann::json per = nlohmann::json::object();
    for (auto& [lang, s] : stats) {
      nlohmann::json j = s.to_json();
      j.erase("sentence_matrix");
      j["lexicon"] = lexicons[lang] ? lexicons[lang]->path.string() : "";
      per[lang] = j;
    }
    report["per_language"] = per;
    nlohmann::json al = nlohmann::json::object();
    for (size_t c = 1; c < set.languages.size(); ++c)
      al[set.languages[0] + "-" + set.languages[c]] = align[c].to_json(*top);
    report["alignment"] = al;
    if (!flags->output.empty()) write_text(flags->output, report.dump(2) + "\n");
    if (flags->json) {
      fmt::print("{}\n", report.dump(2));
    } else {
      fmt::print("model      {}\n", report["model"].get<std::string>());
      fmt::print("rows       {} ({}), {} documents, {} skipped\n", set.rows.size(), fmt::join(set.languages, ", "),
                 report["documents"].get<int64_t>(), report["skipped_count"].get<int64_t>());
      for (auto it = per.begin(); it != per.end(); ++it) {
        double ent = 0, sink = 0;
        const auto& hs = it.value()["heads"];
        for (const auto& h : hs) {
          ent += h["entropy"].is_number() ? h["entropy"].get<double>() : 0;
          sink += h["sink_mass"].is_number() ? h["sink_mass"].get<double>() : 0;
        }
        fmt::print("{:<10} mean entropy {:.3f}, mean sink mass {:.3f} over {} heads\n", it.key(), ent / double(hs.size()),
                   sink / double(hs.size()), hs.size());
      }
      for (auto it = al.begin(); it != al.end(); ++it) {
        fmt::print("alignment {} (counterparts: {}): top heads\n", it.key(), it.value()["counterparts"].dump());
        print_top(it.value()["top"], {"alignment", "accuracy", "baseline"});
      }
    }
    return apply_gates(*cmd, *flags->fail_if, report);
  }};
}

}  // namespace

Command add_analyze(CLI::App& app) {
  auto* sub = app.add_subcommand("analyze", "Numbers about attention: head metrics, head detectors, clusters, case studies, bias audits");
  sub->require_subcommand(1);
  sub->footer(R"(
Every analyze command takes --json (the report) and --fail-if 'EXPR' (exit 3 when it holds; grammar:
docs/metrics.md, Gating). Definitions of every metric: docs/metrics.md.)");
  // One line per analyze subcommand (each returns its CLI::App and what runs it).
  const CommandList subs = {
      add_heads(sub),
      add_detect(sub),
      add_cluster(sub),
      add_coref(sub),
      add_long(sub),
      add_multilingual(sub),
      add_bias_command(*sub),   // cmd_bias.cpp
      add_attribution_command(*sub),
  };
  return {sub, [subs]() -> int {
            for (const auto& c : subs)
              if (c.app->parsed()) return c.run();
            return 2;
          }};
}

}  // namespace atlas::cli
