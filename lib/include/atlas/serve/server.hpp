#pragma once
/// `atlas serve`: a local web page for exploring attention live and browsing stores (docs/serve.md).
/// Two halves: App turns one HTTP request (method, path, query, body) into one response without a
/// socket (so tests and the fuzz target call it directly), and run_http() puts App behind
/// cpp-httplib's server on a bounded worker pool. Torch-free: models are opened through a callback
/// (torch_backend().open_model in the CLI).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "atlas/extract/extract.hpp"
#include "atlas/extract/serve_model.hpp"

namespace atlas::serve {

/// Limits on what one client may ask (flags of the same names, docs/serve.md).
struct Limits {
  int64_t max_text_chars = 20000;       ///< --max-text: code points of a text (413 above)
  int64_t max_tokens = 512;             ///< --max-tokens: tokens of a text (413 above)
  int64_t max_body_bytes = 4 << 20;     ///< --max-body: request body / upload (413 above)
  int request_timeout_s = 60;           ///< --request-timeout: socket read/write, and waiting for a model
  int workers = 8;                      ///< --workers: HTTP worker threads
  int queue = 64;                       ///< --queue: accepted connections waiting for a worker
  int max_pending_runs = 32;            ///< --max-pending: model runs waiting or running (503 above)
  int cache_entries = 32;               ///< --cache: results kept (LRU over model, text)
  int max_dpi = 600;                    ///< PNG export resolution limit
};

struct ModelEntry {
  std::string name;                     ///< what the page and the API call it
  std::filesystem::path path;
  bool preload = true;                  ///< --model: loaded at start; --models-dir: on first use
};

struct ServeOptions {
  std::vector<ModelEntry> models;
  std::vector<std::filesystem::path> stores;
  std::string host = "127.0.0.1";
  int port = 8080;
  Limits limits;
  extract::RunOptions run;              ///< dtype, device, threads for every model
  std::filesystem::path work_dir;       ///< result NPZs and figures ("" = a private temp folder)
};

/// Adds every folder of `dir` that holds a config.json as a model (loaded on first use).
void add_models_dir(ServeOptions& options, const std::filesystem::path& dir);

using ModelOpener = std::function<std::shared_ptr<extract::ServeModel>(const extract::RunOptions&)>;

struct Request {
  std::string method = "GET";
  std::string path;                                 ///< decoded, without the query
  std::multimap<std::string, std::string> query;
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class App {
 public:
  /// Loads the preloaded models (an error names the model) and opens the stores.
  App(ServeOptions options, ModelOpener opener);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  /// Answers one request; never throws: errors are {"error": "..."} with 4xx/5xx.
  Response handle(const Request& request) noexcept;
  const ServeOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// An error response: {"error": message}.
Response error_response(int status, const std::string& message);

/// Serves `app` until the process is stopped; `on_listening(url)` runs once the socket is bound.
/// IoError when the address cannot be bound.
void run_http(App& app, const std::function<void(const std::string& url)>& on_listening);

/// The embedded page (index.html, app.js, style.css): bytes and content type by URL path.
struct Asset {
  const unsigned char* data = nullptr;
  size_t size = 0;
  const char* content_type = "";
};
const Asset* find_asset(const std::string& path);

}  // namespace atlas::serve
