#pragma once
/// Figures read attention documents through the format module (atlas/format/attention.hpp); these
/// names keep render's call sites short.
#include <string>

#include "atlas/format/attention.hpp"

namespace atlas::render {

using format::AttentionData;

/// Reads a document for drawing: format::load_attention, then every value must be finite. A NaN or
/// Inf is a FormatError naming the file, the (model) layer and head, the cell and how many heads are
/// affected, never a figure drawn with a silent colour for "no value".
AttentionData load_attention(const std::string& spec, const std::string& kind = format::kSelfAttention);
/// The finiteness check alone (for data that did not come from a file).
void check_finite(const AttentionData& d);

}  // namespace atlas::render
