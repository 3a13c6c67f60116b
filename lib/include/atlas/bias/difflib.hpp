#pragma once
/// Python's difflib.SequenceMatcher(None, a, b).get_opcodes() on sequences of token ids, as CrowS-Pairs'
/// metric.py (nyu-mll/crows-pairs) and bias-bench's crows.py use it to find the tokens two sentences
/// share. Written out because no C++ library here reproduces difflib's exact choice of matches, and the
/// metric depends on it: the same longest-match search (lowest i, then lowest j among equally long
/// blocks), the same recursion order, and the "autojunk" heuristic (for b of 200 or more items, an item
/// occurring more than len(b) // 100 + 1 times is "popular": it never starts a match, though matches
/// may still be extended over it).
#include <cstdint>
#include <string>
#include <vector>

namespace atlas::bias {

struct Opcode {
  std::string tag;   // "equal", "replace", "delete", "insert"
  int64_t i1 = 0, i2 = 0, j1 = 0, j2 = 0;
  bool operator==(const Opcode& o) const {
    return tag == o.tag && i1 == o.i1 && i2 == o.i2 && j1 == o.j1 && j2 == o.j2;
  }
};

std::vector<Opcode> get_opcodes(const std::vector<int64_t>& a, const std::vector<int64_t>& b, bool autojunk = true);

/// Positions of a and of b inside "equal" opcodes (metric.py get_span), or, with `modified`, inside
/// every other opcode (bias-bench's modified-token variant).
struct Spans {
  std::vector<int64_t> a, b;
};
Spans get_spans(const std::vector<int64_t>& a, const std::vector<int64_t>& b, bool modified = false);

}  // namespace atlas::bias
