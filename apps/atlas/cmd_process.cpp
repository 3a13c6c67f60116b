#include <fmt/format.h>

#include "atlas/core/error.hpp"
#include "atlas/format/store.hpp"
#include "atlas/process/process.hpp"
#include "commands.hpp"

namespace atlas::cli {
namespace {

// Input and output of every attention -> attention operation.
struct IoArgs {
  std::string input, output, kind;
};

std::shared_ptr<IoArgs> add_io(CLI::App* op) {
  auto a = std::make_shared<IoArgs>();
  op->add_option("input", a->input, "Attention NPZ, STORE:DOC, or a store folder (every document; -o is then a store)")
      ->required();
  op->add_option("--output,-o", a->output, "Output .npz (or store folder)")->required();
  op->add_option("--kind", a->kind, "Attention member: attention (default) or encoder");
  return a;
}

bool input_is_store(const std::string& spec) {
  std::error_code ec;
  return std::filesystem::is_directory(spec, ec) && format::is_store(spec) &&
         format::StoreReader(spec).entries().size() != 1;
}

int run_op(const IoArgs& a, const std::function<process::Result(const format::AttentionData&)>& op,
           const std::string& name) {
  if (input_is_store(a.input)) {
    process::StoreSummary s =
        process::process_store(a.input, a.output, a.kind, op, {{"op", name}}, command_line());
    fmt::print("{:<10} {} documents of {}", name, s.documents, a.input);
    if (s.failed) fmt::print(" ({} failed in the input, kept as failed)", s.failed);
    fmt::print("\n");
    for (size_t i = 0; i < s.failures.size() && i < 10; ++i) fmt::print("  failed   {}\n", s.failures[i]);
    fmt::print("wrote      {}\n", a.output);
    return 0;
  }
  process::Result r = op(process::load(a.input, a.kind));
  process::write_result(r, a.output, command_line());
  const auto& d = r.data;
  fmt::print("{:<10} {} -> [{}, {}, {}, {}]{}\n", name, a.input, d.num_layers, d.num_heads, d.q, d.k,
             r.topk ? fmt::format(" top-{} sparse", r.topk) : "");
  fmt::print("wrote      {}\n", a.output);
  return 0;
}

}  // namespace

Command add_process(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "process", "Attention in, attention out: words, aggregate, rollout, flow, diff, slice, topk, value-norm; cat/merge/list stores");
  sub->require_subcommand(1);
  sub->footer(R"(
Every operation reads an attention NPZ, STORE:DOC, or a whole store, and writes the same attention
layout (docs/formats/attention-npz.md), so visualize/analyze read the result. A collapsed axis keeps
size 1 (its index stored as -1); meta.process lists every step with its parameters, appended.
Definitions and sources: docs/metrics.md ("process").

Examples:
  atlas process words     story.npz -o words.npz                 # subword -> word attention (Clark et al. 2019)
  atlas process aggregate story.npz -o mean.npz --over heads --how mean
  atlas process rollout   story.npz -o rollout.npz               # Abnar & Zuidema 2020; --no-residual
  atlas process flow      story.npz -o flow.npz --layers -1      # exact max-flow, every output x input pair
  atlas process diff      she.npz he.npz -o diff.npz --words     # A - B, aligned by words
  atlas process slice     story.npz -o part.npz --layers 0-2 --heads 1 --tokens 1:10
  atlas process topk      story.npz -o sparse.npz 8              # keep the 8 largest per row, stored sparse
  atlas process value-norm story.npz -o norm.npz                 # needs `atlas extract --value-norms`
  atlas process rollout   store/ -o rollout-store/               # every document of a store
  atlas process cat store/ 17 -o doc17.npz          # the same NPZ `atlas extract --text` writes
  atlas process merge part-0 part-1 part-2 -o store  # stores of one sharded run (--shard I/N)
  atlas process list store/                          # documents, status, tokens)");

  auto* aggregate = sub->add_subcommand("aggregate", "Mean or max over heads, layers or both (the axis keeps size 1)");
  aggregate->footer("\nExample:\n  atlas process aggregate story.npz -o heads-mean.npz --over heads --how mean");
  auto agg_io = add_io(aggregate);
  auto agg_over = std::make_shared<std::string>("heads");
  auto agg_how = std::make_shared<std::string>("mean");
  aggregate->add_option("--over", *agg_over, "heads | layers | both")->capture_default_str();
  aggregate->add_option("--how", *agg_how, "mean | max")->capture_default_str();

  auto* words = sub->add_subcommand("words", "Subword -> word attention: to a word summed, from a word averaged (rows sum to 1)");
  words->footer(
      "\nWords split at whitespace, punctuation stays with its word, special tokens are their own words,\n"
      "CJK / Thai characters one word each (byte-fallback pieces join their character). The output's\n"
      "tokens are the words; `word_of_token` maps each original token to its word.\n\n"
      "Example:\n  atlas process words story.npz -o story-words.npz\n"
      "  atlas visualize heatmap story-words.npz -o words.png --layer 2 --head mean");
  auto words_io = add_io(words);

  auto* rollout = sub->add_subcommand("rollout", "Attention rollout (Abnar & Zuidema 2020): attention[l] = rollout through layer l");
  rollout->footer("\nPer layer: head mean, 0.5*A + 0.5*I, rows re-normalised; multiplied from the first layer up.\n\n"
                  "Example:\n  atlas process rollout story.npz -o rollout.npz\n"
                  "  atlas visualize heatmap rollout.npz -o rollout.png --layer -1 --head all");
  auto roll_io = add_io(rollout);
  auto roll_nores = std::make_shared<bool>(false);
  rollout->add_flag("--no-residual", *roll_nores, "Do not add the identity (raw head-mean products)");

  auto* flow = sub->add_subcommand("flow", "Attention flow (Abnar & Zuidema 2020): exact max-flow from each output to each input token");
  flow->footer("\nCapacities are rollout's matrices (head mean, 0.5*A + 0.5*I, re-normalised). Dinic's algorithm,\n"
               "parallel over output positions.\n\nExample:\n"
               "  atlas process flow story.npz -o flow.npz --layers -1 --threads 2");
  auto flow_io = add_io(flow);
  auto flow_opts = std::make_shared<process::FlowOptions>();
  auto flow_nores = std::make_shared<bool>(false);
  flow->add_option("--layers", flow_opts->layers, "Output layers (model indices; -1 = the last stored)")->capture_default_str();
  flow->add_flag("--no-residual", *flow_nores, "Capacities without the identity");
  flow->add_option("--threads", flow_opts->threads, "Worker threads (0: all cores)");

  auto* diff = sub->add_subcommand("diff", "A - B of two documents with the same tokens (or the same words with --words)");
  diff->footer("\nExample:\n  atlas process diff she.npz he.npz -o she-minus-he.npz --words");
  auto diff_a = std::make_shared<std::string>();
  auto diff_b = std::make_shared<std::string>();
  auto diff_out = std::make_shared<std::string>();
  auto diff_kind = std::make_shared<std::string>();
  auto diff_words = std::make_shared<bool>(false);
  diff->add_option("a", *diff_a, "Attention NPZ or STORE:DOC")->required();
  diff->add_option("b", *diff_b, "Attention NPZ or STORE:DOC")->required();
  diff->add_option("--output,-o", *diff_out, "Output .npz")->required();
  diff->add_option("--kind", *diff_kind, "Attention member: attention (default) or encoder");
  diff->add_flag("--words", *diff_words, "Compare at word level (texts that tokenize differently, same words)");

  auto* slice = sub->add_subcommand("slice", "Keep some layers, heads and a token range");
  slice->footer("\nExample:\n  atlas process slice story.npz -o part.npz --layers 0,-1 --heads 0-3 --tokens 1:-1");
  auto slice_io = add_io(slice);
  auto slice_opts = std::make_shared<process::SliceOptions>();
  slice->add_option("--layers", slice_opts->layers, "Stored layers to keep: all, 3, 0,2-4, -1")->capture_default_str();
  slice->add_option("--heads", slice_opts->heads, "Stored heads to keep")->capture_default_str();
  slice->add_option("--tokens", slice_opts->tokens, "Token range a:b (Python slice; queries and keys)");

  auto* topk = sub->add_subcommand("topk", "Keep the K largest entries of each row, stored sparse");
  topk->footer("\nExample:\n  atlas process topk story.npz 8 -o sparse.npz   # attention_topk_* keys, read back densely");
  auto topk_io = add_io(topk);
  auto topk_k = std::make_shared<int64_t>(0);
  topk->add_option("k", *topk_k, "Entries kept per row")->required();

  auto* vnorm = sub->add_subcommand("value-norm", "Norm-based attention ||alpha f(x)|| (Kobayashi et al. 2020)");
  vnorm->footer("\nNeeds the per-head value-vector norms `atlas extract --value-norms` stores (`value_norms`).\n\n"
                "Example:\n  atlas extract --model M --text \"...\" --value-norms -o story.npz\n"
                "  atlas process value-norm story.npz -o norm.npz --normalize");
  auto vn_io = add_io(vnorm);
  auto vn_normalize = std::make_shared<bool>(false);
  vnorm->add_flag("--normalize", *vn_normalize, "Re-scale each row to sum to 1");

  auto* cat = sub->add_subcommand("cat", "Write one document of a store as a standalone attention NPZ");
  auto cat_store = std::make_shared<std::string>();
  auto cat_doc = std::make_shared<std::string>();
  auto cat_out = std::make_shared<std::string>();
  cat->add_option("store", *cat_store, "Store folder")->required();
  cat->add_option("document", *cat_doc, "Document id (see manifest.jsonl or `atlas process list`)")->required();
  cat->add_option("--output,-o", *cat_out, "Output .npz")->required();

  auto* merge = sub->add_subcommand("merge", "Merge stores of one run (e.g. the parts of --shard I/N) into one store");
  auto merge_in = std::make_shared<std::vector<std::string>>();
  auto merge_out = std::make_shared<std::string>();
  merge->add_option("stores", *merge_in, "Input store folders")->required();
  merge->add_option("--output,-o", *merge_out, "Output store folder (must not exist, or be empty)")->required();

  auto* list = sub->add_subcommand("list", "List a store's documents: id, status, tokens, shard");
  auto list_store = std::make_shared<std::string>();
  list->add_option("store", *list_store, "Store folder")->required();

  return {sub, [=] {
            using process::Result;
            using format::AttentionData;
            if (aggregate->parsed()) {
              auto over = process::parse_over(*agg_over);
              auto how = process::parse_how(*agg_how);
              return run_op(*agg_io, [=](const AttentionData& d) { return process::aggregate(d, over, how); }, "aggregate");
            }
            if (words->parsed()) return run_op(*words_io, [](const AttentionData& d) { return process::words(d); }, "words");
            if (rollout->parsed()) {
              bool residual = !*roll_nores;
              return run_op(*roll_io, [=](const AttentionData& d) { return process::rollout(d, residual); }, "rollout");
            }
            if (flow->parsed()) {
              process::FlowOptions o = *flow_opts;
              o.residual = !*flow_nores;
              return run_op(*flow_io, [=](const AttentionData& d) { return process::flow(d, o); }, "flow");
            }
            if (slice->parsed()) {
              process::SliceOptions o = *slice_opts;
              return run_op(*slice_io, [=](const AttentionData& d) { return process::slice(d, o); }, "slice");
            }
            if (topk->parsed()) {
              int64_t k = *topk_k;
              return run_op(*topk_io, [=](const AttentionData& d) { return process::topk(d, k); }, "topk");
            }
            if (vnorm->parsed()) {
              bool normalize = *vn_normalize;
              ATLAS_CHECK(!input_is_store(vn_io->input), InputError,
                          "value-norm reads one NPZ; for a store, `atlas process cat STORE DOC -o doc.npz` first");
              std::string spec = vn_io->input;
              return run_op(*vn_io, [=](const AttentionData& d) { return process::value_norm(d, spec, normalize); },
                            "value-norm");
            }
            if (diff->parsed()) {
              Result r = process::diff(process::load(*diff_a, *diff_kind), process::load(*diff_b, *diff_kind), *diff_words);
              process::write_result(r, *diff_out, command_line());
              fmt::print("diff       {} - {} -> [{}, {}, {}, {}]{}\n", *diff_a, *diff_b, r.data.num_layers,
                         r.data.num_heads, r.data.q, r.data.k, *diff_words ? " (words)" : "");
              fmt::print("wrote      {}\n", *diff_out);
              return 0;
            }
            if (cat->parsed()) {
              format::StoreReader store(*cat_store);
              format::cat_document(store, *cat_doc, *cat_out);
              fmt::print("wrote      {} (document '{}' of {})\n", *cat_out, *cat_doc, *cat_store);
              return 0;
            }
            if (merge->parsed()) {
              std::vector<std::filesystem::path> in(merge_in->begin(), merge_in->end());
              format::MergeSummary m = format::merge_stores(in, *merge_out);
              fmt::print("merged     {} stores: {} documents ({} failed) in {} shard files\n", m.stores, m.documents,
                         m.failed, m.shards);
              fmt::print("wrote      {}\n", *merge_out);
              return 0;
            }
            format::StoreReader store(*list_store);
            fmt::print("{:<24} {:<7} {:>7}  {}\n", "id", "status", "tokens", "shard / error");
            for (const auto& e : store.entries())
              fmt::print("{:<24} {:<7} {:>7}  {}\n", e.id, e.status, e.tokens, e.ok() ? e.shard : e.error);
            fmt::print("{} documents: {} ok, {} failed\n", store.entries().size(), store.ok_count(), store.failed_count());
            return 0;
          }};
}

}  // namespace atlas::cli
