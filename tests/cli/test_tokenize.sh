#!/usr/bin/env bash
# atlas tokenize: table and JSON output on tokenizer-only folders and on classic model folders, JSON
# checked against the reference cases and the attention NPZ, --tokenizer pairing, and one-line errors
# with exit code 1 (corrupt / truncated tokenizer.json, unsupported stages, missing files).
source "$(dirname "$0")/lib.sh"
TOK="$ATLAS_SHARED_DIR/reference/tokenizers"
MODELS="$ATLAS_SHARED_DIR/reference/models"
ATT="$ATLAS_SHARED_DIR/reference/attention"

if "$ATLAS" tokenize --help | grep -q -- "--tokenizer"; then pass "--help documents --tokenizer"; else fail "--help lacks --tokenizer"; fi

table=$("$ATLAS" tokenize --model "$TOK/gpt2" --text "Hello world")
if grep -q "Ġworld" <<<"$table"; then pass "table names every token"; else fail "table lacks Ġworld: $table"; fi

# JSON equals the reference cases (ids, tokens, offsets; template-added tokens -1, -1 as in the NPZ),
# with and without special tokens: bert case 3, t5-small case 115 (NFKC expansion of ½ ¼ ⅓) and 50.
check_case() {  # NAME CASE_INDEX [--no-special]
  local name=$1 idx=$2 flag=${3:-}
  local text
  text=$("$ATLAS_PYTHON" -c "import json,sys; print(json.loads(open(sys.argv[1]).readlines()[int(sys.argv[2])])['text'])" \
    "$TOK/$name/cases.jsonl" "$idx")
  "$ATLAS" tokenize --model "$TOK/$name" --text "$text" --json $flag > "$TMP/tok.json" || { fail "$name #$idx: tokenize failed"; return; }
  if "$ATLAS_PYTHON" - "$TMP/tok.json" "$TOK/$name/cases.jsonl" "$idx" "$flag" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))
case = json.loads(open(sys.argv[2]).readlines()[int(sys.argv[3])])
suffix = "_no_special" if sys.argv[4] else ""
assert got["ids"] == case["ids_rust" + suffix], (got["ids"], case["ids_rust" + suffix])
assert got["tokens"] == case["tokens_rust" + suffix]
expected = [[-1, -1] if s else o for o, s in zip(case["offsets_rust" + suffix], got["special_mask"])]
assert got["offsets"] == expected, (got["offsets"], expected)
PY
  then pass "$name #$idx $flag equals the reference"; else fail "$name #$idx $flag differs from the reference"; fi
}
for flag in "" "--no-special"; do
  check_case bert-base-uncased 3 $flag
  check_case t5-small 115 $flag
  check_case t5-small 50 $flag
done

# Sentencepiece model files through the shim: ids equal the slow tokenizers' input_ids in the NPZ.
check_npz() {  # ARCH
  local arch=$1
  "$ATLAS_PYTHON" - "$ATT/$arch/d_text.npz" > "$TMP/text.txt" <<'PY'
import json, sys, numpy as np
print(json.loads(str(np.load(sys.argv[1])["meta"]))["text"])
PY
  "$ATLAS" tokenize --model "$MODELS/$arch" --text "$(cat "$TMP/text.txt")" --json > "$TMP/tok.json" || { fail "$arch: tokenize failed"; return; }
  if "$ATLAS_PYTHON" - "$TMP/tok.json" "$ATT/$arch/d_text.npz" <<'PY'
import json, sys, numpy as np
got = json.load(open(sys.argv[1]))
assert got["kind"] == "sentencepiece", got["kind"]
assert got["ids"] == np.load(sys.argv[2])["input_ids"].tolist(), got["ids"]
for o, s in zip(got["offsets"], got["special_mask"]):
    assert (o == [-1, -1]) == bool(s), (o, s)
PY
  then pass "$arch sentencepiece ids equal the NPZ input_ids"; else fail "$arch sentencepiece ids differ from the NPZ"; fi
}
check_npz t5            # spiece.model: ... </s>
check_npz xlm_roberta   # sentencepiece.bpe.model: fairseq ids, <s> ... </s>

"$ATLAS" tokenize --model "$MODELS/llama" --text "Hello" --json > "$TMP/tok.json"
if "$ATLAS_PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['tokens'][0]=='<s>' and d['special_mask'][0]==1 and d['offsets'][0]==[-1,-1], d" "$TMP/tok.json"; then
  pass "llama: <s> first, special, offsets -1 -1"; else fail "llama: $(cat "$TMP/tok.json")"; fi

# --tokenizer pairs a folder without tokenizer files (gpt_neox) with another folder's tokenizer.
a=$("$ATLAS" tokenize --model "$MODELS/gpt_neox" --tokenizer "$MODELS/gpt2" --text "Hello world" --json)
b=$("$ATLAS" tokenize --model "$MODELS/gpt2" --text "Hello world" --json)
if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "tokenize --tokenizer uses the other folder"; else fail "tokenize --tokenizer: '$a' vs '$b'"; fi
if "$ATLAS" extract --model "$MODELS/gpt_neox" --tokenizer "$MODELS/gpt2" --text "Hello world" -o "$TMP/neox.npz" >/dev/null 2>"$TMP/err" &&
   "$ATLAS_PYTHON" - "$TMP/neox.npz" "$b" <<'PY'
import json, sys, numpy as np
assert np.load(sys.argv[1])["input_ids"].tolist() == json.loads(sys.argv[2])["ids"]
PY
then pass "extract --tokenizer tokenizes with the other folder"; else fail "extract --tokenizer: $(cat "$TMP/err")"; fi
expect_error "extract: text input without a tokenizer" "$TMP/x.npz" "no tokenizer files" -- \
  extract --model "$MODELS/gpt_neox" --text "Hello" -o "$TMP/x.npz"
expect_error "extract --tokenizer: missing folder" "$TMP/x.npz" "does not exist" -- \
  extract --model "$MODELS/gpt_neox" --tokenizer /nonexistent/atlas --text "Hello" -o "$TMP/x.npz"

# Errors: one line on stderr, exit 1.
expect_error "missing folder" "" "does not exist" -- tokenize --model /nonexistent/atlas --text hi
expect_error "no tokenizer files" "" "no tokenizer files.*sentencepiece.bpe.model" -- tokenize --model "$MODELS/gpt_neox" --text hi
expect_error "invalid UTF-8" "" "UTF-8" -- tokenize --model "$TOK/gpt2" --text $'\xff\xfe'
mkdir -p "$TMP/trunc" "$TMP/corrupt" "$TMP/empty" "$TMP/unknown" "$TMP/array"
head -c 5000 "$TOK/t5-small/tokenizer.json" > "$TMP/trunc/tokenizer.json"
expect_error "truncated tokenizer.json" "" "trunc/tokenizer.json' is not valid JSON \(byte offset [0-9]+" -- \
  tokenize --model "$TMP/trunc" --text hi
{ head -c 300 "$TOK/gpt2/tokenizer.json"; printf '\n}}} not json\n'; } > "$TMP/corrupt/tokenizer.json"
expect_error "corrupt tokenizer.json" "" "corrupt/tokenizer.json' is not valid JSON \(byte offset [0-9]+" -- \
  tokenize --model "$TMP/corrupt" --text hi
: > "$TMP/empty/tokenizer.json"
expect_error "empty tokenizer.json" "" "empty/tokenizer.json' is not valid JSON" -- tokenize --model "$TMP/empty" --text hi
echo '[1, 2]' > "$TMP/array/tokenizer.json"
expect_error "tokenizer.json not an object" "" "array/tokenizer.json.*expected a JSON object" -- tokenize --model "$TMP/array" --text hi
"$ATLAS_PYTHON" - "$TOK/t5-small/tokenizer.json" "$TMP/unknown/tokenizer.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["normalizer"] = {"type": "Sequence", "normalizers": [j["normalizer"], {"type": "FancyNorm"}]}
json.dump(j, open(sys.argv[2], "w"))
PY
cp "$TOK/t5-small/spiece.model" "$TMP/unknown/"   # a sentencepiece file next to it is no fallback
expect_error "unknown normalizer type" "" "unknown/tokenizer.json.*normalizer type 'FancyNorm' is not supported" -- \
  tokenize --model "$TMP/unknown" --text hi
"$ATLAS_PYTHON" - "$TOK/t5-small/tokenizer.json" "$TMP/unknown/tokenizer.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["normalizer"]["precompiled_charsmap"] = j["normalizer"]["precompiled_charsmap"][:40]
json.dump(j, open(sys.argv[2], "w"))
PY
expect_error "truncated precompiled_charsmap" "" "unknown/tokenizer.json.*precompiled_charsmap" -- \
  tokenize --model "$TMP/unknown" --text hi
finish
