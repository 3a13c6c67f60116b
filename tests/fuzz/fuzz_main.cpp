// libFuzzer entry: ATLAS_FUZZ_ENTRY names the target's body (fuzz_targets.hpp).
#include "fuzz_targets.hpp"

// The empty input first, outside libFuzzer's -timeout: it loads what a target keeps for the whole
// run (tokenizer_text's reference tokenizers take more than 10 s to load under ASan).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  atlas::fuzz::ATLAS_FUZZ_ENTRY(nullptr, 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return atlas::fuzz::ATLAS_FUZZ_ENTRY(data, size);
}
