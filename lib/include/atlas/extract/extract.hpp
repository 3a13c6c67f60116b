#pragma once
/// The extract job: tokenize -> forward with attention taps -> attention NPZ or store
/// (docs/formats/attention-npz.md, docs/formats/store.md). The model and tokenizer are loaded once
/// per job and run over every document. Torch-free header: apps and other modules include it
/// without paying for ATen.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "atlas/corpus/input.hpp"
#include "atlas/format/attention.hpp"

namespace atlas::extract {

/// What to compute and store; shared by single-text and corpus runs.
struct RunOptions {
  std::filesystem::path model_dir;
  std::filesystem::path tokenizer_dir;           // empty: the model folder's tokenizer (--tokenizer DIR)
  std::vector<std::filesystem::path> adapters;   // LoRA adapters merged in order (--adapter DIR)
  std::filesystem::path base_dir;                // --base DIR: the base of an adapter given as the model
  bool no_adapter = false;                       // --no-adapter: ignore the model folder's own adapter
  std::string layers = "all";                    // "all", "0,2-4", "-1" (last)
  std::string heads = "all";
  std::string dtype = "float32";                 // storage dtype: float32 | float16
  std::string compute_dtype = "float32";         // float32 | bfloat16 (CPU, CUDA) | float16 (CUDA)
  int64_t topk = 0;                              // >0: keep the k largest entries per query row, sparse
  int64_t row_chunk = 0;                         // >0: convert and write attention in blocks of rows
  bool logits = false;
  bool value_norms = false;                      // --value-norms: store ‖f_h(x_j)‖ [L,H,Q] (Kobayashi et al. 2020)
  bool add_special_tokens = true;
  bool compress = false;                         // DEFLATE members instead of STORED
  int threads = 0;                               // 0: all cores
  // CPU float32 linear layers: openblas (at::linear) | onednn (weights stored transposed, oneDNN's
  // sgemm: faster on short texts, agrees within float32 rounding; models::LoadOptions::linear_layout)
  std::string gemm = "openblas";
  std::string device = "cpu";                    // cpu, cuda, cuda:N
  std::string command_line;                      // recorded in meta
  bool autograd = false;                         // load weights for gradients (attribution)
};

struct ExtractOptions : RunOptions {
  std::optional<std::string> text;               // exactly one of text / ids
  std::optional<std::vector<int64_t>> ids;
  std::optional<std::string> text_pair;          // second segment (BERT-style sentence pairs)
  // Encoder-decoders (T5, BART): the decoder input, at most one of the two. Text is tokenized
  // without special tokens after decoder_start_token_id; ids are taken verbatim. Neither: the
  // decoder input is [decoder_start_token_id] (config.json).
  std::optional<std::string> decoder_text;
  std::optional<std::vector<int64_t>> decoder_ids;
  std::filesystem::path output;
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
  std::vector<std::string> decoder_token_labels; // encoder-decoders: the decoder input
  std::vector<AttentionLink> top_links;          // strongest links between distinct, non-special,
                                                 // unmasked tokens
  double seconds_load = 0;
  double seconds_model = 0;
  double seconds_total = 0;
  int threads = 0;
  std::vector<std::string> notes;                // for stderr ("atlas: note: ...")
};

/// Runs the job. Every input problem is an InputError/ConfigError/CheckpointError raised before the
/// output is created; the output appears only complete (temp file + rename).
ExtractSummary run_extract(const ExtractOptions& options);

struct CorpusOptions : RunOptions {
  corpus::InputOptions input;
  std::filesystem::path output;                  // the store folder
  int64_t batch_size = 8;
  int64_t bucket_documents = 0;                  // documents read ahead and sorted by length (0: 32 x batch)
  std::string shard = "0/1";                     // --shard I/N
  int64_t shard_bytes = int64_t{256} << 20;      // store shard size
  int64_t shard_documents = 0;
  bool resume = true;
  int64_t window = 0;                            // >0: split longer documents into windows of this many tokens
  int64_t stride = 0;                            // step between window starts (0: window / 2)
  int64_t max_documents = 0;                     // >0: stop after this many input records (quick looks)
  bool quiet = false;                            // no progress output
  int progress_mode = -1;                        // -1 auto (terminal: bar), 0 plain lines, 1 bar
};

struct FailedDocument {
  std::string id;
  int64_t line = 0;
  std::string error;
};

struct CorpusSummary {
  std::filesystem::path output;
  std::string model_type, model_class;
  std::vector<std::string> notes;                // for stderr ("atlas: note: ...")
  int64_t records = 0;                           // input records seen (this shard)
  int64_t documents_ok = 0;                      // written by this run (windows count one each)
  int64_t documents_failed = 0;                  // recorded as failed by this run
  int64_t documents_skipped = 0;                 // finished by an earlier run (resume); documents that
                                                 // failed before are tried again
  int64_t tokens = 0;                            // tokens run through the model by this run
  int64_t padded_tokens = 0;                     // positions computed including padding
  int64_t batches = 0;
  int64_t shards_written = 0;
  double seconds_load = 0, seconds_model = 0, seconds_total = 0;
  double tokens_per_second = 0;                  // tokens / seconds_total
  int threads = 0;
  bool resumed = false;
  std::vector<FailedDocument> failures;          // the first 20
};

/// Extracts every document of `options.input` (of this shard) into the store `options.output`.
/// Bad documents are recorded in the manifest as failed and counted; the run goes on.
CorpusSummary run_corpus(const CorpusOptions& options);

/// Called with each document of a streamed corpus run (its id: the manifest's), and with each
/// document that failed (id, error).
using CorpusVisitor = std::function<void(const format::AttentionData& doc, const std::string& id)>;
using CorpusFailure = std::function<void(const std::string& id, const std::string& error)>;
/// The corpus run of run_corpus, but each document is handed to `visit` as soon as its batch is done
/// instead of being stored: `options.output` is a scratch folder that holds one document at a time
/// (analyses stream over a corpus of any size; no resume, no store).
CorpusSummary visit_corpus(const CorpusOptions& options, const CorpusVisitor& visit, const CorpusFailure& failed);

/// Parses "all", "3", "0,2-4", "-1" (negative counts from the end) into sorted unique indices in
/// [0, count). `what` ("layer", "head") names the axis in errors: "unknown layer 7 (model has 5: 0-4)".
std::vector<int64_t> parse_index_list(const std::string& spec, int64_t count, const std::string& what);

/// Parses "1,2,3" (spaces allowed) into ids; InputError on anything else.
std::vector<int64_t> parse_ids(const std::string& spec);

}  // namespace atlas::extract
