#pragma once
/// Figures read attention documents through the format module (atlas/format/attention.hpp); these
/// names keep render's call sites short.
#include "atlas/format/attention.hpp"

namespace atlas::render {

using format::AttentionData;
using format::load_attention;

}  // namespace atlas::render
