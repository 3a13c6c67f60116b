// The `atlas serve` request handlers (serve::App::handle) on arbitrary requests, without a socket.
// Input: the first line is "METHOD PATH[?QUERY]" (the query split at '&' and '='), the rest the body.
// The App serves one stand-in model ("fake", no LibTorch: each code point of the text is a token,
// attention is written through format::DocumentWriter), so run, render, words, rollout, swap, heads
// and npz all execute. Contract: handle() never throws; every status is 200..599 and every error
// body is JSON {"error": "..."}.
#include <nlohmann/json.hpp>

#include <mutex>
#include <stdexcept>

#include "atlas/core/utf8.hpp"
#include "atlas/extract/serve_model.hpp"
#include "atlas/format/attention.hpp"
#include "atlas/io/npz.hpp"
#include "atlas/serve/server.hpp"
#include "fuzz_support.hpp"
#include "fuzz_targets.hpp"

namespace atlas::fuzz {
namespace {

class FakeModel final : public extract::ServeModel {
 public:
  FakeModel() {
    info_.model_type = "fake";
    info_.model_class = "FakeForCausalLM";
    info_.num_layers = 2;
    info_.num_heads = 2;
    info_.causal = true;
    info_.next_token = true;
  }
  const extract::ServeModelInfo& info() const override { return info_; }
  std::string label(int64_t id) const override { return std::string(1, char('a' + id % 26)); }

  extract::ServeResult run(const extract::ServeRequest& r) override {
    const std::u32string cps = utf8::decode(r.text.value_or(""));
    format::TokenArrays t;
    t.input_ids.push_back(1);
    t.tokens.push_back("<s>");
    t.token_labels.push_back("<s>");
    t.offsets.insert(t.offsets.end(), {-1, -1});
    t.special.push_back(1);
    for (size_t i = 0; i < cps.size() && i < 12; ++i) {
      std::string s;
      utf8::append(s, cps[i] < 0x20 ? U'?' : cps[i]);
      t.input_ids.push_back(int64_t(cps[i] % 97));
      t.tokens.push_back(s);
      t.token_labels.push_back(s);
      t.offsets.insert(t.offsets.end(), {int64_t(i), int64_t(i) + 1});
      t.special.push_back(0);
    }
    const int64_t q = t.size();
    io::NpzWriter npz(r.output, io::Compression::Stored);
    format::DocumentWriter w(npz);
    format::AttentionShape shape{2, 2, q, q};
    auto stream = w.begin_attention(format::kSelfAttention, shape);
    for (int64_t l = 0; l < 2; ++l) {
      std::vector<float> a(size_t(2 * q * q), 0.0f);
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t i = 0; i < q; ++i) {
          double sum = 0;
          for (int64_t j = 0; j <= i; ++j) sum += 1.0 + double((t.input_ids[size_t(j)] + l + h) % 5);
          for (int64_t j = 0; j <= i; ++j)
            a[size_t((h * q + i) * q + j)] = float((1.0 + double((t.input_ids[size_t(j)] + l + h) % 5)) / sum);
        }
      stream.write_layer(a.data(), a.size() * sizeof(float));
    }
    stream.finish();
    w.write_selection({0, 1}, {0, 1});
    w.write_tokens(t);
    format::AttentionMeta meta = format::AttentionMeta::now();
    meta.model.path = "/fake";
    meta.model.model_type = "fake";
    meta.model.num_layers = 2;
    meta.model.num_heads = 2;
    meta.model.causal = true;
    meta.input.text = r.text;
    w.write_meta(meta);
    npz.close();
    extract::ServeResult out;
    out.tokens = q;
    out.next_probabilities.assign(8, 0.125f);
    for (int64_t id = 0; id < 3; ++id) out.next_top.push_back({id, label(id), 0.125});
    return out;
  }

 private:
  extract::ServeModelInfo info_;
};

serve::App& app() {
  static serve::App* a = [] {
    serve::ServeOptions o;
    o.models.push_back({"fake", "/fake", true});
    o.work_dir = scratch_dir("serve");
    o.limits.max_text_chars = 200;
    o.limits.max_body_bytes = 1 << 16;
    o.limits.cache_entries = 4;
    o.limits.max_dpi = 100;   // keeps PNG renders small
    return new serve::App(o, [](const extract::RunOptions&) { return std::make_shared<FakeModel>(); });
  }();
  return *a;
}

}  // namespace

int fuzz_serve(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string first = in.substr(0, nl);
  serve::Request req;
  const size_t sp = first.find(' ');
  req.method = first.substr(0, sp);
  std::string target = sp == std::string::npos ? "/" : first.substr(sp + 1);
  const size_t qm = target.find('?');
  if (qm != std::string::npos) {
    const std::string query = target.substr(qm + 1);
    target.resize(qm);
    size_t start = 0;
    while (start <= query.size()) {
      size_t amp = query.find('&', start);
      if (amp == std::string::npos) amp = query.size();
      const std::string kv = query.substr(start, amp - start);
      const size_t eq = kv.find('=');
      req.query.emplace(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
      start = amp + 1;
    }
  }
  req.path = target;
  if (nl != std::string::npos) req.body = in.substr(nl + 1);
  static std::mutex mutex;   // libFuzzer is single-threaded; the doctest replay may not be
  std::lock_guard<std::mutex> lock(mutex);
  const serve::Response r = app().handle(req);
  if (r.status < 200 || r.status > 599) throw std::logic_error("serve: HTTP status " + std::to_string(r.status));
  if (r.status >= 400) {
    const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("error") || !j["error"].is_string() ||
        j["error"].get<std::string>().empty())
      throw std::logic_error("serve: error response is not {\"error\": ...}: " + r.body.substr(0, 200));
  }
  return 0;
}

}  // namespace atlas::fuzz
