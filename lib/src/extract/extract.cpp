#include "atlas/extract/extract.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/core/utf8.hpp"
#include "atlas/core/version.hpp"
#include "atlas/io/checkpoint.hpp"
#include "atlas/io/npz.hpp"
#include "atlas/models/model.hpp"
#include "atlas/tokenize/tokenizer.hpp"

namespace atlas::extract {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string utc_now_iso() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void check_model_dir(const fs::path& dir) {
  std::error_code ec;
  ATLAS_CHECK(fs::exists(dir, ec), InputError, "model directory '{}' does not exist", dir.string());
  ATLAS_CHECK(fs::is_directory(dir, ec), InputError, "model path '{}' is not a directory", dir.string());
  ATLAS_CHECK(fs::exists(dir / "config.json", ec), InputError,
              "model directory '{}' has no config.json (expected a Hugging Face model folder)",
              dir.string());
}

/// What extract tokenized: ids plus the labels and offsets stored next to the attention.
struct Tokenized {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;
  std::vector<std::string> labels;
  std::vector<int64_t> offsets;   // [Q*2]
  std::vector<uint8_t> special;
  std::vector<int64_t> type_ids;  // empty: all zeros
  std::string tokenizer_kind = "none";
};

Tokenized tokenize_input(const ExtractOptions& o, int64_t vocab_size) {
  Tokenized t;
  std::unique_ptr<tokenize::Tokenizer> tok;
  if (o.text) {
    ATLAS_CHECK(!o.text->empty(), InputError, "the input text is empty");
    size_t bad = utf8::first_invalid(*o.text);
    ATLAS_CHECK(bad == std::string::npos, InputError,
                "the input text is not valid UTF-8 (bad byte 0x{:02x} at byte offset {})",
                static_cast<unsigned char>((*o.text)[bad]), bad);
    tok = tokenize::load_tokenizer(o.model_dir);
    t.tokenizer_kind = tok->kind();
    if (o.text_pair) {
      ATLAS_CHECK(!o.text_pair->empty(), InputError, "the second text (--pair) is empty");
      ATLAS_CHECK(utf8::valid(*o.text_pair), InputError, "the second text (--pair) is not valid UTF-8");
    }
    tokenize::Encoding enc = o.text_pair ? tok->encode_pair(*o.text, *o.text_pair, o.add_special_tokens)
                                         : tok->encode(*o.text, o.add_special_tokens);
    if (o.text_pair) t.type_ids = enc.type_ids;
    ATLAS_CHECK(enc.size() > 0, InputError, "the input text produced no tokens");
    t.ids = enc.ids;
    t.tokens = enc.tokens;
    t.special = enc.special_mask;
    for (size_t i = 0; i < enc.size(); ++i) {
      bool sp = enc.special_mask[i] != 0;
      t.offsets.push_back(sp ? -1 : enc.offsets[i].first);
      t.offsets.push_back(sp ? -1 : enc.offsets[i].second);
      t.labels.push_back(tok->display(enc.ids[i]));
    }
  } else {
    t.ids = *o.ids;
    ATLAS_CHECK(!t.ids.empty(), InputError, "--ids is empty");
    // A tokenizer is optional for id input (some checkpoints ship none).
    try {
      tok = tokenize::load_tokenizer(o.model_dir);
      t.tokenizer_kind = tok->kind();
    } catch (const Error&) {
      tok.reset();
    }
    for (int64_t id : t.ids) {
      ATLAS_CHECK(id >= 0 && id < vocab_size, InputError,
                  "input id {} is outside the vocabulary (expected 0 <= id < {})", id, vocab_size);
      t.tokens.push_back(tok ? tok->id_to_token(id) : fmt::format("[{}]", id));
      t.labels.push_back(tok ? tok->display(id) : fmt::format("[{}]", id));
      t.offsets.push_back(-1);
      t.offsets.push_back(-1);
      t.special.push_back(0);
    }
  }
  for (int64_t id : t.ids) {
    ATLAS_CHECK(id >= 0 && id < vocab_size, InputError,
                "token id {} is outside the model's vocabulary (expected 0 <= id < {}); does the "
                "tokenizer belong to this model?", id, vocab_size);
  }
  return t;
}

/// Streams the selected heads of each selected layer into the NPZ as the model emits them, so only
/// one layer's attention is ever held in memory, and accumulates the head mean for the summary.
class AttentionSink final : public models::Taps {
 public:
  AttentionSink(io::NpzWriter::Stream& stream, std::vector<int64_t> layers, std::vector<int64_t> heads,
                at::ScalarType store_dtype, int64_t q)
      : stream_(stream), layers_(std::move(layers)), heads_(std::move(heads)), store_dtype_(store_dtype),
        mean_(at::zeros({q, q}, at::kFloat)) {
    head_index_ = at::tensor(heads_, at::kLong);
  }

  bool wants(const std::string& name, int64_t layer) const override {
    return name == "attn_probs" && std::binary_search(layers_.begin(), layers_.end(), layer);
  }

  void emit(const std::string& name, int64_t layer, const at::Tensor& value) override {
    if (!wants(name, layer)) return;
    ATLAS_CHECK(next_ < layers_.size() && layers_[next_] == layer, Error,
                "internal: attention of layer {} emitted out of order", layer);
    ++next_;
    at::Tensor probs = value.select(0, 0).to(at::kCPU, at::kFloat);                 // [H,T,T]
    probs = probs.index_select(0, head_index_).contiguous();                          // [H_sel,T,T]
    mean_ += probs.mean(0);
    at::Tensor stored = probs.to(store_dtype_).contiguous();
    stream_.write(stored.data_ptr(), stored.nbytes());
  }

  size_t layers_written() const { return next_; }
  at::Tensor mean() const { return mean_ / static_cast<float>(std::max<size_t>(next_, 1)); }

 private:
  io::NpzWriter::Stream& stream_;
  std::vector<int64_t> layers_;
  std::vector<int64_t> heads_;
  at::ScalarType store_dtype_;
  at::Tensor head_index_;
  at::Tensor mean_;
  size_t next_ = 0;
};

std::vector<AttentionLink> strongest_links(const at::Tensor& mean, const std::vector<uint8_t>& special,
                                           size_t count) {
  std::vector<AttentionLink> links;
  const int64_t q = mean.size(0);
  auto acc = mean.accessor<float, 2>();
  for (int64_t i = 0; i < q; ++i) {
    if (special[i]) continue;
    for (int64_t j = 0; j < q; ++j) {
      if (i == j || special[j]) continue;
      links.push_back({i, j, acc[i][j]});
    }
  }
  size_t n = std::min(count, links.size());
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
  ATLAS_CHECK(o.dtype == "float32" || o.dtype == "float16", InputError,
              "unknown --dtype '{}' (expected float32 or float16)", o.dtype);
  check_model_dir(o.model_dir);
  check_output_path(o.output);

  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);

  models::LoadOptions load;
  load.device = o.device;
  std::unique_ptr<models::Model> model = models::load_model(o.model_dir, load);
  const models::ModelInfo& info = model->info();

  Tokenized tok = tokenize_input(o, info.vocab_size);
  const auto q = static_cast<int64_t>(tok.ids.size());
  ATLAS_CHECK(info.max_positions <= 0 || q <= info.max_positions, InputError,
              "the input has {} tokens but the model accepts at most {} (max_position_embeddings in "
              "'{}')", q, info.max_positions, (o.model_dir / "config.json").string());

  std::vector<int64_t> layers = parse_index_list(o.layers, info.num_layers, "layer");
  std::vector<int64_t> heads = parse_index_list(o.heads, info.num_heads, "head");

  const std::string ckpt_hash = io::checkpoint_hash(info.checkpoint_files);
  const std::string ckpt_format = info.checkpoint_format;

  const at::ScalarType store = o.dtype == "float16" ? at::kHalf : at::kFloat;
  const io::DType store_np = o.dtype == "float16" ? io::DType::F16 : io::DType::F32;

  io::NpzWriter writer(o.output, o.compress ? io::Compression::Deflate : io::Compression::Stored);
  auto stream = writer.begin("attention", store_np,
                             {static_cast<int64_t>(layers.size()), static_cast<int64_t>(heads.size()), q, q});
  AttentionSink sink(stream, layers, heads, store, q);

  at::Device device(o.device);
  models::Inputs inputs;
  inputs.input_ids = at::tensor(tok.ids, at::kLong).unsqueeze(0).to(device);   // [1,Q]
  if (!tok.type_ids.empty()) inputs.token_type_ids = at::tensor(tok.type_ids, at::kLong).unsqueeze(0).to(device);
  const auto tm0 = Clock::now();
  at::Tensor logits = model->forward(inputs, sink, o.logits);
  const auto tm1 = Clock::now();
  ATLAS_CHECK(sink.layers_written() == layers.size(), Error,
              "internal: the model emitted {} of {} selected layers", sink.layers_written(), layers.size());
  stream.finish();

  writer.add("layers", io::NdArray::from<int64_t>({static_cast<int64_t>(layers.size())}, layers));
  writer.add("heads", io::NdArray::from<int64_t>({static_cast<int64_t>(heads.size())}, heads));
  writer.add("input_ids", io::NdArray::from<int64_t>({q}, tok.ids));
  writer.add("tokens", io::NdArray::from_strings({q}, tok.tokens));
  writer.add("token_labels", io::NdArray::from_strings({q}, tok.labels));
  writer.add("offsets", io::NdArray::from<int64_t>({q, 2}, tok.offsets));
  io::NdArray special(io::DType::Bool, {q});
  for (int64_t i = 0; i < q; ++i) special.as_mutable<bool>()[i] = tok.special[i] != 0;
  writer.add("special", special);
  if (!tok.type_ids.empty()) writer.add("token_type_ids", io::NdArray::from<int64_t>({q}, tok.type_ids));
  if (o.logits) {
    at::Tensor l = logits.select(0, 0).to(at::kCPU, at::kFloat).contiguous();   // [Q,V]
    io::NdArray arr(io::DType::F32, {l.size(0), l.size(1)});
    std::memcpy(arr.mutable_data(), l.data_ptr(), l.nbytes());
    writer.add("logits", arr);
  }

  nlohmann::json meta = {
      {"format", "atlas.attention"},
      {"format_version", 1},
      {"tool", "atlas"},
      {"version", version()},
      {"git_revision", git_revision()},
      {"command_line", o.command_line},
      {"created", utc_now_iso()},
      {"model",
       {{"path", fs::absolute(o.model_dir).lexically_normal().string()},
        {"model_type", info.model_type},
        {"model_class", info.model_class},
        {"num_layers", info.num_layers},
        {"num_heads", info.num_heads},
        {"num_kv_heads", info.num_kv_heads},
        {"vocab_size", info.vocab_size},
        {"causal", info.causal},
        {"checkpoint_format", ckpt_format},
        {"checkpoint_sha256", ckpt_hash}}},
      {"tokenizer", tok.tokenizer_kind},
      {"input", {{"source", o.text ? "text" : "ids"}, {"add_special_tokens", o.add_special_tokens}}},
      {"dtype", o.dtype},
      {"device", o.device},
      {"threads", threads},
  };
  if (o.text) meta["input"]["text"] = *o.text;
  if (o.text_pair) meta["input"]["text_pair"] = *o.text_pair;
  writer.add("meta", io::NdArray::scalar_string(meta.dump()));
  writer.close();

  ExtractSummary s;
  s.output = o.output;
  s.model_type = info.model_type;
  s.model_class = info.model_class;
  s.num_layers = info.num_layers;
  s.num_heads = info.num_heads;
  s.layers = layers;
  s.heads = heads;
  s.token_labels = tok.labels;
  s.top_links = strongest_links(sink.mean(), tok.special, 5);
  s.threads = threads;
  s.seconds_model = std::chrono::duration<double>(tm1 - tm0).count();
  s.seconds_total = std::chrono::duration<double>(Clock::now() - t0).count();
  return s;
}

}  // namespace atlas::extract
