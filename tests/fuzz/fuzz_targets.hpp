#pragma once
// The fuzz targets' bodies, one function per parser of outside data. Each is compiled both into its
// libFuzzer binary (fuzz_main.cpp, ATLAS_FUZZ=ON, scripts/fuzz.sh) and into the normal build's
// unit_fuzz_regressions doctest, which replays tests/fuzz/seeds/<name>/ and regressions/<name>/.
// Contract: an atlas::Error (a one-line message naming what is wrong) is the expected outcome of bad
// input; anything else escaping (another exception type, a crash, a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>

namespace atlas::fuzz {

int fuzz_npy(const uint8_t* data, size_t size);              // io::parse_npy
int fuzz_npz(const uint8_t* data, size_t size);              // io::NpzReader, every member
int fuzz_manifest(const uint8_t* data, size_t size);         // ManifestEntry::from_json + StoreReader
int fuzz_safetensors(const uint8_t* data, size_t size);      // model.safetensors
int fuzz_sharded_index(const uint8_t* data, size_t size);    // model.safetensors.index.json
int fuzz_pickle(const uint8_t* data, size_t size);           // the restricted unpickler
int fuzz_torch_bin(const uint8_t* data, size_t size);        // pytorch_model.bin (zip + pickle)
int fuzz_config(const uint8_t* data, size_t size);           // config.json (io::read_config)
int fuzz_adapter_config(const uint8_t* data, size_t size);   // adapter_config.json (PEFT LoRA)
int fuzz_tokenizer_text(const uint8_t* data, size_t size);   // encode arbitrary bytes
int fuzz_tokenizer_json(const uint8_t* data, size_t size);   // tokenizer.json itself
int fuzz_style(const uint8_t* data, size_t size);            // YAML figure styles
int fuzz_corpus(const uint8_t* data, size_t size);           // corpus::DocumentReader (JSONL/CSV/TSV/text)
int fuzz_expr(const uint8_t* data, size_t size);             // --fail-if expressions (core/expr.hpp)
int fuzz_bias_suite(const uint8_t* data, size_t size);       // bias suites (configs/bias/*.yaml)
int fuzz_serve(const uint8_t* data, size_t size);            // atlas serve request handlers (serve::App)

}  // namespace atlas::fuzz
