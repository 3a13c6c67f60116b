#!/usr/bin/env bash
# A user's own transformer as TorchScript (docs/custom-models.md): `atlas extract --model tiny.pt
# --ids ...` stores [layers, heads, T, T] attention whose rows sum to 1, equal to what the module
# returns in Python when python3-torch is installed (that part is skipped otherwise); a corpus with
# padding runs each row at its own length; a module that returns no attention is a one-line error.
source "$(dirname "$0")/lib.sh"

FIX="$ATLAS_FIXTURES/custom"
ids=1,5,9,3,7,2,11
out="$TMP/tiny.npz"
if "$ATLAS" extract --model "$FIX/tiny.pt" --ids "$ids" --logits -q -o "$out" >/dev/null 2>"$TMP/err" &&
   msg=$("$ATLAS_PYTHON" - "$out" <<'PY' 2>&1
import json, sys, numpy as np
z = np.load(sys.argv[1])
a = z["attention"]
assert a.shape == (2, 2, 7, 7), a.shape
rows = np.abs(a.sum(-1) - 1).max()
assert rows < 1e-5, rows
assert np.triu(a, 1).max() == 0, "the tiny model is causal"
assert z["logits"].shape == (7, 64), z["logits"].shape
meta = json.loads(str(z["meta"]))
assert meta["model"]["checkpoint_format"] == "torchscript", meta["model"]
assert meta["model"]["num_layers"] == 2 and meta["model"]["num_heads"] == 2 and meta["model"]["causal"], meta["model"]
assert meta["input"]["source"] == "ids"
print(f"rows sum to 1 within {rows:.2g}")
PY
); then pass "tiny.pt: attention [2, 2, 7, 7], $msg"
else fail "tiny.pt: $(cat "$TMP/err") ${msg:-}"; fi

if "$ATLAS_PYTHON" -c "import torch" 2>/dev/null; then
  if msg=$("$ATLAS_PYTHON" - "$out" "$FIX/tiny.pt" "$ids" <<'PY' 2>&1
import sys, numpy as np, torch
z = np.load(sys.argv[1])
m = torch.jit.load(sys.argv[2])
ids = torch.tensor([[int(i) for i in sys.argv[3].split(",")]])
with torch.no_grad():
    attentions, logits = m(ids)
worst = max(float(np.abs(z["attention"][l] - attentions[l][0].numpy()).max()) for l in range(len(attentions)))
assert worst <= 1e-6, worst
lw = float(np.abs(z["logits"] - logits[0].numpy()).max())
assert lw <= 1e-5, lw
print(f"attention {worst:.3g}, logits {lw:.3g}")
PY
  ); then pass "tiny.pt equals the module run in Python ($msg)"
  else fail "tiny.pt against Python: $msg"; fi
else
  echo "skip - tiny.pt against Python: python3-torch is not installed"
fi

# A padded batch: each document equals its own single run.
printf '{"ids": [1, 5, 9]}\n{"ids": [1, 5, 9, 3, 7, 2, 11]}\n' >"$TMP/docs.jsonl"
if "$ATLAS" extract --model "$FIX/tiny.pt" --input "$TMP/docs.jsonl" --batch-size 2 -q -o "$TMP/store" \
     >/dev/null 2>"$TMP/err" &&
   "$ATLAS" process cat "$TMP/store" 2 -o "$TMP/doc1.npz" >/dev/null 2>>"$TMP/err" &&
   "$ATLAS" process cat "$TMP/store" 1 -o "$TMP/doc0.npz" >/dev/null 2>>"$TMP/err" &&
   "$ATLAS" extract --model "$FIX/tiny.pt" --ids 1,5,9 -q -o "$TMP/short.npz" >/dev/null 2>>"$TMP/err" &&
   "$ATLAS_PYTHON" - "$TMP/doc0.npz" "$TMP/short.npz" "$TMP/doc1.npz" "$out" <<'PY' 2>>"$TMP/err"
import sys, numpy as np
for got, want in [(sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])]:
    a, b = np.load(got)["attention"], np.load(want)["attention"]
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.abs(a - b).max() <= 1e-6, np.abs(a - b).max()
PY
then pass "a padded corpus batch equals the single runs"
else fail "padded corpus batch: $(cat "$TMP/err")"; fi

expect_error "module without attention" "$TMP/e1.npz" "no_attention.pt.*no attention" -- \
  extract --model "$FIX/no_attention.pt" --ids 1,2,3 -o "$TMP/e1.npz"
expect_error "ids outside the module's vocabulary" "$TMP/e2.npz" "input id 500 is outside the vocabulary" -- \
  extract --model "$FIX/tiny.pt" --ids 1,2,500 -o "$TMP/e2.npz"

finish
