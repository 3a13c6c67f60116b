// Corpus extraction against the bare forward pass of the same model on the same batches, in one
// process (the model runtime linked in, no dlopen), sides alternated and repeated:
//   A. bare forward: load_model() once, Model::forward with NullTaps, no logits, nothing kept;
//   B. forward + a float16 copy of every attention map (what the engine's tap does before writing);
//   C. run_corpus(): every layer and head, --dtype float16, into a fresh store (timed without the
//      model load, which the bare side does not pay; seconds_model, seconds_load also printed);
// and, for the --compute-dtype bfloat16 goal, A under CPU autocast to bfloat16. Kernel CPU time and
// minor page faults of each side say how much of the time goes to fresh memory.
// Issue target: C / A <= 1.25. OpenMP threads busy-wait and the machine is shared, so single runs
// are noisy: medians over the rounds are what to quote.
//
//   bench_corpus --model build/bench-data/gpt2-small [--docs 64 --tokens 128 --batch-size 8
//                --threads 2 --rounds 3 --id-limit 1000 --work /tmp/atlas-bench-corpus]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "atlas/extract/extract.hpp"
#include "atlas/models/model.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// CPU time in the kernel and minor page faults so far (fresh memory: the kernel zeroes each page).
struct Usage {
  double sys_s = 0, faults = 0;
  static Usage now() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return {static_cast<double>(u.ru_stime.tv_sec) + 1e-6 * static_cast<double>(u.ru_stime.tv_usec),
            static_cast<double>(u.ru_minflt)};
  }
  Usage operator-(const Usage& o) const { return {sys_s - o.sys_s, faults - o.faults}; }
};

/// Runs f, returns its seconds and adds its kernel time and page faults to `u`.
template <class F>
double measured(std::vector<Usage>& u, F f) {
  const Usage u0 = Usage::now();
  const double s = f();
  u.push_back(Usage::now() - u0);
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// What the engine's tap does with each layer, without the writing: cut to the document's length
/// (a no-op here: equal lengths) and convert to float16 in a contiguous CPU tensor.
class CopyTaps final : public atlas::models::Taps {
 public:
  bool wants(const std::string& name, int64_t) const override { return name == "attn_probs"; }
  void emit(const std::string&, int64_t, const at::Tensor& value) override {
    for (int64_t b = 0; b < value.size(0); ++b) {
      at::Tensor p = value.select(0, b).to(at::kHalf).contiguous();  // [H,T,T]
      bytes_ += static_cast<double>(p.nbytes());
    }
  }
  double bytes_ = 0;
};

struct Args {
  fs::path model;
  fs::path work = fs::temp_directory_path() / "atlas-bench-corpus";
  int64_t docs = 64, tokens = 128, batch_size = 8, id_limit = 1000;
  int threads = 2, rounds = 3;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "bench_corpus: {} needs a value\n", k);
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--model") a.model = value();
    else if (k == "--work") a.work = value();
    else if (k == "--docs") a.docs = std::stoll(value());
    else if (k == "--tokens") a.tokens = std::stoll(value());
    else if (k == "--batch-size") a.batch_size = std::stoll(value());
    else if (k == "--id-limit") a.id_limit = std::stoll(value());
    else if (k == "--threads") a.threads = std::stoi(value());
    else if (k == "--rounds") a.rounds = std::stoi(value());
    else {
      fmt::print(stderr, "usage: bench_corpus --model DIR [--docs N --tokens N --batch-size N --threads N "
                         "--rounds N --id-limit N --work DIR]\n");
      std::exit(2);
    }
  }
  if (a.model.empty()) {
    fmt::print(stderr, "bench_corpus: --model DIR is required (bench/make_gpt2_small.py makes one)\n");
    std::exit(2);
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  fs::create_directories(a.work);
  const fs::path corpus = a.work / "corpus.jsonl", store = a.work / "store";

  // The same random documents for both sides: JSONL {"ids": [...]}, ids below --id-limit (the
  // bench checkpoints carry the 1000-token reference tokenizer; the engine labels every id with it).
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> pick(0, a.id_limit - 1);
  std::vector<std::vector<int64_t>> docs(static_cast<size_t>(a.docs));
  {
    std::ofstream f(corpus);
    for (auto& d : docs) {
      for (int64_t t = 0; t < a.tokens; ++t) d.push_back(pick(rng));
      f << "{\"ids\": [" << fmt::format("{}", fmt::join(d, ",")) << "]}\n";
    }
  }

  at::set_num_threads(a.threads);
  const auto t_load = Clock::now();
  std::unique_ptr<atlas::models::Model> model = atlas::models::load_model(a.model);
  const double load_s = seconds_since(t_load);
  const auto& info = model->info();

  // The batches run_corpus makes: equal lengths, so consecutive documents, batch_size at a time.
  std::vector<atlas::models::Inputs> batches;
  for (int64_t b0 = 0; b0 < a.docs; b0 += a.batch_size) {
    const int64_t n = std::min(a.batch_size, a.docs - b0);
    at::Tensor ids = at::empty({n, a.tokens}, at::kLong);
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(ids[i].data_ptr<int64_t>(), docs[static_cast<size_t>(b0 + i)].data(),
                  static_cast<size_t>(a.tokens) * sizeof(int64_t));
    atlas::models::Inputs in;
    in.input_ids = ids;
    if (n > 1) in.attention_mask = at::ones({n, a.tokens}, at::kLong);   // as run_batch passes it
    batches.push_back(in);
  }

  auto bare = [&](atlas::models::Taps& taps) {
    c10::InferenceMode guard;
    const auto t0 = Clock::now();
    for (const auto& in : batches) (void)model->forward(in, taps, false);
    return seconds_since(t0);
  };
  // The floor for --compute-dtype bfloat16: the same pass under CPU autocast, as the engine runs it.
  auto bare_bf16 = [&] {
    atlas::models::NullTaps none;
    const at::ScalarType prev = at::autocast::get_autocast_cpu_dtype();   // 1.13 refuses kFloat here
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
    at::autocast::increment_nesting();
    const double s = bare(none);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_cpu_enabled(false);
    at::autocast::set_autocast_cpu_dtype(prev);
    return s;
  };

  atlas::extract::CorpusOptions o;
  o.model_dir = a.model;
  o.input.path = corpus;
  o.output = store;
  o.batch_size = a.batch_size;
  o.dtype = "float16";
  o.threads = a.threads;
  o.quiet = true;
  o.command_line = "bench_corpus";

  fmt::print("bench_corpus: {} ({}), {} layers x {} heads, {} threads\n", info.model_class, a.model.string(),
             info.num_layers, info.num_heads, a.threads);
  fmt::print("  {} documents x {} tokens, batch size {}, every attention stored as float16; model load {:.2f} s\n",
             a.docs, a.tokens, a.batch_size, load_s);
  fmt::print("  warm-up: one bare pass\n");
  {
    atlas::models::NullTaps none;
    (void)bare(none);
  }

  std::vector<double> t_bare, t_bf16, t_copy, t_corpus, t_corpus_model, t_corpus_load, ratio;
  std::vector<Usage> u_bare, u_bf16, u_copy, u_corpus;
  double store_bytes = 0, copy_bytes = 0;
  fmt::print("\n  round   bare forward   + f16 copy   corpus (no load)   of it model   corpus / bare\n");
  for (int r = 0; r < a.rounds; ++r) {
    // Alternate which side goes first, so that neither always follows the other.
    auto run_bare = [&] {
      atlas::models::NullTaps none;
      t_bare.push_back(measured(u_bare, [&] { return bare(none); }));
      CopyTaps copy;
      t_copy.push_back(measured(u_copy, [&] { return bare(copy); }));
      copy_bytes = copy.bytes_;
      t_bf16.push_back(measured(u_bf16, bare_bf16));
    };
    auto run_corpus = [&] {
      fs::remove_all(store);   // a store that exists would be resumed, i.e. skipped
      atlas::extract::CorpusSummary s;
      (void)measured(u_corpus, [&] {
        s = atlas::extract::run_corpus(o);
        return 0.0;
      });
      if (s.documents_ok != a.docs) {
        fmt::print(stderr, "bench_corpus: {} of {} documents written ({} failed{})\n", s.documents_ok, a.docs,
                   s.documents_failed, s.failures.empty() ? "" : ": " + s.failures[0].error);
        std::exit(1);
      }
      t_corpus.push_back(s.seconds_total - s.seconds_load);
      t_corpus_model.push_back(s.seconds_model);
      t_corpus_load.push_back(s.seconds_load);
      store_bytes = 0;
      for (const auto& e : fs::directory_iterator(store)) store_bytes += static_cast<double>(e.file_size());
    };
    if (r % 2 == 0) {
      run_bare();
      run_corpus();
    } else {
      run_corpus();
      run_bare();
    }
    ratio.push_back(t_corpus.back() / t_bare.back());
    fmt::print("  {:>5}   {:>10.2f} s   {:>8.2f} s   {:>14.2f} s   {:>9.2f} s   {:>11.2f}x\n", r + 1, t_bare.back(),
               t_copy.back(), t_corpus.back(), t_corpus_model.back(), ratio.back());
  }
  auto sys = [](const std::vector<Usage>& u) {
    std::vector<double> v;
    for (const Usage& x : u) v.push_back(x.sys_s);
    return median(v);
  };
  auto faults = [](const std::vector<Usage>& u) {
    std::vector<double> v;
    for (const Usage& x : u) v.push_back(x.faults);
    return median(v);
  };
  const double tokens = static_cast<double>(a.docs * a.tokens);
  const double mb = median(t_bare), mc = median(t_copy), mx = median(t_corpus), mm = median(t_corpus_model);
  fmt::print("  median  {:>10.2f} s   {:>8.2f} s   {:>14.2f} s   {:>9.2f} s   {:>11.2f}x (median of per-round ratios)\n",
             mb, mc, mx, mm, median(ratio));
  fmt::print("\n  side                     tokens/s   vs bare   kernel CPU   minor page faults\n");
  fmt::print("  bare forward             {:8.0f}   (base)    {:7.2f} s   {:10.0f}\n", tokens / mb, sys(u_bare),
             faults(u_bare));
  fmt::print("  + f16 copy of attention  {:8.0f}   {:5.2f}x    {:7.2f} s   {:10.0f}   ({:.0f} MB converted)\n",
             tokens / mc, mc / mb, sys(u_copy), faults(u_copy), copy_bytes / 1e6);
  fmt::print("  bare forward, bfloat16   {:8.0f}   {:5.2f}x    {:7.2f} s   {:10.0f}   (autocast: the floor for "
             "--compute-dtype bfloat16)\n",
             tokens / median(t_bf16), median(t_bf16) / mb, sys(u_bf16), faults(u_bf16));
  fmt::print("  corpus extraction        {:8.0f}   {:5.2f}x    {:7.2f} s   {:10.0f}   (with its model load)\n",
             tokens / mx, mx / mb, sys(u_corpus), faults(u_corpus));
  fmt::print("\n  corpus extraction vs bare forward: {:.2f}x (target <= 1.25x; median of rounds; store {:.0f} MB; "
             "model load {:.2f} s not counted)\n",
             mx / mb, store_bytes / 1e6, median(t_corpus_load));
  fmt::print("    of which: forward with taps {:.2f} s ({:.2f}x bare), the rest (store writing, manifest) {:.2f} s\n", mm,
             mm / mb, mx - mm);
  fs::remove_all(a.work);
  return 0;
}
