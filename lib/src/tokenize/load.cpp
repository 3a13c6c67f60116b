// load_tokenizer: which files of a model folder decide the tokenizer.
#include <nlohmann/json.hpp>

#include <fstream>

#include "atlas/core/error.hpp"
#include "atlas/tokenize/tokenizer.hpp"
#include "tokenize/pipeline.hpp"

namespace atlas::tokenize {

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  ATLAS_CHECK(fs::exists(dir), InputError, "model folder '{}' does not exist", dir.string());
  ATLAS_CHECK(fs::is_directory(dir), InputError, "'{}' is not a folder (expected a model or tokenizer folder)",
              dir.string());
  // tokenizer.json decides when present: a stage it names that this library lacks is an error
  // (another file of the folder could tokenize differently, so it is never a silent fallback).
  if (fs::exists(dir / "tokenizer.json")) return detail::load_tokenizer_json(dir / "tokenizer.json");
  if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt")) return detail::load_byte_level_bpe_files(dir);
  if (fs::exists(dir / "vocab.txt")) return detail::load_wordpiece_files(dir);
  for (const char* name : {"tokenizer.model", "spiece.model", "sentencepiece.bpe.model"}) {
    if (fs::exists(dir / name)) return detail::load_sentencepiece(dir, dir / name);
  }
  ATLAS_FAIL(InputError,
             "'{}' has no tokenizer files (looked for tokenizer.json, vocab.json + merges.txt, vocab.txt, "
             "tokenizer.model, spiece.model, sentencepiece.bpe.model)",
             dir.string());
}

}  // namespace atlas::tokenize
