#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "atlas/core/error.hpp"
#include "atlas/extract/backend.hpp"
#include "atlas/extract/extract.hpp"
#include "commands.hpp"

namespace atlas::cli {

Command add_extract(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "extract", "Run a Hugging Face checkpoint on a text or a corpus and save its attention as NPZ");
  sub->footer(R"(
One text (--text/--ids) gives one .npz: attention [layers, heads, q, k] plus tokens, offsets and
provenance (docs/formats/attention-npz.md); numpy.load() reads it. Encoder-decoders (T5, BART) give
encoder_attention [L, H, S, S], decoder_attention [L, H, T, T] and cross_attention [L, H, T, S]
(--layers/--heads select in each stack) and the decoder input as decoder_input_ids, decoder_tokens, ...
A corpus (--input) gives a store folder: shard-*.npz files with members <id>/attention, <id>/tokens, ...
and manifest.jsonl, one line per document (docs/formats/store.md). The model is loaded once; documents
are batched by length; a re-run of the same command resumes where a stopped run ended.

Examples:
  atlas extract --model examples/models/stories260K --text "Lily went to the park." -o lily.npz
  atlas extract --model DIR --ids 1,450,2 --layers 0,2-4 --heads 0-3 --dtype float16 -o out.npz
  atlas extract --model t5-small --text "translate English to German: Hi." --decoder-text "Hallo." -o t5.npz
  atlas extract --model DIR --input corpus.txt -o store/ --batch-size 16 --dtype float16
  atlas extract --model DIR --input docs.jsonl --text-field body --id-field doc_id -o store/
  atlas extract --model DIR --input table.csv --column sentence --shard 2/8 -o part-2/
  atlas extract --model DIR --input long.txt --window 512 --stride 256 --topk 16 -o long/
  atlas process cat store/ 17 -o doc17.npz        # one document as a standalone .npz
  atlas visualize heatmap store/:17 -o doc17.png
Exit codes: 0 ok, 1 error or (corpus) a document failed (--allow-failures: 0), 2 usage.)");
  auto opts = std::make_shared<extract::CorpusOptions>();
  auto ids = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto input_format = std::make_shared<std::string>("auto");
  auto no_special = std::make_shared<bool>(false);
  auto no_resume = std::make_shared<bool>(false);
  auto allow_failures = std::make_shared<bool>(false);
  auto json_summary = std::make_shared<bool>(false);
  auto shard_mb = std::make_shared<double>(256);
  auto no_header = std::make_shared<bool>(false);
  auto progress = std::make_shared<std::string>("auto");

  sub->add_option("--model,-m", opts->model_dir, "Model folder (config.json + model.safetensors or pytorch_model.bin + tokenizer files), a PEFT adapter folder, or a TorchScript .pt file (docs/custom-models.md)")
      ->required();
  sub->add_option("--tokenizer", opts->tokenizer_dir,
                  "Folder whose tokenizer to use instead of the model folder's (tokenizer.json, vocab files or a "
                  "sentencepiece model)");
  sub->add_option("--adapter", opts->adapters,
                  "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors/.bin) merged into the "
                  "weights; repeatable, applied in order");
  sub->add_option("--base", opts->base_dir,
                  "Base model folder when --model is an adapter folder (default: its base_model_name_or_path)");
  sub->add_flag("--no-adapter", opts->no_adapter,
                "Do not apply the adapter that the --model folder itself holds (adapter_config.json)");
  auto* text_opt = sub->add_option("--text,-t", *text, "Input text (UTF-8)");
  auto* ids_opt = sub->add_option("--ids", *ids, "Input token ids instead of text, comma-separated: 1,2,3");
  auto* input_opt = sub->add_option("--input,-i", *input, "Corpus file, or - for standard input: one document per line (text), JSONL, CSV or TSV");
  text_opt->excludes(ids_opt);
  input_opt->excludes(text_opt)->excludes(ids_opt);
  auto pair = std::make_shared<std::string>();
  auto* pair_opt = sub->add_option("--pair", *pair, "Second segment of a sentence pair (BERT: [CLS] A [SEP] B [SEP], token types 0/1)");
  pair_opt->needs(text_opt);
  auto decoder_text = std::make_shared<std::string>();
  auto decoder_ids = std::make_shared<std::string>();
  auto* decoder_text_opt = sub->add_option("--decoder-text", *decoder_text,
                                           "Encoder-decoders (T5, BART): decoder input text, tokenized without special tokens after decoder_start_token_id");
  auto* decoder_ids_opt = sub->add_option("--decoder-ids", *decoder_ids,
                                          "Encoder-decoders: decoder input ids, verbatim (start with decoder_start_token_id); default: just that id");
  decoder_text_opt->excludes(decoder_ids_opt)->excludes(input_opt);
  decoder_ids_opt->excludes(input_opt);
  sub->add_option("--output,-o", opts->output, "Output: a .npz file (--text/--ids) or a store folder (--input)")->required();

  const char* stored = "What is stored";
  sub->add_option("--layers", opts->layers, "Layers to store: all, 3, 0,2-4, -1 (last)")->capture_default_str()->group(stored);
  sub->add_option("--heads", opts->heads, "Heads to store: all, 0-3, ...")->capture_default_str()->group(stored);
  sub->add_option("--dtype", opts->dtype, "Storage dtype of the attention arrays")
      ->check(CLI::IsMember({"float32", "float16"}))->capture_default_str()->group(stored);
  sub->add_option("--topk", opts->topk, "Store only the K largest entries of each query row (sparse; readers densify)")->group(stored);
  sub->add_flag("--logits", opts->logits, "Also store the LM-head logits [q, vocab]")->group(stored);
  sub->add_flag("--value-norms", opts->value_norms,
                "Also store value_norms [L, H, q]: ||f_h(x_j)|| per head for `atlas process value-norm`")->group(stored);
  sub->add_flag("--no-special", *no_special, "Do not add the tokenizer's special tokens (BOS, [CLS] ...)")->group(stored);
  sub->add_flag("--compress", opts->compress, "DEFLATE-compress the NPZ members (smaller, slower)")->group(stored);

  const char* corpus_group = "Corpus (--input)";
  sub->add_option("--input-format", *input_format, "auto (by extension: .txt .jsonl .csv .tsv), text, jsonl, csv, tsv")
      ->capture_default_str()->group(corpus_group);
  sub->add_option("--text-field", opts->input.text_field, "JSONL: the field holding the text (a record with an 'ids' array instead is pre-tokenized)")
      ->capture_default_str()->group(corpus_group);
  sub->add_option("--id-field", opts->input.id_field, "JSONL/CSV/TSV: the field holding the document id (default: the record number)")->group(corpus_group);
  sub->add_option("--column", opts->input.column, "CSV/TSV: the text column, by header name or 0-based index")
      ->capture_default_str()->group(corpus_group);
  sub->add_flag("--no-header", *no_header, "CSV/TSV: the first row is data, not a header (--column is then an index)")->group(corpus_group);
  sub->add_option("--batch-size,-b", opts->batch_size, "Documents per forward pass (similar lengths are batched together)")
      ->capture_default_str()->group(corpus_group);
  sub->add_option("--shard", opts->shard, "Take part I of N of the documents (I/N, 0-based; document k goes to part k mod N)")
      ->capture_default_str()->group(corpus_group);
  sub->add_option("--shard-size", *shard_mb, "Store shard file size in MB")->capture_default_str()->group(corpus_group);
  sub->add_option("--shard-docs", opts->shard_documents, "Also close a store shard after this many documents")->group(corpus_group);
  sub->add_option("--window", opts->window, "Split documents longer than N tokens into overlapping windows, each stored as '<id>#w<k>'")
      ->group(corpus_group);
  sub->add_option("--stride", opts->stride, "Tokens between window starts (default: window / 2)")->group(corpus_group);
  sub->add_option("--limit", opts->max_documents, "Stop after N input records (a quick look)")->group(corpus_group);
  auto* resume_flag = sub->add_flag("--resume", "Resume a store that an earlier run of the same command left (the default)")->group(corpus_group);
  sub->add_flag("--no-resume", *no_resume, "Refuse an output folder that already holds a store")->group(corpus_group)->excludes(resume_flag);
  sub->add_flag("--allow-failures", *allow_failures, "Exit 0 even when some documents failed (they stay in the manifest)")->group(corpus_group);
  sub->add_option("--progress", *progress, "auto (a bar on a terminal, else a line every 10 s), bar, plain, none")
      ->check(CLI::IsMember({"auto", "bar", "plain", "none"}))->capture_default_str()->group(corpus_group);
  sub->add_flag("--quiet,-q", opts->quiet, "No progress output and no summary")->group(corpus_group);
  sub->add_flag("--json", *json_summary, "Print the summary as JSON on stdout")->group(corpus_group);

  const char* compute = "Compute";
  sub->add_option("--compute-dtype", opts->compute_dtype, "float32 (exact), bfloat16 (CPU via oneDNN, or CUDA), float16 (CUDA)")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}))->capture_default_str()->group(compute);
  sub->add_option("--gemm", opts->gemm,
                  "CPU float32 matrix products: openblas (at::linear) or onednn (oneDNN sgemm on weights stored "
                  "transposed: faster on short texts, copies the linear weights; agrees within float32 rounding)")
      ->check(CLI::IsMember({"openblas", "onednn"}))->capture_default_str()->group(compute);
  sub->add_option("--row-chunk", opts->row_chunk, "Convert and write attention N query rows at a time (long texts)")->group(compute);
  sub->add_option("--threads", opts->threads, "CPU threads (0: all cores)")->capture_default_str()->group(compute);
  sub->add_option("--device", opts->device, "cpu, cuda or cuda:N")->capture_default_str()->group(compute);

  return {sub, [=] {
            opts->command_line = command_line();
            opts->add_special_tokens = !*no_special;
            if (input_opt->count() == 0) {
              ATLAS_CHECK(text_opt->count() + ids_opt->count() > 0, InputError,
                          "give an input: --text STR, --ids 1,2,3 or --input FILE");
              extract::ExtractOptions o;
              static_cast<extract::RunOptions&>(o) = *opts;
              o.output = opts->output;
              if (text_opt->count() > 0) o.text = *text;
              if (ids_opt->count() > 0) o.ids = extract::parse_ids(*ids);
              if (pair_opt->count() > 0) o.text_pair = *pair;
              if (decoder_text_opt->count() > 0) o.decoder_text = *decoder_text;
              if (decoder_ids_opt->count() > 0) o.decoder_ids = extract::parse_ids(*decoder_ids);
              extract::ExtractSummary s = extract::torch_backend().run_extract(o);
              for (const auto& note : s.notes) fmt::print(stderr, "atlas: note: {}\n", note);
              if (*json_summary) {
                nlohmann::json j = {{"output", s.output.string()}, {"model_type", s.model_type},
                                    {"tokens", s.token_labels.size()}, {"layers", s.layers}, {"heads", s.heads},
                                    {"seconds_load", s.seconds_load}, {"seconds_model", s.seconds_model},
                                    {"seconds_total", s.seconds_total}};
                fmt::print("{}\n", j.dump(2));
              } else if (!opts->quiet) {
                print_extract_summary(s);
              }
              return 0;
            }
            extract::CorpusOptions o = *opts;
            o.input.path = *input;
            o.input.format = corpus::parse_input_format(*input_format);
            o.input.header = !*no_header;
            o.shard_bytes = static_cast<int64_t>(*shard_mb * 1024 * 1024);
            o.resume = !*no_resume;
            o.progress_mode = *progress == "bar" ? 1 : *progress == "plain" ? 0 : -1;
            if (*progress == "none") o.quiet = true;
            extract::CorpusSummary s = extract::torch_backend().run_corpus(o);
            for (const auto& note : s.notes) fmt::print(stderr, "atlas: note: {}\n", note);
            print_corpus_summary(s, *json_summary, opts->quiet);
            const int64_t failed = s.documents_failed;
            if (failed > 0 && !*allow_failures) {
              fmt::print(stderr, "atlas: error: {} document(s) failed; see {}/manifest.jsonl (--allow-failures to exit 0)\n",
                         failed, s.output.string());
              return 1;
            }
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
  if (!s.decoder_token_labels.empty()) {
    std::string dec;
    for (size_t i = 0; i < s.decoder_token_labels.size(); ++i) dec += (i ? " | " : "") + s.decoder_token_labels[i];
    fmt::print("decoder    {}: {}\n", s.decoder_token_labels.size(), dec);
  }
  fmt::print("stored     {} layers x {} heads\n", s.layers.size(), s.heads.size());
  if (!s.top_links.empty()) {
    fmt::print("strongest links (mean over stored layers and heads; special tokens, self-links and masked pairs left out):\n");
    for (const auto& l : s.top_links) {
      fmt::print("  {:>3} {:<14} -> {:>3} {:<14} {:.3f}\n", l.query, fmt::format("'{}'", s.token_labels[l.query]),
                 l.key, fmt::format("'{}'", s.token_labels[l.key]), l.weight);
    }
  }
  fmt::print("wrote      {} ({:.2f} s: load {:.2f} s, model {:.3f} s, {} threads)\n", s.output.string(), s.seconds_total,
             s.seconds_load, s.seconds_model, s.threads);
}

void print_corpus_summary(const extract::CorpusSummary& s, bool json, bool quiet) {
  if (json) {
    nlohmann::json failures = nlohmann::json::array();
    for (const auto& f : s.failures) failures.push_back({{"id", f.id}, {"line", f.line}, {"error", f.error}});
    nlohmann::json j = {{"output", s.output.string()},
                        {"model_type", s.model_type},
                        {"model_class", s.model_class},
                        {"records", s.records},
                        {"documents_ok", s.documents_ok},
                        {"documents_failed", s.documents_failed},
                        {"documents_skipped", s.documents_skipped},
                        {"tokens", s.tokens},
                        {"padded_tokens", s.padded_tokens},
                        {"batches", s.batches},
                        {"shards_written", s.shards_written},
                        {"resumed", s.resumed},
                        {"seconds_load", s.seconds_load},
                        {"seconds_model", s.seconds_model},
                        {"seconds_total", s.seconds_total},
                        {"tokens_per_second", s.tokens_per_second},
                        {"threads", s.threads},
                        {"failures", failures}};
    fmt::print("{}\n", j.dump(2));
    return;
  }
  if (quiet) return;
  fmt::print("model      {} ({})\n", s.model_type, s.model_class);
  fmt::print("documents  {} ok, {} failed{}\n", s.documents_ok, s.documents_failed,
             s.documents_skipped ? fmt::format(", {} already done (resumed)", s.documents_skipped) : "");
  for (const auto& f : s.failures) fmt::print("  failed   {} (line {}): {}\n", f.id, f.line, f.error);
  const double pad = s.tokens > 0 ? 100.0 * static_cast<double>(s.padded_tokens - s.tokens) / static_cast<double>(s.padded_tokens) : 0;
  fmt::print("tokens     {} in {} batches ({:.1f}% padding)\n", s.tokens, s.batches, pad);
  fmt::print("time       {:.2f} s (load {:.2f} s, model {:.2f} s), {:.0f} tokens/s, {} threads\n", s.seconds_total,
             s.seconds_load, s.seconds_model, s.tokens_per_second, s.threads);
  fmt::print("wrote      {} ({} shard files this run)\n", s.output.string(), s.shards_written);
}

}  // namespace atlas::cli
