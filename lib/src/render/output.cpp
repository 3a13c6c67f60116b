#include "render/output.hpp"

#include <cairo-pdf.h>
#include <cairo-ps.h>
#include <cairo-svg.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cmath>
#include <fstream>
#include <map>

#include <zlib.h>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/version.hpp"

namespace atlas::render {
namespace fs = std::filesystem;

Format format_of(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".png") return Format::Png;
  if (ext == ".svg") return Format::Svg;
  if (ext == ".pdf") return Format::Pdf;
  if (ext == ".eps") return Format::Eps;
  ATLAS_FAIL(InputError, "output '{}': unknown figure format '{}' (expected .png, .svg, .pdf or .eps)",
             path.string(), ext);
}

namespace {

void check_surface(cairo_surface_t* s, const fs::path& path) {
  ATLAS_CHECK(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS, IoError, "cannot write '{}': {}",
              path.string(), cairo_status_to_string(cairo_surface_status(s)));
}

void paint(cairo_surface_t* surface, const Figure& figure, const Style& style, double scale);

/// Vector surfaces (SVG, PDF, EPS): draw at 1 pt per unit, flush, and release the surface.
void paint_and_finish(cairo_surface_t* s, const Figure& figure, const Style& style, const fs::path& path) {
  paint(s, figure, style, 1.0);
  cairo_surface_finish(s);
  cairo_status_t st = cairo_surface_status(s);
  cairo_surface_destroy(s);
  ATLAS_CHECK(st == CAIRO_STATUS_SUCCESS, IoError, "cannot write '{}': {}", path.string(),
              cairo_status_to_string(st));
}

void paint(cairo_surface_t* surface, const Figure& figure, const Style& style, double scale) {
  cairo_t* cr = cairo_create(surface);
  cairo_scale(cr, scale, scale);
  set_color(cr, style.background);
  cairo_paint(cr);
  figure.draw(cr);
  cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  ATLAS_CHECK(st == CAIRO_STATUS_SUCCESS, Error, "drawing failed: {}", cairo_status_to_string(st));
}

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

// Cairo's PNG writer records no resolution, so viewers and word processors assume 72 or 96 dpi and
// place a 300 dpi figure 3-4x too large. libpng (png_set_pHYs) is not among our libraries and cairo
// exposes no hook, so the pHYs chunk is spliced into cairo's output right after IHDR (where the PNG
// specification wants it: before IDAT), its CRC computed with zlib's crc32.
std::string with_png_dpi(const std::string& png, int dpi) {
  static const char kSignature[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};
  ATLAS_CHECK(png.size() >= 33 && png.compare(0, 8, kSignature, 8) == 0 && png.compare(12, 4, "IHDR") == 0,
              Error, "cairo wrote a PNG without an IHDR chunk first");
  auto be32 = [](std::string& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(char((v >> shift) & 0xFF));
  };
  const uint32_t ihdr_len = (uint32_t(uint8_t(png[8])) << 24) | (uint32_t(uint8_t(png[9])) << 16) |
                            (uint32_t(uint8_t(png[10])) << 8) | uint32_t(uint8_t(png[11]));
  const size_t after_ihdr = 8 + 12 + size_t(ihdr_len);  // signature, then length + type + data + crc
  // pHYs: pixels per metre in x and y, unit 1 (metre).
  const uint32_t ppm = uint32_t(std::lround(dpi / 0.0254));
  std::string chunk;
  be32(chunk, 9);
  chunk += "pHYs";
  be32(chunk, ppm);
  be32(chunk, ppm);
  chunk.push_back(char(1));
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(chunk.data() + 4), 13);
  be32(chunk, uint32_t(crc));
  std::string out = png.substr(0, after_ihdr);
  out += chunk;
  out.append(png, after_ihdr, std::string::npos);
  return out;
}

// Cairo numbers SVG ids (surface886, image890) with process-wide counters, so a second figure in the
// same process would differ; renumbering them in order of appearance makes output depend on the input only.
// Every occurrence of (glyph|surface|image|pattern|clip|mask|source|filter) followed by digits, scanned
// left to right (what the regex of that pattern matches; a hand-written scan, as std::regex took over
// half of a served heatmap's render time).
std::string canonical_svg_ids(const std::string& svg) {
  static const char* const kWords[] = {"glyph", "surface", "image", "pattern", "clip", "mask", "source", "filter"};
  constexpr size_t kN = sizeof kWords / sizeof kWords[0];
  size_t lengths[kN];
  for (size_t w = 0; w < kN; ++w) lengths[w] = std::strlen(kWords[w]);
  int next[kN] = {};
  std::map<std::string, std::string> renamed;
  std::string out;
  out.reserve(svg.size());
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  const size_t n = svg.size();
  size_t last = 0, i = 0;
  while (i < n) {
    const char c = svg[i];
    // First letters of the words: g s i p c m f.
    if (c != 'g' && c != 's' && c != 'i' && c != 'p' && c != 'c' && c != 'm' && c != 'f') {
      ++i;
      continue;
    }
    size_t end = 0, word = kN;
    for (size_t w = 0; w < kN; ++w) {
      const size_t len = lengths[w];
      if (i + len < n && svg.compare(i, len, kWords[w]) == 0 && is_digit(svg[i + len])) {
        end = i + len;
        while (end < n && is_digit(svg[end])) ++end;
        word = w;
        break;
      }
    }
    if (word == kN) {
      ++i;
      continue;
    }
    const std::string key = svg.substr(i, end - i);
    auto found = renamed.find(key);
    if (found == renamed.end()) found = renamed.emplace(key, kWords[word] + std::to_string(next[word]++)).first;
    out.append(svg, last, i - last);
    out += found->second;
    last = i = end;
  }
  out.append(svg, last, std::string::npos);
  return out;
}

}  // namespace

void write_figure(const fs::path& path, const Figure& figure, const Style& style, int dpi,
                  const Provenance& prov) {
  const Format format = format_of(path);
  ATLAS_CHECK(dpi >= 10 && dpi <= 2400, InputError, "--dpi must be in 10..2400, got {}", dpi);
  ATLAS_CHECK(figure.width > 0 && figure.height > 0, InputError, "figure size must be positive, got {} x {} pt",
              figure.width, figure.height);
  const std::string creator = fmt::format("atlas {}", version());
  write_atomically(path, [&](const fs::path& tmp) {
    switch (format) {
      case Format::Png: {
        const double scale = dpi / 72.0;
        const int w = static_cast<int>(std::lround(figure.width * scale));
        const int h = static_cast<int>(std::lround(figure.height * scale));
        ATLAS_CHECK(static_cast<int64_t>(w) * h <= 400'000'000LL, InputError,
                    "'{}': {} x {} pixels is too large (lower --dpi or the size)", path.string(), w, h);
        cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
        check_surface(s, path);
        try {
          paint(s, figure, style, scale);
        } catch (...) {
          cairo_surface_destroy(s);
          throw;
        }
        std::string png;
        cairo_status_t st = cairo_surface_write_to_png_stream(s, append_to_string, &png);
        cairo_surface_destroy(s);
        ATLAS_CHECK(st == CAIRO_STATUS_SUCCESS, IoError, "cannot write '{}': {}", path.string(),
                    cairo_status_to_string(st));
        png = with_png_dpi(png, dpi);
        errno = 0;
        std::ofstream out(tmp, std::ios::binary);
        out.write(png.data(), std::streamsize(png.size()));
        out.close();
        const int err = errno;  // the stream says only "failed"; errno says why (ENOSPC, EFBIG)
        ATLAS_CHECK(out.good(), IoError, "cannot write '{}'{}", path.string(),
                    err != 0 ? std::string(": ") + std::strerror(err) : "");
        break;
      }
      case Format::Svg: {
        // Into memory (the same bytes cairo writes to a file), then written once.
        std::string raw;
        cairo_surface_t* s = cairo_svg_surface_create_for_stream(append_to_string, &raw, figure.width, figure.height);
        check_surface(s, path);
        cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PT);
        paint_and_finish(s, figure, style, path);
        // Cairo's SVG has no metadata element; a comment after the XML declaration carries provenance.
        std::string svg = canonical_svg_ids(raw);
        raw = std::string();
        size_t eol = svg.find('\n');
        if (eol != std::string::npos) {
          std::string note = fmt::format("<!-- {}; {}; {} -->\n", creator, prov.title, prov.subject);
          // "--" may not appear inside an XML comment.
          for (size_t p; (p = note.find("--", 4)) != std::string::npos && p < note.size() - 4;) note.replace(p, 2, "- -");
          svg.insert(eol + 1, note);
        }
        errno = 0;
        std::ofstream out(tmp, std::ios::binary);
        out.write(svg.data(), std::streamsize(svg.size()));
        out.close();
        const int err = errno;
        ATLAS_CHECK(out.good(), IoError, "cannot write '{}'{}", path.string(),
                    err != 0 ? std::string(": ") + std::strerror(err) : "");
        break;
      }
      case Format::Pdf: {
        cairo_surface_t* s = cairo_pdf_surface_create(tmp.c_str(), figure.width, figure.height);
        check_surface(s, path);
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, prov.title.c_str());
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_SUBJECT, prov.subject.c_str());
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, creator.c_str());
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATE_DATE, prov.date.c_str());
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_MOD_DATE, prov.date.c_str());
        paint_and_finish(s, figure, style, path);
        break;
      }
      case Format::Eps: {
        std::string ps;
        cairo_surface_t* s = cairo_ps_surface_create_for_stream(append_to_string, &ps, figure.width, figure.height);
        check_surface(s, path);
        cairo_ps_surface_set_eps(s, 1);
        cairo_ps_surface_dsc_comment(s, fmt::format("%%Title: {}", prov.title).c_str());
        paint_and_finish(s, figure, style, path);
        // Cairo stamps the wall-clock time; the fixed date keeps the same input → same bytes.
        size_t p = ps.find("%%CreationDate:");
        if (p != std::string::npos) {
          size_t e = ps.find('\n', p);
          ps.replace(p, e - p, "%%CreationDate: " + prov.date);
        }
        size_t c = ps.find("%%Creator:");
        if (c != std::string::npos) {
          size_t e = ps.find('\n', c);
          ps.replace(c, e - c, "%%Creator: " + creator + " (cairo)");
        }
        std::ofstream out(tmp, std::ios::binary);
        out << ps;
        ATLAS_CHECK(out.good(), IoError, "cannot write '{}'", path.string());
        break;
      }
    }
  });
}

}  // namespace atlas::render
