// Fuzz target of the bias module: template suites (configs/bias/*.yaml, atlas/bias/suite.hpp).
#include <string>

#include "atlas/bias/suite.hpp"
#include "fuzz_support.hpp"
#include "fuzz_targets.hpp"

namespace atlas::fuzz {

int fuzz_bias_suite(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  return expect_atlas_errors([&] { (void)bias::parse_suite(text, "fuzz.yaml"); });
}

}  // namespace atlas::fuzz
