#pragma once
// Attention NPZ files with known values, written through atlas::io::NpzWriter (the real format).
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "atlas/io/npz.hpp"

namespace atlas::test {

struct FixtureSpec {
  std::vector<std::string> tokens = {"<s>", "The", "\u0120cat", "\u0120sat", "\u0120on", "\u0120the", "\u0120mat"};
  std::vector<std::string> labels = {"<s>", "The", " cat", " sat", " on", " the", " mat"};
  int64_t layers = 2, heads = 3;
  bool causal = true;
  bool with_meta = true;
  bool with_tokens = true;
  std::string text = "The cat sat on the mat";
  /// Cells {layer, head, query, key} set to `poison` (NaN unless told) to test the finiteness check.
  std::vector<std::array<int64_t, 4>> poisoned;
  float poison = std::nanf("");
  nlohmann::json meta_extra = nlohmann::json::object();  ///< merged into meta (e.g. "process")
};

/// A fixture whose text is its labels joined (special tokens left out), as a tokenizer with offsets
/// produces: `labels` are the pieces, `<...>` ones special.
inline FixtureSpec text_fixture(const std::vector<std::string>& labels) {
  FixtureSpec s;
  s.tokens = s.labels = labels;
  s.text.clear();
  for (const auto& l : labels)
    if (!(l.size() > 1 && l[0] == '<')) s.text += l;
  return s;
}

/// attention[l][h][i][j] for the fixtures: causal rows with a known, deterministic pattern.
inline float fixture_value(int64_t l, int64_t h, int64_t i, int64_t j, int64_t q, bool causal) {
  if (causal && j > i) return 0.0f;
  const int64_t n = causal ? i + 1 : q;
  // weights proportional to 1 + ((l + 2h + i + 3j) mod 5), normalised per row
  double sum = 0;
  for (int64_t t = 0; t < n; ++t) sum += 1 + ((l + 2 * h + i + 3 * t) % 5);
  return static_cast<float>((1 + ((l + 2 * h + i + 3 * j) % 5)) / sum);
}

inline void write_fixture(const std::filesystem::path& path, const FixtureSpec& s = {}) {
  const int64_t q = static_cast<int64_t>(s.tokens.size());
  std::vector<float> att;
  for (int64_t l = 0; l < s.layers; ++l)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < q; ++i)
        for (int64_t j = 0; j < q; ++j) att.push_back(fixture_value(l, h, i, j, q, s.causal));
  for (const auto& c : s.poisoned) att[size_t(((c[0] * s.heads + c[1]) * q + c[2]) * q + c[3])] = s.poison;
  io::NpzWriter w(path);
  w.add("attention", io::NdArray::from<float>({s.layers, s.heads, q, q}, att));
  std::vector<int64_t> layers, heads, offsets;
  for (int64_t l = 0; l < s.layers; ++l) layers.push_back(l);
  for (int64_t h = 0; h < s.heads; ++h) heads.push_back(h);
  w.add("layers", io::NdArray::from<int64_t>({s.layers}, layers));
  w.add("heads", io::NdArray::from<int64_t>({s.heads}, heads));
  if (s.with_tokens) {
    w.add("tokens", io::NdArray::from_strings({q}, s.tokens));
    w.add("token_labels", io::NdArray::from_strings({q}, s.labels));
  }
  int64_t pos = 0;
  io::NdArray special(io::DType::Bool, {q});
  for (int64_t i = 0; i < q; ++i) {
    const bool sp = s.labels[i].size() > 1 && s.labels[i][0] == '<';
    special.mutable_data()[i] = std::byte(sp ? 1 : 0);
    if (sp) {
      offsets.push_back(-1);
      offsets.push_back(-1);
    } else {
      int64_t len = 0;
      for (unsigned char c : s.labels[i]) len += (c & 0xC0) != 0x80;
      offsets.push_back(pos);
      offsets.push_back(pos + len);
      pos += len;
    }
  }
  w.add("offsets", io::NdArray::from<int64_t>({q, 2}, offsets));
  w.add("special", special);
  if (s.with_meta) {
    nlohmann::json meta = {{"format", "atlas.attention"}, {"format_version", 1}, {"tool", "atlas"},
                           {"version", "0.1.0"}, {"command_line", "atlas extract --test"},
                           {"created", "2026-01-02T03:04:05Z"},
                           {"model", {{"path", "/models/fixture-model"}, {"model_type", "llama"},
                                      {"causal", s.causal}, {"checkpoint_sha256", "0123abcd"}}},
                           {"input", {{"text", s.text}, {"source", "text"}}}};
    meta.update(s.meta_extra);
    w.add("meta", io::NdArray::scalar_string(meta.dump()));
  }
  w.close();
}

}  // namespace atlas::test
