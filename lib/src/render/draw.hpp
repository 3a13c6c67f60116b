#pragma once
// Internal drawing toolkit shared by the figure kinds: Pango text, colour bars, ticks, matrices.
// Every length is in points (1/72 in); PNG output scales the whole page by dpi / 72.
#include <cairo.h>

#include <functional>
#include <string>
#include <vector>

#include "atlas/render/colormap.hpp"
#include "atlas/render/style.hpp"
#include "render/figure.hpp"

namespace atlas::render {

struct TextSize {
  double width = 0, height = 0;
};

/// Size of `text` set in the style's font at `size` pt (logical extents).
TextSize measure_text(const Style& style, const std::string& text, double size, bool bold = false);
/// Draws `text` so that the point (ax * width, ay * height) of its box lands on (x, y), then rotates
/// it by `angle_deg` (counter-clockwise on the page) about that point.
void draw_text(cairo_t* cr, const Style& style, const std::string& text, double size, double x, double y,
               double ax, double ay, const Color& color, double angle_deg = 0, bool bold = false);
/// Title above a figure (and a muted subtitle line); returns the height used.
double title_height(const Style& style, const std::string& title, const std::string& subtitle);
void draw_title(cairo_t* cr, const Style& style, double width, const std::string& title, const std::string& subtitle);

void set_color(cairo_t* cr, const Color& c);

/// A token label as a reader should see it: control characters made visible, whitespace-only tokens
/// shown as "␣", cut to `max_chars` code points with "…".
std::string display_label(const std::string& label, int max_chars);
/// Keeps every step-th label so that labels `pitch` pt apart do not overlap at `font_height`.
int label_step(double pitch, double font_height);
/// The same for text lines stacked `pitch` pt apart (row labels, rotated column labels) set at
/// `font_size` pt: every label is kept while the pitch is about one font size.
int line_step(double pitch, double font_size);

/// "Nice" tick values covering [lo, hi] (about `target` of them).
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
std::string format_tick(double v, double step);

/// Width of a vertical colour bar with its ticks and rotated label.
double colorbar_width(const Style& style, double vmin, double vmax, const std::string& label);
void draw_colorbar(cairo_t* cr, const Style& style, const Colormap& cmap, double x, double y, double height,
                   double vmin, double vmax, const std::string& label);

struct MatrixStyle {
  const Colormap* cmap = nullptr;
  double vmin = 0, vmax = 1;
  bool values = false;   // print numbers in cells that are large enough
  bool hatch = true;     // hatch masked cells
  bool force_image = false;
};

/// Draws `m` with its top-left at (x, y) and cells of cell_w x cell_h pt. Large matrices become one
/// image (one pixel per cell, nearest-neighbour scaling); small ones vector rectangles.
void draw_matrix(cairo_t* cr, const Style& style, const Matrix& m, double x, double y, double cell_w,
                 double cell_h, const MatrixStyle& ms);

/// A thin frame around a plot area.
void draw_frame(cairo_t* cr, const Style& style, double x, double y, double w, double h);

}  // namespace atlas::render
