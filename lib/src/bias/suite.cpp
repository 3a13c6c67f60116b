#include "atlas/bias/suite.hpp"

#include "atlas/core/error.hpp"

namespace atlas::bias {
Suite load_suite(const std::filesystem::path& path) {
  ATLAS_FAIL(InputError, "suite '{}': suites are not implemented yet", path.string());
}
}  // namespace atlas::bias
