// atlas tokenize: show how a model's tokenizer splits a text (ids, tokens, character offsets).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <string>

#include "atlas/io/hub.hpp"
#include "atlas/tokenize/tokenizer.hpp"
#include "commands.hpp"

namespace atlas::cli {

Command add_tokenize(CLI::App& app) {
  struct Options {
    std::string model;
    std::string tokenizer;
    std::string text;
    bool json = false;
    bool no_special = false;
  };
  auto opts = std::make_shared<Options>();
  auto* sub = app.add_subcommand(
      "tokenize",
      "Tokenize a text with a model's tokenizer and print every token with its id and character offsets.");
  sub->footer(
      "The tokenizer is read from the model folder: tokenizer.json when present, else the classic files\n"
      "(vocab.json + merges.txt, vocab.txt, tokenizer.model / spiece.model). A folder that holds only\n"
      "tokenizer files works too; --tokenizer DIR takes the tokenizer of another folder. Offsets are\n"
      "[start, end) in Unicode code points of the text; tokens the tokenizer adds itself (BOS, [CLS],\n"
      "</s> ...) are marked special and have no offsets ([-1, -1] in --json, as in the attention NPZ).\n\n"
      "Examples:\n"
      "  atlas tokenize --model models/gpt2 --text \"The doctor hired the nurse.\"\n"
      "  atlas tokenize --model models/bert --text \"Hello world\" --json   # {\"ids\": ..., \"tokens\": ..., \"offsets\": ...}\n"
      "  atlas tokenize --model models/llama --text \"Hello\" --no-special  # without <s>");
  sub->add_option("--model,-m", opts->model, "Model or tokenizer folder")->required();
  sub->add_option("--tokenizer", opts->tokenizer, "Folder whose tokenizer to use instead of --model's");
  sub->add_option("--text,-t", opts->text, "Text to tokenize (UTF-8)")->required();
  sub->add_flag("--json", opts->json, "Print JSON with keys ids, tokens, offsets (and special_mask, type_ids, kind)");
  sub->add_flag("--no-special", opts->no_special, "Do not add the special tokens of the model's template");

  return {sub, [opts] {
            atlas::io::HubOptions hub;
            hub.weights = false;   // a model id: its config and tokenizer files are enough
            const auto tok = atlas::tokenize::load_tokenizer(
                atlas::io::resolve_model(opts->tokenizer.empty() ? opts->model : opts->tokenizer, hub));
            const auto enc = tok->encode(opts->text, !opts->no_special);
            if (opts->json) {
              nlohmann::json j;
              j["ids"] = enc.ids;
              j["tokens"] = enc.tokens;
              auto offsets = enc.offsets;  // template-added tokens: -1, -1 (the NPZ's `offsets`)
              for (size_t i = 0; i < offsets.size(); ++i) {
                if (enc.special_mask[i]) offsets[i] = {-1, -1};
              }
              j["offsets"] = offsets;
              j["special_mask"] = enc.special_mask;
              j["type_ids"] = enc.type_ids;
              j["kind"] = tok->kind();
              fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
              return 0;
            }
            fmt::print("{:>5}  {:>8}  {:>11}  {:<20}  {}\n", "#", "id", "offsets", "token", "text");
            for (size_t i = 0; i < enc.size(); ++i) {
              const auto& [b, e] = enc.offsets[i];
              fmt::print("{:>5}  {:>8}  {:>11}  {:<20}  {}\n", i, enc.ids[i],
                         enc.special_mask[i] ? std::string("-") : fmt::format("[{}, {})", b, e),
                         enc.tokens[i], enc.special_mask[i] ? "(special)" : tok->display(enc.ids[i]));
            }
            fmt::print("{} tokens ({})\n", enc.size(), tok->kind());
            return 0;
          }};
}

}  // namespace atlas::cli
