#pragma once
/// Tokenizers: `tokenizer.json` (normalizer | pre-tokenizer | model | post-processor | decoder) when a
/// model folder has one, else the classic files: vocab.json + merges.txt (byte-level BPE), vocab.txt
/// (WordPiece), tokenizer.model / spiece.model (sentencepiece, through a dlopened shim).
/// Results equal Hugging Face's fast tokenizers (ids and offsets).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atlas::tokenize {

struct Encoding {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;                      // vocabulary strings (e.g. "Ġthe", "▁the", "##s")
  std::vector<std::pair<int64_t, int64_t>> offsets;     // [start, end) in Unicode code points; [0,0] for added specials
  std::vector<uint8_t> special_mask;                    // 1 for tokens added by the template (BOS, [CLS], ...)
  std::vector<int64_t> type_ids;                        // segment ids (0 / 1 for pairs)
  size_t size() const { return ids.size(); }
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  /// Throws InputError on invalid UTF-8.
  virtual Encoding encode(std::string_view text, bool add_special_tokens = true) const = 0;
  /// Sentence pair (BERT `[CLS] A [SEP] B [SEP]`, RoBERTa `<s> A </s></s> B </s>`).
  virtual Encoding encode_pair(std::string_view a, std::string_view b,
                               bool add_special_tokens = true) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int64_t> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(int64_t id) const = 0;
  /// Human-readable form of a token: byte-level "Ġ"/"Ċ" mapped back to bytes, "▁" to a space,
  /// "##" continuation markers dropped. Used for figure labels.
  virtual std::string display(int64_t id) const = 0;
  /// "tokenizer.json", "vocab.json+merges.txt", "vocab.txt", "sentencepiece" ...
  virtual std::string kind() const = 0;
};

/// Loads the tokenizer of a model folder (one that holds only tokenizer files works too).
/// Throws InputError/FormatError naming the folder and the files it looked for.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir);

}  // namespace atlas::tokenize
