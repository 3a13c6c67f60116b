#pragma once
/// The model runtime: every job that runs a model (and so needs LibTorch) behind one table of
/// functions, implemented in the module libatlas_torch.so (lib/src/extract/torch_module.cpp) and
/// dlopen()ed on first use. The `atlas` binary links no LibTorch, so `--help`, `--version`,
/// `tokenize` and `visualize` start without loading its ~290 shared libraries.
/// Torch-free header. Exceptions thrown inside the module (InputError ...) reach the caller unchanged.
#include <cstddef>
#include <memory>

#include <memory>

#include "atlas/extract/attribution.hpp"
#include "atlas/extract/extract.hpp"
#include "atlas/extract/scorer.hpp"
#include "atlas/extract/serve_model.hpp"

namespace atlas::extract {

/// Bump when an entry changes its signature or meaning (adding an entry changes sizeof(Backend),
/// which is checked as well, so an older module is refused either way).
inline constexpr int kBackendAbiVersion = 1;

struct Backend {
  // These two first, and never moved: the loader reads them before trusting the rest.
  int abi_version = 0;
  std::size_t size = 0;  // sizeof(Backend) in the module

  // One entry per model-running job; adding one = a line here + a line in torch_module.cpp.
  ExtractSummary (*run_extract)(const ExtractOptions&) = nullptr;
  CorpusSummary (*run_corpus)(const CorpusOptions&) = nullptr;
  std::unique_ptr<Scorer> (*open_scorer)(const RunOptions&) = nullptr;   // bias audits (atlas/bias/)
  std::shared_ptr<ServeModel> (*open_model)(const RunOptions&) = nullptr;   // atlas serve
  CorpusSummary (*visit_corpus)(const CorpusOptions&, const CorpusVisitor&, const CorpusFailure&) = nullptr;
  AttributionResult (*run_attribution)(const AttributionOptions&) = nullptr;   // analyze attribution
};

/// The backend of libatlas_torch.so, loaded on the first call. Looks, in order, at
/// $ATLAS_TORCH_MODULE (only there when set), the build tree's lib/ (when the running binary is
/// inside the build tree), <binary>/../lib/, and <install prefix>/lib/.
/// Throws atlas::Error "cannot load the model runtime 'PATH': REASON" when none loads.
const Backend& torch_backend();

}  // namespace atlas::extract
