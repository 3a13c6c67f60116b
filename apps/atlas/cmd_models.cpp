// atlas models: what a model is (from config.json and the checkpoint headers, no LibTorch) and which
// models the Hugging Face cache holds.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/io/checkpoint.hpp"
#include "atlas/io/hub.hpp"
#include "commands.hpp"

namespace atlas::cli {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

/// The first of `keys` that config.json (or its text_config) holds as an integer.
json first_int(const json& c, std::initializer_list<const char*> keys) {
  for (const json* cfg : {&c, c.contains("text_config") && c["text_config"].is_object() ? &c["text_config"] : nullptr}) {
    if (!cfg) continue;
    for (const char* k : keys)
      if (cfg->contains(k) && (*cfg)[k].is_number_integer()) return (*cfg)[k];
  }
  return nullptr;
}

std::string tokenizer_kind(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "tokenizer.json", ec)) {
    try {
      const json t = json::parse(read_file(dir / "tokenizer.json"));
      if (t.contains("model") && t["model"].contains("type") && t["model"]["type"].is_string())
        return "tokenizer.json (" + t["model"]["type"].get<std::string>() + ")";
    } catch (const json::exception&) {
    }
    return "tokenizer.json";
  }
  if (fs::exists(dir / "vocab.json", ec) && fs::exists(dir / "merges.txt", ec)) return "BPE (vocab.json + merges.txt)";
  if (fs::exists(dir / "vocab.txt", ec)) return "WordPiece (vocab.txt)";
  for (const char* f : {"tokenizer.model", "spiece.model", "sentencepiece.bpe.model"})
    if (fs::exists(dir / f, ec)) return std::string("sentencepiece (") + f + ")";
  return "none";
}

json stack(const json& layers, const json& heads, const json& kv_heads) {
  return {{"layers", layers}, {"heads", heads}, {"kv_heads", kv_heads.is_null() ? heads : kv_heads}};
}

json model_info(const std::string& spec, const fs::path& dir) {
  const json c = io::read_config(dir);
  json j;
  j["model"] = spec;
  j["path"] = fs::absolute(dir).lexically_normal().string();
  j["model_type"] = c.value("model_type", "");
  j["architecture"] = c.contains("architectures") && c["architectures"].is_array() && !c["architectures"].empty()
                          ? c["architectures"][0] : json("");
  const bool encdec = c.value("is_encoder_decoder", false);
  const json hidden = first_int(c, {"hidden_size", "n_embd", "d_model", "dim"});
  const json heads = first_int(c, {"num_attention_heads", "n_head", "num_heads", "encoder_attention_heads", "n_heads"});
  const json kv = first_int(c, {"num_key_value_heads", "n_kv_heads", "num_kv_heads"});
  if (encdec) {
    const json enc_layers = first_int(c, {"encoder_layers", "num_layers"});
    const json dec_layers = first_int(c, {"decoder_layers", "num_decoder_layers", "num_layers"});
    const json dec_heads = first_int(c, {"decoder_attention_heads", "num_heads"});
    j["stacks"] = {{"encoder", stack(enc_layers, heads, nullptr)}, {"decoder", stack(dec_layers, dec_heads, nullptr)}};
    j["num_layers"] = enc_layers;
  } else {
    const json layers = first_int(c, {"num_hidden_layers", "n_layer", "num_layers", "n_layers"});
    j["stacks"] = {{"decoder", stack(layers, heads, kv)}};
    j["num_layers"] = layers;
  }
  j["num_heads"] = heads;
  j["num_kv_heads"] = kv.is_null() ? heads : kv;
  json head_dim = first_int(c, {"head_dim", "d_kv"});
  if (head_dim.is_null() && hidden.is_number_integer() && heads.is_number_integer() && heads.get<int64_t>() > 0)
    head_dim = hidden.get<int64_t>() / heads.get<int64_t>();
  j["head_dim"] = head_dim;
  j["hidden_size"] = hidden;
  j["vocab_size"] = first_int(c, {"vocab_size"});
  j["max_positions"] = first_int(c, {"max_position_embeddings", "n_positions", "n_ctx", "max_seq_len"});
  j["config_dtype"] = c.contains("torch_dtype") && c["torch_dtype"].is_string() ? c["torch_dtype"] : json(nullptr);

  const io::Checkpoint ckpt = io::Checkpoint::open(dir);
  std::map<std::string, int64_t> by_dtype;
  int64_t params = 0;
  for (const auto& [name, t] : ckpt.tensors()) {
    (void)name;
    params += t.numel();
    by_dtype[io::tensor_dtype_name(t.dtype)] += t.numel();
  }
  std::string dtype;
  int64_t most = -1;
  for (const auto& [d, n] : by_dtype)
    if (n > most) { most = n; dtype = d; }
  j["weights_format"] = ckpt.format();
  j["weights_dtype"] = dtype;
  j["weights_dtypes"] = by_dtype;
  j["tensors"] = ckpt.tensors().size();
  j["parameters"] = params;
  j["tokenizer"] = tokenizer_kind(dir);
  std::error_code ec;
  json adapters = json::array();
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"})
    if (fs::exists(dir / f, ec)) adapters.push_back(f);
  j["adapters"] = adapters;
  json files = json::object();
  for (const auto& f : ckpt.files()) files[f.filename().string()] = io::checkpoint_hash({f});
  j["files"] = files;
  j["checkpoint_hash"] = ckpt.hash();
  return j;
}

std::string text_or(const json& v) { return v.is_null() ? "?" : v.is_string() ? v.get<std::string>() : v.dump(); }

std::string human_bytes(double n) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (n >= 1000 && u < 4) { n /= 1000; ++u; }
  return u == 0 ? fmt::format("{:.0f} {}", n, units[u]) : fmt::format("{:.1f} {}", n, units[u]);
}

void print_info(const json& j) {
  fmt::print("model          {}\npath           {}\n", j["model"].get<std::string>(), j["path"].get<std::string>());
  fmt::print("architecture   {} ({})\n", text_or(j["model_type"]), text_or(j["architecture"]));
  for (const char* name : {"encoder", "decoder"}) {
    if (!j["stacks"].contains(name)) continue;
    const json& s = j["stacks"][name];
    fmt::print("{:<14} {} layers, {} heads, {} kv heads\n", name, text_or(s["layers"]), text_or(s["heads"]),
               text_or(s["kv_heads"]));
  }
  fmt::print("head dim       {}\nhidden         {}\nvocab          {}\nmax positions  {}\n", text_or(j["head_dim"]),
             text_or(j["hidden_size"]), text_or(j["vocab_size"]), text_or(j["max_positions"]));
  fmt::print("weights        {} {} ({} tensors, {} parameters)\n", text_or(j["weights_format"]),
             text_or(j["weights_dtype"]), j["tensors"].get<int64_t>(), j["parameters"].get<int64_t>());
  fmt::print("tokenizer      {}\n", text_or(j["tokenizer"]));
  std::string adapters;
  for (const auto& a : j["adapters"]) adapters += (adapters.empty() ? "" : ", ") + a.get<std::string>();
  fmt::print("adapters       {}\n", adapters.empty() ? "none" : adapters);
  for (const auto& [f, h] : j["files"].items()) fmt::print("sha256         {}  {}\n", h.get<std::string>(), f);
  if (j["files"].size() > 1) fmt::print("checkpoint     {}\n", j["checkpoint_hash"].get<std::string>());
}

}  // namespace

Command add_models(CLI::App& app) {
  struct Options {
    std::string model;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("models", "Describe a model; list the models in the Hugging Face cache");
  sub->require_subcommand(1);
  CLI::App* info = sub->add_subcommand("info", "Architecture, sizes, weights dtype, parameters, tokenizer, hashes");
  info->footer(
      "MODEL is a folder or a Hugging Face model id (org/name[@revision]), downloaded when not cached.\n"
      "Read from config.json and the checkpoint headers; nothing is run.\n"
      "Examples:\n"
      "  atlas models info gpt2\n"
      "  atlas models info models/llama --json");
  info->add_option("model", opts->model, "Model folder or Hub model id")->required();
  info->add_flag("--json", opts->json, "Print JSON");
  CLI::App* list = sub->add_subcommand("list", "Models in the Hugging Face cache: repo id, revisions, size, path");
  list->add_flag("--json", opts->json, "Print JSON");

  return {sub, [opts, info, list] {
            if (info->parsed()) {
              const fs::path dir = io::resolve_model(opts->model);
              const json j = model_info(opts->model, dir);
              if (opts->json) fmt::print("{}\n", j.dump(2));
              else print_info(j);
              return 0;
            }
            (void)list;
            const fs::path cache = io::hub_cache_dir();
            json out = json::array();
            for (const auto& m : io::list_cached_models(cache)) {
              json revisions = json::object();
              for (const auto& [ref, commit] : m.refs) revisions[ref] = commit;
              out.push_back({{"repo_id", m.repo_id}, {"refs", revisions}, {"snapshots", m.snapshots},
                             {"size_bytes", m.size_bytes}, {"path", m.path.string()}});
            }
            if (opts->json) {
              fmt::print("{}\n", out.dump(2));
              return 0;
            }
            if (out.empty()) {
              fmt::print("no models in the Hugging Face cache {}\n", cache.string());
              return 0;
            }
            fmt::print("{:<40} {:<24} {:>10}  {}\n", "REPO ID", "REVISIONS", "SIZE", "PATH");
            for (const auto& m : out) {
              std::string revs;
              for (const auto& [ref, commit] : m["refs"].items())
                revs += (revs.empty() ? "" : ",") + ref + "=" + commit.get<std::string>().substr(0, 8);
              if (revs.empty()) revs = std::to_string(m["snapshots"].size()) + " snapshot(s)";
              fmt::print("{:<40} {:<24} {:>10}  {}\n", m["repo_id"].get<std::string>(), revs,
                         human_bytes(double(m["size_bytes"].get<uint64_t>())), m["path"].get<std::string>());
            }
            return 0;
          }};
}

}  // namespace atlas::cli
