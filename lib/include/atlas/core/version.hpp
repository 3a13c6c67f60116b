#pragma once
#include <string>

namespace atlas {
/// "0.1.0"
const char* version();
/// Short git revision the binary was built from, or "unknown".
const char* git_revision();
/// Path of the source tree the binary was built from (for locating configs/ and examples/).
const char* source_dir();
}  // namespace atlas
