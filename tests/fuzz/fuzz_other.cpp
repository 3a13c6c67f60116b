// Fuzz targets outside io/: the store manifest, tokenizers, figure styles, corpus input.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "atlas/core/json.hpp"
#include "atlas/corpus/input.hpp"
#include "atlas/format/store.hpp"
#include "atlas/render/style.hpp"
#include "atlas/tokenize/tokenizer.hpp"
#include "fuzz_support.hpp"
#include "fuzz_targets.hpp"

#ifndef ATLAS_FUZZ_SHARED_DIR
#define ATLAS_FUZZ_SHARED_DIR "../shared"
#endif

namespace atlas::fuzz {
namespace fs = std::filesystem;

// Line 1 is store.json, the rest manifest.jsonl: each line goes through ManifestEntry::from_json on
// its own, then the folder is opened with StoreReader (which also checks the lines against each other).
int fuzz_manifest(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  const std::string_view store_json = text.substr(0, nl);
  const std::string_view manifest = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  size_t start = 0;
  while (start < manifest.size()) {
    size_t end = manifest.find('\n', start);
    if (end == std::string_view::npos) end = manifest.size();
    const std::string line(manifest.substr(start, end - start));
    start = end + 1;
    expect_atlas_errors([&] {
      // As StoreReader does: a line that is not JSON at all is the parser's answer, not a finding.
      const nlohmann::json j = parse_json(line, "manifest line", /*allow_exceptions=*/false);
      if (j.is_discarded()) return;
      (void)format::ManifestEntry::from_json(j, "manifest line").to_json();
    });
  }
  const fs::path dir = scratch_dir("store");
  put_file(dir / "store.json", store_json);
  put_file(dir / "manifest.jsonl", manifest);
  return expect_atlas_errors([&] {
    format::StoreReader reader(dir);
    (void)reader.ok_count();
    for (const auto& e : reader.entries()) (void)reader.find(e.id);
  });
}

namespace {
// Every reference tokenizer that has a tokenizer.json, loaded once.
const std::vector<std::unique_ptr<tokenize::Tokenizer>>& reference_tokenizers() {
  static const auto tokenizers = [] {
    std::vector<std::unique_ptr<tokenize::Tokenizer>> out;
    const char* env = std::getenv("ATLAS_SHARED_DIR");
    const fs::path root = fs::path(env && *env ? env : ATLAS_FUZZ_SHARED_DIR) / "reference" / "tokenizers";
    std::vector<fs::path> dirs;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(root, ec))
      if (fs::is_regular_file(entry.path() / "tokenizer.json")) dirs.push_back(entry.path());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) out.push_back(tokenize::load_tokenizer(d));
    if (out.empty()) throw std::runtime_error("fuzz: no tokenizer.json under " + root.string());
    return out;
  }();
  return tokenizers;
}

void exercise(const tokenize::Tokenizer& tok, std::string_view a, std::string_view b, bool pair,
              bool specials) {
  const tokenize::Encoding enc = pair ? tok.encode_pair(a, b, specials) : tok.encode(a, specials);
  for (const int64_t id : enc.ids) {
    (void)tok.display(id);
    (void)tok.id_to_token(id);
  }
}
}  // namespace

// Byte 0 picks the tokenizer and the mode; the rest is the text (split at the first 0xff for pairs).
int fuzz_tokenizer_text(const uint8_t* data, size_t size) {
  const auto& tokenizers = reference_tokenizers();
  if (size == 0) return 0;
  const auto& tok = *tokenizers[(data[0] & 0x3f) % tokenizers.size()];
  const bool pair = data[0] & 0x40, specials = data[0] & 0x80;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t cut = text.find('\xff');
  const std::string_view a = pair ? text.substr(0, cut) : text;
  const std::string_view b = pair && cut != std::string_view::npos ? text.substr(cut + 1) : std::string_view();
  return expect_atlas_errors([&] { exercise(tok, a, b, pair, specials); });
}

int fuzz_tokenizer_json(const uint8_t* data, size_t size) {
  const fs::path dir = scratch_dir("tokenizer");
  put_file(dir / "tokenizer.json", data, size);
  return expect_atlas_errors([&] {
    const auto tok = tokenize::load_tokenizer(dir);
    exercise(*tok, "Hello world, héllo 123!  ünïcödé 日本語 🙂", "second   part", false, true);
    exercise(*tok, "Hello world", "second   part\n", true, true);
    (void)tok->vocab_size();
  });
}

int fuzz_style(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  return expect_atlas_errors([&] { (void)render::parse_style(text, "fuzz.yaml"); });
}

// Byte 0 picks the format and the options; the rest is the file.
int fuzz_corpus(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* kExt[] = {".jsonl", ".csv", ".tsv", ".txt"};
  const uint8_t mode = data[0];
  corpus::InputOptions options;
  options.path = scratch_dir("corpus") / (std::string("input") + kExt[mode & 3]);
  options.header = !(mode & 4);
  options.tsv_escapes = mode & 8;
  if (mode & 16) options.id_field = options.header ? "id" : "0";
  if (!options.header) options.column = (mode & 32) ? "1" : "0";
  put_file(options.path, data + 1, size - 1);
  return expect_atlas_errors([&] {
    corpus::DocumentReader reader(options);
    for (int n = 0; n < 100000; ++n) {
      const auto doc = reader.next();
      if (!doc) break;
    }
  });
}

}  // namespace atlas::fuzz
