#!/usr/bin/env bash
# atlas tokenize: table and JSON output on a tokenizer-only folder and on classic model folders,
# JSON checked against the reference cases, and one-line errors with exit code 1.
set -euo pipefail
: "${ATLAS:?}" "${ATLAS_SHARED_DIR:?}" "${ATLAS_PYTHON:?}"
TOK="$ATLAS_SHARED_DIR/reference/tokenizers"
MODELS="$ATLAS_SHARED_DIR/reference/models"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$ATLAS" tokenize --help | grep -q -- "--no-special" || fail "--help does not document --no-special"

# Table output names every token.
table=$("$ATLAS" tokenize --model "$TOK/gpt2" --text "Hello world")
grep -q "Ġworld" <<<"$table" || fail "table lacks Ġworld: $table"

# JSON equals the reference (ids, tokens, offsets) for case 3 of bert-base-uncased, with and without specials.
for flag in "" "--no-special"; do
  text=$("$ATLAS_PYTHON" -c "import json,sys; print(json.loads(open(sys.argv[1]).readlines()[3])['text'])" "$TOK/bert-base-uncased/cases.jsonl")
  "$ATLAS" tokenize --model "$TOK/bert-base-uncased" --text "$text" --json $flag > "${TMPDIR:-/tmp}/atlas_tok_$$.json"
  "$ATLAS_PYTHON" - "${TMPDIR:-/tmp}/atlas_tok_$$.json" "$TOK/bert-base-uncased/cases.jsonl" "$flag" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))
case = json.loads(open(sys.argv[2]).readlines()[3])
suffix = "_no_special" if sys.argv[3] else ""
assert set(["ids", "tokens", "offsets"]) <= set(got), got.keys()
assert got["ids"] == case["ids_rust" + suffix], (got["ids"], case["ids_rust" + suffix])
assert got["tokens"] == case["tokens_rust" + suffix]
assert got["offsets"] == case["offsets_rust" + suffix]
PY
done
rm -f "${TMPDIR:-/tmp}/atlas_tok_$$.json"

# Classic sentencepiece folder (dlopened shim): <s> first, marked special.
"$ATLAS" tokenize --model "$MODELS/llama" --text "Hello" --json |
  "$ATLAS_PYTHON" -c "import json,sys; d=json.load(sys.stdin); assert d['tokens'][0]=='<s>' and d['special_mask'][0]==1, d"

# Errors: one line on stderr, exit 1.
expect_error() {
  local what=$1; shift
  set +e
  err=$("$ATLAS" tokenize "$@" 2>&1 >/dev/null); rc=$?
  set -e
  [ "$rc" -eq 1 ] || fail "$what: exit $rc, expected 1"
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "$what: error is not one line: $err"
  grep -q "error" <<<"$err" || fail "$what: no error message: $err"
}
expect_error "missing folder" --model /nonexistent/atlas --text hi
expect_error "no tokenizer files" --model "$ATLAS_SHARED_DIR/reference/models/gpt_neox" --text hi
expect_error "invalid UTF-8" --model "$TOK/gpt2" --text $'\xff\xfe'
echo "ok"
