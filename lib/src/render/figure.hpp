#pragma once
// What a figure kind produces (its size and a draw function) and the matrices it draws, without
// Cairo's headers, so white-box tests of the figure kinds build without them.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

typedef struct _cairo cairo_t;  // as <cairo.h> declares it

namespace atlas::render {

/// A figure ready to be written: its size and a function that draws it.
struct Figure {
  double width = 0, height = 0;  // pt
  std::string title;             // PDF/SVG metadata
  std::function<void(cairo_t*)> draw;
};

/// A row-major matrix to draw as coloured cells; `mask` (optional) marks cells drawn as masked.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;
  std::vector<uint8_t> mask;
  bool masked(int64_t i, int64_t j) const { return !mask.empty() && mask[i * cols + j]; }
  float at(int64_t i, int64_t j) const { return values[i * cols + j]; }
};

}  // namespace atlas::render
