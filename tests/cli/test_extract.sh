#!/usr/bin/env bash
# atlas extract through the real binary: the embedded model end to end (numpy reads the NPZ and it
# equals the Hugging Face reference), and every bad input of the Foundation issue.
source "$(dirname "$0")/lib.sh"
MODEL="$ATLAS_SOURCE_DIR/examples/models/stories260K"
REF="$ATLAS_SHARED_DIR/reference"
OUT="$TMP/out"; mkdir -p "$OUT"

# --- the main job on the embedded model, compared with transformers' output for the same text
text='Lily went to the park. She saw a big dog.'
if "$ATLAS" extract --model "$MODEL" --text "$text" --logits --threads 2 -o "$OUT/s1.npz" > "$OUT/s1.log"; then
  pass "extract on the embedded model"
else
  fail "extract on the embedded model: $(cat "$OUT/s1.log")"
fi
grep -q "strongest links" "$OUT/s1.log" && pass "summary lists the strongest links" || fail "summary: $(cat "$OUT/s1.log")"
if "$ATLAS_PYTHON" - "$OUT/s1.npz" "$REF/attention/stories260K/s1_pronoun.npz" "$text" <<'PY'
import json, sys
import numpy as np
z, ref, text = np.load(sys.argv[1]), np.load(sys.argv[2]), sys.argv[3]
A = z["attention"]
assert A.dtype == np.float32 and A.shape == (5, 8, 17, 17), (A.dtype, A.shape)
assert list(z["layers"]) == list(range(5)) and list(z["heads"]) == list(range(8))
assert z["layers"].dtype == np.int64 and z["input_ids"].dtype == np.int64
assert (z["input_ids"] == ref["input_ids"]).all(), (z["input_ids"], ref["input_ids"])
assert list(z["tokens"]) == list(ref["tokens"]), (list(z["tokens"]), list(ref["tokens"]))
worst = max(float(np.abs(A[l] - ref[f"attn_L{l}"]).max()) for l in range(5))
assert worst <= 2e-5, worst
lw = float(np.abs(z["logits"] - ref["logits"]).max())
assert lw <= 1e-4, lw
off = z["offsets"]
assert off.shape == (17, 2) and off.dtype == np.int64
assert tuple(off[0]) == (-1, -1) and bool(z["special"][0])
assert text[off[1][0]:off[1][1]].strip() == "Lily", (off[1], text[off[1][0]:off[1][1]])
meta = json.loads(str(z["meta"]))
for k in ("version", "git_revision", "command_line", "created", "dtype", "device"):
    assert k in meta, k
assert meta["model"]["model_type"] == "llama" and len(meta["model"]["checkpoint_sha256"]) == 64
assert meta["input"]["text"] == text
print(f"stories260K via CLI: max |attn diff| {worst:.2e}, max |logit diff| {lw:.2e}")
PY
then pass "numpy reads the NPZ and it equals the reference"; else fail "NPZ contents"; fi

# --- selections and float16 storage
if "$ATLAS" extract --model "$MODEL" --text "$text" --layers 0,3-4 --heads -1 --dtype float16 -o "$OUT/sel.npz" >/dev/null &&
   "$ATLAS_PYTHON" - "$OUT/sel.npz" "$OUT/s1.npz" <<'PY'
import sys, numpy as np
s, f = np.load(sys.argv[1]), np.load(sys.argv[2])
assert s["attention"].dtype == np.float16 and s["attention"].shape == (3, 1, 17, 17)
assert list(s["layers"]) == [0, 3, 4] and list(s["heads"]) == [7]
d = np.abs(s["attention"].astype(np.float32) - f["attention"][[0, 3, 4]][:, [7]]).max()
assert d < 1e-3, d
PY
then pass "--layers/--heads/--dtype float16"; else fail "--layers/--heads/--dtype float16"; fi

# --- --ids input
if "$ATLAS" extract --model "$MODEL" --ids 1,403,407 -o "$OUT/ids.npz" >/dev/null &&
   "$ATLAS_PYTHON" -c "import numpy as np,sys; z=np.load('$OUT/ids.npz'); assert z['attention'].shape==(5,8,3,3); assert list(z['input_ids'])==[1,403,407]"; then
  pass "--ids input"; else fail "--ids input"; fi

# --- bad input: one line, exit 1, no partial file
expect_error "missing model directory" "$OUT/e.npz" "does not exist" -- extract --model "$TMP/nope" --text hi -o "$OUT/e.npz"
touch "$TMP/afile"
expect_error "model path is a file" "$OUT/e.npz" "not a directory" -- extract --model "$TMP/afile" --text hi -o "$OUT/e.npz"
mkdir -p "$TMP/unreadable/config.json"
expect_error "unreadable config.json" "$OUT/e.npz" "config.json" -- extract --model "$TMP/unreadable" --text hi -o "$OUT/e.npz"

mkdir -p "$TMP/unknown"; cp "$MODEL"/* "$TMP/unknown/"; chmod -R u+w "$TMP/unknown"
sed -i 's/"model_type": *"llama"/"model_type": "wibble"/' "$TMP/unknown/config.json"
expect_error "unknown model_type" "$OUT/e.npz" "wibble" -- extract --model "$TMP/unknown" --text hi -o "$OUT/e.npz"

mkdir -p "$TMP/trunc"; cp "$MODEL"/* "$TMP/trunc/"; chmod -R u+w "$TMP/trunc"
head -c 500000 "$MODEL/model.safetensors" > "$TMP/trunc/model.safetensors"
expect_error "truncated safetensors" "$OUT/e.npz" "model.safetensors" -- extract --model "$TMP/trunc" --text hi -o "$OUT/e.npz"

mkdir -p "$TMP/corrupt"; cp "$MODEL"/* "$TMP/corrupt/"; chmod -R u+w "$TMP/corrupt"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a": garbage!!}' | dd of="$TMP/corrupt/model.safetensors" conv=notrunc status=none
expect_error "corrupted safetensors header" "$OUT/e.npz" "model.safetensors" -- extract --model "$TMP/corrupt" --text hi -o "$OUT/e.npz"

if [ -d "$REF/models/gpt2-bin" ]; then
  mkdir -p "$TMP/binT"; cp "$REF/models/gpt2-bin"/* "$TMP/binT/"; chmod -R u+w "$TMP/binT"
  size=$(stat -c %s "$REF/models/gpt2-bin/pytorch_model.bin")
  head -c $((size / 2)) "$REF/models/gpt2-bin/pytorch_model.bin" > "$TMP/binT/pytorch_model.bin"
  expect_error "truncated pytorch_model.bin" "$OUT/e.npz" "pytorch_model.bin" -- extract --model "$TMP/binT" --text hi -o "$OUT/e.npz"

  # A .bin whose pickle calls os.system: it must be refused by name and must never run.
  mkdir -p "$TMP/evil"; cp "$REF/models/gpt2-bin"/* "$TMP/evil/"; chmod -R u+w "$TMP/evil"
  "$ATLAS_PYTHON" - "$TMP/evil/pytorch_model.bin" "$TMP/pwned" <<'PY'
import sys, zipfile
cmd = f"touch {sys.argv[2]}".encode()
# protocol 2: GLOBAL os system, the command as a tuple, REDUCE, STOP
payload = b"\x80\x02cos\nsystem\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R."
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("pytorch_model/data.pkl", payload)
    z.writestr("pytorch_model/version", "3\n")
PY
  expect_error "pickle global outside the allow-list" "$OUT/e.npz" "os.*system" -- extract --model "$TMP/evil" --text hi -o "$OUT/e.npz"
  [ ! -e "$TMP/pwned" ] && pass "the forbidden global did not run" || fail "the forbidden global RAN"
fi

expect_error "non-UTF-8 text" "$OUT/e.npz" "UTF-8" -- extract --model "$MODEL" --text $'ab\xff\xfecd' -o "$OUT/e.npz"
expect_error "empty text" "$OUT/e.npz" "empty" -- extract --model "$MODEL" --text "" -o "$OUT/e.npz"
expect_error "id outside the vocabulary" "$OUT/e.npz" "99999.*512" -- extract --model "$MODEL" --ids 1,99999 -o "$OUT/e.npz"
long=$(for i in $(seq 600); do printf 'the dog '; done)
expect_error "input longer than max positions" "$OUT/e.npz" "512" -- extract --model "$MODEL" --text "$long" -o "$OUT/e.npz"
expect_error "unknown layer" "$OUT/e.npz" "unknown layer 7" -- extract --model "$MODEL" --text hi --layers 7 -o "$OUT/e.npz"
expect_error "unknown head" "$OUT/e.npz" "unknown head 8" -- extract --model "$MODEL" --text hi --heads 0,8 -o "$OUT/e.npz"
expect_error "output in a missing directory" "" "does not exist" -- extract --model "$MODEL" --text hi -o "$TMP/no/such/dir/x.npz"
[ ! -e "$TMP/no" ] && pass "missing output directory not created" || fail "missing output directory was created"

# --gemm onednn: the same attention within float32 rounding, recorded in meta; the default records nothing.
"$ATLAS" extract --model "$MODEL" --text "Lily went to the park and saw a big dog." -o "$OUT/g_blas.npz" >/dev/null 2>&1 &&
  "$ATLAS" extract --model "$MODEL" --text "Lily went to the park and saw a big dog." --gemm onednn -o "$OUT/g_dnnl.npz" >/dev/null 2>&1 &&
  "$ATLAS_PYTHON" - "$OUT/g_blas.npz" "$OUT/g_dnnl.npz" <<'PY' && pass "--gemm onednn: attention within 2e-5 of the default, meta.gemm onednn" || fail "--gemm onednn"
import json, sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
d = np.abs(a["attention"] - b["attention"]).max()
assert d <= 2e-5, d
ma, mb = json.loads(str(a["meta"])), json.loads(str(b["meta"]))
assert "gemm" not in ma and mb["gemm"] == "onednn", (ma.get("gemm"), mb.get("gemm"))
PY
err=$("$ATLAS" extract --model "$MODEL" --text hi --gemm mkl -o "$OUT/e.npz" 2>&1 >/dev/null); rc=$?
[ "$rc" = 2 ] && printf '%s' "$err" | grep -q -- "--gemm: mkl not in {openblas,onednn}" && [ ! -e "$OUT/e.npz" ] \
  && pass "unknown --gemm is a usage error naming the choices" || fail "unknown --gemm: rc $rc: $err"

"$ATLAS" extract --help >/dev/null && pass "extract --help exits 0" || fail "extract --help"
"$ATLAS" --help | grep -q extract && pass "atlas --help lists extract" || fail "atlas --help lists extract"
"$ATLAS" --version | grep -Eq '^atlas [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-f]{7,}' && pass "--version" || fail "--version: $("$ATLAS" --version)"
finish
