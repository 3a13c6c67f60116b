#include "atlas/render/attention_data.hpp"

#include <cmath>
#include <vector>

#include "atlas/core/error.hpp"

namespace atlas::render {

void check_finite(const AttentionData& d) {
  const int64_t cells = d.q * d.k;
  // (layer, head) pairs holding a non-finite value; the first cell found is named.
  std::vector<std::string> bad;
  int64_t first_l = -1, first_h = -1, first_i = -1, first_j = -1;
  float first_v = 0;
  for (int64_t l = 0; l < d.num_layers; ++l)
    for (int64_t h = 0; h < d.num_heads; ++h) {
      const float* m = d.matrix(l, h);
      for (int64_t c = 0; c < cells; ++c)
        if (!std::isfinite(m[c])) {
          if (first_l < 0) {
            first_l = l, first_h = h, first_i = c / d.k, first_j = c % d.k, first_v = m[c];
          }
          bad.push_back(fmt::format("L{}H{}", d.layers[l], d.heads[h]));
          break;
        }
    }
  if (first_l < 0) return;
  ATLAS_FAIL(FormatError,
             "'{}': {} holds {} at layer {}, head {} (query {}, key {}); non-finite values in {} of {} heads{}",
             d.source, d.kind, std::isnan(first_v) ? "NaN" : (first_v > 0 ? "Inf" : "-Inf"), d.layers[first_l],
             d.heads[first_h], first_i, first_j, bad.size(), d.num_layers * d.num_heads,
             bad.size() > 1 ? fmt::format(" ({}{})", fmt::join(bad.begin(), bad.begin() + std::min<size_t>(bad.size(), 8), ", "),
                                          bad.size() > 8 ? ", …" : "")
                            : "");
}

AttentionData load_attention(const std::string& spec, const std::string& kind) {
  AttentionData d = format::load_attention(spec, kind);
  check_finite(d);
  return d;
}

}  // namespace atlas::render
