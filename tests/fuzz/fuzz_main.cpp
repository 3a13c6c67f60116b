// libFuzzer entry: ATLAS_FUZZ_ENTRY names the target's body (fuzz_targets.hpp).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return atlas::fuzz::ATLAS_FUZZ_ENTRY(data, size);
}
