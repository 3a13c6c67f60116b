#!/usr/bin/env bash
# Encoder-decoders through the binary: `atlas extract` of the tiny T5 and BART references with
# --ids/--decoder-ids gives encoder_attention, decoder_attention and cross_attention equal to
# transformers' attn_L / dec_self_L / cross_L (numpy), decoder_* token arrays, per-stack --layers;
# the default decoder input is decoder_start_token_id; `atlas visualize heatmap --kind cross` draws.
source "$(dirname "$0")/lib.sh"

REF="$ATLAS_SHARED_DIR/reference"
if [ ! -d "$REF/models/t5" ] || [ ! -d "$REF/models/bart" ]; then
  echo "reference models missing under $REF"; exit 1
fi

ids_of() {  # ids_of FILE KEY -> "1,2,3"
  "$ATLAS_PYTHON" -c "import numpy as np,sys; print(','.join(map(str, np.load(sys.argv[1])[sys.argv[2]])))" "$1" "$2"
}

# compare OUT REF: every layer of the three kinds, the decoder ids and the logits within tolerance.
compare() {
  "$ATLAS_PYTHON" - "$1" "$2" <<'PY'
import json, sys, numpy as np
z, r = np.load(sys.argv[1]), np.load(sys.argv[2])
worst = {}
for kind, key in [("encoder_attention", "attn_L"), ("decoder_attention", "dec_self_L"), ("cross_attention", "cross_L")]:
    a = z[kind]
    layers = sorted(int(k[len(key):]) for k in r.files if k.startswith(key) and k[len(key):].isdigit())
    assert a.shape[0] == len(layers), (kind, a.shape, layers)
    for l in layers:
        want = r[f"{key}{l}"]
        assert a[l].shape == want.shape, (kind, l, a[l].shape, want.shape)
        worst[kind] = max(worst.get(kind, 0.0), float(np.abs(a[l] - want).max()))
    assert worst[kind] <= 2e-5, (kind, worst[kind])
assert (z["decoder_input_ids"] == r["decoder_input_ids"]).all()
assert (z["input_ids"] == r["input_ids"]).all()
assert len(z["decoder_tokens"]) == len(z["decoder_token_labels"]) == len(r["decoder_input_ids"])
assert z["decoder_offsets"].shape == (len(r["decoder_input_ids"]), 2)
assert z["cross_attention"].shape[2:] == (len(r["decoder_input_ids"]), len(r["input_ids"]))
logits = float(np.abs(z["logits"] - r["logits"]).max())
assert logits <= 1e-4, logits
meta = json.loads(str(z["meta"]))
assert meta["decoder"]["source"] == "ids", meta["decoder"]
print(" ".join(f"{k} {v:.3g}" for k, v in worst.items()) + f" logits {logits:.3g}")
PY
}

for arch in t5 bart; do
  for case in b_len7_dec10 c_len60_dec10 d_text; do
    ref="$REF/attention/$arch/$case.npz"
    out="$TMP/$arch-$case.npz"
    if ! "$ATLAS" extract --model "$REF/models/$arch" --ids "$(ids_of "$ref" input_ids)" \
         --decoder-ids "$(ids_of "$ref" decoder_input_ids)" --logits -q -o "$out" >/dev/null 2>"$TMP/err"; then
      fail "$arch $case: extract failed: $(cat "$TMP/err")"; continue
    fi
    if diffs=$(compare "$out" "$ref" 2>&1); then pass "$arch $case matches transformers ($diffs)"; else fail "$arch $case: $diffs"; fi
  done
done

# The text path: BartTokenizer's <s> ... </s> template, decoder text after decoder_start_token_id.
ref="$REF/attention/bart/d_text.npz"
if "$ATLAS" extract --model "$REF/models/bart" --text "The doctor hired the nurse because she was overworked." \
     --decoder-text "The nurse was overworked." -q -o "$TMP/bart-text.npz" >/dev/null 2>"$TMP/err" &&
   "$ATLAS_PYTHON" - "$TMP/bart-text.npz" "$ref" <<'PY'
import sys, numpy as np
z, r = np.load(sys.argv[1]), np.load(sys.argv[2])
assert list(z["input_ids"]) == list(r["input_ids"]) and list(z["tokens"]) == list(r["tokens"])
assert list(z["decoder_input_ids"]) == list(r["decoder_input_ids"]) and list(z["decoder_tokens"]) == list(r["decoder_tokens"])
for kind, key in [("encoder_attention", "attn_L"), ("decoder_attention", "dec_self_L"), ("cross_attention", "cross_L")]:
    assert max(np.abs(z[kind][l] - r[f"{key}{l}"]).max() for l in range(2)) <= 2e-5, kind
PY
then pass "bart --text/--decoder-text matches transformers' d_text"
else fail "bart --text/--decoder-text: $(cat "$TMP/err")"; fi

# Without decoder input: [decoder_start_token_id]; --layers -1 --heads 1 select in each stack.
ref="$REF/attention/bart/b_len7_dec1.npz"
out="$TMP/bart-default.npz"
if "$ATLAS" extract --model "$REF/models/bart" --ids "$(ids_of "$ref" input_ids)" --layers -1 --heads 1 -q -o "$out" \
     >/dev/null 2>"$TMP/err" &&
   "$ATLAS_PYTHON" - "$out" "$ref" <<'PY'
import sys, numpy as np
z, r = np.load(sys.argv[1]), np.load(sys.argv[2])
assert list(z["decoder_input_ids"]) == [2], z["decoder_input_ids"]
assert list(z["layers"]) == [1] and list(z["decoder_layers"]) == [1] and list(z["decoder_heads"]) == [1]
assert z["encoder_attention"].shape == (1, 1, 7, 7) and z["cross_attention"].shape == (1, 1, 1, 7)
assert np.abs(z["cross_attention"][0, 0] - r["cross_L1"][1]).max() <= 2e-5
assert np.abs(z["encoder_attention"][0, 0] - r["attn_L1"][1]).max() <= 2e-5
assert z["decoder_special"][0]
PY
then pass "bart: default decoder input is decoder_start_token_id, --layers/--heads per stack"
else fail "bart default decoder input: $(cat "$TMP/err")"; fi

# A cross-attention heatmap: decoder tokens down, encoder tokens across.
if "$ATLAS" visualize heatmap "$TMP/t5-d_text.npz" --kind cross --layer 1 --head mean -o "$TMP/cross.png" >/dev/null 2>"$TMP/err" &&
   "$ATLAS_PYTHON" -c "import sys; d=open(sys.argv[1],'rb').read(); assert d[:8]==b'\x89PNG\r\n\x1a\n' and len(d)>2000" "$TMP/cross.png"; then
  pass "visualize heatmap --kind cross"
else fail "visualize heatmap --kind cross: $(cat "$TMP/err")"; fi
for kind in encoder decoder; do
  if "$ATLAS" visualize heatmap "$TMP/bart-d_text.npz" --kind $kind -o "$TMP/$kind.svg" >/dev/null 2>"$TMP/err"; then
    pass "visualize heatmap --kind $kind"
  else fail "visualize --kind $kind: $(cat "$TMP/err")"; fi
done
# Default kind: attention, else encoder_attention.
if "$ATLAS" visualize heatmap "$TMP/bart-d_text.npz" -o "$TMP/default.png" >/dev/null 2>"$TMP/err"; then
  pass "visualize of an encoder-decoder file defaults to encoder_attention"
else fail "visualize default kind: $(cat "$TMP/err")"; fi

expect_error "grid of cross-attention" "$TMP/grid.png" "cross-attention is not square" -- \
  visualize grid "$TMP/t5-d_text.npz" --kind cross -o "$TMP/grid.png"
expect_error "--decoder-ids on a decoder-only model" "$TMP/gpt2.npz" "not an encoder-decoder" -- \
  extract --model "$REF/models/gpt2" --ids 5,6 --decoder-ids 5 -o "$TMP/gpt2.npz"
expect_error "decoder id outside the vocabulary" "$TMP/big.npz" "outside the vocabulary" -- \
  extract --model "$REF/models/t5" --ids 5,6 --decoder-ids 1100,99999 -o "$TMP/big.npz"
printf 'a b c\n' > "$TMP/corpus.txt"
expect_error "corpus run of an encoder-decoder" "" "not supported yet" -- \
  extract --model "$REF/models/t5" --input "$TMP/corpus.txt" -o "$TMP/store/"

finish
