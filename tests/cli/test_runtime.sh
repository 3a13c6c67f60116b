#!/usr/bin/env bash
# The model runtime is dlopen()ed: `atlas` itself links no LibTorch, so --help, --version, tokenize
# and visualize never map it; extract loads libatlas_torch.so, and the module's errors still reach
# main.cpp as one line with exit code 1.
source "$(dirname "$0")/lib.sh"
MODEL="$ATLAS_SOURCE_DIR/examples/models/stories260K"
torch_re='/lib(torch|torch_cpu|c10)[^/]*\.so'

# `ldd` of the binary: not one torch library among its dependencies.
if ! deps=$(ldd "$ATLAS" 2>&1); then
  fail "ldd $ATLAS: $deps"
elif printf '%s\n' "$deps" | grep -Eq "$torch_re"; then
  fail "atlas links LibTorch: $(printf '%s\n' "$deps" | grep -E "$torch_re" | head -3 | tr '\n' ' ')"
else
  pass "ldd: atlas links no LibTorch ($(printf '%s\n' "$deps" | grep -c '=>') libraries)"
fi

# loaded_libs NAME -- atlas args...: the shared objects the dynamic loader opened for that run.
loaded_libs() {
  LD_DEBUG=libs LD_DEBUG_OUTPUT="$TMP/ld.$1" "$ATLAS" "${@:3}" >/dev/null 2>&1
  local rc=$?
  cat "$TMP/ld.$1".* 2>/dev/null | sed -n 's/.*calling init: //p'
  return $rc
}
no_torch() {
  local name=$1 libs rc
  libs=$(loaded_libs "$@"); rc=$?
  if [ "$rc" -ne 0 ]; then fail "$name: exit code $rc"; return; fi
  if [ -z "$libs" ]; then fail "$name: LD_DEBUG=libs reported nothing (cannot check)"; return; fi
  if printf '%s\n' "$libs" | grep -Eq "$torch_re|libatlas_torch"; then
    fail "$name loads LibTorch: $(printf '%s\n' "$libs" | grep -E "$torch_re|libatlas_torch" | head -3 | tr '\n' ' ')"
  else
    pass "$name loads no LibTorch ($(printf '%s\n' "$libs" | wc -l) libraries)"
  fi
}
no_torch "--version" -- --version
no_torch "--help" -- --help
no_torch "tokenize" -- tokenize --model "$MODEL" --text "Lily went to the park."

# extract goes through the module (and the sentencepiece shim it reaches through the binary).
if libs=$(loaded_libs extract -- extract --model "$MODEL" --text hi -o "$TMP/hi.npz"); then
  printf '%s\n' "$libs" | grep -q 'libatlas_torch\.so' && pass "extract loads libatlas_torch.so" ||
    fail "extract did not load libatlas_torch.so: $libs"
  printf '%s\n' "$libs" | grep -Eq "$torch_re" && pass "extract loads LibTorch through it" ||
    fail "extract ran without LibTorch?"
else
  fail "extract through the module failed"
fi
[ -s "$TMP/hi.npz" ] && pass "extract wrote its NPZ" || fail "extract wrote no NPZ"
no_torch "visualize" -- visualize heatmap "$TMP/hi.npz" --layer 0 --head 0 -o "$TMP/hi.png"

# The sentencepiece shim inside a LibTorch process: the embedded model without tokenizer.json is
# tokenized by tokenizer.model through libatlas_spm.so, with the ids of tokenizer.json.
mkdir -p "$TMP/spm"; cp "$MODEL"/* "$TMP/spm/"; chmod -R u+w "$TMP/spm"; rm "$TMP/spm/tokenizer.json"
text="Lily went to the park."
if libs=$(loaded_libs spm -- extract --model "$TMP/spm" --text "$text" -o "$TMP/spm.npz") &&
   "$ATLAS" extract --model "$MODEL" --text "$text" -o "$TMP/json.npz" >/dev/null &&
   "$ATLAS_PYTHON" -c "import numpy as np, sys; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); assert list(a['input_ids']) == list(b['input_ids']), (a['input_ids'], b['input_ids'])" "$TMP/spm.npz" "$TMP/json.npz"; then
  printf '%s\n' "$libs" | grep -q 'libatlas_spm\.so' && pass "extract with a sentencepiece tokenizer through the module" ||
    fail "the sentencepiece run did not load libatlas_spm.so"
else
  fail "extract with a sentencepiece tokenizer"
fi

# An error raised inside the module (InputError) is caught by main: one line, exit 1.
expect_error "InputError thrown in the module" "$TMP/e.npz" "unknown layer 9" -- \
  extract --model "$MODEL" --text hi --layers 9 -o "$TMP/e.npz"

# A missing or wrong module is one clear line, and only commands that need it fail.
export ATLAS_TORCH_MODULE="$TMP/no/libatlas_torch.so"
expect_error "missing module" "$TMP/e.npz" "cannot load the model runtime '$TMP/no/libatlas_torch.so': .*No such file" -- \
  extract --model "$MODEL" --text hi -o "$TMP/e.npz"
"$ATLAS" tokenize --model "$MODEL" --text hi >/dev/null && pass "tokenize works without the module" ||
  fail "tokenize needs the module"
printf 'not an ELF file' > "$TMP/bad.so"
export ATLAS_TORCH_MODULE="$TMP/bad.so"
expect_error "broken module" "$TMP/e.npz" "cannot load the model runtime '$TMP/bad.so': " -- \
  extract --model "$MODEL" --text hi -o "$TMP/e.npz"
spm=$(dirname "$ATLAS")/../lib/libatlas_spm.so
if [ -f "$spm" ]; then
  export ATLAS_TORCH_MODULE="$spm"
  expect_error "a library that is not the module" "$TMP/e.npz" "no symbol 'atlas_torch_backend'" -- \
    extract --model "$MODEL" --text hi -o "$TMP/e.npz"
fi
unset ATLAS_TORCH_MODULE

# Outside the build tree the module is looked for next to the binary (the installed layout).
module=$(dirname "$ATLAS")/../lib/libatlas_torch.so
mkdir -p "$TMP/inst/bin" "$TMP/inst/lib"; cp "$ATLAS" "$TMP/inst/bin/atlas"
if err=$("$TMP/inst/bin/atlas" extract --model "$MODEL" --text hi -o "$TMP/e.npz" 2>&1 >/dev/null); then
  echo "skip - no module next to a copied binary: one is installed in the install prefix"
elif printf '%s' "$err" | grep -q "cannot load the model runtime 'libatlas_torch.so': not found (looked in $TMP/inst/lib/libatlas_torch.so"; then
  pass "no module next to a copied binary ($err)"
else
  fail "no module next to a copied binary: $err"
fi
cp "$module" "$TMP/inst/lib/"
if libs=$(ATLAS="$TMP/inst/bin/atlas" loaded_libs inst -- extract --model "$MODEL" --text hi -o "$TMP/inst.npz") &&
   printf '%s\n' "$libs" | grep -q "$TMP/inst/lib/libatlas_torch.so"; then
  pass "the module is found in <bin>/../lib"
else
  fail "the module in <bin>/../lib was not used: $(printf '%s\n' "$libs" | grep atlas_torch)"
fi
finish
