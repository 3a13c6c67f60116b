#include "bias/suite_run.hpp"

#include "atlas/core/error.hpp"

namespace atlas::bias::detail {
void run_suite(extract::Scorer&, const AuditOptions&, const Suite& suite, AuditResult&) {
  ATLAS_FAIL(InputError, "suite '{}': suites are not implemented yet", suite.path.string());
}
}  // namespace atlas::bias::detail
