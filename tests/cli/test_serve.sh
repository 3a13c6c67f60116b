#!/usr/bin/env bash
# atlas serve over real HTTP (curl): the page and the JSON API on examples/models/stories260K and a
# store, bad requests (oversized text, unknown model, malformed JSON, path traversal), 32 requests
# at once, and exports byte-identical to `atlas visualize` run with the command line the page shows.
source "$(dirname "$0")/lib.sh"
MODEL="$ATLAS_SOURCE_DIR/examples/models/stories260K"
command -v curl >/dev/null || { echo "curl not found: skipped"; exit 77; }
JSON=(-H 'Content-Type: application/json')

"$ATLAS" serve --help >"$TMP/help.txt" 2>&1 && grep -q -- "--max-text" "$TMP/help.txt" && pass "serve --help exits 0 and lists the limits" \
  || fail "serve --help: $(head -c 300 "$TMP/help.txt")"

# A small store to browse (3 documents).
printf '%s\n' '{"id":"lily","text":"Lily went to the park. She saw a dog."}' \
  '{"id":"tom","text":"Tom had a red ball. He threw it far."}' \
  '{"id":"sun","text":"The sun was warm and the sky was blue."}' >"$TMP/docs.jsonl"
"$ATLAS" extract --model "$MODEL" --input "$TMP/docs.jsonl" --id-field id -o "$TMP/store" --threads 1 --quiet >"$TMP/store.log" 2>&1 \
  || fail "extract a store: $(tail -3 "$TMP/store.log")"

SERVER_PID=""
start_server() {   # start_server LOG ARGS... ; sets URL
  local log=$1
  shift
  "$ATLAS" serve --port 0 --threads 1 "$@" >"$log" 2>"$log.err" &
  SERVER_PID=$!
  URL=""
  for _ in $(seq 1 300); do
    URL=$(sed -n 's/^atlas serve: listening on //p' "$log" 2>/dev/null | head -1)
    [ -n "$URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  URL=${URL%/}
}
stop_server() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""; }
trap 'stop_server; rm -rf "$TMP"' EXIT

start_server "$TMP/server.log" --model "$MODEL" --store "$TMP/store" --max-text 2000 --max-tokens 300 --cache 64 --work-dir "$TMP/work"
if [ -z "$URL" ]; then
  fail "server did not start: $(cat "$TMP/server.log" "$TMP/server.log.err" | head -c 500)"
  finish
  exit 1
fi
pass "serve prints its URL ($URL)"
grep -q "warning" "$TMP/server.log.err" && fail "a warning on 127.0.0.1: $(cat "$TMP/server.log.err")" || pass "no warning when bound to 127.0.0.1"
case "$URL" in http://127.0.0.1:*) pass "binds 127.0.0.1 by default" ;; *) fail "default URL $URL" ;; esac

# status BODY_FILE CURL_ARGS... -> prints the HTTP status
status() { local out=$1; shift; curl -s -o "$out" -w '%{http_code}' "$@"; }
is_json_error() { "$ATLAS_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert isinstance(d.get("error"), str) and d["error"], d' "$1" 2>/dev/null; }
expect_status() {   # NAME WANT CURL_ARGS...
  local name=$1 want=$2
  shift 2
  local got
  got=$(status "$TMP/resp" "$@")
  if [ "$got" = "$want" ] && { [ "$want" -lt 400 ] || is_json_error "$TMP/resp"; }; then pass "$name ($got $(head -c 120 "$TMP/resp" | tr -d '\n'))"
  else fail "$name: HTTP $got, expected $want: $(head -c 300 "$TMP/resp")"; fi
}

# ---- page and listing
expect_status "GET / is the page" 200 "$URL/"
grep -q "Attention Atlas" "$TMP/resp" && grep -q '/app.js' "$TMP/resp" && pass "the page links its script" || fail "index.html content"
expect_status "GET /app.js" 200 "$URL/app.js"
expect_status "GET /style.css" 200 "$URL/style.css"
expect_status "GET /api/models" 200 "$URL/api/models"
"$ATLAS_PYTHON" - "$TMP/resp" <<'PY' && pass "/api/models lists stories260K (5 layers, 8 heads, causal) and the store" || fail "/api/models content: $(head -c 300 "$TMP/resp")"
import json, sys
d = json.load(open(sys.argv[1]))
m = d["models"][0]
assert m["name"] == "stories260K" and m["num_layers"] == 5 and m["num_heads"] == 8 and m["causal"], m
assert m["kv_cache"] is True, m
assert d["stores"] == ["store"], d["stores"]
assert d["limits"]["max_text_chars"] == 2000, d["limits"]
PY

# ---- bad requests
"$ATLAS_PYTHON" -c 'import json; print(json.dumps({"model": "stories260K", "text": "word " * 1000}))' >"$TMP/long.json"
expect_status "oversized text is 413" 413 "${JSON[@]}" -X POST --data-binary @"$TMP/long.json" "$URL/api/run"
"$ATLAS_PYTHON" -c 'import json; print(json.dumps({"text": "word " * 350}))' >"$TMP/many.json"
expect_status "more tokens than --max-tokens is 413" 413 "${JSON[@]}" -X POST --data-binary @"$TMP/many.json" "$URL/api/run"
head -c 6000000 /dev/zero | tr '\0' 'a' >"$TMP/huge.txt"
expect_status "a body over --max-body is 413" 413 "${JSON[@]}" -X POST --data-binary @"$TMP/huge.txt" "$URL/api/run"
expect_status "unknown model is 404" 404 "${JSON[@]}" -X POST -d '{"model":"../../etc","text":"hi"}' "$URL/api/run"
expect_status "malformed JSON is 400" 400 "${JSON[@]}" -X POST -d '{"text": "hi"' "$URL/api/run"
expect_status "a body that is not an object is 400" 400 "${JSON[@]}" -X POST -d '[1,2]' "$URL/api/run"
expect_status "a text that is not a string is 400" 400 "${JSON[@]}" -X POST -d '{"text": 5}' "$URL/api/run"
expect_status "unknown figure kind is 400" 400 "${JSON[@]}" -X POST -d '{"text":"hi","kind":"pie"}' "$URL/api/render"
expect_status "a style path from the client is refused" 400 "${JSON[@]}" -X POST -d '{"text":"hi","style":"/etc/passwd"}' "$URL/api/render"
expect_status "dpi above the limit is 400" 400 "${JSON[@]}" -X POST -d '{"text":"hi","format":"png","dpi":5000}' "$URL/api/render"
expect_status "unknown layer is 400" 400 "${JSON[@]}" -X POST -d '{"text":"hi","layer":"9"}' "$URL/api/run"
expect_status "GET on a POST route is 405" 405 "$URL/api/run"
expect_status "unknown API route is 404" 404 "$URL/api/nothing"
expect_status "unknown store is 404" 404 "$URL/api/store/nope/docs"
expect_status "unknown stored document is 404" 404 "${JSON[@]}" -X POST -d '{"store":"store","doc":"nope"}' "$URL/api/run"
for path in "/../../etc/passwd" "/%2e%2e/%2e%2e/etc/passwd" "/..%2f..%2fetc%2fpasswd" "/%2e%2e%2f%2e%2e%2fetc%2fpasswd" \
            "/app.js/../../../etc/passwd" "//etc/passwd" "/index.html%00.js" "/web/index.html"; do
  got=$(status "$TMP/resp" --path-as-is "$URL$path")
  if [ "$got" = 404 ] && ! grep -q "root:" "$TMP/resp" && is_json_error "$TMP/resp"; then pass "static path $path is 404"
  else fail "static path $path: HTTP $got $(head -c 200 "$TMP/resp")"; fi
done

# ---- run, heads, swap, stores
TEXT='Lily went to the park. She saw a big dog and he barked.'
req() { "$ATLAS_PYTHON" -c 'import json,sys; d=json.loads(sys.argv[2]); d["text"]=sys.argv[1]; print(json.dumps(d))' "$TEXT" "$1"; }
expect_status "/api/run" 200 "${JSON[@]}" -X POST -d "$(req '{"layer":"2","head":"3"}')" "$URL/api/run"
"$ATLAS_PYTHON" - "$TMP/resp" <<'PY' && pass "/api/run: tokens, a causal row-stochastic matrix, next-token probabilities" || fail "/api/run content: $(head -c 300 "$TMP/resp")"
import json, sys
d = json.load(open(sys.argv[1]))
n = len(d["tokens"])
A = d["attention"]
assert n > 5 and len(A) == n and all(len(r) == n for r in A)
assert all(abs(sum(r) - 1) < 1e-3 for r in A), [sum(r) for r in A]
assert all(A[i][j] == 0 for i in range(n) for j in range(i + 1, n)), "causal mask"
assert d["layer"] == "2" and d["head"] == "3" and d["causal"] is True
assert len(d["next"]) == 10 and abs(sum(t["probability"] for t in d["next"])) <= 1.0001
assert d["next"][0]["probability"] >= d["next"][-1]["probability"]
assert d["extract_command"].startswith("atlas extract --model ")
assert d["extract_command"].endswith(" --gemm onednn -o attention.npz"), d["extract_command"]  # serve's default
PY
# The page's command line reproduces the page's numbers: run it (with the built binary) on a text
# that extends no earlier one (no key/value cache reuse) and compare with the page's NPZ.
FRESH='{"text":"Tom and Ben played ball in the garden all day long."}'
expect_status "/api/run" 200 "${JSON[@]}" -X POST -d "$FRESH" "$URL/api/run"
cmd=$("$ATLAS_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["extract_command"])' "$TMP/resp")
(cd "$TMP" && eval "\"$ATLAS\" ${cmd#atlas } --threads 1" >"$TMP/cmd.log" 2>&1) || fail "extract command $cmd: $(tail -c 300 "$TMP/cmd.log")"
curl -s -f "${JSON[@]}" -X POST -d "$FRESH" -o "$TMP/run_serve.npz" "$URL/api/npz" || fail "NPZ of the run"
"$ATLAS_PYTHON" - "$TMP/run_serve.npz" "$TMP/attention.npz" <<'PY' && pass "the shown atlas extract command (--gemm onednn) reproduces the page's attention exactly" || fail "the shown extract command's attention differs from /api/npz"
import sys
import numpy as np
a, b = np.load(sys.argv[1])["attention"], np.load(sys.argv[2])["attention"]
assert a.shape == b.shape, (a.shape, b.shape)
assert np.array_equal(a, b), np.abs(a - b).max()
PY
expect_status "/api/heads" 200 "${JSON[@]}" -X POST -d "$(req '{}')" "$URL/api/heads"
"$ATLAS_PYTHON" - "$TMP/resp" <<'PY' && pass "/api/heads: 5 x 8 of every analyze-heads metric (and the older sink, previous)" || fail "/api/heads content: $(head -c 300 "$TMP/resp")"
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["metrics"]) == 15 and "sink_mass" in d["metrics"], d["metrics"]
for k in d["metrics"] + ["sink", "previous", "queries"]:
    assert len(d[k]) == 5 and all(len(r) == 8 for r in d[k]), k
assert all(0 <= v <= 1 for r in d["sink"] for v in r)
assert d["sink"] == d["sink_mass"] and d["previous"] == d["prev_token"]
assert d["command"] == "atlas analyze heads attention.npz --json", d["command"]
PY
cp "$TMP/resp" "$TMP/heads.json"
mkdir -p "$TMP/heads-cli"
if curl -s -f "${JSON[@]}" -X POST -d "$(req '{}')" -o "$TMP/heads-cli/attention.npz" "$URL/api/npz" &&
   (cd "$TMP/heads-cli" && "$ATLAS" analyze heads attention.npz --json >heads.json 2>heads.err); then
  "$ATLAS_PYTHON" - "$TMP/heads.json" "$TMP/heads-cli/heads.json" <<'PY' && pass "/api/heads equals \`atlas analyze heads attention.npz --json\` on the exported NPZ, every metric and head" || fail "/api/heads differs from analyze heads"
import json, sys
served, cli = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert served["layers"] == cli["layers"] and served["heads"] == cli["head_indices"]
n = 0
for rec in cli["heads"]:
    li, hi = served["layers"].index(rec["layer"]), served["heads"].index(rec["head"])
    for m in served["metrics"]:
        assert served[m][li][hi] == rec[m], (m, rec["layer"], rec["head"], served[m][li][hi], rec[m])
        n += 1
    assert served["queries"][li][hi] == rec["queries"]
assert n == 5 * 8 * 15, n
PY
else
  fail "analyze heads on the exported NPZ: $(cat "$TMP/heads-cli/heads.err" 2>/dev/null | head -c 300)"
fi
expect_status "/api/swap" 200 "${JSON[@]}" -X POST -d "$(req '{}')" "$URL/api/swap"
"$ATLAS_PYTHON" - "$TMP/resp" <<'PY' && pass "/api/swap swaps She/he and reports next-token and attention changes" || fail "/api/swap content: $(head -c 400 "$TMP/resp")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["text_b"] == "Lily went to the park. He saw a big dog and she barked.", d["text_b"]
assert d["replacements"] == 2 and d["next"] and "delta" in d["next"][0]
assert len(d["attention_change"]) == 5 and d["same_length"]
PY
expect_status "/api/swap without gendered words is 400" 400 "${JSON[@]}" -X POST -d '{"text":"The sun was warm."}' "$URL/api/swap"
expect_status "/api/stores" 200 "$URL/api/stores"
grep -q '"documents":3' "$TMP/resp" && pass "/api/stores counts 3 documents" || fail "/api/stores: $(cat "$TMP/resp")"
expect_status "store search by text" 200 "$URL/api/store/store/docs?q=red%20ball"
"$ATLAS_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [x["id"] for x in d["docs"]]==["tom"], d' "$TMP/resp" \
  && pass "search 'red ball' finds tom" || fail "search by text: $(cat "$TMP/resp")"
expect_status "store search by id" 200 "$URL/api/store/store/docs?q=LIL"
"$ATLAS_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [x["id"] for x in d["docs"]]==["lily"], d' "$TMP/resp" \
  && pass "search 'LIL' finds lily" || fail "search by id: $(cat "$TMP/resp")"
expect_status "/api/run at word level" 200 "${JSON[@]}" -X POST -d "$(req '{"level":"word"}')" "$URL/api/run"
"$ATLAS_PYTHON" - "$TMP/resp" <<'PY' && pass "word level: one entry per word, rows still sum to 1, the process step shown" || fail "word level: $(head -c 300 "$TMP/resp")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["tokens"][:4] == ["<s>", "Lily", "went", "to"], d["tokens"]
assert len(d["tokens"]) == 14, d["tokens"]   # <s> + 13 words
assert all(abs(sum(r) - 1) < 1e-3 for r in d["attention"])
assert d["level"] == "word" and d["steps"] == ["atlas process words attention.npz -o words.npz"], d["steps"]
PY
expect_status "an unknown level is 400" 400 "${JSON[@]}" -X POST -d "$(req '{"level":"letters"}')" "$URL/api/run"
expect_status "/api/run on a stored document" 200 "${JSON[@]}" -X POST -d '{"store":"store","doc":"sun","layer":"1","head":"mean"}' "$URL/api/run"

# ---- incremental runs: a text that extends the previous one reuses its key/value cache
BASE='The cat sat on the mat and looked at the bird in the old tree.'
EXT="$BASE Then it jumped down and ran away."
runq() { "$ATLAS_PYTHON" -c 'import json,sys; print(json.dumps({"text": sys.argv[1], "layer": "-1", "head": "mean"}))' "$1"; }
expect_status "/api/run of a new text" 200 "${JSON[@]}" -X POST -d "$(runq "$BASE")" "$URL/api/run"
cp "$TMP/resp" "$TMP/base.json"
expect_status "/api/run of the text extended" 200 "${JSON[@]}" -X POST -d "$(runq "$EXT")" "$URL/api/run"
"$ATLAS_PYTHON" - "$TMP/base.json" "$TMP/resp" <<'PY' && pass "the extension runs incrementally: reused_tokens = the previous text's tokens, causal rows" || fail "incremental run: $(head -c 300 "$TMP/resp")"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
n = len(a["tokens"])
assert b["incremental"] is True and b["reused_tokens"] == n, (b["incremental"], b["reused_tokens"], n)
assert b["tokens"][:n] == a["tokens"] and len(b["tokens"]) > n
A = b["attention"]
assert all(abs(sum(r) - 1) < 1e-3 for r in A) and all(A[i][j] == 0 for i in range(len(A)) for j in range(i + 1, len(A)))
PY
curl -s -f "${JSON[@]}" -X POST -d "$(runq "$EXT")" -o "$TMP/ext_serve.npz" "$URL/api/npz" || fail "NPZ of the extended text"
"$ATLAS" extract --model "$MODEL" --text "$EXT" -o "$TMP/ext_cli.npz" --threads 1 >/dev/null 2>&1 || fail "extract the extended text"
"$ATLAS_PYTHON" - "$TMP/ext_serve.npz" "$TMP/ext_cli.npz" <<'PY' && pass "the incremental NPZ equals \`atlas extract\` of the whole text (members, ids, attention within 2e-5)" || fail "incremental NPZ differs from a full extract"
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert sorted(a.files) == sorted(b.files), (a.files, b.files)
for k in a.files:
    if k == "meta":
        continue
    if k == "attention":
        assert a[k].shape == b[k].shape and np.abs(a[k] - b[k]).max() <= 2e-5, (k, np.abs(a[k] - b[k]).max())
    else:
        assert np.array_equal(a[k], b[k]), k
PY

# ---- exports byte-identical to `atlas visualize` with the command line the page shows
bin_dir=$(cd "$(dirname "$ATLAS")" && pwd)
mkdir -p "$TMP/cli"
curl -s -f "${JSON[@]}" -X POST -d "$(req '{}')" -o "$TMP/cli/attention.npz" "$URL/api/npz" \
  && "$ATLAS_PYTHON" -c 'import numpy as np,sys; z=np.load(sys.argv[1]); assert z["attention"].shape[:2]==(5,8)' "$TMP/cli/attention.npz" \
  && pass "NPZ download is an attention NPZ" || fail "NPZ download"
same_as_cli() {   # NAME REQUEST_JSON FORMAT: the export equals `atlas visualize` on the downloaded NPZ
  local name=$1 body=$2 fmt=$3 cmd file input
  cmd=$(curl -s "${JSON[@]}" -X POST -d "$("$ATLAS_PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(format="svg", inline=True); print(json.dumps(d))' "$body")" "$URL/api/render" \
        | "$ATLAS_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["command"])')
  cmd=$(printf "%s" "$cmd" | sed -E "s/ -o ([^ ]+)\\.svg/ -o \\1.$fmt/")
  file=$(printf '%s' "$cmd" | sed -E 's/.* -o ([^ ]+).*/\1/')
  input=$(printf '%s' "$cmd" | awk '{print $4}')
  case "$input" in
    *.npz) curl -s -f "${JSON[@]}" -X POST -d "$body" -o "$TMP/cli/$input" "$URL/api/npz" || { fail "$name: NPZ download"; return; } ;;
  esac
  if ! curl -s -f "${JSON[@]}" -X POST -d "$("$ATLAS_PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(format=sys.argv[2]); print(json.dumps(d))' "$body" "$fmt")" \
       -o "$TMP/server.$fmt" "$URL/api/render"; then fail "$name: render failed"; return; fi
  rm -f "$TMP/cli/$file"
  if ! (cd "$TMP/cli" && PATH="$bin_dir:$PATH" eval "$cmd" >/dev/null 2>"$TMP/cli.err"); then fail "$name: '$cmd' failed: $(cat "$TMP/cli.err")"; return; fi
  if cmp -s "$TMP/server.$fmt" "$TMP/cli/$file"; then pass "$name: export = \`$cmd\` byte for byte"
  else fail "$name: export differs from \`$cmd\`"; fi
}
same_as_cli "heatmap PNG 300 dpi" "$(req '{"kind":"heatmap","layer":"2","head":"3"}')" png
same_as_cli "heatmap PNG 150 dpi" "$(req '{"kind":"heatmap","layer":"2","head":"mean","dpi":150}')" png
same_as_cli "flow SVG with focus" "$(req '{"kind":"flow","layer":"1","head":"0","focus":"3","threshold":0.1}')" svg
same_as_cli "grid PDF" "$(req '{"kind":"grid"}')" pdf
same_as_cli "flowgraph PDF" "$(req '{"kind":"flowgraph","target":"saw"}')" pdf
same_as_cli "contrast of two layers SVG" "$(req '{"kind":"contrast","layer":"0","layer_b":"4","head":"mean"}')" svg
same_as_cli "word-level heatmap PDF" "$(req '{"kind":"heatmap","layer":"2","head":"mean","level":"word"}')" pdf
same_as_cli "rollout heatmap SVG" "$(req '{"kind":"rollout","layer":"-1","head":"mean"}')" svg
same_as_cli "stored document heatmap PNG" '{"store":"store","doc":"lily","kind":"heatmap","layer":"1","head":"2"}' png

# ---- 32 requests at once (distinct texts: each runs the model)
pids=()
for i in $(seq 1 32); do
  curl -s -o "$TMP/c$i.png" -w '%{http_code}\n' "${JSON[@]}" -X POST \
    -d "{\"text\":\"Tom number $i found a shiny stone.\",\"kind\":\"heatmap\",\"format\":\"png\",\"dpi\":72}" "$URL/api/render" >"$TMP/c$i.code" &
  pids+=($!)
done
wait "${pids[@]}"
ok=0
for i in $(seq 1 32); do
  [ "$(cat "$TMP/c$i.code")" = 200 ] && [ "$(head -c 4 "$TMP/c$i.png" | od -An -c | tr -d ' ')" = "211PNG" ] && ok=$((ok + 1))
done
[ "$ok" -eq 32 ] && pass "32 concurrent renders all succeed" || fail "32 concurrent renders: $ok succeeded"
kill -0 "$SERVER_PID" 2>/dev/null && pass "server still up after the burst" || fail "server died"

# ---- cache: the same request again runs nothing
computed=$(curl -s "${JSON[@]}" -X POST -d "$(req '{}')" "$URL/api/run" | "$ATLAS_PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(d["computed"], d["seconds_total"])')
case "$computed" in False*) pass "a repeated text is served from the cache ($computed s)" ;; *) fail "a repeated text ran again: $computed" ;; esac
ls "$TMP/work" | grep -q '^r' && pass "results live in --work-dir" || fail "no result folders in --work-dir"

pid=$SERVER_PID
kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
SERVER_PID=""
if kill -0 "$pid" 2>/dev/null; then fail "server still running 10 s after SIGTERM"
elif [ -n "$(ls -A "$TMP/work")" ]; then fail "results left after SIGTERM: $(ls "$TMP/work" | head -5)"
else pass "SIGTERM stops the server and removes its results"; fi

# ---- another host warns
start_server "$TMP/server2.log" --model "$MODEL" --host 0.0.0.0
if [ -n "$URL" ] && grep -q "warning: serving on 0.0.0.0" "$TMP/server2.log.err"; then pass "--host 0.0.0.0 warns on stderr"
else fail "--host 0.0.0.0: $(cat "$TMP/server2.log.err")"; fi
stop_server

# ---- usage errors
expect_error "serve without a model or store" "" "at least one --model" -- serve --port 0
expect_error "serve with a missing model folder" "" "stories-none" -- serve --model "$TMP/stories-none" --port 0
expect_error "serve with a folder that is not a store" "" "not an attention store" -- serve --store "$TMP" --port 0

finish
