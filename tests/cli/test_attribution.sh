#!/usr/bin/env bash
# `atlas analyze attribution` end to end on the embedded stories260K and the reference BERT: the JSON
# report (read with numpy: shapes, IG completeness, the Spearman matrix re-computed from the
# relevance vectors), the NPZ, the text report, gating, and bad input (a word not in the text lists
# the words; an unknown method; an architecture without attribution).
source "$(dirname "$0")/lib.sh"
MODEL="$ATLAS_SOURCE_DIR/examples/models/stories260K"
BERT="$ATLAS_SHARED_DIR/reference/models/bert"
OUT="$TMP/out"; mkdir -p "$OUT"
PY="$ATLAS_PYTHON"
TEXT="Mom told Lucy that she could have a cookie"
run() { local name=$1; shift; "$ATLAS" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; rc=$?; }
ok_or_fail() { if [ "$rc" -eq 0 ]; then pass "$1"; else fail "$1: exit $rc $(head -c 400 "$OUT/$2.err")"; fi; }
pycheck() {   # pycheck NAME PYTHON-CODE: the code gets the output folder as sys.argv[1]
  local name=$1 code=$2 msg
  if msg=$("$PY" -c "$code" "$OUT" 2>&1); then pass "$name"; else fail "$name: $msg"; fi
}

if "$ATLAS" analyze attribution --help >/dev/null 2>&1; then pass "analyze attribution --help"; else fail "analyze attribution --help"; fi
if "$ATLAS" analyze --help 2>&1 | grep -q "attribution"; then pass "analyze --help lists attribution"; else fail "analyze --help lacks attribution"; fi

run llama analyze attribution --model "$MODEL" --text "$TEXT" --target cookie --json -o "$OUT/llama.npz"
ok_or_fail "attribution on stories260K (--target cookie, --json, -o)" llama
pycheck "stories260K: JSON report (target, vectors, IG completeness, heads, Spearman)" '
import json, sys, numpy as np
r = json.load(open(sys.argv[1] + "/llama.out"))
t = r["target"]; T = len(r["tokens"])
assert r["objective"] == "causal" and t["query"] == t["index"] - 1, t
assert "cookie" in "".join(r["tokens"][t["index"]:]).replace("\u2581", ""), (r["tokens"], t)
rel = r["relevance"]; assert len(rel) == T
for k in ["grad_attn", "ig", "rollout", "flow"]:
    assert all(k in e for e in rel), k
ig = r["ig"]; assert ig["steps"] == 20
assert abs(sum(e["ig"] for e in rel) - ig["sum"]) < 1e-9
assert abs(ig["completeness_error"] - abs(ig["sum"] - ig["delta_logp"])) < 1e-9, ig
assert ig["power"] == 4   # llama family: alpha = u^4 (docs/metrics.md)
L, H = 5, 8
assert len(r["heads"]) == L * H and all("delta_logp" in h and "grad_attn_sum" in h for h in r["heads"])
assert any(abs(h["delta_logp"]) > 1e-6 for h in r["heads"])
assert len(r["grad_attn_layers"]) == L and len(r["grad_attn_layers"][0]) == T
# Spearman re-computed over positions 0..query
n = r["agreement"]["positions"]; assert n == t["query"] + 1
def ranks(v):
    v = np.asarray(v); order = np.argsort(v, kind="stable"); rk = np.empty(len(v))
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]: j += 1
        rk[order[i:j + 1]] = (i + j) / 2 + 1; i = j + 1
    return rk
names = r["agreement"]["methods"]; S = r["agreement"]["spearman"]
assert names == ["grad_attn", "ig", "rollout", "flow"], names
for a in range(4):
    for b in range(4):
        x = ranks([e[names[a]] for e in rel[:n]]); y = ranks([e[names[b]] for e in rel[:n]])
        want = np.corrcoef(x, y)[0, 1]
        assert abs(S[a][b] - want) < 1e-9, (names[a], names[b], S[a][b], want)
assert abs(S[0][0] - 1) < 1e-12
# rollout / flow rows of the last layer sum to 1 (causal: only keys 0..query)
assert abs(sum(e["rollout"] for e in rel) - 1) < 1e-4
'
pycheck "stories260K: NPZ keys and values equal the JSON" '
import json, sys, numpy as np
r = json.load(open(sys.argv[1] + "/llama.out")); z = np.load(sys.argv[1] + "/llama.npz")
for k in ["tokens", "input_ids", "grad_attn", "ig", "rollout", "flow", "grad_attn_layers", "grad_attn_head_sums", "ablation_delta", "ablation_logp", "spearman", "meta"]:
    assert k in z.files, (k, z.files)
assert z["ablation_delta"].shape == (5, 8)
assert np.allclose(z["ig"], [e["ig"] for e in r["relevance"]], rtol=0, atol=0)
assert np.allclose(z["ablation_delta"].ravel(), [h["delta_logp"] for h in r["heads"]], rtol=0, atol=0)
m = json.loads(str(z["meta"])); assert m["format"] == "atlas.attribution" and m["target"]["index"] == r["target"]["index"]
'

run text analyze attribution --model "$MODEL" --text "$TEXT" --target cookie --method ig,ablation --steps 8
ok_or_fail "text report, --method ig,ablation --steps 8" text
if grep -q "completeness error" "$OUT/text.out" && grep -q "layer .* head .*: delta log p" "$OUT/text.out"; then
  pass "text report shows IG completeness and the top ablation heads"
else
  fail "text report: $(head -c 600 "$OUT/text.out")"
fi

run second analyze attribution --model "$MODEL" --text "Lucy saw Lucy" --target 'Lucy#2' --method grad-attn --json
ok_or_fail "--target WORD#2" second
pycheck "WORD#2 is the second occurrence" '
import json, sys
r = json.load(open(sys.argv[1] + "/second.out"))
assert r["target"]["index"] > 2, r["target"]
assert "ig" not in r and "heads" in r and "ablated_logp" not in r["heads"][0]
'

run bert analyze attribution --model "$BERT" --text "the quick brown fox jumps over the lazy dog" --target 3 --json
ok_or_fail "attribution on the reference bert (masked LM)" bert
pycheck "bert: masked objective, completeness" '
import json, sys
r = json.load(open(sys.argv[1] + "/bert.out"))
assert r["objective"] == "masked" and r["target"]["query"] == 3 and "mask_id" in r["target"], r["target"]
assert r["ig"]["completeness_error"] < 0.05 * max(1, abs(r["ig"]["delta_logp"])), r["ig"]
assert r["agreement"]["positions"] == len(r["tokens"])
'

# gating: exit 3 when the expression holds, 0 otherwise
"$ATLAS" analyze attribution --model "$MODEL" --text "$TEXT" --target cookie --method ablation --fail-if 'min(delta_logp) < 100' >/dev/null 2>"$OUT/gate.err"; rc=$?
if [ "$rc" -eq 3 ] && grep -q "threshold crossed" "$OUT/gate.err"; then pass "--fail-if crossed: exit 3"; else fail "--fail-if crossed: exit $rc $(cat "$OUT/gate.err")"; fi
"$ATLAS" analyze attribution --model "$MODEL" --text "$TEXT" --target cookie --method ablation --fail-if 'min(delta_logp) < -100' >/dev/null 2>&1; rc=$?
if [ "$rc" -eq 0 ]; then pass "--fail-if not crossed: exit 0"; else fail "--fail-if not crossed: exit $rc"; fi

expect_error "target word not in the text lists the words" "$OUT/none.npz" "banana.*(Mom|Lucy).*cookie" -- \
  analyze attribution --model "$MODEL" --text "$TEXT" --target banana -o "$OUT/none.npz"
expect_error "target index out of range" "" "--target 99" -- analyze attribution --model "$MODEL" --text "$TEXT" --target 99
expect_error "first token of a causal LM (BOS)" "" "special token|first token" -- analyze attribution --model "$MODEL" --text "$TEXT" --target 0
expect_error "unknown method" "" "unknown method 'saliency'" -- analyze attribution --model "$MODEL" --text "$TEXT" --target cookie --method saliency
if [ -d "$ATLAS_SHARED_DIR/reference/models/opt" ]; then
  expect_error "unsupported architecture names its model_type" "" "'opt'" -- \
    analyze attribution --model "$ATLAS_SHARED_DIR/reference/models/opt" --text "hello world" --target=-1
fi
finish
