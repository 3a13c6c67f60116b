// difflib.SequenceMatcher's matching blocks, reimplemented: no library we use aligns sequences, and
// the rule must be the one a Python user checks against (docs/visualize.md).
#include "render/align.hpp"

#include <algorithm>
#include <map>
#include <tuple>

namespace atlas::render {

namespace {

struct Block {
  int64_t a, b, size;
};

// Longest run a[i..i+k) == b[j..j+k) within [alo, ahi) x [blo, bhi); ties go to the smallest i, then
// the smallest j, as difflib's find_longest_match does.
Block longest_match(const std::vector<std::string>& a, const std::map<std::string, std::vector<int64_t>>& b2j,
                    int64_t alo, int64_t ahi, int64_t blo, int64_t bhi) {
  Block best{alo, blo, 0};
  std::map<int64_t, int64_t> len;  // j -> length of the run ending at (i - 1, j)
  for (int64_t i = alo; i < ahi; ++i) {
    std::map<int64_t, int64_t> next;
    auto it = b2j.find(a[i]);
    if (it != b2j.end())
      for (int64_t j : it->second) {
        if (j < blo) continue;
        if (j >= bhi) break;
        auto prev = len.find(j - 1);
        const int64_t k = (prev == len.end() ? 0 : prev->second) + 1;
        next[j] = k;
        if (k > best.size) best = {i - k + 1, j - k + 1, k};
      }
    len.swap(next);
  }
  return best;
}

void matching_blocks(const std::vector<std::string>& a, const std::map<std::string, std::vector<int64_t>>& b2j,
                     int64_t alo, int64_t ahi, int64_t blo, int64_t bhi, std::vector<Block>& out) {
  // An explicit stack keeps long texts off the call stack.
  std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>> todo = {{alo, ahi, blo, bhi}};
  while (!todo.empty()) {
    auto [a0, a1, b0, b1] = todo.back();
    todo.pop_back();
    const Block m = longest_match(a, b2j, a0, a1, b0, b1);
    if (m.size == 0) continue;
    out.push_back(m);
    if (a0 < m.a && b0 < m.b) todo.emplace_back(a0, m.a, b0, m.b);
    if (m.a + m.size < a1 && m.b + m.size < b1) todo.emplace_back(m.a + m.size, a1, m.b + m.size, b1);
  }
  std::sort(out.begin(), out.end(), [](const Block& x, const Block& y) { return x.a < y.a; });
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> align_sequences(const std::vector<std::string>& a,
                                                         const std::vector<std::string>& b) {
  const auto na = int64_t(a.size()), nb = int64_t(b.size());
  std::vector<std::pair<int64_t, int64_t>> pairs;
  if (na == nb) {
    for (int64_t i = 0; i < na; ++i) pairs.emplace_back(i, i);
    return pairs;
  }
  std::map<std::string, std::vector<int64_t>> b2j;
  for (int64_t j = 0; j < nb; ++j) b2j[b[j]].push_back(j);
  std::vector<Block> blocks;
  matching_blocks(a, b2j, 0, na, 0, nb, blocks);
  blocks.push_back({na, nb, 0});  // sentinel: the tail after the last match is a gap too
  int64_t i = 0, j = 0;
  for (const Block& m : blocks) {
    // The gap before this block: a "replace" when both sides have words, paired in order.
    const int64_t n = std::min(m.a - i, m.b - j);
    for (int64_t t = 0; t < n; ++t) pairs.emplace_back(i + t, j + t);
    for (int64_t t = 0; t < m.size; ++t) pairs.emplace_back(m.a + t, m.b + t);
    i = m.a + m.size;
    j = m.b + m.size;
  }
  return pairs;
}

}  // namespace atlas::render
