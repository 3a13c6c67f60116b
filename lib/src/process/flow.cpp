// Attention flow (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers", §3): the
// max-flow from an output position to an input token through the layered attention graph. The
// reference implementation calls networkx.maximum_flow_value once per pair; here one Dinic solver
// per thread reuses the graph of an output layer for every (output, input) pair and resets only the
// edges a pair touched.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "atlas/core/error.hpp"
#include "atlas/core/index_list.hpp"
#include "atlas/process/process.hpp"

namespace atlas::process {
namespace {

// Residual capacities below this are treated as saturated. Capacities are row-stochastic
// probabilities (at least ~1e-7 where float32 attention is not 0), so this loses nothing real.
constexpr double kEps = 1e-12;

// A directed graph in CSR form, edges ordered by tail so that a node's edges (forward and reverse)
// are contiguous: edge a of node v is a in [first[v], first[v+1]), rev[a] its partner.
struct Graph {
  int64_t nodes = 0;
  std::vector<int64_t> first;     // [nodes + 1]
  std::vector<int32_t> head;      // [2E] target node
  std::vector<int32_t> rev;       // [2E] the reverse edge
  std::vector<double> cap;        // [2E] capacity (0 for reverse edges)

  static Graph build(int64_t nodes, const std::vector<std::tuple<int64_t, int64_t, double>>& edges) {
    Graph g;
    g.nodes = nodes;
    const size_t m = edges.size() * 2;
    g.first.assign(static_cast<size_t>(nodes + 1), 0);
    for (const auto& [u, v, c] : edges) {
      ++g.first[u + 1];
      ++g.first[v + 1];
    }
    for (int64_t v = 0; v < nodes; ++v) g.first[v + 1] += g.first[v];
    g.head.resize(m);
    g.rev.resize(m);
    g.cap.resize(m);
    std::vector<int64_t> fill(g.first.begin(), g.first.end() - 1);
    for (const auto& [u, v, c] : edges) {
      const int64_t a = fill[u]++, r = fill[v]++;
      g.head[a] = static_cast<int32_t>(v);
      g.cap[a] = c;
      g.rev[a] = static_cast<int32_t>(r);
      g.head[r] = static_cast<int32_t>(u);
      g.cap[r] = 0.0;
      g.rev[r] = static_cast<int32_t>(a);
    }
    return g;
  }
};

// Dinic's algorithm (BFS level graph + blocking flow by DFS with current-arc pointers). The flow
// lives apart from the shared graph so threads can share it; reset() undoes only touched edges.
class Dinic {
 public:
  explicit Dinic(const Graph& g)
      : g_(g), flow_(g.cap.size(), 0.0), level_(static_cast<size_t>(g.nodes), -1), it_(static_cast<size_t>(g.nodes)) {}

  /// `first_levels`: levels of a first phase known without a BFS (the layered attention graph:
  /// every source-sink path goes down one layer per edge), or empty.
  double run(int64_t s, int64_t t, const std::vector<int32_t>* first_levels = nullptr) {
    double total = 0;
    bool have = false;
    if (first_levels) {
      level_ = *first_levels;
      have = level_[s] == 0 && level_[t] > 0;
    }
    if (!have) have = bfs(s, t);
    while (have) {
      for (int64_t v = 0; v < g_.nodes; ++v) it_[v] = g_.first[v];
      while (true) {
        double f = dfs(s, t, 1e300);
        if (f <= kEps) break;
        total += f;
      }
      have = bfs(s, t);
    }
    reset();
    return total;
  }

 private:
  double residual(int64_t a) const { return g_.cap[a] - flow_[a]; }

  bool bfs(int64_t s, int64_t t) {
    std::fill(level_.begin(), level_.end(), -1);
    queue_.clear();
    queue_.push_back(s);
    level_[s] = 0;
    for (size_t qi = 0; qi < queue_.size(); ++qi) {
      const int64_t v = queue_[qi];
      if (level_[t] >= 0 && level_[v] >= level_[t]) break;  // nothing beyond the sink's level is used
      for (int64_t a = g_.first[v]; a < g_.first[v + 1]; ++a) {
        const int32_t w = g_.head[a];
        if (level_[w] < 0 && residual(a) > kEps) {
          level_[w] = level_[v] + 1;
          queue_.push_back(w);
        }
      }
    }
    return level_[t] >= 0;
  }

  double dfs(int64_t v, int64_t t, double pushed) {
    if (v == t) return pushed;
    const int32_t want = level_[v] + 1;
    for (int64_t& a = it_[v]; a < g_.first[v + 1]; ++a) {
      const int32_t w = g_.head[a];
      if (level_[w] != want) continue;
      const double r = residual(a);
      if (r <= kEps) continue;
      const double f = dfs(w, t, std::min(pushed, r));
      if (f > kEps) {
        if (flow_[a] == 0.0) touched_.push_back(static_cast<int32_t>(a));
        flow_[a] += f;
        flow_[g_.rev[a]] -= f;
        return f;
      }
    }
    level_[v] = -1;   // dead end for the rest of this phase
    return 0;
  }

  void reset() {
    for (int32_t a : touched_) flow_[a] = flow_[g_.rev[a]] = 0.0;
    touched_.clear();
  }

  const Graph& g_;
  std::vector<double> flow_;
  std::vector<int32_t> level_;
  std::vector<int64_t> it_;
  std::vector<int64_t> queue_;
  std::vector<int32_t> touched_;
};

}  // namespace

double max_flow(int64_t nodes, const std::vector<std::tuple<int64_t, int64_t, double>>& edges, int64_t source,
                int64_t sink) {
  ATLAS_CHECK(source >= 0 && source < nodes && sink >= 0 && sink < nodes, InputError,
              "max_flow: source {} / sink {} outside 0-{}", source, sink, nodes - 1);
  for (const auto& [u, v, c] : edges)
    ATLAS_CHECK(u >= 0 && u < nodes && v >= 0 && v < nodes && c >= 0, InputError,
                "max_flow: bad edge {} -> {} (capacity {})", u, v, c);
  if (source == sink) return 0;
  Graph g = Graph::build(nodes, edges);
  Dinic solver(g);
  return solver.run(source, sink);
}

Result flow(const format::AttentionData& d, const FlowOptions& o) {
  for (size_t i = 1; i < d.layers.size(); ++i)
    ATLAS_CHECK(d.layers[i] == d.layers[i - 1] + 1, InputError,
                "{}: flow runs through consecutive layers, but the file stores layers {}", d.source,
                fmt::join(d.layers, ","));
  const std::vector<int64_t> out_pos =
      select_indices(o.layers, d.layers, {"--layers", "layer", "'" + d.source + "'"});
  const int64_t t = d.q;
  const std::vector<double> a = residual_matrices(d, o.residual);
  std::vector<int64_t> out_layers;
  for (int64_t p : out_pos) out_layers.push_back(d.layers[p]);

  Result r;
  r.data = d;
  r.data.num_layers = static_cast<int64_t>(out_pos.size());
  r.data.num_heads = 1;
  r.data.layers = out_layers;
  r.data.heads = {kAggregated};
  r.data.topk = 0;
  r.data.attention.assign(static_cast<size_t>(r.data.num_layers * t * t), 0.0f);

  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<int64_t>(threads, t));

  for (size_t oi = 0; oi < out_pos.size(); ++oi) {
    // Node (k, p) = k * t + p, k = 0 the input tokens, k = L+1 the output of stored layer L. Edge
    // (k+1, p) -> (k, q) carries Â_k[p][q].
    const int64_t top = out_pos[oi] + 1;
    std::vector<std::tuple<int64_t, int64_t, double>> edges;
    for (int64_t k = 0; k < top; ++k) {
      const double* m = a.data() + k * t * t;
      for (int64_t p = 0; p < t; ++p)
        for (int64_t q = 0; q < t; ++q)
          if (m[p * t + q] > 0) edges.emplace_back((k + 1) * t + p, k * t + q, m[p * t + q]);
    }
    const Graph g = Graph::build((top + 1) * t, edges);
    float* out = r.data.attention.data() + static_cast<int64_t>(oi) * t * t;
    std::atomic<int64_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&] {
      try {
        Dinic solver(g);
        // First phase without a BFS: node (k, p) is at level top - k; other outputs and other
        // inputs than the pair's are off the level graph.
        std::vector<int32_t> levels(static_cast<size_t>((top + 1) * t));
        for (int64_t k = 0; k <= top; ++k)
          for (int64_t p = 0; p < t; ++p) levels[k * t + p] = static_cast<int32_t>(top - k);
        for (int64_t i = next++; i < t; i = next++) {
          for (int64_t p = 0; p < t; ++p) levels[top * t + p] = p == i ? 0 : -1;
          for (int64_t j = 0; j < t; ++j) {
            for (int64_t p = 0; p < t; ++p) levels[p] = p == j ? static_cast<int32_t>(top) : -1;
            out[i * t + j] = static_cast<float>(solver.run(top * t + i, j, &levels));
          }
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    };
    std::vector<std::thread> pool;
    for (int w = 1; w < threads; ++w) pool.emplace_back(work);
    work();
    for (auto& th : pool) th.join();
    if (error) std::rethrow_exception(error);
  }
  r.step = {{"op", "flow"}, {"residual", o.residual}, {"output_layers", out_layers}, {"layers", d.layers},
            {"heads", d.heads}, {"algorithm", "dinic"}};
  return r;
}

}  // namespace atlas::process
