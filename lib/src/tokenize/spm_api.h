#pragma once
/* C API of libatlas_spm (spm_shim.cpp), shared by the shim and its dlopen() client
 * (sentencepiece_model.cpp). Plain C types only: nothing of sentencepiece or protobuf leaks out. */
#include <stddef.h>
#include <stdint.h>

#define ATLAS_SPM_ABI_VERSION 2

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atlas_spm_model atlas_spm_model;

typedef struct atlas_spm_piece {
  int32_t id;
  uint32_t begin; /* byte offsets of the piece's surface in the input, [begin, end) */
  uint32_t end;
  char* piece;    /* the vocabulary string, malloc'ed */
} atlas_spm_piece;

enum { ATLAS_SPM_BOS = 0, ATLAS_SPM_EOS = 1, ATLAS_SPM_UNK = 2, ATLAS_SPM_PAD = 3 };

int atlas_spm_abi_version(void);
/* NULL on failure, with *error a malloc'ed message (free with atlas_spm_free_string). */
atlas_spm_model* atlas_spm_load(const char* path, char** error);
void atlas_spm_free(atlas_spm_model* model);
/* 0 on success; *out is freed with atlas_spm_free_pieces. */
int atlas_spm_encode(const atlas_spm_model* model, const char* text, size_t text_len,
                     atlas_spm_piece** out, size_t* n_out, char** error);
void atlas_spm_free_pieces(atlas_spm_piece* pieces, size_t n);
void atlas_spm_free_string(char* s);
int32_t atlas_spm_vocab_size(const atlas_spm_model* model);
/* malloc'ed piece or NULL when out of range. */
char* atlas_spm_id_to_piece(const atlas_spm_model* model, int32_t id);
/* The unk id when the piece is unknown. */
int32_t atlas_spm_piece_to_id(const atlas_spm_model* model, const char* piece, size_t len);
/* -1 when the model has none. */
int32_t atlas_spm_special_id(const atlas_spm_model* model, int which);
int atlas_spm_is_byte(const atlas_spm_model* model, int32_t id);

#ifdef __cplusplus
}
#endif
