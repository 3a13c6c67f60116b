#pragma once
// Safetensors dtype spellings (private to io/).
#include <optional>
#include <string>

#include "atlas/io/checkpoint.hpp"

namespace atlas::io {

/// "F32" -> TensorDType::F32 ...; nullopt for a name outside the supported set.
std::optional<TensorDType> parse_dtype_name(const std::string& name);
/// "F64, F32, ..." for error messages.
std::string supported_dtype_names();

}  // namespace atlas::io
