// atlas serve --model M [--model M2 ...] [--store DIR ...]: flags -> serve::ServeOptions -> App + run_http().
#include <fmt/format.h>

#include <cstdio>

#include "atlas/core/error.hpp"
#include "atlas/extract/backend.hpp"
#include "atlas/serve/server.hpp"
#include "commands.hpp"

namespace atlas::cli {

Command add_serve(CLI::App& app) {
  auto* sub = app.add_subcommand("serve", "Serve a local web page for exploring attention live and browsing stores");
  auto o = std::make_shared<serve::ServeOptions>();
  auto models = std::make_shared<std::vector<std::string>>();
  auto models_dirs = std::make_shared<std::vector<std::string>>();
  auto stores = std::make_shared<std::vector<std::string>>();
  auto work_dir = std::make_shared<std::string>();
  sub->footer(
      "Open the printed URL in a browser: type or upload a text, pick model, layer and head, and export\n"
      "figures (PNG/SVG/PDF, the same bytes `atlas visualize` writes) or the NPZ. docs/serve.md has the\n"
      "JSON API and the limits.\n\n"
      "Examples:\n"
      "  atlas serve --model examples/models/stories260K\n"
      "  atlas serve --model examples/models/stories260K --store corpus.store --port 8000\n"
      "  atlas serve --models-dir ~/models --host 0.0.0.0   # reachable from other machines: see the warning");
  sub->add_option("--model", *models, "Model folder (repeatable; loaded at start)");
  sub->add_option("--models-dir", *models_dirs, "Folder of model folders (each loaded on first use)");
  sub->add_option("--store", *stores, "Attention store to browse (repeatable)");
  sub->add_option("--host", o->host, "Address to bind")->capture_default_str();
  sub->add_option("--port", o->port, "Port (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  auto& l = o->limits;
  sub->add_option("--max-text", l.max_text_chars, "Longest text accepted, in characters")->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--max-tokens", l.max_tokens, "Most tokens run through a model per text")->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--max-body", l.max_body_bytes, "Largest request body (uploads), bytes")->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--request-timeout", l.request_timeout_s, "Seconds to read/write a request and to wait for a busy model")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--workers", l.workers, "HTTP worker threads (concurrent requests)")->capture_default_str()
      ->check(CLI::Range(1, 256));
  sub->add_option("--queue", l.queue, "Accepted connections waiting for a worker")->capture_default_str()
      ->check(CLI::Range(1, 4096));
  sub->add_option("--max-pending", l.max_pending_runs, "Model runs waiting or running before 503")->capture_default_str()
      ->check(CLI::Range(1, 4096));
  sub->add_option("--cache", l.cache_entries, "Results kept (LRU by model and text)")->capture_default_str()
      ->check(CLI::Range(1, 100000));
  sub->add_option("--threads", o->run.threads, "Threads per forward pass (0: all cores)")->capture_default_str();
  sub->add_option("--device", o->run.device, "cpu, cuda, cuda:N")->capture_default_str();
  sub->add_option("--compute-dtype", o->run.compute_dtype,
                  "float32 (exact), bfloat16 (approximate: ~2x faster matrix products on CPUs with AVX-512 BF16; "
                  "docs/serve.md), float16 (CUDA)")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}))->capture_default_str();
  o->run.gemm = "onednn";
  sub->add_option("--gemm", o->run.gemm,
                  "CPU float32 matrix products: onednn (oneDNN sgemm on weights stored transposed; ~1.3x faster "
                  "forwards on short texts) or openblas (at::linear); results agree within float32 rounding")
      ->check(CLI::IsMember({"onednn", "openblas"}))->capture_default_str();
  sub->add_option("--work-dir", *work_dir, "Folder for results and figures (default: a private temp folder)");

  return {sub, [o, models, models_dirs, stores, work_dir] {
            serve::ServeOptions opts = *o;
            for (const auto& m : *models) opts.models.push_back({"", m, true});
            for (const auto& d : *models_dirs) serve::add_models_dir(opts, d);
            for (const auto& s : *stores) opts.stores.emplace_back(s);
            ATLAS_CHECK(!opts.models.empty() || !opts.stores.empty(), InputError,
                        "serve: give at least one --model, --models-dir or --store");
            opts.work_dir = *work_dir;
            opts.run.command_line = command_line();
            if (opts.host != "127.0.0.1" && opts.host != "localhost" && opts.host != "::1")
              fmt::print(stderr,
                         "atlas: warning: serving on {} makes the page and its models reachable from other "
                         "machines; it has no authentication\n",
                         opts.host);
            serve::App served(opts, [](const extract::RunOptions& ro) { return extract::torch_backend().open_model(ro); });
            serve::run_http(served, [](const std::string& url) {
              fmt::print("atlas serve: listening on {}\n", url);
              std::fflush(stdout);
            });
            return 0;
          }};
}

}  // namespace atlas::cli
