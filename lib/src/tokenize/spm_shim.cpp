// libatlas_spm: a plain C API over sentencepiece. sentencepiece bundles its own protobuf, which
// clashes with LibTorch's when both are linked into one binary, so this shim is a separate shared
// library (-Bsymbolic, only the C symbols of spm_api.h exported through spm_shim.map, and a
// DF_SYMBOLIC copy of libsentencepiece beside it; lib/CMakeLists.txt) that sentencepiece_model.cpp
// dlopen()s RTLD_LOCAL -- without RTLD_DEEPBIND, which the sanitizers refuse.
// Every function catches everything: no C++ exception may cross the dlopen boundary.
#include <sentencepiece_processor.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "spm_api.h"

namespace {

char* dup_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

void set_error(char** error, const std::string& message) {
  if (error) *error = dup_string(message);
}

}  // namespace

extern "C" {

int atlas_spm_abi_version() { return ATLAS_SPM_ABI_VERSION; }

atlas_spm_model* atlas_spm_load(const char* path, char** error) {
  try {
    auto* sp = new sentencepiece::SentencePieceProcessor();
    const auto status = sp->Load(path);
    if (!status.ok()) {
      set_error(error, status.ToString());
      delete sp;
      return nullptr;
    }
    return reinterpret_cast<atlas_spm_model*>(sp);
  } catch (const std::exception& e) {
    set_error(error, e.what());
    return nullptr;
  }
}

void atlas_spm_free(atlas_spm_model* model) {
  delete reinterpret_cast<sentencepiece::SentencePieceProcessor*>(model);
}

int atlas_spm_encode(const atlas_spm_model* model, const char* text, size_t text_len,
                     atlas_spm_piece** out, size_t* n_out, char** error) {
  try {
    const auto* sp = reinterpret_cast<const sentencepiece::SentencePieceProcessor*>(model);
    const auto spt = sp->EncodeAsImmutableProto(std::string(text, text_len));
    const auto pieces = spt.pieces();
    auto* result = static_cast<atlas_spm_piece*>(std::calloc(pieces.size() + 1, sizeof(atlas_spm_piece)));
    if (!result) {
      set_error(error, "out of memory");
      return -1;
    }
    for (size_t i = 0; i < pieces.size(); ++i) {
      result[i].id = static_cast<int32_t>(pieces[i].id());
      result[i].begin = pieces[i].begin();
      result[i].end = pieces[i].end();
      result[i].piece = dup_string(pieces[i].piece());
    }
    *out = result;
    *n_out = pieces.size();
    return 0;
  } catch (const std::exception& e) {
    set_error(error, e.what());
    return -1;
  }
}

void atlas_spm_free_pieces(atlas_spm_piece* pieces, size_t n) {
  if (!pieces) return;
  for (size_t i = 0; i < n; ++i) std::free(pieces[i].piece);
  std::free(pieces);
}

void atlas_spm_free_string(char* s) { std::free(s); }

int32_t atlas_spm_vocab_size(const atlas_spm_model* model) {
  return reinterpret_cast<const sentencepiece::SentencePieceProcessor*>(model)->GetPieceSize();
}

char* atlas_spm_id_to_piece(const atlas_spm_model* model, int32_t id) {
  try {
    const auto* sp = reinterpret_cast<const sentencepiece::SentencePieceProcessor*>(model);
    if (id < 0 || id >= sp->GetPieceSize()) return nullptr;
    return dup_string(sp->IdToPiece(id));
  } catch (...) {
    return nullptr;
  }
}

int32_t atlas_spm_piece_to_id(const atlas_spm_model* model, const char* piece, size_t len) {
  try {
    const auto* sp = reinterpret_cast<const sentencepiece::SentencePieceProcessor*>(model);
    return sp->PieceToId(std::string(piece, len));
  } catch (...) {
    return -1;
  }
}

int32_t atlas_spm_special_id(const atlas_spm_model* model, int which) {
  const auto* sp = reinterpret_cast<const sentencepiece::SentencePieceProcessor*>(model);
  switch (which) {
    case ATLAS_SPM_BOS: return sp->bos_id();
    case ATLAS_SPM_EOS: return sp->eos_id();
    case ATLAS_SPM_UNK: return sp->unk_id();
    case ATLAS_SPM_PAD: return sp->pad_id();
    default: return -1;
  }
}

int atlas_spm_is_byte(const atlas_spm_model* model, int32_t id) {
  return reinterpret_cast<const sentencepiece::SentencePieceProcessor*>(model)->IsByte(id) ? 1 : 0;
}

}  // extern "C"
