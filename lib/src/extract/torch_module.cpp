// Entry point of libatlas_torch.so, the model runtime that backend.cpp dlopen()s: the table of
// every job that needs LibTorch. The core, io and tokenize code these jobs call is not in this
// module: it resolves to the `atlas` binary's copy at load time (see lib/CMakeLists.txt).
#include "atlas/extract/attribution.hpp"
#include "atlas/extract/backend.hpp"
#include "atlas/extract/extract.hpp"
#include "atlas/extract/scorer.hpp"

namespace {

atlas::extract::Backend make_backend() {
  atlas::extract::Backend b;
  b.abi_version = atlas::extract::kBackendAbiVersion;
  b.size = sizeof(atlas::extract::Backend);
  b.run_extract = &atlas::extract::run_extract;
  b.run_corpus = &atlas::extract::run_corpus;
  b.open_scorer = &atlas::extract::open_scorer;
  b.open_model = &atlas::extract::open_serve_model;
  b.visit_corpus = &atlas::extract::visit_corpus;
  b.run_attribution = &atlas::extract::run_attribution;
  return b;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const atlas::extract::Backend* atlas_torch_backend() {
  static const atlas::extract::Backend backend = make_backend();
  return &backend;
}
