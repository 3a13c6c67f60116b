// `atlas analyze bias`: bias audits (lib/include/atlas/bias/, docs/bias.md). Thin: flags -> AuditOptions,
// the model through the runtime's scorer, then the report writers and the --fail-if gates.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "atlas/bias/audit.hpp"
#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/progress.hpp"
#include "atlas/extract/backend.hpp"
#include "commands.hpp"
#include "gating.hpp"

namespace atlas::cli {
namespace {

void print_summary(const nlohmann::json& rep, std::FILE* out) {
  auto f = [](const nlohmann::json& v) { return v.is_null() ? std::string("n/a") : fmt::format("{:.2f}", v.get<double>()); };
  if (rep.contains("crows_pairs")) {
    const auto& c = rep["crows_pairs"];
    const auto& o = c["overall"];
    fmt::print(out, "crows-pairs ({}): metric {}  stereotype {}  anti-stereotype {}  neutral {}  (n {})\n",
               c["method"].get<std::string>(), f(o["metric"]), f(o["stereotype"]), f(o["anti_stereotype"]),
               f(o["neutral"]), o["n"].get<int64_t>());
    for (const auto& [type, s] : c["per_bias_type"].items())
      fmt::print(out, "  {:<20} metric {:>6}  (n {})\n", type, f(s["metric"]), s["n"].get<int64_t>());
  }
  if (rep.contains("stereoset")) {
    const auto& s = rep["stereoset"];
    const auto& o = s["overall"];
    fmt::print(out, "stereoset ({}): SS {}  LMS {}  ICAT {}  (n {}{})\n", s["format"].get<std::string>(), f(o["ss"]),
               f(o["lms"]), f(o["icat"]), o["count"].get<int64_t>(),
               s["per_target_averaging"].get<bool>() ? "" : "; no target terms: pooled per domain");
    for (const auto& [d, v] : s["per_domain"].items())
      fmt::print(out, "  {:<12} SS {:>6}  LMS {:>6}  ICAT {:>6}  (n {})\n", d, f(v["ss"]), f(v["lms"]), f(v["icat"]),
                 v["count"].get<int64_t>());
  }
  if (rep.contains("winobias")) {
    const auto& w = rep["winobias"];
    for (const char* k : {"overall", "type1", "type2"})
      fmt::print(out, "winobias {:<8} pro {}  anti {}  gap {}  (n {} + {})\n", k, f(w[k]["pro"]), f(w[k]["anti"]),
                 f(w[k]["gap"]), w[k]["n_pro"].get<int64_t>(), w[k]["n_anti"].get<int64_t>());
  }
  if (rep.contains("winogender")) {
    const auto& w = rep["winogender"];
    fmt::print(out, "winogender: spearman vs BLS {}  vs Bergsma {}  ({} occupations)\n", f(w["spearman_bls"]),
               f(w["spearman_bergsma"]), w["occupations"].get<int64_t>());
  }
  if (rep.contains("suite")) {
    const auto& s = rep["suite"];
    fmt::print(out, "suite {}: {} pairs, log-prob gap {} [{}, {}], {} of {} heads significant (BH q < 0.05)\n",
               s["name"].get<std::string>(), s["pairs"].get<int64_t>(), f(s["logprob_gap"]["mean"]),
               f(s["logprob_gap"]["ci_low"]), f(s["logprob_gap"]["ci_high"]),
               s["attention"]["significant_heads"].get<int64_t>(), s["attention"]["heads_tested"].get<int64_t>());
    for (const auto& h : s["attention"]["top_heads"])
      fmt::print(out, "  layer {} head {}: difference {:+.4f} [{:+.4f}, {:+.4f}]  q {:.3g}\n", h["layer"].get<int64_t>(),
                 h["head"].get<int64_t>(), h["mean_difference"].get<double>(), h["ci_low"].get<double>(),
                 h["ci_high"].get<double>(), h["q_value"].get<double>());
  }
}

void write_json(const std::string& path, const nlohmann::json& j) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    ATLAS_CHECK(f, IoError, "cannot write '{}'", path);
    const std::string s = j.dump(2) + "\n";
    const bool ok = std::fwrite(s.data(), 1, s.size(), f) == s.size();
    ATLAS_CHECK(std::fclose(f) == 0 && ok, IoError, "cannot write '{}'", path);
  });
}

}  // namespace

Command add_bias_command(CLI::App& analyze) {
  auto* sub = analyze.add_subcommand(
      "bias", "Bias audit of a language model: CrowS-Pairs, StereoSet, WinoBias, Winogender, template suites");
  sub->footer(R"(
Each measure is computed as its reference implementation does (docs/bias.md names them and says how).
Causal LMs score with log-probabilities from the position before each token; masked LMs with
pseudo-log-likelihood (one [MASK] at a time). The datasets are not shipped with atlas:
scripts/get-bias-data.sh fetches the public files and checks their sha256.

Examples:
  atlas analyze bias -m DIR --crows-pairs crows_pairs_anonymized.csv --crows-method nangia --json
  atlas analyze bias -m DIR --stereoset dev.json --winobias wino/ --winogender winogender/
  atlas analyze bias -m DIR --suite configs/bias/gender-occupation.yaml --report audit.pdf --seed 1
  atlas analyze bias -m DIR --crows-pairs FILE --fail-if 'crows_pairs.overall > 60'
Exit codes: 0 ok, 1 error, 2 usage, 3 a --fail-if threshold (or a suite threshold) was crossed.)");
  auto run = std::make_shared<extract::RunOptions>();
  auto o = std::make_shared<bias::AuditOptions>();
  auto json_out = std::make_shared<bool>(false);
  auto output = std::make_shared<std::string>();
  auto csv = std::make_shared<std::string>();
  auto per_pair = std::make_shared<std::string>();
  auto report = std::make_shared<std::string>();
  auto style = std::make_shared<std::string>("paper");
  auto progress = std::make_shared<std::string>("auto");
  std::string crows, stereoset, winobias, winogender, suite;
  auto paths = std::make_shared<std::map<std::string, std::string>>();

  sub->add_option("--model,-m", run->model_dir, "Model folder (a *ForCausalLM or *ForMaskedLM checkpoint)")->required();
  sub->add_option("--tokenizer", run->tokenizer_dir, "Folder whose tokenizer to use instead of the model folder's");
  sub->add_option("--adapter", run->adapters, "PEFT LoRA adapter folder merged into the weights (repeatable)");
  const std::string data = "Datasets and suites";
  sub->add_option("--crows-pairs", (*paths)["crows"], "CrowS-Pairs CSV (crows_pairs_anonymized.csv)")->group(data);
  sub->add_option("--crows-method", o->crows_method,
                  "nangia (metric.py: unmodified tokens; masked LMs, their default) or biasbench (bias-bench "
                  "crows.py; the only method for causal LMs)")
      ->check(CLI::IsMember({"nangia", "biasbench"}))
      ->group(data);
  sub->add_option("--stereoset", (*paths)["stereoset"],
                  "StereoSet intrasentence: the official dev.json, or the processed TSV")->group(data);
  sub->add_option("--winobias", (*paths)["winobias"], "WinoBias folder (pro/anti_stereotyped_type*.txt.*)")->group(data);
  sub->add_option("--winogender", (*paths)["winogender"],
                  "Winogender folder (all_sentences.tsv, occupations-stats.tsv)")->group(data);
  sub->add_option("--suite", (*paths)["suite"], "Template suite YAML (configs/bias/*.yaml; format: docs/bias.md)")
      ->group(data);
  sub->add_option("--limit", o->limit, "Only the first N examples of each dataset (a quick look)")->group(data);
  const std::string stats = "Statistics";
  sub->add_option("--seed", o->seed, "Seed of the bootstrap and permutation draws")->capture_default_str()->group(stats);
  sub->add_option("--bootstrap", o->bootstrap, "Bootstrap resamples for 95% CIs")->capture_default_str()->group(stats);
  sub->add_option("--permutations", o->permutations, "Sign-flip permutations for p-values")
      ->capture_default_str()
      ->group(stats);
  const std::string outg = "Output";
  sub->add_flag("--json", *json_out, "Print the report as JSON on stdout (schema: docs/bias.md)")->group(outg);
  sub->add_option("--output,-o", *output, "Write the JSON report to FILE")->group(outg);
  sub->add_option("--csv", *csv, "Write the reported numbers as CSV (measure,field,value)")->group(outg);
  sub->add_option("--per-pair", *per_pair,
                  "CrowS-Pairs: write index,bias_type,direction,sent_more_score,sent_less_score,counted")
      ->group(outg);
  sub->add_option("--report", *report, "Write a multi-page PDF report")->group(outg);
  sub->add_option("--style", *style, "Figure style of the PDF (paper, slides, dark or a .yaml)")
      ->capture_default_str()
      ->group(outg);
  sub->add_option("--progress", *progress, "auto, bar, plain, none")->capture_default_str()->group(outg);
  auto fail_if = add_fail_if(sub);
  const std::string compute = "Compute";
  sub->add_option("--batch-size", o->batch_size, "Sequences per forward pass")->capture_default_str()->group(compute);
  sub->add_option("--threads", run->threads, "CPU threads (0: all cores)")->capture_default_str()->group(compute);
  sub->add_option("--device", run->device, "cpu, cuda or cuda:N")->capture_default_str()->group(compute);

  return {sub, [=] {
            ATLAS_CHECK(o->batch_size > 0, InputError, "--batch-size must be positive, got {}", o->batch_size);
            ATLAS_CHECK(o->limit >= 0, InputError, "--limit must not be negative, got {}", o->limit);
            ATLAS_CHECK(o->bootstrap > 0 && o->permutations > 0, InputError,
                        "--bootstrap and --permutations must be positive");
            bias::AuditOptions opts = *o;
            opts.crows_pairs = (*paths)["crows"];
            opts.stereoset = (*paths)["stereoset"];
            opts.winobias = (*paths)["winobias"];
            opts.winogender = (*paths)["winogender"];
            opts.suite = (*paths)["suite"];
            opts.command_line = command_line();
            for (const std::string* out : {output.get(), csv.get(), per_pair.get(), report.get()})
              if (!out->empty()) check_output_path(*out);
            // Scoring runs thousands of small forward passes; with libgomp's default spin-waiting between
            // them, 2 threads on a loaded machine ran 10x slower than 1 (measured: 12.4 s vs 1.1 s for
            // 300 CrowS-Pairs on stories260K). Set before the runtime (and so libgomp) is loaded; a
            // user's own setting wins.
            setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
            const auto t0 = std::chrono::steady_clock::now();
            std::unique_ptr<extract::Scorer> scorer = extract::torch_backend().open_scorer(*run);
            const auto t1 = std::chrono::steady_clock::now();

            ProgressOptions po;
            po.quiet = *progress == "none";
            po.force_mode = *progress == "bar" ? 1 : *progress == "plain" ? 0 : -1;
            std::unique_ptr<Progress> bar;
            std::string current;
            opts.progress = [&](const std::string& measure, int64_t done, int64_t total) {
              if (measure != current || !bar) {
                if (bar) bar->finish();
                po.label = measure;
                bar = std::make_unique<Progress>(total, po);
                current = measure;
              }
              bar->update(done, 0, 0);
              if (done >= total) bar->finish();
            };
            bias::AuditResult res = bias::run_audit(*scorer, opts);
            bar.reset();
            const auto t2 = std::chrono::steady_clock::now();

            if (!output->empty()) write_json(*output, res.report);
            if (!csv->empty()) bias::write_summary_csv(res, *csv);
            if (!per_pair->empty()) bias::write_per_pair_csv(res, *per_pair);
            if (!report->empty()) bias::write_pdf_report(res, *report, *style);
            if (*json_out) {
              fmt::print("{}\n", res.report.dump(2));
            } else {
              print_summary(res.report, stdout);
              fmt::print("model {} ({}), load {:.2f} s, scoring {:.2f} s, {} threads\n",
                         res.report["model"]["model_class"].get<std::string>(),
                         res.report["model"]["kind"].get<std::string>(),
                         std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count(),
                         scorer->info().threads);
            }
            for (const std::string* out : {output.get(), csv.get(), per_pair.get(), report.get()})
              if (!out->empty()) fmt::print(stderr, "atlas: wrote {}\n", *out);
            // Thresholds of the suite, then the command line's; a path naming a summary object means
            // its "metric" (crows_pairs.overall -> crows_pairs.overall.metric).
            std::vector<std::string> gates;
            if (res.report.contains("suite"))
              for (const auto& t : res.report["suite"]["thresholds"]) gates.push_back(t.get<std::string>());
            gates.insert(gates.end(), fail_if->begin(), fail_if->end());
            for (auto& g : gates) g = bias::complete_metric_paths(g, res.report);
            return apply_gates(*sub, gates, res.report);
          }};
}

}  // namespace atlas::cli
