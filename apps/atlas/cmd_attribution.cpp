// atlas analyze attribution: which input tokens and which heads a target token's log-probability
// depends on (gradient × attention, integrated gradients, head ablation; lib/include/atlas/extract/
// attribution.hpp), compared with attention rollout and flow (atlas/process) by Spearman rank
// correlation. Definitions: docs/metrics.md "Attribution".
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <sstream>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/version.hpp"
#include "atlas/extract/attribution.hpp"
#include "atlas/extract/backend.hpp"
#include "atlas/format/meta.hpp"
#include "atlas/io/npz.hpp"
#include "atlas/process/process.hpp"
#include "atlas/process/words.hpp"
#include "commands.hpp"
#include "gating.hpp"

namespace atlas::cli {
namespace {

// Ranks with ties averaged (1-based), as scipy.stats.rankdata's default.
std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double mean_rank = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) r[order[k]] = mean_rank;
    i = j + 1;
  }
  return r;
}

// Spearman's rho: the Pearson correlation of the tie-averaged ranks (scipy.stats.spearmanr).
// Hand-written: a dozen lines, and none of the allowed libraries has rank statistics. nullopt when
// either vector is constant or shorter than 2.
std::optional<double> spearman(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2 || a.size() != b.size()) return std::nullopt;
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n, mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  if (saa <= 0 || sbb <= 0) return std::nullopt;
  return sab / std::sqrt(saa * sbb);
}

// --target WORD: the first token of the word (process/words.hpp; "she#2" the second occurrence).
int64_t resolve_word(const format::TokenArrays& t, const std::string& text, const std::string& spec) {
  process::TokenAxis axis;
  axis.tokens = t.tokens;
  for (size_t i = 0; i + 1 < t.offsets.size(); i += 2) axis.offsets.push_back({t.offsets[i], t.offsets[i + 1]});
  axis.special = t.special;
  axis.token_type_ids = t.token_type_ids;
  axis.text = text;
  const auto words = process::segment_words(axis);
  int64_t w = 0;
  try {
    w = process::find_word(words, spec);
  } catch (const InputError& e) {
    ATLAS_FAIL(InputError, "--target: {}", e.what());
  }
  return words[static_cast<size_t>(w)].tokens.front();
}

// The attention of the result as a process document (rollout and flow read it).
format::AttentionData attention_document(const extract::AttributionResult& r) {
  format::AttentionData d;
  d.source = "attribution";
  d.num_layers = r.num_layers;
  d.num_heads = r.num_heads;
  d.q = d.k = r.seq;
  d.attention = r.attention;
  for (int64_t l = 0; l < r.num_layers; ++l) d.layers.push_back(l);
  for (int64_t h = 0; h < r.num_heads; ++h) d.heads.push_back(h);
  d.input_ids = r.tokens.input_ids;
  d.tokens = r.tokens.tokens;
  d.token_labels = r.tokens.token_labels;
  d.special = r.tokens.special;
  d.causal = r.causal;
  return d;
}

// Row `query` of the last layer of a process result ([L',1,Q,Q]).
std::vector<double> last_row(const process::Result& p, int64_t query) {
  const auto& d = p.data;
  const float* m = d.matrix(d.num_layers - 1, 0) + query * d.k;
  return std::vector<double>(m, m + d.k);
}

std::string join_methods() { return "grad-attn, ig, ablation, rollout, flow, all"; }

}  // namespace

Command add_attribution_command(CLI::App& analyze) {
  auto* cmd = analyze.add_subcommand(
      "attribution", "Gradient x attention, integrated gradients and head ablation for a target token; agreement with rollout and flow");
  cmd->footer(R"(
The target is a word of the text (its first token; "she#2" the second occurrence) or a token index.
Causal LMs score log p(target | tokens before it); masked LMs mask the target and score its token.
Definitions and the JSON / NPZ layout: docs/metrics.md, "Attribution".

Examples:
  atlas analyze attribution --model examples/models/stories260K --text "Mom told Lucy that she could have a cookie" --target cookie
  atlas analyze attribution --model M --text T --target 5 --method ig,ablation --steps 50 --json
  atlas analyze attribution --model M --text T --target she -o attr.npz --fail-if 'min(delta_logp) < -1')");
  auto opts = std::make_shared<extract::AttributionOptions>();
  auto model = std::make_shared<std::string>();
  auto tokenizer = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>("cpu");
  auto threads = std::make_shared<int>(0);
  auto methods = std::make_shared<std::string>("all");
  auto json = std::make_shared<bool>(false);
  auto output = std::make_shared<std::string>();
  auto top = std::make_shared<int>(5);
  cmd->add_option("--model,-m", *model, "Model folder (as for atlas extract)")->required();
  cmd->add_option("--tokenizer", *tokenizer, "Tokenizer folder (default: the model's)");
  cmd->add_option("--text,-t", opts->text, "The input text")->required();
  cmd->add_option("--target", opts->target, "Target word of the text (WORD, WORD#2) or token index (-1: last)")->required();
  cmd->add_option("--method", *methods, "Comma-separated: " + join_methods())->capture_default_str();
  cmd->add_option("--steps", opts->steps, "Integrated gradients: Riemann midpoint steps")->capture_default_str();
  cmd->add_option("--ig-power", opts->ig_power,
                  "Integrated gradients schedule alpha = u^P (0: automatic, 1 = uniform; docs/metrics.md)")
      ->capture_default_str();
  cmd->add_flag("--ig-zero-specials", opts->ig_zero_specials,
               "Integrated gradients: zero the special tokens' embeddings in the baseline too");
  cmd->add_option("--top", *top, "Heads listed in the text report")->capture_default_str();
  cmd->add_option("--threads", *threads, "CPU threads (0: all cores)");
  cmd->add_option("--device", *device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_flag("--json", *json, "Print the report as JSON on stdout");
  cmd->add_option("--output,-o", *output, "Also write the vectors and the ablation matrix as NPZ");
  auto fail_if = add_fail_if(cmd);
  return {cmd, [=]() -> int {
    extract::AttributionOptions o = *opts;
    o.model_dir = *model;
    o.tokenizer_dir = *tokenizer;
    o.device = *device;
    o.threads = *threads;
    o.command_line = command_line();
    o.resolve_word = &resolve_word;
    bool rollout = false, flow = false;
    o.grad_attn = o.ig = o.ablation = false;
    std::stringstream ss(*methods);
    for (std::string m; std::getline(ss, m, ',');) {
      if (m == "all") {
        o.grad_attn = o.ig = o.ablation = rollout = flow = true;
      } else if (m == "grad-attn") {
        o.grad_attn = true;
      } else if (m == "ig") {
        o.ig = true;
      } else if (m == "ablation") {
        o.ablation = true;
      } else if (m == "rollout") {
        rollout = true;
      } else if (m == "flow") {
        flow = true;
      } else {
        ATLAS_FAIL(InputError, "--method: unknown method '{}' (expected {})", m, join_methods());
      }
    }
    if (!output->empty()) check_output_path(*output);
    const extract::Backend& backend = extract::torch_backend();
    ATLAS_CHECK(backend.run_attribution != nullptr, Error, "the model runtime has no attribution entry");
    const extract::AttributionResult r = backend.run_attribution(o);
    const int64_t T = r.seq, L = r.num_layers, H = r.num_heads;

    // Rollout and flow of the query row (Abnar & Zuidema 2020), from the extracted attention.
    std::vector<double> rollout_row, flow_row;
    const format::AttentionData doc = attention_document(r);
    if (rollout) rollout_row = last_row(process::rollout(doc, true), r.query);
    if (flow) {
      process::FlowOptions fo;
      fo.threads = o.threads;
      flow_row = last_row(process::flow(doc, fo), r.query);
    }

    nlohmann::json report = {{"command", "analyze attribution"}, {"tool", "atlas"}, {"version", version()},
                             {"git_revision", git_revision()}, {"command_line", command_line()},
                             {"created", format::utc_now_iso()}};
    report["model"] = std::filesystem::path(*model).filename().string().empty()
                          ? std::filesystem::path(*model).parent_path().filename().string()
                          : std::filesystem::path(*model).filename().string();
    report["model_type"] = r.model_type;
    report["model_class"] = r.model_class;
    report["checkpoint_sha256"] = r.checkpoint_sha256;
    report["objective"] = r.causal ? "causal" : "masked";
    report["text"] = o.text;
    report["tokens"] = r.tokens.tokens;
    report["token_labels"] = r.tokens.token_labels;
    report["target"] = {{"spec", o.target}, {"index", r.target}, {"token", r.target_token},
                        {"id", r.target_id}, {"query", r.query}};
    if (!r.causal) report["target"]["mask_id"] = r.mask_id;
    report["logp"] = r.logp;
    report["seconds"] = r.seconds;

    // Per-token relevance, one record per position.
    std::vector<std::pair<std::string, const std::vector<double>*>> vectors;
    if (r.has_grad_attn) vectors.push_back({"grad_attn", &r.grad_attn});
    if (r.has_ig) vectors.push_back({"ig", &r.ig});
    if (rollout) vectors.push_back({"rollout", &rollout_row});
    if (flow) vectors.push_back({"flow", &flow_row});
    nlohmann::json rel = nlohmann::json::array();
    for (int64_t j = 0; j < T; ++j) {
      nlohmann::json e = {{"position", j}, {"token", r.tokens.tokens[static_cast<size_t>(j)]},
                          {"label", r.tokens.token_labels[static_cast<size_t>(j)]}};
      for (const auto& [name, v] : vectors) e[name] = (*v)[static_cast<size_t>(j)];
      rel.push_back(e);
    }
    report["relevance"] = rel;
    if (r.has_grad_attn) {
      nlohmann::json layers = nlohmann::json::array();
      for (int64_t l = 0; l < L; ++l)
        layers.push_back(std::vector<double>(r.grad_attn_layers.begin() + l * T, r.grad_attn_layers.begin() + (l + 1) * T));
      report["grad_attn_layers"] = layers;
    }
    if (r.has_ig) {
      const double delta = r.logp - r.logp_baseline;
      report["ig"] = {{"steps", r.steps}, {"power", r.ig_power},
                      {"baseline", o.ig_zero_specials ? "zero embedding" : "zero embedding, special tokens kept"}, {"sum", r.ig_sum},
                      {"logp_baseline", r.logp_baseline}, {"delta_logp", delta},
                      {"completeness_error", std::abs(r.ig_sum - delta)}};
    }
    if (r.has_ablation || r.has_grad_attn) {
      nlohmann::json heads = nlohmann::json::array();
      for (int64_t l = 0; l < L; ++l)
        for (int64_t h = 0; h < H; ++h) {
          nlohmann::json e = {{"layer", l}, {"head", h}};
          const size_t k = static_cast<size_t>(l * H + h);
          if (r.has_ablation) {
            e["ablated_logp"] = r.ablation_logp[k];
            e["delta_logp"] = r.ablation_delta[k];
          }
          if (r.has_grad_attn) e["grad_attn_sum"] = r.grad_attn_head_sums[k];
          heads.push_back(e);
        }
      report["heads"] = heads;
    }
    // Agreement: Spearman over the positions the query can see (0..query for causal LMs).
    const size_t used = static_cast<size_t>(r.causal ? r.query + 1 : T);
    nlohmann::json names = nlohmann::json::array(), matrix = nlohmann::json::array();
    for (const auto& [a, va] : vectors) {
      names.push_back(a);
      nlohmann::json row = nlohmann::json::array();
      for (const auto& [b, vb] : vectors) {
        const auto rho = spearman(std::vector<double>(va->begin(), va->begin() + used),
                                  std::vector<double>(vb->begin(), vb->begin() + used));
        row.push_back(rho ? nlohmann::json(*rho) : nlohmann::json());
      }
      matrix.push_back(row);
    }
    report["agreement"] = {{"methods", names}, {"positions", used}, {"spearman", matrix}};

    if (!output->empty()) {
      {  // NpzWriter writes a temporary file and renames it on close()
        io::NpzWriter npz(*output);
        npz.add("tokens", io::NdArray::from_strings({T}, r.tokens.tokens));
        npz.add("input_ids", io::NdArray::from<int64_t>({T}, r.tokens.input_ids));
        for (const auto& [name, v] : vectors) npz.add(name, io::NdArray::from<double>({T}, *v));
        if (r.has_grad_attn) {
          npz.add("grad_attn_layers", io::NdArray::from<double>({L, T}, r.grad_attn_layers));
          npz.add("grad_attn_head_sums", io::NdArray::from<double>({L, H}, r.grad_attn_head_sums));
        }
        if (r.has_ablation) {
          npz.add("ablation_delta", io::NdArray::from<double>({L, H}, r.ablation_delta));
          npz.add("ablation_logp", io::NdArray::from<double>({L, H}, r.ablation_logp));
        }
        const size_t nm = vectors.size();
        std::vector<double> rho(nm * nm, std::nan(""));
        for (size_t i = 0; i < nm; ++i)
          for (size_t j = 0; j < nm; ++j)
            if (matrix[i][j].is_number()) rho[i * nm + j] = matrix[i][j].get<double>();
        if (nm > 0) npz.add("spearman", io::NdArray::from<double>({int64_t(nm), int64_t(nm)}, rho));
        nlohmann::json meta = report;
        meta.erase("relevance");
        meta.erase("heads");
        meta.erase("grad_attn_layers");
        meta["format"] = "atlas.attribution";
        meta["format_version"] = 1;
        npz.add("meta", io::NdArray::scalar_string(meta.dump()));
        npz.close();
      }
    }

    if (*json) {
      fmt::print("{}\n", report.dump(2));
    } else {
      fmt::print("model      {} ({}), {} objective\n", report["model"].get<std::string>(), r.model_type,
                 report["objective"].get<std::string>());
      fmt::print("target     '{}' (token {}, id {}), scored at position {}: log p = {:.4f}\n", r.target_token, r.target,
                 r.target_id, r.query, r.logp);
      fmt::print("{:>4} {:<16}", "pos", "token");
      for (const auto& [name, v] : vectors) fmt::print(" {:>10}", name);
      fmt::print("\n");
      for (int64_t j = 0; j < T; ++j) {
        fmt::print("{:>4} {:<16}", j, r.tokens.token_labels[static_cast<size_t>(j)]);
        for (const auto& [name, v] : vectors) fmt::print(" {:>10.4f}", (*v)[static_cast<size_t>(j)]);
        fmt::print("\n");
      }
      if (r.has_ig)
        fmt::print("ig         {} steps: sum {:.5f}, logp - logp(zero embedding) {:.5f}, completeness error {:.2e}\n", r.steps,
                   r.ig_sum, r.logp - r.logp_baseline, std::abs(r.ig_sum - (r.logp - r.logp_baseline)));
      if (r.has_ig && std::abs(r.ig_sum - (r.logp - r.logp_baseline)) > 0.05 * std::max(1.0, std::abs(r.logp - r.logp_baseline)))
        fmt::print("           the completeness error is large: raise --steps (docs/metrics.md, ig)\n");
      if (r.has_ablation) {
        std::vector<size_t> order(static_cast<size_t>(L * H));
        std::iota(order.begin(), order.end(), size_t{0});
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return r.ablation_delta[a] < r.ablation_delta[b]; });
        fmt::print("ablation   heads whose removal lowers log p most:\n");
        for (size_t i = 0; i < order.size() && static_cast<int>(i) < *top; ++i)
          fmt::print("  layer {} head {}: delta log p {:+.4f}\n", order[i] / static_cast<size_t>(H),
                     order[i] % static_cast<size_t>(H), r.ablation_delta[order[i]]);
      }
      if (vectors.size() > 1) {
        fmt::print("spearman   over positions 0..{}\n{:>10}", used - 1, "");
        for (const auto& n : names) fmt::print(" {:>10}", n.get<std::string>());
        fmt::print("\n");
        for (size_t i = 0; i < vectors.size(); ++i) {
          fmt::print("{:>10}", names[i].get<std::string>());
          for (const auto& v : matrix[i]) fmt::print(" {:>10}", v.is_number() ? fmt::format("{:.3f}", v.get<double>()) : "-");
          fmt::print("\n");
        }
      }
    }
    return apply_gates(*cmd, *fail_if, report);
  }};
}

}  // namespace atlas::cli
