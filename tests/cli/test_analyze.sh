#!/usr/bin/env bash
# `atlas analyze` end to end: heads on a hand-made NPZ (values worked out by hand), on an extracted
# document (numpy re-computes the metrics), on a store with a failed document (reported, skipped,
# counted), and on a corpus run directly; detect on the embedded model; cluster (figure + names);
# coref (one text and WinoBias), long, multilingual; gating exit 3 and 0; bad expressions exit 2.
source "$(dirname "$0")/lib.sh"
MODEL="$ATLAS_SOURCE_DIR/examples/models/stories260K"
WINOBIAS="$ATLAS_SHARED_DIR/data/bias/winobias"
OUT="$TMP/out"; mkdir -p "$OUT"
PY="$ATLAS_PYTHON"
run() { local name=$1; shift; "$ATLAS" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; rc=$?; }
ok_or_fail() { if [ "$rc" -eq 0 ]; then pass "$1"; else fail "$1: exit $rc $(head -c 400 "$OUT/$2.err")"; fi; }
pycheck() {   # pycheck NAME PYTHON-CODE: the code gets the output folder as sys.argv[1]
  local name=$1 code=$2 msg
  if msg=$("$PY" -c "$code" "$OUT" 2>&1); then pass "$name"; else fail "$name: $msg"; fi
}

for sub in "" heads detect cluster coref long multilingual; do
  if "$ATLAS" analyze $sub --help >/dev/null 2>&1; then pass "analyze $sub --help"; else fail "analyze $sub --help"; fi
done

# --- a hand-made 3-token causal NPZ: the expectations of docs/metrics.md by hand -------------------
"$PY" - "$OUT/tiny.npz" <<'PY'
import json, sys, numpy as np
A = np.array([[1, 0, 0], [0.5, 0.5, 0], [0.2, 0.3, 0.5]], np.float32).reshape(1, 1, 3, 3)
meta = {"format": "atlas.attention", "format_version": 1, "model": {"path": "/m/tiny", "model_type": "llama", "causal": True},
        "input": {"text": "Cat sat.", "source": "text"}}
np.savez(sys.argv[1], attention=A, layers=np.array([0]), heads=np.array([0]), input_ids=np.array([1, 5, 6]),
         tokens=np.array(["<s>", "\u2581Cat", "\u2581sat."]), token_labels=np.array(["<s>", " Cat", " sat."]),
         offsets=np.array([[-1, -1], [0, 3], [3, 8]]), special=np.array([True, False, False]), meta=np.array(json.dumps(meta)))
PY
run tiny analyze heads "$OUT/tiny.npz" --json
ok_or_fail "analyze heads on a hand-made NPZ" tiny
pycheck "heads: hand-computed metrics (causal, query 0 left out)" '
import json, math, sys
h = json.load(open(sys.argv[1] + "/tiny.out"))["heads"][0]
e2 = -(0.2*math.log(0.2) + 0.3*math.log(0.3) + 0.5*math.log(0.5)) / math.log(3)
want = {"entropy": (1 + e2) / 2, "mean_distance": 0.6, "mean_distance_no_first": 0.1875, "sink_mass": 0.35,
        "self": 0.5, "prev_token": 0.4, "long_range": 0.0, "mean_confidence": 0.5, "max_confidence": 0.5,
        "sparsity": 0.5, "special_mass": 0.35, "queries": 2}
for k, v in want.items():
    assert abs(h[k] - v) < 1e-6, (k, h[k], v)
'

# --- an extracted document: numpy re-computes the metrics -----------------------------------------
TEXT="Lily went to the park. She saw a big dog, and it was happy."
run ex extract --model "$MODEL" --text "$TEXT" --threads 1 -o "$OUT/lily.npz"
[ "$rc" -eq 0 ] || { fail "extract: $(cat "$OUT/ex.err")"; finish; exit 1; }
run heads analyze heads "$OUT/lily.npz" --json -o "$OUT/heads.npz"
ok_or_fail "analyze heads --json -o heads.npz" heads
pycheck "heads: every head matches a numpy re-computation; the NPZ holds the same table" '
import json, sys, numpy as np
o = sys.argv[1]
r = json.load(open(o + "/heads.out"))
z = np.load(o + "/lily.npz"); A = z["attention"].astype(np.float64); n = A.shape[-1]
assert r["model"] == "stories260K" and r["documents"] == 1 and r["skipped_count"] == 0, r["model"]
assert len(r["heads"]) == 40
for h in r["heads"]:
    a = A[h["layer"], h["head"]]
    qs = range(1, n)   # causal: query 0 has one valid key
    ent = np.mean([-(a[i, :i+1][a[i, :i+1] > 0] * np.log(a[i, :i+1][a[i, :i+1] > 0])).sum() / np.log(i + 1) for i in qs])
    sink = np.mean([a[i, 0] for i in qs]); prev = np.mean([a[i, i-1] for i in qs]); self_ = np.mean([a[i, i] for i in qs])
    lr = np.mean([a[i, :max(0, i-4)].sum() for i in qs])
    dist = np.mean([(a[i, :i+1] * (i - np.arange(i+1))).sum() for i in qs])
    k = [max(1, int(np.ceil(0.1 * (i + 1)))) for i in qs]
    sp = np.mean([np.sort(a[i, :i+1])[::-1][:kk].sum() for i, kk in zip(qs, k)])
    for key, v in [("entropy", ent), ("sink_mass", sink), ("prev_token", prev), ("self", self_), ("long_range", lr),
                   ("mean_distance", dist), ("sparsity", sp)]:
        assert abs(h[key] - v) < 1e-4, (h["layer"], h["head"], key, h[key], v)
    assert 0 <= h["function_mass"] <= 1 and 0 <= h["content_mass"] <= 1 and h["special_mass"] > 0
    assert h["inter_sentence_mass"] > 0   # two sentences
m = np.load(o + "/heads.npz")
assert m["metrics"].shape == (5, 8, 15), m["metrics"].shape
names = list(m["metric_names"]); assert names[3] == "sink_mass"
assert abs(m["metrics"][1, 1, 3] - r["heads"][9]["sink_mass"]) < 1e-6
assert json.loads(str(m["meta"]))["format"] == "atlas.head_metrics"
sm = r["sentence_matrix"]; assert len(sm) == 5 and len(sm[0]) == 2, sm
'
run csv analyze heads "$OUT/lily.npz" --csv
if [ "$rc" -eq 0 ] && head -1 "$OUT/csv.out" | grep -q '^layer,head,entropy,' && [ "$(wc -l <"$OUT/csv.out")" -eq 41 ]; then
  pass "analyze heads --csv: header + 40 heads"; else fail "analyze heads --csv: $(head -2 "$OUT/csv.out")"; fi

run fig analyze heads "$OUT/lily.npz" --figure "$OUT/sink.png" --metric sink_mass
pycheck "heads --figure: a PNG" 'import sys; assert open(sys.argv[1] + "/sink.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"'
run figbad analyze heads "$OUT/lily.npz" --figure "$OUT/x.png" --metric nope
if [ "$rc" -eq 1 ] && grep -q "metric 'nope' is not a per-head field (have: content_mass, entropy" "$OUT/figbad.err" && [ ! -e "$OUT/x.png" ]; then pass "--metric unknown: error listing the fields"; else fail "--metric unknown: $rc $(cat "$OUT/figbad.err")"; fi

# --- gating -----------------------------------------------------------------------------------------
run g3 analyze heads "$OUT/lily.npz" --fail-if 'max(sink_mass) > 0.01' --fail-if 'count(prev_token > 0.3) >= 1' --fail-if 'documents > 5'
if [ "$rc" -eq 3 ] && [ "$(grep -c 'threshold crossed' "$OUT/g3.err")" -eq 2 ] &&
   grep -q '^atlas: threshold crossed: max(sink_mass) = .* > 0.01 (layer [0-9] head [0-9])$' "$OUT/g3.err"; then
  pass "--fail-if crossed: exit 3, one line per crossed threshold ($(head -1 "$OUT/g3.err"))"
else fail "--fail-if crossed: exit $rc: $(cat "$OUT/g3.err")"; fi
run g0 analyze heads "$OUT/lily.npz" --fail-if 'max(sink_mass) > 2' --json
if [ "$rc" -eq 0 ] && [ ! -s "$OUT/g0.err" ]; then pass "--fail-if not crossed: exit 0, nothing on stderr"; else fail "--fail-if not crossed: exit $rc $(cat "$OUT/g0.err")"; fi
run gcol analyze heads "$OUT/lily.npz" --fail-if 'sink_mass > 0.4'
if [ "$rc" -eq 3 ] && grep -q 'sink_mass > 0.4 for [0-9]* of 40 heads: layer' "$OUT/gcol.err"; then pass "--fail-if on a column names the heads"; else fail "--fail-if column: $rc $(cat "$OUT/gcol.err")"; fi
for bad in 'max(sink_mass > 0.9' 'sink_mass = 0.9' 'median(entropy) > 1' ''; do
  run gbad analyze heads "$OUT/lily.npz" --fail-if "$bad"
  if [ "$rc" -eq 2 ] && [ "$(grep -c . "$OUT/gbad.err")" -eq 1 ] && grep -q "^atlas: error: analyze heads: --fail-if" "$OUT/gbad.err" && [ ! -s "$OUT/gbad.out" ]; then
    pass "bad expression '$bad': exit 2 before running ($(cat "$OUT/gbad.err"))"
  else fail "bad expression '$bad': exit $rc: $(cat "$OUT/gbad.err")"; fi
done
run gunk analyze heads "$OUT/lily.npz" --fail-if 'max(sink) > 0.9'
if [ "$rc" -eq 2 ] && grep -q "unknown field 'sink'.*heads.sink_mass" "$OUT/gunk.err"; then pass "unknown field: exit 2 listing the fields"; else fail "unknown field: exit $rc $(cat "$OUT/gunk.err")"; fi

# --- a store with a failed document: reported, skipped, counted -------------------------------------
printf '{"id":"a","text":"Lily saw a cat."}\n{"id":"empty","text":""}\n{"id":"b","text":"Tom ran home. He was tired."}\n' >"$OUT/c.jsonl"
run st extract --model "$MODEL" --input "$OUT/c.jsonl" --id-field id --threads 1 --allow-failures --quiet -o "$OUT/store"
ok_or_fail "extract a store with a failed document" st
run hs analyze heads "$OUT/store" --json
ok_or_fail "analyze heads on a store" hs
pycheck "store: 2 documents analysed, the failed one reported in skipped" '
import json, sys
r = json.load(open(sys.argv[1] + "/hs.out"))
assert r["documents"] == 2 and r["skipped_count"] == 1, (r["documents"], r["skipped"])
assert r["skipped"][0]["id"] == "empty" and "empty" in r["skipped"][0]["error"], r["skipped"]
'
run hst analyze heads "$OUT/store"
if [ "$rc" -eq 0 ] && grep -q "skipped  empty: failed in the store" "$OUT/hst.out"; then pass "the table names the skipped document"; else fail "table: $(head -5 "$OUT/hst.out")"; fi
run hdoc analyze heads "$OUT/store:b" --json
pycheck "STORE:DOC analyses one document" 'import json,sys; r=json.load(open(sys.argv[1]+"/hdoc.out")); assert r["documents"]==1'

# --- corpus run directly (--model --input) -----------------------------------------------------------
run hc analyze heads --model "$MODEL" --input "$OUT/c.jsonl" --threads 1 --json
ok_or_fail "analyze heads --model --input (corpus run directly)" hc
pycheck "corpus run: the same numbers as the stored run (float16 storage)" '
import json, sys
a = json.load(open(sys.argv[1] + "/hc.out")); b = json.load(open(sys.argv[1] + "/hs.out"))
assert a["documents"] == 2 and a["skipped_count"] == 1
for x, y in zip(a["heads"], b["heads"]):
    assert abs(x["entropy"] - y["entropy"]) < 2e-3 and abs(x["sink_mass"] - y["sink_mass"]) < 2e-3, (x, y)
'

# --- detect ----------------------------------------------------------------------------------------
run det analyze detect --model "$MODEL" --threads 1 --length 24 --sequences 4 --seed 3 --json
ok_or_fail "analyze detect" det
pycheck "detect: scores in [0, 1] for 40 heads; a strong previous-token head, no induction head" '
import json, sys
r = json.load(open(sys.argv[1] + "/det.out"))
assert len(r["heads"]) == 40 and r["prefix"] == [1] and r["length"] == 24
for h in r["heads"]:
    for k in ("prev_token", "duplicate_token", "induction"):
        assert 0 <= h[k] <= 1, h
assert r["top"]["prev_token"]["score"] > 0.5, r["top"]
assert r["top"]["induction"]["score"] < 0.3, r["top"]
'
run det3 analyze detect --model "$MODEL" --threads 1 --length 24 --sequences 2 --fail-if 'max(induction) < 0.3'
if [ "$rc" -eq 3 ] && grep -q 'max(induction) = .* < 0.3 (layer' "$OUT/det3.err"; then pass "detect --fail-if: exit 3 (no induction head)"; else fail "detect gate: $rc $(cat "$OUT/det3.err")"; fi

# --- cluster -----------------------------------------------------------------------------------------
run hj analyze heads "$OUT/store" -o "$OUT/heads.json"
run cl analyze cluster "$OUT/heads.json" -o "$OUT/clusters.png" --json
ok_or_fail "analyze cluster -o clusters.png" cl
pycheck "cluster: k by silhouette in 2..8, every head in one named cluster, a PNG" '
import json, sys
o = sys.argv[1]
r = json.load(open(o + "/cl.out"))
assert 2 <= r["k"] <= 8 and len(r["silhouette"]) == 7, r["silhouette"]
assert sum(c["size"] for c in r["clusters"]) == 40
assert all(c["name"].endswith("heads") or "heads (" in c["name"] for c in r["clusters"]), [c["name"] for c in r["clusters"]]
assert open(o + "/clusters.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
'
run cl2 analyze cluster "$OUT/heads.npz" --k 3 --json
pycheck "cluster reads the metrics NPZ; --k fixes k" 'import json,sys; r=json.load(open(sys.argv[1]+"/cl2.out")); assert r["k"]==3'
run clb analyze cluster "$OUT/lily.npz"
if [ "$rc" -eq 1 ] && grep -q "not a head-metrics NPZ" "$OUT/clb.err"; then pass "cluster of an attention NPZ: clear error"; else fail "cluster bad input: $rc $(cat "$OUT/clb.err")"; fi

# --- coref ---------------------------------------------------------------------------------------------
run co analyze coref --model "$MODEL" --threads 1 --text "Mom told Lucy that she could have a cookie." --pronoun she --candidates Mom,Lucy --gold Lucy --json
ok_or_fail "analyze coref --text" co
pycheck "coref: attention from she to Mom and Lucy for every head" '
import json, sys
r = json.load(open(sys.argv[1] + "/co.out"))
assert r["pronoun"] == "she" and len(r["heads"]) == 40
for h in r["heads"]:
    assert set(h["attention"]) == {"Mom", "Lucy"} and h["most_attended"] in ("Mom", "Lucy")
assert 0 <= r["heads_choosing_gold"] <= 40
'
run cobad analyze coref "$OUT/lily.npz" --pronoun he --candidates Lily
if [ "$rc" -eq 1 ] && grep -qi "he" "$OUT/cobad.err"; then pass "coref: a pronoun not in the text is an error ($(cat "$OUT/cobad.err" | head -c 150))"; else fail "coref missing word: $rc $(cat "$OUT/cobad.err")"; fi
if [ -d "$WINOBIAS" ]; then
  run wb analyze coref --model "$MODEL" --threads 1 --winobias "$WINOBIAS/pro_stereotyped_type1.txt.dev" --limit 30 --json --figure "$OUT/coref.svg"
  ok_or_fail "analyze coref --winobias" wb
  pycheck "WinoBias: 30 sentences scored, accuracy per head, chance and nearest-candidate baselines" '
import json, sys
r = json.load(open(sys.argv[1] + "/wb.out"))
assert r["examples"] == 30, r["examples"]
assert abs(r["chance"] - 0.5) < 1e-9 and 0 <= r["nearest_baseline"] <= 1
assert all(0 <= h["accuracy"] <= 1 for h in r["heads"]) and len(r["top"]) == 10
assert b"<svg" in open(sys.argv[1] + "/coref.svg", "rb").read()
'
else
  fail "WinoBias data missing at $WINOBIAS"
fi

# --- long -------------------------------------------------------------------------------------------------
run lg analyze long "$OUT/store" --json --figure "$OUT/long.png"
ok_or_fail "analyze long on a store" lg
pycheck "long: log2 bins whose mass sums to 1 per layer; proximal preference" '
import json, sys
r = json.load(open(sys.argv[1] + "/lg.out"))
assert r["documents"] == 2 and r["skipped_count"] == 1
for l in r["layers"]:
    assert abs(sum(b["mass"] for b in l["bins"]) - 1) < 1e-3, l
    assert l["bins"][0]["from"] == 0 and l["bins"][1]["from"] == 1 and l["bins"][2]["from"] == 2
    assert l["proximal_preference"] > 0
assert open(sys.argv[1] + "/long.png", "rb").read(4) == b"\x89PNG"
'

# --- multilingual -----------------------------------------------------------------------------------------
printf 'en\tde\nLily has a red ball.\tLily hat einen roten Ball.\nTom saw a big dog.\tTom sah einen großen Hund.\n' >"$OUT/par.tsv"
run ml analyze multilingual --model "$MODEL" --threads 1 --input "$OUT/par.tsv" --json
ok_or_fail "analyze multilingual" ml
pycheck "multilingual: per-language heads, en-de alignment with counterparts found" '
import json, sys
r = json.load(open(sys.argv[1] + "/ml.out"))
assert set(r["per_language"]) == {"en", "de"} and len(r["per_language"]["en"]["heads"]) == 40
a = r["alignment"]["en-de"]
assert a["pairs"] == 2 and a["counterparts"]["identical"] >= 2, a["counterparts"]
assert all(0 <= h["alignment"] <= 1 for h in a["heads"])
'
printf 'en\tde\nonly one field\n' >"$OUT/bad.tsv"
run mlbad analyze multilingual --model "$MODEL" --input "$OUT/bad.tsv"
if [ "$rc" -eq 1 ] && grep -q "bad.tsv:2: 1 tab-separated fields, expected 2" "$OUT/mlbad.err"; then pass "multilingual: a short row is an error naming the line"; else fail "multilingual bad row: $rc $(cat "$OUT/mlbad.err")"; fi

finish
