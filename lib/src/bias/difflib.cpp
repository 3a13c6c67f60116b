// difflib.SequenceMatcher, the parts get_opcodes() needs, following CPython's Lib/difflib.py line by
// line (find_longest_match, get_matching_blocks, get_opcodes); isjunk is None as in the callers.
#include "atlas/bias/difflib.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

namespace atlas::bias {
namespace {

struct Match {
  int64_t i, j, k;
};

class SequenceMatcher {
 public:
  SequenceMatcher(const std::vector<int64_t>& a, const std::vector<int64_t>& b, bool autojunk) : a_(a), b_(b) {
    // __chain_b: b2j maps each item of b to its indices, ascending.
    for (int64_t j = 0; j < static_cast<int64_t>(b.size()); ++j) b2j_[b[static_cast<size_t>(j)]].push_back(j);
    const auto n = static_cast<int64_t>(b.size());
    if (autojunk && n >= 200) {
      const int64_t ntest = n / 100 + 1;
      for (auto it = b2j_.begin(); it != b2j_.end();) {
        if (static_cast<int64_t>(it->second.size()) > ntest) it = b2j_.erase(it);
        else ++it;
      }
    }
  }

  Match find_longest_match(int64_t alo, int64_t ahi, int64_t blo, int64_t bhi) const {
    int64_t besti = alo, bestj = blo, bestsize = 0;
    std::unordered_map<int64_t, int64_t> j2len, newj2len;
    static const std::vector<int64_t> nothing;
    for (int64_t i = alo; i < ahi; ++i) {
      newj2len.clear();
      auto found = b2j_.find(a_[static_cast<size_t>(i)]);
      const std::vector<int64_t>& js = found == b2j_.end() ? nothing : found->second;
      for (int64_t j : js) {
        if (j < blo) continue;
        if (j >= bhi) break;
        auto prev = j2len.find(j - 1);
        const int64_t k = (prev == j2len.end() ? 0 : prev->second) + 1;
        newj2len[j] = k;
        if (k > bestsize) {
          besti = i - k + 1;
          bestj = j - k + 1;
          bestsize = k;
        }
      }
      std::swap(j2len, newj2len);
    }
    // No item is junk (isjunk is None), so only the first pair of CPython's extension loops can move:
    // they extend the match over equal items that are not junk (popular items included).
    while (besti > alo && bestj > blo && a_[static_cast<size_t>(besti - 1)] == b_[static_cast<size_t>(bestj - 1)]) {
      --besti;
      --bestj;
      ++bestsize;
    }
    while (besti + bestsize < ahi && bestj + bestsize < bhi &&
           a_[static_cast<size_t>(besti + bestsize)] == b_[static_cast<size_t>(bestj + bestsize)])
      ++bestsize;
    return {besti, bestj, bestsize};
  }

  std::vector<Match> get_matching_blocks() const {
    const auto la = static_cast<int64_t>(a_.size()), lb = static_cast<int64_t>(b_.size());
    std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>> queue{{0, la, 0, lb}};
    std::vector<Match> blocks;
    while (!queue.empty()) {
      auto [alo, ahi, blo, bhi] = queue.back();
      queue.pop_back();
      const Match x = find_longest_match(alo, ahi, blo, bhi);
      if (x.k) {
        blocks.push_back(x);
        if (alo < x.i && blo < x.j) queue.emplace_back(alo, x.i, blo, x.j);
        if (x.i + x.k < ahi && x.j + x.k < bhi) queue.emplace_back(x.i + x.k, ahi, x.j + x.k, bhi);
      }
    }
    std::sort(blocks.begin(), blocks.end(),
              [](const Match& p, const Match& q) { return std::tie(p.i, p.j, p.k) < std::tie(q.i, q.j, q.k); });
    int64_t i1 = 0, j1 = 0, k1 = 0;
    std::vector<Match> non_adjacent;
    for (const Match& m : blocks) {
      if (i1 + k1 == m.i && j1 + k1 == m.j) {
        k1 += m.k;
      } else {
        if (k1) non_adjacent.push_back({i1, j1, k1});
        i1 = m.i;
        j1 = m.j;
        k1 = m.k;
      }
    }
    if (k1) non_adjacent.push_back({i1, j1, k1});
    non_adjacent.push_back({la, lb, 0});
    return non_adjacent;
  }

 private:
  const std::vector<int64_t>& a_;
  const std::vector<int64_t>& b_;
  std::map<int64_t, std::vector<int64_t>> b2j_;
};

}  // namespace

std::vector<Opcode> get_opcodes(const std::vector<int64_t>& a, const std::vector<int64_t>& b, bool autojunk) {
  SequenceMatcher m(a, b, autojunk);
  int64_t i = 0, j = 0;
  std::vector<Opcode> answer;
  for (const Match& blk : m.get_matching_blocks()) {
    std::string tag;
    if (i < blk.i && j < blk.j) tag = "replace";
    else if (i < blk.i) tag = "delete";
    else if (j < blk.j) tag = "insert";
    if (!tag.empty()) answer.push_back({tag, i, blk.i, j, blk.j});
    i = blk.i + blk.k;
    j = blk.j + blk.k;
    if (blk.k) answer.push_back({"equal", blk.i, i, blk.j, j});
  }
  return answer;
}

Spans get_spans(const std::vector<int64_t>& a, const std::vector<int64_t>& b, bool modified) {
  Spans s;
  for (const Opcode& op : get_opcodes(a, b)) {
    if ((op.tag == "equal") == modified) continue;
    for (int64_t x = op.i1; x < op.i2; ++x) s.a.push_back(x);
    for (int64_t x = op.j1; x < op.j2; ++x) s.b.push_back(x);
  }
  return s;
}

}  // namespace atlas::bias
