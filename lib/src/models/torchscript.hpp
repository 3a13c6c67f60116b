#pragma once
// A user's own transformer saved with torch.jit.save, whose forward returns its attention maps
// (the contract in docs/custom-models.md). Kept apart from the Hugging Face architectures: it has
// no config.json and no checkpoint of named tensors.
#include <filesystem>
#include <memory>

#include "atlas/models/model.hpp"

namespace atlas::models {

/// Loads the module and probes it once (ids [[0, 1, 2, 3]]) to fill ModelInfo: num_layers and
/// num_heads from the attention it returns, vocab_size from the logits (module attributes
/// num_layers, num_heads, vocab_size, max_positions and causal take precedence when present).
/// CheckpointError naming the file when it is no TorchScript archive or returns no attention.
std::unique_ptr<Model> load_torchscript(const std::filesystem::path& file, const LoadOptions& options);

}  // namespace atlas::models
