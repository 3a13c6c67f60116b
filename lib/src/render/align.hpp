#pragma once
// Word alignment of two texts for `contrast` (docs/visualize.md, "contrast of different texts").
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace atlas::render {

/// Pairs of positions (i in a, j in b), increasing in both, that `contrast` compares cell by cell.
/// Equal lengths: position by position (a minimal pair: "Lily … She" / "Tom … He"). Otherwise the
/// matching blocks of Python's difflib.SequenceMatcher (longest common run first, recursively on
/// both sides; no junk heuristic) pair equal words, and inside each "replace" opcode the differing
/// words are paired in order (the first min(len) of each side); inserted, deleted and surplus
/// replaced words stay unpaired. Words compare by `key` (callers pass lower-cased, punctuation-free keys).
std::vector<std::pair<int64_t, int64_t>> align_sequences(const std::vector<std::string>& a,
                                                         const std::vector<std::string>& b);

}  // namespace atlas::render
