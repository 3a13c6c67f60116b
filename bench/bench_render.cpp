// Render timings against baselines measured in the same run:
//   1. a 1024 x 1024 heatmap to PNG at 300 dpi vs. a plain cairo fill + PNG encode of a blank
//      surface with the same pixel count (what any PNG figure of that size costs at least);
//   2. a 12 x 12 grid of 128-token heads to PNG at 300 dpi vs. the same baseline at its size.
#include <cairo/cairo.h>  // the bench links atlas only; cairo comes with atlas_render
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "atlas/io/npz.hpp"
#include "atlas/render/visualize.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

void write_npz(const fs::path& path, int64_t layers, int64_t heads, int64_t q) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> att(size_t(layers * heads * q * q), 0.0f);
  for (int64_t m = 0; m < layers * heads; ++m)
    for (int64_t i = 0; i < q; ++i) {
      float* row = att.data() + (m * q + i) * q;
      float s = 0;
      for (int64_t j = 0; j <= i; ++j) s += row[j] = std::pow(u(rng), 6.0f);
      for (int64_t j = 0; j <= i; ++j) row[j] /= s;
    }
  std::vector<std::string> tokens;
  for (int64_t i = 0; i < q; ++i) tokens.push_back(fmt::format("tok{}", i));
  std::vector<int64_t> l(static_cast<size_t>(layers)), h(static_cast<size_t>(heads));
  for (int64_t i = 0; i < layers; ++i) l[i] = i;
  for (int64_t i = 0; i < heads; ++i) h[i] = i;
  atlas::io::NpzWriter w(path);
  w.add("attention", atlas::io::NdArray::from<float>({layers, heads, q, q}, att));
  w.add("layers", atlas::io::NdArray::from<int64_t>({layers}, l));
  w.add("heads", atlas::io::NdArray::from<int64_t>({heads}, h));
  w.add("tokens", atlas::io::NdArray::from_strings({q}, tokens));
  w.close();
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Baseline: fill a surface of the same pixel count and encode it as PNG.
double baseline(int w, int h, const fs::path& out) {
  auto t0 = Clock::now();
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
  cairo_t* cr = cairo_create(s);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_destroy(cr);
  cairo_surface_write_to_png(s, out.c_str());
  cairo_surface_destroy(s);
  return seconds_since(t0);
}

template <class F>
double best_of(int n, F f) {
  double best = 1e9;
  for (int i = 0; i < n; ++i) best = std::min(best, f());
  return best;
}

}  // namespace

int main() {
  const fs::path dir = fs::temp_directory_path() / "atlas-bench-render";
  fs::create_directories(dir);
  write_npz(dir / "big.npz", 1, 1, 1024);
  write_npz(dir / "grid.npz", 12, 12, 128);

  atlas::render::VisualizeOptions o;
  o.kind = "heatmap";
  o.inputs = {dir / "big.npz"};
  o.output = dir / "big.png";
  o.dpi = 300;
  o.head = "0";
  const double t_heat = best_of(3, [&] {
    auto t0 = Clock::now();
    atlas::render::visualize(o);
    return seconds_since(t0);
  });
  auto img = atlas::render::read_png(o.output);
  const double b_heat = best_of(3, [&] { return baseline(img.width, img.height, dir / "blank1.png"); });

  atlas::render::VisualizeOptions g = o;
  g.kind = "grid";
  g.inputs = {dir / "grid.npz"};
  g.output = dir / "grid.png";
  g.head = "";
  const double t_grid = best_of(3, [&] {
    auto t0 = Clock::now();
    atlas::render::visualize(g);
    return seconds_since(t0);
  });
  auto gimg = atlas::render::read_png(g.output);
  const double b_grid = best_of(3, [&] { return baseline(gimg.width, gimg.height, dir / "blank2.png"); });

  fmt::print("heatmap 1024x1024 -> PNG 300 dpi ({}x{} px): {:.3f} s (target < 0.5 s); blank fill+PNG baseline {:.3f} s; ratio {:.2f}x\n",
             img.width, img.height, t_heat, b_heat, t_heat / b_heat);
  fmt::print("grid 12x12 heads x 128 tokens -> PNG 300 dpi ({}x{} px): {:.3f} s (target < 2 s); baseline {:.3f} s; ratio {:.2f}x\n",
             gimg.width, gimg.height, t_grid, b_grid, t_grid / b_grid);
  fs::remove_all(dir);
  return 0;
}
