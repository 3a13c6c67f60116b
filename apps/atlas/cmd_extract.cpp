#include <fmt/format.h>

#include "atlas/extract/backend.hpp"
#include "atlas/extract/extract.hpp"
#include "commands.hpp"

namespace atlas::cli {

Command add_extract(CLI::App& app) {
  auto* sub = app.add_subcommand("extract", "Run a Hugging Face checkpoint on a text and save its attention as NPZ");
  sub->footer(R"(
The output holds attention [layers, heads, q, k] plus tokens, offsets and provenance; its layout is
documented in docs/formats/attention-npz.md and numpy.load() reads it.

Examples:
  atlas extract --model examples/models/stories260K --text "Lily went to the park." -o lily.npz
  atlas extract --model DIR --ids 1,450,2 --layers 0,2-4 --heads 0-3 --dtype float16 -o out.npz
  python3 -c 'import numpy as np; z = np.load("lily.npz"); print(z["attention"].shape)')");
  auto opts = std::make_shared<extract::ExtractOptions>();
  auto ids = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto no_special = std::make_shared<bool>(false);

  sub->add_option("--model,-m", opts->model_dir, "Model folder (config.json + model.safetensors or pytorch_model.bin + tokenizer files)")
      ->required();
  auto* text_opt = sub->add_option("--text,-t", *text, "Input text (UTF-8)");
  auto* ids_opt = sub->add_option("--ids", *ids, "Input token ids instead of text, comma-separated: 1,2,3");
  text_opt->excludes(ids_opt);
  auto pair = std::make_shared<std::string>();
  auto* pair_opt = sub->add_option("--pair", *pair, "Second segment of a sentence pair (BERT: [CLS] A [SEP] B [SEP], token types 0/1)");
  pair_opt->needs(text_opt);
  sub->add_option("--output,-o", opts->output, "Output .npz file (written to a temp file, then renamed)")->required();
  sub->add_option("--layers", opts->layers, "Layers to store: all, 3, 0,2-4, -1 (last)")->capture_default_str();
  sub->add_option("--heads", opts->heads, "Heads to store: all, 0-3, ...")->capture_default_str();
  sub->add_option("--dtype", opts->dtype, "Storage dtype of the attention array")
      ->check(CLI::IsMember({"float32", "float16"}))->capture_default_str();
  sub->add_flag("--logits", opts->logits, "Also store the LM-head logits [q, vocab]");
  sub->add_flag("--no-special", *no_special, "Do not add the tokenizer's special tokens (BOS, [CLS] ...)");
  sub->add_flag("--compress", opts->compress, "DEFLATE-compress the NPZ members (smaller, slower)");
  sub->add_option("--threads", opts->threads, "CPU threads (0: all cores)")->capture_default_str();
  sub->add_option("--device", opts->device, "cpu, cuda or cuda:N")->capture_default_str();

  return {sub, [=] {
            extract::ExtractOptions o = *opts;
            if (text_opt->count() > 0) o.text = *text;
            if (ids_opt->count() > 0) o.ids = extract::parse_ids(*ids);
            if (pair_opt->count() > 0) o.text_pair = *pair;
            o.add_special_tokens = !*no_special;
            o.command_line = command_line();
            extract::ExtractSummary s = extract::torch_backend().run_extract(o);
            print_extract_summary(s);
            return 0;
          }};
}

void print_extract_summary(const extract::ExtractSummary& s) {
  fmt::print("model      {} ({}), {} layers x {} heads\n", s.model_type, s.model_class, s.num_layers, s.num_heads);
  std::string toks;
  for (size_t i = 0; i < s.token_labels.size(); ++i) {
    if (i) toks += " | ";
    toks += s.token_labels[i];
  }
  fmt::print("tokens     {}: {}\n", s.token_labels.size(), toks);
  fmt::print("stored     {} layers x {} heads\n", s.layers.size(), s.heads.size());
  if (!s.top_links.empty()) {
    fmt::print("strongest links (mean over stored layers and heads, special tokens and self-links left out):\n");
    for (const auto& l : s.top_links) {
      fmt::print("  {:>3} {:<14} -> {:>3} {:<14} {:.3f}\n", l.query, fmt::format("'{}'", s.token_labels[l.query]),
                 l.key, fmt::format("'{}'", s.token_labels[l.key]), l.weight);
    }
  }
  fmt::print("wrote      {} ({:.2f} s, model {:.3f} s, {} threads)\n", s.output.string(), s.seconds_total,
             s.seconds_model, s.threads);
}

}  // namespace atlas::cli
