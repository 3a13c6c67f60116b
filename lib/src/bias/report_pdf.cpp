#include "atlas/bias/audit.hpp"
#include "atlas/core/error.hpp"

namespace atlas::bias {
void write_pdf_report(const AuditResult&, const std::filesystem::path& path, const std::string&) {
  ATLAS_FAIL(InputError, "--report '{}': PDF reports are not implemented yet", path.string());
}
}  // namespace atlas::bias
