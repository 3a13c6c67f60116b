// Placeholder: the sentencepiece shim (C API over sentencepiece, loaded with dlopen) goes here.
extern "C" int atlas_spm_abi_version() { return 1; }
