#!/usr/bin/env bash
# GPU checks (CTest label `gpu`): extract on CUDA equals CPU, float16/bfloat16 compute on CUDA, and
# a corpus run's throughput. Without a CUDA LibTorch or without a GPU this reports itself skipped
# (exit 77) — it never passes quietly.
source "$(dirname "$0")/../cli/lib.sh"
M="$ATLAS_SOURCE_DIR/examples/models/stories260K"
TEXT="Lily and her mom went to the park. Lily saw a big dog and she was happy."

probe=$("$ATLAS" extract -m "$M" --text "hi" --device cuda -o "$TMP/probe.npz" -q 2>&1)
if [ $? -ne 0 ]; then
  echo "SKIPPED: no CUDA here ($probe)"
  exit 77
fi

"$ATLAS" extract -m "$M" --text "$TEXT" -o "$TMP/cpu.npz" -q --threads 2 || fail "cpu extract"
"$ATLAS" extract -m "$M" --text "$TEXT" --device cuda -o "$TMP/cuda.npz" -q || fail "cuda extract"
for dt in float16 bfloat16; do
  "$ATLAS" extract -m "$M" --text "$TEXT" --device cuda --compute-dtype $dt -o "$TMP/cuda-$dt.npz" -q || fail "cuda $dt"
done
for m in gpt2 bert llama qwen2; do
  R="$ATLAS_SHARED_DIR/reference/models/$m"
  "$ATLAS" extract -m "$R" --text "the quick brown fox" -o "$TMP/$m-cpu.npz" -q --threads 2 &&
    "$ATLAS" extract -m "$R" --text "the quick brown fox" --device cuda -o "$TMP/$m-cuda.npz" -q || fail "$m on cuda"
done
out=$("$ATLAS_PYTHON" - "$TMP" <<'PY'
import sys, numpy as np
t = sys.argv[1]
ok = True
def diff(a, b):
    return float(abs(np.load(a)["attention"].astype(np.float64) - np.load(b)["attention"]).max())
d = diff(f"{t}/cpu.npz", f"{t}/cuda.npz"); print(f"stories260K float32 cuda vs cpu: {d:.2e}"); ok &= d < 2e-5
for dt, tol in (("float16", 2e-2), ("bfloat16", 8e-2)):
    d = diff(f"{t}/cpu.npz", f"{t}/cuda-{dt}.npz"); print(f"stories260K {dt} cuda vs cpu float32: {d:.2e}"); ok &= d < tol
for m in ("gpt2", "bert", "llama", "qwen2"):
    d = diff(f"{t}/{m}-cpu.npz", f"{t}/{m}-cuda.npz"); print(f"{m} float32 cuda vs cpu: {d:.2e}"); ok &= d < 2e-5
print("OK" if ok else "MISMATCH")
PY
)
echo "$out"
case "$out" in *OK) pass "CUDA attention equals CPU (float32 2e-5; float16/bfloat16 within their precision)" ;; *) fail "CUDA differs from CPU" ;; esac

# Throughput of a corpus on the GPU (reported, not asserted).
for i in $(seq 1 256); do echo "Once upon a time, a little girl named Lily went to the park with her mom number $i."; done > "$TMP/corpus.txt"
for dt in float32 bfloat16; do
  if "$ATLAS" extract -m "$M" --input "$TMP/corpus.txt" --device cuda --compute-dtype $dt --batch-size 64 \
      --dtype float16 -o "$TMP/store-$dt" --json --progress none > "$TMP/sum-$dt.json"; then
    pass "corpus on cuda ($dt): $("$ATLAS_PYTHON" -c "import json,sys; s=json.load(open(sys.argv[1])); print(f\"{s['documents_ok']} docs, {s['tokens']} tokens, {s['tokens_per_second']:.0f} tokens/s\")" "$TMP/sum-$dt.json")"
  else
    fail "corpus on cuda ($dt)"
  fi
done
finish
