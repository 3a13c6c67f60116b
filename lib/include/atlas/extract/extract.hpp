#pragma once
/// The extract job: tokenize -> forward with attention taps -> NPZ (docs/formats/attention-npz.md).
/// Torch-free header: apps and other modules include it without paying for ATen.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace atlas::extract {

struct ExtractOptions {
  std::filesystem::path model_dir;
  std::optional<std::string> text;               // exactly one of text / ids
  std::optional<std::vector<int64_t>> ids;
  std::optional<std::string> text_pair;          // second segment (BERT-style sentence pairs)
  std::filesystem::path output;
  std::string layers = "all";                    // "all", "0,2-4", "-1" (last)
  std::string heads = "all";
  std::string dtype = "float32";                 // storage dtype: float32 | float16
  bool logits = false;
  bool add_special_tokens = true;
  bool compress = false;                         // DEFLATE members instead of STORED
  int threads = 0;                               // 0: all cores
  std::string device = "cpu";
  std::string command_line;                      // recorded in meta
};

struct AttentionLink {
  int64_t query = 0;
  int64_t key = 0;
  float weight = 0;                              // mean over stored layers and heads
};

struct ExtractSummary {
  std::filesystem::path output;
  std::string model_type;
  std::string model_class;
  int64_t num_layers = 0;                        // of the model
  int64_t num_heads = 0;
  std::vector<int64_t> layers;                   // stored
  std::vector<int64_t> heads;
  std::vector<std::string> token_labels;
  std::vector<AttentionLink> top_links;          // strongest links between distinct, non-special tokens
  double seconds_model = 0;
  double seconds_total = 0;
  int threads = 0;
};

/// Runs the job. Every input problem is an InputError/ConfigError/CheckpointError raised before the
/// output is created; the output appears only complete (temp file + rename).
ExtractSummary run_extract(const ExtractOptions& options);

/// Parses "all", "3", "0,2-4", "-1" (negative counts from the end) into sorted unique indices in
/// [0, count). `what` ("layer", "head") names the axis in errors: "unknown layer 7 (model has 5: 0-4)".
std::vector<int64_t> parse_index_list(const std::string& spec, int64_t count, const std::string& what);

/// Parses "1,2,3" (spaces allowed) into ids; InputError on anything else.
std::vector<int64_t> parse_ids(const std::string& spec);

}  // namespace atlas::extract
