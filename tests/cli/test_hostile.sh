#!/usr/bin/env bash
# Files from other tools and hostile files through the real binary: each is read as numpy users
# expect or refused with one clear line (exit 1), quickly, and nothing is left behind.
source "$(dirname "$0")/lib.sh"
MODEL="$ATLAS_SOURCE_DIR/examples/models/stories260K"

# ---- an NPZ numpy wrote: Fortran-order float64 attention, |S byte-string tokens ----
"$ATLAS_PYTHON" - "$TMP" <<'PY'
import json, sys, numpy as np
d = sys.argv[1]
toks = ['<s>', 'The', '\u0120cat', '\u0120sat']
Q = len(toks); L, H = 2, 2
A = np.random.default_rng(0).random((L, H, Q, Q)) * np.tril(np.ones((Q, Q)))
A /= A.sum(-1, keepdims=True)
F = np.asfortranarray(A)                      # float64, fortran_order: True
assert F.flags.f_contiguous and not F.flags.c_contiguous
S = np.array([t.encode('utf-8') for t in toks])  # dtype |S5
meta = {"format": "atlas.attention", "format_version": 1, "model": {"path": "/m/tiny", "causal": True},
        "input": {"text": "The cat sat", "source": "text"}}
np.savez(d + '/numpy.npz', attention=F, layers=np.arange(L), heads=np.arange(H), tokens=S,
         meta=np.array(json.dumps(meta)))
np.savez(d + '/badtok.npz', attention=F, layers=np.arange(L), heads=np.arange(H),
         tokens=np.array([b'ok', b'\xff', b'x', b'y']))
PY
if "$ATLAS" visualize heatmap "$TMP/numpy.npz" --layer 1 --head 0 -o "$TMP/numpy.png" --dpi 72 >/dev/null 2>"$TMP/err" &&
   [ -s "$TMP/numpy.png" ]; then
  pass "heatmap of a numpy NPZ with Fortran-order float64 attention and |S tokens"
else
  fail "heatmap of a numpy NPZ: $(cat "$TMP/err")"
fi
expect_error "|S tokens that are not UTF-8" "$TMP/bad.png" "badtok.npz.*member 'tokens.npy'.*not valid UTF-8" -- \
  visualize heatmap "$TMP/badtok.npz" -o "$TMP/bad.png"

# ---- deeply nested JSON: config.json, tokenizer.json, a manifest line ----
deep() { "$ATLAS_PYTHON" -c "import sys; sys.stdout.write('[' * 100000)"; }
mkdir -p "$TMP/deep_config" "$TMP/deep_tok"
deep > "$TMP/deep_config/config.json"
cp "$MODEL"/* "$TMP/deep_tok/"
deep > "$TMP/deep_tok/tokenizer.json"
expect_error "config.json nested 100000 deep" "$TMP/o1.npz" "config.json.*nests deeper than 256" -- \
  extract --model "$TMP/deep_config" --text hi -o "$TMP/o1.npz"
expect_error "tokenizer.json nested 100000 deep" "" "tokenizer.json.*nests deeper than 256" -- \
  tokenize --model "$TMP/deep_tok" --text hi
{ echo '{"id": "a", "text": "Once upon a time"}'; deep; echo; } > "$TMP/deep.jsonl"
out=$("$ATLAS" extract --model "$MODEL" --input "$TMP/deep.jsonl" -o "$TMP/deep_store" --allow-failures 2>&1); rc=$?
if [ "$rc" -le 1 ] && printf '%s' "$out" | grep -q "nests deeper than 256"; then
  pass "manifest line nested 100000 deep fails that document only (rc $rc)"
else
  fail "manifest line nested 100000 deep: rc $rc: $(printf '%s' "$out" | tail -3)"
fi

# ---- invalid UTF-8 where text enters ----
expect_error "--text not UTF-8" "$TMP/u.npz" "not valid UTF-8" -- \
  extract --model "$MODEL" --text "$(printf 'caf\xe9')" -o "$TMP/u.npz"
printf 'Once upon a time\n\xc3\x28 broken\n' > "$TMP/bad_utf8.txt"
out=$("$ATLAS" extract --model "$MODEL" --input "$TMP/bad_utf8.txt" -o "$TMP/utf8_store" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && printf '%s' "$out" | grep -q "line 2: invalid UTF-8 at byte offset 0"; then
  pass "corpus line not UTF-8 is named (rc $rc)"
else
  fail "corpus line not UTF-8: rc $rc: $(printf '%s' "$out" | tail -3)"
fi
mkdir -p "$TMP/wp"
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n\xff\xfeworld\n' > "$TMP/wp/vocab.txt"
echo '{"tokenizer_class": "BertTokenizer"}' > "$TMP/wp/tokenizer_config.json"
expect_error "vocab.txt line not UTF-8" "" "vocab.txt' line 6: not valid UTF-8" -- tokenize --model "$TMP/wp" --text hi

# ---- hostile checkpoints through extract: a pickle calling os.system is refused, never run ----
"$ATLAS_PYTHON" "$ATLAS_SOURCE_DIR/tests/fixtures/checkpoints/make_bad_checkpoints.py" "$TMP/ck" >/dev/null
mkdir -p "$TMP/evil_model"
cp "$MODEL/config.json" "$TMP/evil_model/"
cp "$TMP/ck/evil.bin" "$TMP/evil_model/pytorch_model.bin"
cp "$MODEL"/tokenizer* "$TMP/evil_model/" 2>/dev/null || true
expect_error "pickle global os.system" "$TMP/e.npz" "pickle global 'os.system' is not allowed" -- \
  extract --model "$TMP/evil_model" --text hi -o "$TMP/e.npz"
[ ! -e "$TMP/ck/pwned" ] && pass "the payload never ran" || fail "the pickle payload ran"
finish
