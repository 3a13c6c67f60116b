#include "atlas/extract/extract.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/io/npz.hpp"
#include "extract/session.hpp"

namespace atlas::extract {
namespace {

using Clock = std::chrono::steady_clock;

/// The strongest links of the head/layer mean between distinct, non-special tokens that the model
/// lets attend to each other (a causal model's key after its query is masked, never a "link").
std::vector<AttentionLink> strongest_links(const at::Tensor& mean, const std::vector<uint8_t>& special, bool causal,
                                           size_t count) {
  std::vector<AttentionLink> links;
  if (!mean.defined()) return links;
  const at::Tensor m = mean.to(at::kFloat).contiguous();
  const int64_t q = m.size(0);
  auto acc = m.accessor<float, 2>();
  for (int64_t i = 0; i < q; ++i) {
    if (special[static_cast<size_t>(i)]) continue;
    for (int64_t j = 0; j < m.size(1); ++j) {
      if (i == j || special[static_cast<size_t>(j)] || (causal && j > i)) continue;
      links.push_back({i, j, acc[i][j]});
    }
  }
  const size_t n = std::min(count, links.size());
  std::partial_sort(links.begin(), links.begin() + static_cast<std::ptrdiff_t>(n), links.end(),
                    [](const AttentionLink& a, const AttentionLink& b) { return a.weight > b.weight; });
  links.resize(n);
  return links;
}

}  // namespace

ExtractSummary run_extract(const ExtractOptions& o) {
  const auto t0 = Clock::now();
  ATLAS_CHECK(o.text.has_value() != o.ids.has_value(), InputError,
              "give exactly one input: --text STR or --ids 1,2,3");
  ATLAS_CHECK(!o.text_pair || o.text, InputError, "--pair needs --text (the first segment)");
  check_output_path(o.output);

  Session session(o);
  const models::ModelInfo& info = session.info();
  Prepared doc = o.text ? session.prepare_text(*o.text, o.text_pair) : session.prepare_ids(*o.ids);
  session.prepare_decoder(doc, o.decoder_text, o.decoder_ids);
  ATLAS_CHECK(info.max_positions <= 0 || doc.size() <= info.max_positions, InputError,
              "the input has {} tokens but the model accepts at most {} (max_position_embeddings in '{}'); "
              "use `--input FILE --window N` to extract overlapping windows",
              doc.size(), info.max_positions, (o.model_dir / "config.json").string());

  io::NpzWriter npz(o.output, o.compress ? io::Compression::Deflate : io::Compression::Stored);
  format::DocumentWriter writer(npz);
  DocumentResult result = session.run_streaming(doc, writer, true);
  session.write_rest(writer, doc, result);
  npz.close();

  ExtractSummary s;
  s.output = o.output;
  s.model_type = info.model_type;
  s.model_class = info.model_class;
  s.notes = info.notes;
  s.num_layers = info.num_layers;
  s.num_heads = info.num_heads;
  s.layers = session.layers();
  s.heads = session.heads();
  s.token_labels = doc.tokens.token_labels;
  s.decoder_token_labels = doc.decoder_tokens.token_labels;
  s.top_links = strongest_links(result.mean, doc.tokens.special, info.causal, 5);
  s.threads = session.threads();
  s.seconds_load = session.seconds_load();
  s.seconds_model = session.seconds_model();
  s.seconds_total = std::chrono::duration<double>(Clock::now() - t0).count();
  return s;
}

}  // namespace atlas::extract
