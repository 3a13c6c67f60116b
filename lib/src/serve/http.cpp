// App behind cpp-httplib (Debian libcpp-httplib-dev): a bounded worker pool, body and time limits,
// JSON bodies for the errors httplib answers itself (413, 400 ...).
#include <httplib.h>

#include <fmt/format.h>

#include <condition_variable>
#include <csignal>
#include <deque>
#include <mutex>
#include <thread>

#include "atlas/core/error.hpp"
#include "atlas/serve/server.hpp"

namespace atlas::serve {
namespace {

/// httplib's ThreadPool (0.11) queues without bound. This one holds at most `max_queued`
/// accepted connections: when full, enqueue() blocks the accept loop, so further clients wait
/// in the kernel's listen backlog instead of in memory.
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(size_t threads, size_t max_queued) : max_queued_(std::max<size_t>(1, max_queued)) {
    for (size_t i = 0; i < std::max<size_t>(1, threads); ++i) threads_.emplace_back([this] { work(); });
  }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mutex_);
    space_.wait(lock, [&] { return jobs_.size() < max_queued_ || shutdown_; });
    if (shutdown_) return;
    jobs_.push_back(std::move(fn));
    ready_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shutdown_ = true;
    }
    ready_.notify_all();
    space_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
        if (shutdown_ && jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
        space_.notify_one();
      }
      fn();
    }
  }
  size_t max_queued_;
  std::vector<std::thread> threads_;
  std::deque<std::function<void()>> jobs_;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  bool shutdown_ = false;
};

httplib::Server* g_server = nullptr;
extern "C" void stop_server(int) {
  if (g_server) g_server->stop();
}

}  // namespace

void run_http(App& app, const std::function<void(const std::string& url)>& on_listening) {
  const ServeOptions& o = app.options();
  const Limits& lim = o.limits;
  httplib::Server svr;
  svr.new_task_queue = [&lim] { return new BoundedPool(size_t(lim.workers), size_t(lim.queue)); };
  svr.set_payload_max_length(size_t(lim.max_body_bytes));
  svr.set_read_timeout(lim.request_timeout_s, 0);
  svr.set_write_timeout(lim.request_timeout_s, 0);
  // Browsers keep connections open; a short keep-alive frees the worker an idle one holds.
  svr.set_keep_alive_timeout(2);
  svr.set_keep_alive_max_count(100);

  auto handler = [&app](const httplib::Request& req, httplib::Response& res) {
    Request r;
    r.method = req.method;
    r.path = req.path;
    for (const auto& [k, v] : req.params) r.query.emplace(k, v);
    r.body = req.body;
    Response out = app.handle(r);
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k, v);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_content(std::move(out.body), out.content_type);
  };
  svr.Get(".*", handler);
  svr.Post(".*", handler);
  svr.Put(".*", handler);
  svr.Delete(".*", handler);
  svr.Patch(".*", handler);
  svr.Options(".*", handler);
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string what = res.status == 413 ? "request body too large (--max-body; a form-encoded body is limited to 8 KiB: send Content-Type: application/json)"
                             : res.status == 404 ? "not found" : fmt::format("HTTP error {}", res.status);
    res.set_content(error_response(res.status, what).body, "application/json");
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(error_response(500, msg).body, "application/json");
  });

  int port = o.port;
  if (port == 0) {
    port = svr.bind_to_any_port(o.host);
    ATLAS_CHECK(port > 0, IoError, "cannot bind {} on any port", o.host);
  } else {
    ATLAS_CHECK(svr.bind_to_port(o.host, port), IoError,
                "cannot listen on {}:{} (in use, or not an address of this machine); choose another with --port",
                o.host, port);
  }
  g_server = &svr;
  std::signal(SIGINT, stop_server);
  std::signal(SIGTERM, stop_server);
  const bool v6 = o.host.find(':') != std::string::npos;
  on_listening(fmt::format("http://{}:{}/", v6 ? "[" + o.host + "]" : o.host, port));
  svr.listen_after_bind();
  g_server = nullptr;
}

}  // namespace atlas::serve
