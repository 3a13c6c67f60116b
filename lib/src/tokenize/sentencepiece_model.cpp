// SentencePiece models (tokenizer.model / spiece.model / sentencepiece.bpe.model) as transformers'
// slow LlamaTokenizer, T5Tokenizer (legacy behaviour of 4.40) and XLMRobertaTokenizer: added tokens
// split out of the raw text, every other chunk encoded by sentencepiece (which adds its "▁" dummy
// prefix per chunk), then BOS / EOS. XLM-R uses fairseq's ids: <s> 0, <pad> 1, </s> 2, <unk> 3, every
// other piece its sentencepiece id + 1, <mask> last; `<s> A </s>` / `<s> A </s></s> B </s>`.
// Offsets follow the fast tokenizers: a piece's leading whitespace (its "▁") is not part of its offsets.
// sentencepiece itself lives in libatlas_spm, opened here with dlopen (see spm_shim.cpp for why).
#include <dlfcn.h>
#include <unistd.h>

#include <mutex>

#include "atlas/core/error.hpp"
#include "tokenize/classic_config.hpp"
#include "tokenize/pipeline.hpp"
#include "tokenize/spm_api.h"
#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {
namespace {

struct SpmApi {
  decltype(&atlas_spm_abi_version) abi_version;
  decltype(&atlas_spm_load) load;
  decltype(&atlas_spm_free) free_model;
  decltype(&atlas_spm_encode) encode;
  decltype(&atlas_spm_free_pieces) free_pieces;
  decltype(&atlas_spm_free_string) free_string;
  decltype(&atlas_spm_vocab_size) vocab_size;
  decltype(&atlas_spm_id_to_piece) id_to_piece;
  decltype(&atlas_spm_piece_to_id) piece_to_id;
  decltype(&atlas_spm_special_id) special_id;
};

std::vector<std::string> candidate_paths() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("ATLAS_SPM_LIBRARY"); env && *env) paths.emplace_back(env);
#ifdef ATLAS_SPM_BUILD_PATH
  paths.emplace_back(ATLAS_SPM_BUILD_PATH);
#endif
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) paths.push_back((exe.parent_path() / ".." / "lib" / "libatlas_spm.so").lexically_normal().string());
#ifdef ATLAS_SPM_INSTALL_PATH
  paths.emplace_back(ATLAS_SPM_INSTALL_PATH);
#endif
  return paths;
}

const SpmApi& spm_api() {
  static std::once_flag once;
  static SpmApi api{};
  static std::string failure;
  std::call_once(once, [] {
    void* handle = nullptr;
    std::string tried;
    for (const auto& path : candidate_paths()) {
      // RTLD_LOCAL without RTLD_DEEPBIND (which the sanitizers refuse): the shim exports only its C
      // API and loads a DF_SYMBOLIC copy of libsentencepiece, so neither binds to LibTorch's protobuf
      // (lib/CMakeLists.txt says how).
      handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle) break;
      const char* err = dlerror();
      tried += fmt::format("{}{} ({})", tried.empty() ? "" : ", ", path, err ? err : "unknown error");
    }
    if (!handle) {
      failure = fmt::format("the sentencepiece shim libatlas_spm.so could not be loaded (set ATLAS_SPM_LIBRARY); "
                            "tried: {}", tried);
      return;
    }
    auto sym = [&](const char* name) {
      void* p = dlsym(handle, name);
      if (!p && failure.empty()) failure = fmt::format("libatlas_spm.so lacks symbol '{}'", name);
      return p;
    };
    api.abi_version = reinterpret_cast<decltype(api.abi_version)>(sym("atlas_spm_abi_version"));
    api.load = reinterpret_cast<decltype(api.load)>(sym("atlas_spm_load"));
    api.free_model = reinterpret_cast<decltype(api.free_model)>(sym("atlas_spm_free"));
    api.encode = reinterpret_cast<decltype(api.encode)>(sym("atlas_spm_encode"));
    api.free_pieces = reinterpret_cast<decltype(api.free_pieces)>(sym("atlas_spm_free_pieces"));
    api.free_string = reinterpret_cast<decltype(api.free_string)>(sym("atlas_spm_free_string"));
    api.vocab_size = reinterpret_cast<decltype(api.vocab_size)>(sym("atlas_spm_vocab_size"));
    api.id_to_piece = reinterpret_cast<decltype(api.id_to_piece)>(sym("atlas_spm_id_to_piece"));
    api.piece_to_id = reinterpret_cast<decltype(api.piece_to_id)>(sym("atlas_spm_piece_to_id"));
    api.special_id = reinterpret_cast<decltype(api.special_id)>(sym("atlas_spm_special_id"));
    if (failure.empty() && api.abi_version() != ATLAS_SPM_ABI_VERSION) {
      failure = fmt::format("libatlas_spm.so has ABI version {}, expected {}", api.abi_version(), ATLAS_SPM_ABI_VERSION);
    }
  });
  ATLAS_CHECK(failure.empty(), InputError, "{}", failure);
  return api;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::filesystem::path& dir, const std::filesystem::path& model_file)
      : api_(spm_api()) {
    char* error = nullptr;
    model_ = api_.load(model_file.c_str(), &error);
    if (!model_) {
      const std::string msg = error ? error : "unknown error";
      api_.free_string(error);
      ATLAS_FAIL(FormatError, "'{}' is not a sentencepiece model: {}", model_file.string(), msg);
    }
    const ClassicConfig cfg = ClassicConfig::read(dir);
    const bool is_t5 = cfg.tokenizer_class.rfind("T5Tokenizer", 0) == 0 || (
                       model_file.filename() == "spiece.model" && cfg.tokenizer_class.empty());
    fairseq_ = cfg.tokenizer_class.rfind("XLMRobertaTokenizer", 0) == 0 ||
               (model_file.filename() == "sentencepiece.bpe.model" && cfg.tokenizer_class.empty());
    ATLAS_CHECK(cfg.tokenizer_class.empty() || is_t5 || fairseq_ || cfg.tokenizer_class.rfind("LlamaTokenizer", 0) == 0 ||
                    cfg.tokenizer_class.rfind("GemmaTokenizer", 0) == 0,
                ConfigError,
                "'{}': tokenizer_class '{}' with a sentencepiece model is not supported (supported: LlamaTokenizer, "
                "GemmaTokenizer, T5Tokenizer, XLMRobertaTokenizer)", (dir / "tokenizer_config.json").string(),
                cfg.tokenizer_class);
    if (fairseq_) {
      const int32_t n = api_.vocab_size(model_);
      for (const auto& [content, id] : {std::pair<const char*, int64_t>{"<s>", 0}, {"<pad>", 1}, {"</s>", 2},
                                        {"<unk>", 3}, {"<mask>", static_cast<int64_t>(n) + 1}}) {
        AddedToken a;
        a.content = content;
        a.id = id;
        a.lstrip = std::string(content) == "<mask>";  // XLM-R's <mask> swallows the space before it
        if (!added_.token_to_id(a.content)) added_.add(a, nullptr);
      }
    }
    for (const auto& t : cfg.added_tokens) {
      AddedToken a = t;
      a.normalized = false;
      added_.add(a, nullptr);
    }
    for (const auto& content : cfg.special_token_strings()) {
      if (added_.token_to_id(content)) continue;
      const int32_t spm_id = api_.piece_to_id(model_, content.data(), content.size());
      const std::string back = piece(spm_id);
      if (back != content) continue;  // not a piece of this model
      AddedToken a;
      a.content = content;
      a.id = model_id(spm_id);
      added_.add(a, nullptr);
    }
    auto special = [&](const char* key, const char* fallback) -> std::optional<SpecialPiece> {
      const std::string s = cfg.token(key, fallback);
      if (s.empty()) return std::nullopt;
      if (auto id = token_to_id(s)) return SpecialPiece{{*id}, {s}};
      return std::nullopt;
    };
    std::optional<SpecialPiece> prefix, suffix;
    if (fairseq_) {
      const auto cls = special("cls_token", "<s>"), sep = special("sep_token", "</s>");
      ATLAS_CHECK(cls && sep, ConfigError, "'{}': XLM-R's cls / sep tokens are not in the vocabulary", dir.string());
      post_ = make_roberta_processing(*cls, *sep, /*trim_offsets=*/false, /*add_prefix_space=*/false);
    } else {
      if (cfg.flag("add_bos_token", !is_t5)) prefix = special("bos_token", "<s>");
      if (cfg.flag("add_eos_token", is_t5)) suffix = special("eos_token", "</s>");
      post_ = make_affix_processing(prefix, suffix, /*skip_present_suffix=*/is_t5, /*pair_type_ids=*/!is_t5);
    }
    display_.metaspace = true;
  }
  ~SentencePieceTokenizer() override { api_.free_model(model_); }

  Encoding encode(std::string_view text, bool add_special_tokens) const override {
    return post_->assemble(encode_part(text), nullptr, add_special_tokens);
  }
  Encoding encode_pair(std::string_view a, std::string_view b, bool add_special_tokens) const override {
    const Part pa = encode_part(a), pb = encode_part(b);
    return post_->assemble(pa, &pb, add_special_tokens);
  }
  int64_t vocab_size() const override {
    const int64_t pieces = api_.vocab_size(model_) + (fairseq_ ? 1 : 0);
    int64_t n = pieces;
    for (const auto& t : added_.tokens()) {
      if (t.id >= pieces) ++n;
    }
    return n;
  }
  std::optional<int64_t> token_to_id(std::string_view token) const override {
    if (auto id = added_.token_to_id(std::string(token))) return id;
    const int32_t id = api_.piece_to_id(model_, token.data(), token.size());
    if (id < 0 || piece(id) != token) return std::nullopt;
    return model_id(id);
  }
  std::string id_to_token(int64_t id) const override {
    if (auto t = added_.id_to_token(id)) return *t;
    const int64_t spm_id = fairseq_ ? id - 1 : id;
    const std::string p = spm_id < 0 || (fairseq_ && spm_id == 0) ? std::string() : piece(static_cast<int32_t>(spm_id));
    ATLAS_CHECK(!p.empty(), InputError, "token id {} is outside the vocabulary (size {})", id, vocab_size());
    return p;
  }
  std::string display(int64_t id) const override {
    if (auto t = added_.id_to_token(id)) return *t;
    return display_token(id_to_token(id), display_);
  }
  std::string kind() const override { return "sentencepiece"; }

 private:
  /// The tokenizer's id of a sentencepiece id (XLMRobertaTokenizer: + 1, and spm id 0 is <unk>).
  int64_t model_id(int32_t spm_id) const {
    if (!fairseq_) return spm_id;
    return spm_id == 0 ? 3 : static_cast<int64_t>(spm_id) + 1;
  }

  std::string piece(int32_t id) const {
    char* p = api_.id_to_piece(model_, id);
    if (!p) return "";
    std::string s(p);
    api_.free_string(p);
    return s;
  }

  Part encode_part(std::string_view text) const {
    check_utf8(text, "text");
    std::vector<Piece> pieces{{NormalizedString::from_original(text), std::nullopt}};
    added_.split(pieces, false);
    Part part;
    for (const auto& p : pieces) {
      const auto whole = p.text.original_range(0, p.text.text.size());
      if (p.id) {
        part.ids.push_back(*p.id);
        part.tokens.push_back(p.text.text);
        part.offsets.emplace_back(whole.first, whole.second);
        continue;
      }
      atlas_spm_piece* out = nullptr;
      size_t n = 0;
      char* error = nullptr;
      if (api_.encode(model_, p.text.text.data(), p.text.text.size(), &out, &n, &error) != 0) {
        const std::string msg = error ? error : "unknown error";
        api_.free_string(error);
        ATLAS_FAIL(InputError, "sentencepiece could not encode the text: {}", msg);
      }
      const std::string& chunk = p.text.text;
      for (size_t i = 0; i < n; ++i) {
        part.ids.push_back(model_id(out[i].id));
        part.tokens.emplace_back(out[i].piece);
        // sentencepiece's surface of a "▁..." piece starts with the space it replaced; the fast
        // tokenizers align "▁" to the character after it, so leading whitespace is dropped (a lone "▁"
        // takes the next character, as Metaspace's prepended one does).
        size_t b = out[i].begin, e = std::max(out[i].begin, out[i].end);
        b = std::min<size_t>(b, chunk.size());
        e = std::min<size_t>(e, chunk.size());
        while (b < e) {
          size_t next = b;
          const char32_t c = next_char(chunk, next);
          if (!is_whitespace(c) && !is_control_char(c)) break;  // what the charsmap turns into "▁" or drops
          b = next;
        }
        if (b == e && e < chunk.size()) e += utf8_len(static_cast<unsigned char>(chunk[e]));
        const auto r = p.text.original_range(b, e);
        part.offsets.emplace_back(r.first, r.second);
      }
      api_.free_pieces(out, n);
    }
    const auto chars = byte_to_char_index(text);
    for (auto& [b, e] : part.offsets) {
      b = chars[static_cast<size_t>(b)];
      e = chars[static_cast<size_t>(e)];
    }
    return part;
  }

  const SpmApi& api_;
  atlas_spm_model* model_ = nullptr;
  bool fairseq_ = false;  // XLMRobertaTokenizer's id layout
  AddedVocabulary added_;
  std::unique_ptr<PostProcessor> post_;
  DisplayStyle display_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& dir, const std::filesystem::path& model) {
  return std::make_unique<SentencePieceTokenizer>(dir, model);
}

}  // namespace atlas::tokenize::detail
