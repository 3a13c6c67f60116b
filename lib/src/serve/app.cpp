// `atlas serve` requests without a socket: routing, the JSON API (docs/serve.md), the result cache,
// and figure rendering through render::visualize (the same code path as `atlas visualize`).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <list>
#include <mutex>
#include <unistd.h>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/json.hpp"
#include "atlas/core/utf8.hpp"
#include "atlas/core/version.hpp"
#include "atlas/format/attention.hpp"
#include "atlas/format/store.hpp"
#include "atlas/process/process.hpp"
#include "atlas/render/colormap.hpp"
#include "atlas/render/visualize.hpp"
#include "atlas/serve/server.hpp"
#include "serve/internal.hpp"

namespace atlas::serve {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

/// An error with its HTTP status; everything else maps by class (InputError 400, others 500).
struct HttpError : std::runtime_error {
  int status;
  HttpError(int s, const std::string& m) : std::runtime_error(m), status(s) {}
};
[[noreturn]] void http_fail(int status, const std::string& message) { throw HttpError(status, message); }

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// The phases of the request this thread is answering, sent as a Server-Timing header (shown by a
/// browser's developer tools; bench/bench_serve.py prints them): name and milliseconds.
thread_local std::vector<std::pair<const char*, double>> request_phases;
void add_phase(const char* name, double seconds) { request_phases.emplace_back(name, seconds * 1e3); }
/// Times its scope as one phase.
struct Phase {
  const char* name;
  Clock::time_point t0 = Clock::now();
  explicit Phase(const char* n) : name(n) {}
  ~Phase() { add_phase(name, seconds_since(t0)); }
};

// ---- request fields --------------------------------------------------------------------------

json parse_body(const std::string& body) {
  if (body.empty()) return json::object();
  json j;
  try {
    j = parse_json(body, "request body", /*allow_exceptions=*/false);
  } catch (const Error& e) {
    http_fail(400, e.what());
  }
  if (j.is_discarded()) http_fail(400, "malformed JSON in the request body");
  if (!j.is_object()) http_fail(400, "the request body must be a JSON object");
  return j;
}

std::string get_string(const json& j, const char* key, const std::string& fallback = "", size_t max_len = 256) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  std::string s;
  if (it->is_string()) s = it->get<std::string>();
  else if (it->is_number_integer()) s = std::to_string(it->get<int64_t>());
  else http_fail(400, fmt::format("'{}' must be a string", key));
  if (s.size() > max_len) http_fail(413, fmt::format("'{}' is longer than {} bytes", key, max_len));
  if (!utf8::valid(s)) http_fail(400, fmt::format("'{}' is not valid UTF-8", key));
  return s;
}

bool get_bool(const json& j, const char* key, bool fallback = false) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) http_fail(400, fmt::format("'{}' must be true or false", key));
  return it->get<bool>();
}

double get_number(const json& j, const char* key, double fallback, double lo, double hi) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) http_fail(400, fmt::format("'{}' must be a number", key));
  const double v = it->get<double>();
  if (!(v >= lo && v <= hi)) http_fail(400, fmt::format("'{}' must be in [{}, {}], got {}", key, lo, hi, v));
  return v;
}

const json& get_object(const json& j, const char* key) {
  static const json empty = json::object();
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return empty;
  if (!it->is_object()) http_fail(400, fmt::format("'{}' must be an object", key));
  return *it;
}

// Like the CLI's shell_quote (apps/atlas/commands.cpp), so a command line shown on the page and
// typed into a shell is recorded by `atlas visualize` as the very same string.
std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:@%+") ==
                          std::string::npos)
    return arg;
  std::string q = "'";
  for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// "mean" / "all" / an index (negative from the end) of a model layer or head.
std::vector<int64_t> select_positions(const std::string& spec, const std::vector<int64_t>& stored, const char* what) {
  std::vector<int64_t> out;
  if (spec.empty() || spec == "mean" || spec == "all") {
    for (size_t i = 0; i < stored.size(); ++i) out.push_back(int64_t(i));
    return out;
  }
  int64_t v = 0;
  size_t pos = 0;
  try {
    v = std::stoll(spec, &pos);
  } catch (...) {
    pos = 0;
  }
  if (pos != spec.size() || pos == 0) http_fail(400, fmt::format("{} must be an index or 'mean', got '{}'", what, spec));
  if (v < 0 && !stored.empty()) v = stored.back() + 1 + v;
  for (size_t i = 0; i < stored.size(); ++i)
    if (stored[i] == v) return {int64_t(i)};
  http_fail(400, fmt::format("unknown {} {} (stored: {})", what, spec, fmt::join(stored, ",")));
}

// ---- documents -------------------------------------------------------------------------------

/// One attention document the page looks at: a model's result for one text (its NPZ in the work
/// folder, removed with the entry) or a stored document (read in place).
struct Doc {
  std::string key;
  std::string model;             ///< model name ("" for a stored document)
  std::string store;             ///< store name ("" for a model result)
  std::string doc_id;
  std::string text;
  std::string spec;              ///< what load_attention / visualize read: a file, or STORE:DOC
  std::string cli_input;         ///< how the shown command line names it
  fs::path dir;                  ///< owned folder (model results)
  std::vector<std::string> steps;   ///< `atlas process` commands that made `spec` from the extract output
  extract::ServeResult result;
  double seconds_model = 0;

  std::mutex mutex;
  std::shared_ptr<const format::AttentionData> data_;
  /// Set while `spec` is not written yet (a model run kept in memory): writes it.
  std::function<void(const fs::path&)> write_npz;
  std::shared_ptr<const format::AttentionData> data() {
    std::lock_guard<std::mutex> lock(mutex);
    if (!data_) data_ = std::make_shared<format::AttentionData>(format::load_attention(spec));
    return data_;
  }
  /// `spec` as a file, written first if it is not yet (NPZ export).
  const std::string& file() {
    std::lock_guard<std::mutex> lock(mutex);
    if (write_npz) {
      write_npz(spec);
      write_npz = nullptr;
    }
    return spec;
  }
  ~Doc() {
    if (!dir.empty()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
};
using DocPtr = std::shared_ptr<Doc>;

/// A bounded LRU of documents by key.
class DocCache {
 public:
  explicit DocCache(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}
  DocPtr get(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = items_.begin(); it != items_.end(); ++it)
      if ((*it)->key == key) {
        items_.splice(items_.begin(), items_, it);
        ++hits_;
        return *it;
      }
    return nullptr;
  }
  void put(DocPtr doc) {
    std::lock_guard<std::mutex> lock(mutex_);
    items_.push_front(std::move(doc));
    while (items_.size() > capacity_) items_.pop_back();   // files go when the last user lets go
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return items_.size();
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    items_.clear();
  }
  size_t hits() {
    std::lock_guard<std::mutex> lock(mutex_);
    return hits_;
  }

 private:
  size_t capacity_;
  std::mutex mutex_;
  std::list<DocPtr> items_;
  size_t hits_ = 0;
};

struct ModelSlot {
  ModelEntry entry;
  std::mutex load_mutex;
  std::shared_ptr<extract::ServeModel> model;
  std::string load_error;
  std::timed_mutex run_mutex;    // one forward pass at a time per model
};

struct StoreSlot {
  std::string name;
  fs::path dir;
  std::mutex mutex;              // StoreReader keeps opened shards: not thread-safe
  std::unique_ptr<format::StoreReader> reader;
  std::map<std::string, std::string> texts;   // id -> text, read from each document's meta on first search
};

std::string unique_name(const std::string& base, const std::map<std::string, int>& taken) {
  std::string name = base.empty() ? "model" : base;
  for (int n = 2; taken.count(name); ++n) name = fmt::format("{}-{}", base, n);
  return name;
}

}  // namespace

void add_models_dir(ServeOptions& options, const fs::path& dir) {
  std::error_code ec;
  ATLAS_CHECK(fs::is_directory(dir, ec), InputError, "--models-dir '{}' is not a directory", dir.string());
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory() && fs::exists(e.path() / "config.json")) found.push_back(e.path());
  std::sort(found.begin(), found.end());
  ATLAS_CHECK(!found.empty(), InputError, "--models-dir '{}' holds no model folder (a folder with config.json)",
              dir.string());
  for (const auto& p : found) options.models.push_back({"", p, false});
}

std::string json_string(const std::string& s) {
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + s.size() / 16 + 2);
  out += '"';
  size_t run = 0;   // start of the bytes copied unchanged
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s, run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(s, run, std::string::npos);
  out += '"';
  return out;
}

Response error_response(int status, const std::string& message) {
  Response r;
  r.status = status;
  r.body = json{{"error", message}}.dump();
  return r;
}

// ---- the application ---------------------------------------------------------------------------

struct App::Impl {
  ServeOptions options;
  ModelOpener opener;
  std::map<std::string, std::unique_ptr<ModelSlot>> models;   // by name
  std::vector<std::string> model_order;
  std::map<std::string, std::unique_ptr<StoreSlot>> stores;
  std::vector<std::string> store_order;
  DocCache cache;
  fs::path work_dir;
  bool own_work_dir = false;
  std::atomic<int> pending{0};
  std::atomic<uint64_t> seq{0};
  std::atomic<uint64_t> runs{0};

  Impl(ServeOptions o, ModelOpener op) : options(std::move(o)), opener(std::move(op)), cache(size_t(options.limits.cache_entries)) {}

  // -- models and stores --

  ModelSlot& slot(const std::string& name) {
    auto it = models.find(name);
    if (it == models.end())
      http_fail(404, fmt::format("unknown model '{}' (this server has: {})", name, fmt::join(model_order, ", ")));
    return *it->second;
  }

  std::shared_ptr<extract::ServeModel> loaded(ModelSlot& s) {
    std::lock_guard<std::mutex> lock(s.load_mutex);
    if (s.model) return s.model;
    if (!s.load_error.empty()) http_fail(500, s.load_error);
    extract::RunOptions ro = options.run;
    ro.model_dir = s.entry.path;
    try {
      ATLAS_CHECK(opener, Error, "no model runtime");
      s.model = opener(ro);
    } catch (const std::exception& e) {
      s.load_error = fmt::format("cannot load model '{}': {}", s.entry.name, e.what());
      throw Error(s.load_error);
    }
    return s.model;
  }

  StoreSlot& store(const std::string& name) {
    auto it = stores.find(name);
    if (it == stores.end())
      http_fail(404, fmt::format("unknown store '{}' (this server has: {})", name,
                                 store_order.empty() ? std::string("none") : fmt::format("{}", fmt::join(store_order, ", "))));
    return *it->second;
  }

  fs::path fresh_dir(const char* prefix) {
    const fs::path d = work_dir / fmt::format("{}{}", prefix, ++seq);
    fs::create_directories(d);
    return d;
  }

  // -- documents --

  DocPtr model_doc(const std::string& model_name, const std::string& text) {
    const Limits& lim = options.limits;
    if (text.empty()) http_fail(400, "the text is empty");
    if (!utf8::valid(text)) http_fail(400, "the text is not valid UTF-8");
    const size_t chars = utf8::decode(text).size();
    if (int64_t(chars) > lim.max_text_chars)
      http_fail(413, fmt::format("the text has {} characters; this server accepts at most {} (--max-text)", chars,
                                 lim.max_text_chars));
    ModelSlot& s = slot(model_name);
    const std::string key = "m\n" + model_name + "\n" + text;
    if (DocPtr d = cache.get(key)) return d;

    struct Pending {
      std::atomic<int>& n;
      ~Pending() { --n; }
    } guard{pending};
    if (++pending > lim.max_pending_runs)
      http_fail(503, fmt::format("too many requests waiting for a model (limit {}, --max-pending); try again",
                                 lim.max_pending_runs));
    auto model = loaded(s);
    std::unique_lock<std::timed_mutex> lock(s.run_mutex, std::defer_lock);
    if (!lock.try_lock_for(std::chrono::seconds(lim.request_timeout_s)))
      http_fail(503, fmt::format("model '{}' stayed busy for {} s (--request-timeout)", model_name, lim.request_timeout_s));
    if (DocPtr d = cache.get(key)) return d;   // computed while this request waited

    auto doc = std::make_shared<Doc>();
    doc->key = key;
    doc->model = model_name;
    doc->text = text;
    doc->dir = fresh_dir("r");
    doc->spec = (doc->dir / "attention.npz").string();
    doc->cli_input = "attention.npz";
    extract::ServeRequest req;
    req.text = text;
    req.output = doc->spec;
    req.max_tokens = lim.max_tokens;
    req.in_memory = true;   // the NPZ is written when exported (doc->file())
    try {
      Phase phase("run");
      doc->result = model->run(req);
      doc->data_ = std::move(doc->result.data);
      doc->write_npz = std::move(doc->result.write_npz);
      doc->result.data.reset();
      doc->result.write_npz = nullptr;
    } catch (const InputError& e) {
      if (std::string(e.what()).rfind("too many tokens", 0) == 0) http_fail(413, e.what());
      throw;
    }
    doc->seconds_model = doc->result.seconds_model;
    add_phase("forward", doc->seconds_model);
    ++runs;
    cache.put(doc);
    return doc;
  }

  DocPtr store_doc(const std::string& store_name, const std::string& id) {
    StoreSlot& st = store(store_name);
    const std::string key = "s\n" + store_name + "\n" + id;
    if (DocPtr d = cache.get(key)) return d;
    {
      std::lock_guard<std::mutex> lock(st.mutex);
      const format::ManifestEntry* e = st.reader->find(id);
      if (!e) http_fail(404, fmt::format("store '{}' has no document '{}'", store_name, id));
      if (!e->ok()) http_fail(400, fmt::format("document '{}' of store '{}' failed: {}", id, store_name, e->error));
    }
    auto doc = std::make_shared<Doc>();
    doc->key = key;
    doc->store = store_name;
    doc->doc_id = id;
    doc->spec = st.dir.string() + ":" + id;
    doc->cli_input = doc->spec;
    doc->text = doc->data()->text;
    cache.put(doc);
    return doc;
  }

  /// `op` ("words" | "rollout") of `base`, through `atlas process` (the same code the CLI runs),
  /// written next to the other results and cached like them.
  DocPtr derived(const DocPtr& base, const std::string& op) {
    const std::string key = base->key + "\n#" + op;
    if (DocPtr d = cache.get(key)) return d;
    Phase phase("process");
    auto data = base->data();
    process::Result r = op == "words" ? process::words(*data) : process::rollout(*data);
    auto doc = std::make_shared<Doc>();
    doc->key = key;
    doc->model = base->model;
    doc->store = base->store;
    doc->doc_id = base->doc_id;
    doc->text = base->text;
    doc->result = base->result;
    doc->seconds_model = base->seconds_model;
    doc->dir = fresh_dir("d");
    doc->cli_input = op + ".npz";
    doc->spec = (doc->dir / doc->cli_input).string();
    doc->steps = base->steps;
    const std::string step = fmt::format("atlas process {} {} -o {}", op, shell_quote(base->cli_input), doc->cli_input);
    doc->steps.push_back(step);
    process::write_result(r, doc->spec, step);
    cache.put(doc);
    return doc;
  }

  /// The document a view shows: doc_for(j), at word level when "level" is "word", rolled out when
  /// "transform" is "rollout" (and `allow_rollout`).
  DocPtr view_doc(const json& j, bool allow_rollout = true) {
    DocPtr d = doc_for(j);
    const std::string level = get_string(j, "level", "token");
    if (level != "token" && level != "word") http_fail(400, fmt::format("'level' must be token or word, got '{}'", level));
    if (level == "word") d = derived(d, "words");
    const std::string transform = get_string(j, "transform");
    if (!transform.empty() && transform != "rollout")
      http_fail(400, fmt::format("'transform' must be rollout or empty, got '{}'", transform));
    if (allow_rollout && transform == "rollout") d = derived(d, "rollout");
    return d;
  }

  /// {"model": M, "text": T} or {"store": S, "doc": ID}.
  DocPtr doc_for(const json& j) {
    const std::string store_name = get_string(j, "store");
    if (!store_name.empty()) return store_doc(store_name, get_string(j, "doc", "", 4096));
    std::string model_name = get_string(j, "model");
    if (model_name.empty()) {
      if (model_order.empty()) http_fail(400, "no model given ('model') and this server has none");
      model_name = model_order.front();
    }
    auto it = j.find("text");
    if (it == j.end() || !it->is_string()) http_fail(400, "give 'text' (a string) with 'model', or 'store' and 'doc'");
    const std::string& text = it->get_ref<const std::string&>();
    // Bytes first (cheap): 4 bytes per code point at most.
    if (int64_t(text.size()) > 4 * options.limits.max_text_chars)
      http_fail(413, fmt::format("the text has {} bytes; this server accepts at most {} characters (--max-text)",
                                 text.size(), options.limits.max_text_chars));
    return model_doc(model_name, text);
  }

  // -- figures --

  struct Figure {
    std::string bytes, content_type, command, file_name;
    std::vector<std::string> steps;   ///< `atlas process` commands before `command`
  };

  Figure render(const json& j) {
    const auto kinds = render::figure_kinds();
    std::string kind = get_string(j, "kind", "heatmap");
    json jv = j;   // "rollout" is a heatmap of `atlas process rollout`'s output
    if (kind == "rollout") {
      kind = "heatmap";
      jv["transform"] = "rollout";
    }
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
      http_fail(400, fmt::format("unknown figure kind '{}' (known: {})", kind, fmt::join(kinds, ", ")));
    const std::string format = get_string(j, "format", "svg");
    static const std::map<std::string, std::string> types = {
        {"png", "image/png"}, {"svg", "image/svg+xml"}, {"pdf", "application/pdf"}, {"eps", "application/postscript"}};
    if (!types.count(format)) http_fail(400, fmt::format("unknown format '{}' (png, svg, pdf, eps)", format));

    DocPtr a = view_doc(jv);
    DocPtr b;
    const json& jb = get_object(j, "b");
    if (kind == "contrast") {
      if (jb.empty()) {
        b = a;
      } else {
        json jbv = jb;   // B is seen at A's level
        jbv["level"] = jv.value("level", json("token"));
        b = view_doc(jbv);
      }
    }
    auto da = a->data();   // errors reading a stored document surface here, before rendering
    if (b) (void)b->data();

    render::VisualizeOptions o;
    o.kind = kind;
    o.layer = get_string(j, "layer");
    o.head = get_string(j, "head");
    o.layer_b = get_string(j, "layer_b");
    o.head_b = get_string(j, "head_b");
    // A negative index counts from the end (as /api/run); `atlas visualize` takes model indices.
    auto from_end = [](std::string& spec, const std::vector<int64_t>& stored) {
      if (spec.size() > 1 && spec[0] == '-' && spec.find_first_not_of("0123456789", 1) == std::string::npos &&
          spec.size() < 6) {
        const int64_t back = std::stoll(spec.substr(1));
        if (back >= 1 && back <= int64_t(stored.size())) spec = std::to_string(stored[stored.size() - size_t(back)]);
      }
    };
    from_end(o.layer, da->layers);
    from_end(o.head, da->heads);
    if (b) {
      from_end(o.layer_b, b->data()->layers);
      from_end(o.head_b, b->data()->heads);
    }
    o.dpi = int(get_number(j, "dpi", 300, 10, options.limits.max_dpi));
    o.style = get_string(j, "style", "paper");
    if (o.style != "paper" && o.style != "slides" && o.style != "dark")
      http_fail(400, fmt::format("unknown style '{}' (paper, slides, dark)", o.style));
    o.colormap = get_string(j, "colormap");
    if (!o.colormap.empty()) {
      const auto names = render::Colormap::names();
      if (std::find(names.begin(), names.end(), o.colormap) == names.end())
        http_fail(400, fmt::format("unknown colormap '{}' (known: {})", o.colormap, fmt::join(names, ", ")));
    }
    o.values = get_bool(j, "values");
    o.hide_special = get_bool(j, "hide_special");
    o.raw_tokens = get_bool(j, "raw_tokens");
    o.threshold = get_number(j, "threshold", 0.05, 0, 1);
    o.focus = get_string(j, "focus");
    o.target = get_string(j, "target");
    o.title = get_string(j, "title");

    // The equivalent command line; flags at their CLI default are left out.
    const std::string file_name = kind + "." + format;
    std::vector<std::string> args = {"atlas", "visualize", kind, a->cli_input};
    // A second document's files are named with "_b" on the command line (attention_b.npz, words_b.npz).
    auto b_name = [](std::string s) {
      for (const char* f : {"attention", "words", "rollout"}) {
        const std::string from = std::string(f) + ".npz", to = std::string(f) + "_b.npz";
        for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size())
          if (p == 0 || s[p - 1] == ' ') s.replace(p, from.size(), to);
      }
      return s;
    };
    if (b) args.push_back(b == a ? a->cli_input : b_name(b->cli_input));
    args.insert(args.end(), {"-o", file_name});
    auto flag = [&](const char* name, const std::string& value) {
      if (!value.empty()) args.insert(args.end(), {name, value});
    };
    flag("--layer", o.layer);
    flag("--head", o.head);
    flag("--layer-b", o.layer_b);
    flag("--head-b", o.head_b);
    if (o.dpi != 300) flag("--dpi", std::to_string(o.dpi));
    if (o.style != "paper") flag("--style", o.style);
    flag("--colormap", o.colormap);
    if (o.values) args.push_back("--values");
    if (o.hide_special) args.push_back("--hide-special");
    if (o.raw_tokens) args.push_back("--raw-tokens");
    if (o.threshold != 0.05) flag("--threshold", fmt::format("{}", o.threshold));
    flag("--focus", o.focus);
    flag("--target", o.target);
    flag("--title", o.title);
    std::string command;
    for (const auto& arg : args) command += (command.empty() ? "" : " ") + shell_quote(arg);
    std::vector<std::string> steps = a->steps;
    if (b && b != a)
      for (const auto& s : b->steps) steps.push_back(b_name(s));

    const fs::path dir = fresh_dir("f");
    struct Cleanup {
      fs::path d;
      ~Cleanup() {
        std::error_code ec;
        fs::remove_all(d, ec);
      }
    } cleanup{dir};
    o.inputs = {a->spec};
    o.loaded = {da};   // read once per document, not at every render
    if (b) {
      o.inputs.push_back(b->spec);
      o.loaded.push_back(b->data());
    }
    o.output = dir / file_name;
    o.command_line = command;
    o.jobs = 1;
    {
      Phase phase("render");
      render::visualize(o);
    }
    return {read_file(o.output), types.at(format), command, file_name, steps};
  }

  // -- handlers --

  /// The [Q][K] matrix shown (the mean over the selected layers and heads), rounded to 5 decimals,
  /// as JSON text: written directly (a 500-token text has 250,000 numbers; a json tree of them took
  /// longer to build and dump than the forward pass of an extension).
  static std::string matrix_json(const format::AttentionData& a, const std::vector<int64_t>& lp,
                                 const std::vector<int64_t>& hp) {
    std::vector<double> m(size_t(a.q * a.k), 0.0);
    for (int64_t li : lp)
      for (int64_t hi : hp) {
        const float* x = a.matrix(li, hi);
        for (size_t i = 0; i < m.size(); ++i) m[i] += x[i];
      }
    const double n = double(lp.size() * hp.size());
    std::string out;
    out.reserve(m.size() * 8 + size_t(a.q) * 3 + 2);
    out += '[';
    for (int64_t i = 0; i < a.q; ++i) {
      out += i ? ",[" : "[";
      for (int64_t k = 0; k < a.k; ++k) {
        if (k) out += ',';
        append_rounded(out, m[size_t(i * a.k + k)] / n);
      }
      out += ']';
    }
    out += ']';
    return out;
  }
  /// round(v * 1e5) / 1e5 as JSON: "0", "1", "0.12345", "0.5" (trailing zeros dropped); values
  /// outside [0, 1] (not attention weights) through fmt, non-finite ones as null.
  static void append_rounded(std::string& out, double v) {
    if (!std::isfinite(v)) {
      out += "null";
      return;
    }
    const double r = std::round(v * 1e5);
    if (r < 0 || r > 1e5) {
      out += fmt::format("{}", r / 1e5);
      return;
    }
    int64_t x = int64_t(r);
    if (x == 0) {
      out += '0';
    } else if (x == 100000) {
      out += '1';
    } else {
      char digits[8] = {'0', '.', 0, 0, 0, 0, 0, 0};
      for (int d = 6; d >= 2; --d, x /= 10) digits[d] = char('0' + x % 10);
      int len = 7;
      while (digits[len - 1] == '0') --len;
      out.append(digits, size_t(len));
    }
  }

  /// The /api/run answer without its "attention" (matrix_json, appended by api_run).
  json doc_json(const DocPtr& d, const std::string& layer, const std::string& head, std::string* matrix) {
    auto data = d->data();
    const format::AttentionData& a = *data;
    const auto lp = select_positions(layer, a.layers, "layer");
    const auto hp = select_positions(head, a.heads, "head");
    *matrix = matrix_json(a, lp, hp);
    json offsets = json::array();
    for (const auto& o : a.offsets) offsets.push_back({o[0], o[1]});
    json next = json::array();
    for (const auto& t : d->result.next_top) next.push_back({{"id", t.id}, {"label", t.label}, {"probability", t.probability}});
    json out = {{"model", d->model},
                {"store", d->store},
                {"doc", d->doc_id},
                {"text", a.text},
                {"tokens", a.token_labels},
                {"raw_tokens", a.tokens},
                {"special", a.special},
                {"offsets", offsets},
                {"layers", a.layers},
                {"heads", a.heads},
                {"causal", a.causal_mask()},
                {"layer", layer.empty() ? "mean" : layer},
                {"head", head.empty() ? "mean" : head},
                {"next", next},
                {"model_name", a.model_name},
                {"seconds_model", d->seconds_model},
                {"reused_tokens", d->result.reused_tokens},
                {"incremental", d->result.reused_tokens > 0},
                {"steps", d->steps},
                {"level", d->steps.empty() || d->steps.front().find("process words") == std::string::npos ? "token" : "word"}};
    if (!d->model.empty()) {
      ModelSlot& s = *models.at(d->model);
      const std::string& cd = options.run.compute_dtype;
      const bool f32 = cd.empty() || cd == "float32";
      bool onednn = false;   // the same products as this server's (extract's default is --gemm openblas)
      {
        std::lock_guard<std::mutex> lock(s.load_mutex);
        onednn = s.model && s.model->info().onednn_gemm;
      }
      out["extract_command"] = fmt::format("atlas extract --model {} --text {}{}{} -o attention.npz",
                                           shell_quote(s.entry.path.string()), shell_quote(d->text),
                                           f32 ? "" : " --compute-dtype " + cd, onednn ? " --gemm onednn" : "");
    }
    return out;
  }

  json model_json(ModelSlot& s) {
    std::lock_guard<std::mutex> lock(s.load_mutex);
    json m = {{"name", s.entry.name}, {"loaded", bool(s.model)}};
    if (s.model) {
      const auto& i = s.model->info();
      m.update({{"model_type", i.model_type}, {"model_class", i.model_class}, {"num_layers", i.num_layers},
                {"num_heads", i.num_heads}, {"causal", i.causal}, {"next_token", i.next_token},
                {"max_tokens", i.max_tokens}, {"kv_cache", i.kv_cache}});
    }
    if (!s.load_error.empty()) m["error"] = s.load_error;
    return m;
  }

  Response api_models() {
    json ms = json::array();
    for (const auto& name : model_order) ms.push_back(model_json(*models.at(name)));
    const Limits& l = options.limits;
    json out = {{"models", ms},
                {"stores", store_order},
                {"kinds", kinds_with_rollout()},
                {"colormaps", render::Colormap::names()},
                {"version", version()},
                {"word_level", true},
                {"compute_dtype", options.run.compute_dtype},
                {"gemm", options.run.gemm},
                {"limits", {{"max_text_chars", l.max_text_chars}, {"max_tokens", l.max_tokens},
                            {"max_body_bytes", l.max_body_bytes}, {"max_dpi", l.max_dpi}}}};
    return json_response(out);
  }

  static std::vector<std::string> kinds_with_rollout() {
    auto k = render::figure_kinds();
    k.push_back("rollout");
    return k;
  }

  static Response json_response(const json& j) {
    Response r;
    r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
    return r;
  }

  Response api_run(const json& j) {
    const auto t0 = Clock::now();
    const uint64_t runs_before = runs;
    json jv = j;
    if (get_string(j, "kind") == "rollout") jv["transform"] = "rollout";
    DocPtr d = view_doc(jv);
    std::string matrix;
    json out = doc_json(d, get_string(j, "layer", "mean"), get_string(j, "head", "mean"), &matrix);
    out["computed"] = runs != runs_before;   // false: from the cache (or another request ran it)
    out["seconds_total"] = seconds_since(t0);
    Response r = json_response(out);
    r.body.pop_back();   // the object's '}'
    r.body += ",\"attention\":";
    r.body += matrix;
    r.body += '}';
    return r;
  }

  Response api_render(const json& j) {
    Figure f = render(j);
    Response r;
    if (get_bool(j, "inline") && f.content_type == "image/svg+xml") {
      // The ~1 MB SVG string is escaped by json_string (what dump() writes, a few times faster);
      // the keys sort, so "svg" is last: {"command":…,"file_name":…,"steps":…,"svg":"…"}.
      if (!utf8::valid(f.bytes))
        return json_response({{"svg", f.bytes}, {"command", f.command}, {"steps", f.steps}, {"file_name", f.file_name}});
      Phase phase("encode");
      Response r;
      r.body = json_response({{"command", f.command}, {"steps", f.steps}, {"file_name", f.file_name}}).body;
      r.body.pop_back();   // '}'
      r.body += ",\"svg\":";
      r.body += json_string(f.bytes);
      r.body += '}';
      return r;
    }
    r.content_type = f.content_type;
    r.body = std::move(f.bytes);
    r.headers.push_back({"Content-Disposition", "attachment; filename=\"" + f.file_name + "\""});
    r.headers.push_back({"X-Atlas-Command", header_safe(f.command)});
    return r;
  }

  static std::string header_safe(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
      if (c >= 0x20 && c < 0x7f && c != '%') out += char(c);
      else out += fmt::format("%{:02X}", c);
    }
    return out;
  }

  Response api_npz(const json& j) {
    json jv = j;
    if (get_string(j, "kind") == "rollout") jv["transform"] = "rollout";
    DocPtr d = view_doc(jv);
    Response r;
    r.content_type = "application/octet-stream";
    if (!d->store.empty() && d->steps.empty()) {
      StoreSlot& st = store(d->store);
      const fs::path dir = fresh_dir("n");
      const fs::path out = dir / "attention.npz";
      {
        std::lock_guard<std::mutex> lock(st.mutex);
        format::cat_document(*st.reader, d->doc_id, out);
      }
      r.body = read_file(out);
      std::error_code ec;
      fs::remove_all(dir, ec);
    } else {
      r.body = read_file(d->file());
    }
    const std::string name = d->steps.empty() ? "attention.npz" : d->cli_input;
    r.headers.push_back({"Content-Disposition", "attachment; filename=\"" + name + "\""});
    return r;
  }

  Response api_heads(const json& j) {
    DocPtr d = view_doc(j, /*allow_rollout=*/false);
    auto data = d->data();
    json out = head_metrics(*data, lexicon());
    out["command"] = fmt::format("atlas analyze heads {} --json", shell_quote(d->cli_input));
    out["steps"] = d->steps;
    return json_response(out);
  }

  /// The function-word lexicon of `atlas analyze heads` (its default, --lang en), read once.
  const analyze::Lexicon& lexicon() {
    std::call_once(lexicon_once, [this] { lexicon_ = analyze::load_lexicon("en"); });
    return lexicon_;
  }
  std::once_flag lexicon_once;
  analyze::Lexicon lexicon_;

  Response api_swap(const json& j) {
    const std::string model_name = get_string(j, "model", model_order.empty() ? "" : model_order.front());
    auto it = j.find("text");
    if (it == j.end() || !it->is_string()) http_fail(400, "give 'text' (a string)");
    const std::string text = it->get<std::string>();
    const GenderSwap swap = gender_swap(text);
    if (swap.replacements == 0) http_fail(400, "the text has no gendered words to swap (he, she, his, her, man, woman ...)");
    DocPtr a = model_doc(model_name, text);
    DocPtr b = model_doc(model_name, swap.text);
    auto da = a->data();
    auto db = b->data();
    json out = {{"text_a", text}, {"text_b", swap.text}, {"replacements", swap.replacements},
                {"words", swap.words}, {"tokens_a", da->token_labels}, {"tokens_b", db->token_labels}};
    // Next-token probabilities: the union of both top lists, largest change first.
    const auto& pa = a->result.next_probabilities;
    const auto& pb = b->result.next_probabilities;
    json next = json::array();
    if (!pa.empty() && pa.size() == pb.size()) {
      std::vector<std::pair<int64_t, std::string>> ids;
      for (const auto* top : {&a->result.next_top, &b->result.next_top})
        for (const auto& t : *top)
          if (std::none_of(ids.begin(), ids.end(), [&](const auto& x) { return x.first == t.id; }))
            ids.push_back({t.id, t.label});
      std::sort(ids.begin(), ids.end(), [&](const auto& x, const auto& y) {
        return std::abs(pb[size_t(y.first)] - pa[size_t(y.first)]) < std::abs(pb[size_t(x.first)] - pa[size_t(x.first)]);
      });
      for (const auto& [id, label] : ids)
        next.push_back({{"id", id}, {"label", label}, {"p_a", pa[size_t(id)]}, {"p_b", pb[size_t(id)]},
                        {"delta", pb[size_t(id)] - pa[size_t(id)]}});
    }
    out["next"] = next;
    // Attention change per layer (head mean), position by position when the token counts agree.
    json per_layer = json::array();
    if (da->q == db->q && da->num_layers == db->num_layers && da->num_heads == db->num_heads) {
      for (int64_t l = 0; l < da->num_layers; ++l) {
        double sum = 0, mx = 0;
        for (int64_t i = 0; i < da->q * da->k; ++i) {
          double ma = 0, mb = 0;
          for (int64_t h = 0; h < da->num_heads; ++h) {
            ma += da->matrix(l, h)[i];
            mb += db->matrix(l, h)[i];
          }
          const double diff = std::abs(mb - ma) / double(da->num_heads);
          sum += diff;
          mx = std::max(mx, diff);
        }
        per_layer.push_back({{"layer", da->layers[size_t(l)]}, {"mean_abs", sum / double(da->q * da->k)}, {"max_abs", mx}});
      }
    }
    out["attention_change"] = per_layer;
    out["same_length"] = da->q == db->q;
    return json_response(out);
  }

  Response api_stores() {
    json out = json::array();
    for (const auto& name : store_order) {
      StoreSlot& st = *stores.at(name);
      std::lock_guard<std::mutex> lock(st.mutex);
      const auto& run = st.reader->info().run;
      out.push_back({{"name", name}, {"documents", st.reader->entries().size()}, {"ok", st.reader->ok_count()},
                     {"failed", st.reader->failed_count()},
                     {"model", run.contains("model") ? run["model"] : json()}});
    }
    return json_response({{"stores", out}});
  }

  Response api_store_docs(const std::string& name, const Request& req) {
    StoreSlot& st = store(name);
    auto param = [&](const char* key) -> std::string {
      auto it = req.query.find(key);
      return it == req.query.end() ? "" : it->second;
    };
    std::string q = param("q");
    if (q.size() > 256) http_fail(413, "'q' is longer than 256 bytes");
    int64_t limit = 50;
    if (!param("limit").empty()) {
      try {
        limit = std::clamp<int64_t>(std::stoll(param("limit")), 1, 1000);
      } catch (...) {
        http_fail(400, "'limit' must be a number");
      }
    }
    std::string ql = lower(q);
    json docs = json::array();
    int64_t matched = 0;
    std::lock_guard<std::mutex> lock(st.mutex);
    for (const auto& e : st.reader->entries()) {
      std::string text;
      if (e.ok()) text = stored_text(st, e);
      if (!ql.empty() && lower(e.id).find(ql) == std::string::npos && lower(text).find(ql) == std::string::npos) continue;
      if (++matched > limit) continue;
      docs.push_back({{"id", e.id}, {"tokens", e.tokens}, {"status", e.status},
                      {"text", text.size() > 200 ? utf8_prefix(text, 200) + "…" : text}});
    }
    return json_response({{"store", name}, {"matched", matched}, {"docs", docs}});
  }

  static std::string lower(std::string s) {
    for (char& c : s)
      if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return s;
  }
  static std::string utf8_prefix(const std::string& s, size_t bytes) {
    size_t n = std::min(bytes, s.size());
    while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return s.substr(0, n);
  }

  /// The text a stored document was computed from (its meta), read once.
  std::string stored_text(StoreSlot& st, const format::ManifestEntry& e) {
    auto it = st.texts.find(e.id);
    if (it != st.texts.end()) return it->second;
    std::string text;
    try {
      const io::NpzReader& npz = st.reader->shard(e);
      const std::string member = format::document_prefix(e.id) + "meta";
      if (npz.contains(member)) {
        json m = parse_json(npz.get(member).to_string(), "meta", false);
        if (m.is_object() && m.contains("input") && m["input"].is_object() && m["input"].contains("text") &&
            m["input"]["text"].is_string())
          text = m["input"]["text"].get<std::string>();
      }
    } catch (const Error&) {
    }
    st.texts[e.id] = text;
    return text;
  }

  Response route(const Request& req) {
    const std::string& p = req.path;
    if (p.rfind("/api/", 0) == 0) {
      const bool get = req.method == "GET" || req.method == "HEAD";
      const bool post = req.method == "POST";
      if (p == "/api/models" && get) return api_models();
      if (p == "/api/stores" && get) return api_stores();
      const std::string store_prefix = "/api/store/";
      if (p.rfind(store_prefix, 0) == 0 && get) {
        const std::string rest = p.substr(store_prefix.size());
        const size_t slash = rest.find('/');
        if (slash != std::string::npos && rest.substr(slash) == "/docs") return api_store_docs(rest.substr(0, slash), req);
        http_fail(404, fmt::format("no API route '{}'", p));
      }
      static const std::vector<std::string> post_routes = {"/api/run", "/api/render", "/api/npz", "/api/heads",
                                                           "/api/swap"};
      if (std::find(post_routes.begin(), post_routes.end(), p) != post_routes.end()) {
        if (!post) http_fail(405, fmt::format("{} takes POST with a JSON body", p));
        const json j = parse_body(req.body);
        if (p == "/api/run") return api_run(j);
        if (p == "/api/render") return api_render(j);
        if (p == "/api/npz") return api_npz(j);
        if (p == "/api/heads") return api_heads(j);
        return api_swap(j);
      }
      if (p == "/api/models" || p == "/api/stores") http_fail(405, fmt::format("{} takes GET", p));
      http_fail(404, fmt::format("no API route '{}'", p));
    }
    if (req.method != "GET" && req.method != "HEAD") http_fail(405, "static files take GET");
    const Asset* asset = find_asset(p == "/" ? "/index.html" : p);
    if (!asset) http_fail(404, "not found");
    Response r;
    r.content_type = asset->content_type;
    r.body.assign(reinterpret_cast<const char*>(asset->data), asset->size);
    r.headers.push_back({"Cache-Control", "no-cache"});
    return r;
  }
};

App::App(ServeOptions options, ModelOpener opener) : impl_(std::make_unique<Impl>(std::move(options), std::move(opener))) {
  Impl& m = *impl_;
  std::map<std::string, int> taken;
  for (auto& e : m.options.models) {
    if (e.name.empty()) e.name = unique_name(fs::path(e.path).lexically_normal().filename().string(), taken);
    if (e.name.empty() || e.name == ".") e.name = unique_name("model", taken);
    ATLAS_CHECK(!taken.count(e.name), InputError, "two models are named '{}'", e.name);
    taken[e.name] = 1;
    auto s = std::make_unique<ModelSlot>();
    s->entry = e;
    m.model_order.push_back(e.name);
    m.models[e.name] = std::move(s);
  }
  std::map<std::string, int> store_taken;
  for (const auto& dir : m.options.stores) {
    auto s = std::make_unique<StoreSlot>();
    s->dir = fs::absolute(dir).lexically_normal();
    s->name = unique_name(s->dir.filename().string(), store_taken);
    store_taken[s->name] = 1;
    ATLAS_CHECK(format::is_store(s->dir), InputError, "--store '{}' is not an attention store (no store.json)", dir.string());
    s->reader = std::make_unique<format::StoreReader>(s->dir);
    m.store_order.push_back(s->name);
    m.stores[s->name] = std::move(s);
  }
  if (m.options.work_dir.empty()) {
    m.work_dir = fs::temp_directory_path() / fmt::format("atlas-serve-{}", ::getpid());
    m.own_work_dir = true;
  } else {
    m.work_dir = m.options.work_dir;
  }
  fs::create_directories(m.work_dir);
  for (const auto& name : m.model_order) {
    ModelSlot& s = *m.models.at(name);
    if (s.entry.preload) m.loaded(s);
  }
}

App::~App() {
  if (!impl_) return;
  impl_->cache.clear();   // each result removes its folder
  if (impl_->own_work_dir) {
    std::error_code ec;
    fs::remove_all(impl_->work_dir, ec);
  }
}

const ServeOptions& App::options() const { return impl_->options; }

Response App::handle(const Request& request) noexcept {
  try {
    try {
      const auto t0 = Clock::now();
      request_phases.clear();
      Response r = impl_->route(request);
      if (!request_phases.empty()) {
        add_phase("total", seconds_since(t0));
        std::string v;
        for (const auto& [name, ms] : request_phases) v += fmt::format("{}{};dur={:.1f}", v.empty() ? "" : ", ", name, ms);
        r.headers.push_back({"Server-Timing", v});
      }
      return r;
    } catch (const HttpError& e) {
      return error_response(e.status, e.what());
    } catch (const InputError& e) {
      return error_response(400, e.what());
    } catch (const FormatError& e) {
      return error_response(400, e.what());
    } catch (const std::bad_alloc&) {
      return error_response(500, "out of memory");
    } catch (const std::exception& e) {
      return error_response(500, e.what());
    }
  } catch (...) {
    Response r;
    r.status = 500;
    r.body = "{\"error\":\"internal error\"}";
    return r;
  }
}

}  // namespace atlas::serve
