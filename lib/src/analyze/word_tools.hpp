#pragma once
// Word helpers shared by the case studies (coref, multilingual).
#include <cstdint>
#include <vector>

#include "atlas/process/words.hpp"

namespace atlas::analyze {

/// The word of segment 0 holding code point `pos` of the text, or -1.
int64_t word_at(const std::vector<process::Word>& words, int64_t pos);
/// Word-level attention from word `a` to word `b` in one head's [n, n] matrix: the mean over a's
/// tokens of the sum over b's tokens (Clark et al. 2019).
double word_attention_between(const float* m, int64_t n, const process::Word& a, const process::Word& b);

}  // namespace atlas::analyze
