#!/usr/bin/env bash
# Store folders through the real binary: --shard I/N parts and `atlas process merge`, --topk sparse
# storage, `atlas process cat` / `list`, `atlas visualize heatmap STORE:DOC`, and bad corpus options.
# Stores are read with numpy only (tests/fixtures/corpus/storelib.py).
source "$(dirname "$0")/lib.sh"
MODEL="$ATLAS_SOURCE_DIR/examples/models/stories260K"
FIX="${ATLAS_FIXTURES:-$ATLAS_SOURCE_DIR/tests/fixtures}"
OUT="$TMP/out"; mkdir -p "$OUT"
PY="$ATLAS_PYTHON"
export PYTHONPATH="$FIX/corpus${PYTHONPATH:+:$PYTHONPATH}"
run() { local name=$1; shift; "$ATLAS" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; rc=$?; }
is_png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

# 10 documents: 8 story lines, an empty line (4: fails) and a two-token line (7: "Tom")
head -8 "$FIX/corpus/stories40.txt" | awk 'NR == 4 { print "" } NR == 6 { print "Tom" } { print }' > "$TMP/c10.txt"
[ "$(wc -l < "$TMP/c10.txt")" -eq 10 ] && [ -z "$(sed -n 4p "$TMP/c10.txt")" ] || fail "test corpus setup: $(wc -l < "$TMP/c10.txt") lines"
COMMON=(--model "$MODEL" --input "$TMP/c10.txt" --threads 1 --batch-size 2 --allow-failures --quiet)

run full extract "${COMMON[@]}" -o "$OUT/full"
[ "$rc" -eq 0 ] || fail "full run: exit $rc ($(cat "$OUT/full.err"))"

# ------------------------------------------------------------------------------------------------
# 1. --shard I/N: disjoint parts that together hold every document once; merge == the single run
parts_ok=1
for i in 0 1 2; do
  run "p$i" extract "${COMMON[@]}" --shard "$i/3" -o "$OUT/p$i"
  [ "$rc" -eq 0 ] || { parts_ok=0; echo "# --shard $i/3: exit $rc $(cat "$OUT/p$i.err")"; }
done
[ "$parts_ok" -eq 1 ] && pass "--shard 0/3, 1/3, 2/3 run" || fail "--shard I/3 runs"
if "$PY" - "$OUT" <<'PY'
import sys
from storelib import *
out = sys.argv[1]
seen = {}
for i in range(3):
    for e in manifest(f"{out}/p{i}"):
        assert e["ordinal"] % 3 == i, f"part {i} holds ordinal {e['ordinal']} ({e['id']})"
        assert e["id"] not in seen, f"{e['id']} in parts {seen[e['id']]} and {i}"
        seen[e["id"]] = i
assert sorted(seen, key=int) == [str(n) for n in range(1, 11)], sorted(seen, key=int)
full = docs(f"{out}/full")
for i in range(3):
    d = docs(f"{out}/p{i}")
    for k, v in d.items():
        assert worst(v["attention"], full[k]["attention"]) <= 1e-5, k
PY
then pass "the 3 parts are disjoint, hold every document once, and equal the single run"; else fail "--shard parts"; fi

run merge process merge "$OUT/p0" "$OUT/p1" "$OUT/p2" -o "$OUT/merged"
[ "$rc" -eq 0 ] && pass "process merge of the 3 parts" || fail "process merge: exit $rc ($(cat "$OUT/merge.err"))"
if [ "$rc" -eq 0 ] && "$PY" - "$OUT/merged" "$OUT/full" <<'PY'
import sys
from storelib import *
merged, full = sys.argv[1:]
m = {e["id"]: e for e in manifest(merged)}
f = {e["id"]: e for e in manifest(full)}
assert len(manifest(merged)) == 10 and sorted(m) == sorted(f), sorted(m)
for k in f:
    assert m[k]["status"] == f[k]["status"] and m[k]["sha256"] == f[k]["sha256"], (m[k], f[k])
assert m["4"]["status"] == "failed" and "empty" in m["4"]["error"], m["4"]
import json
sj = json.load(open(f"{merged}/store.json"))
assert len(sj.get("merged_from", [])) == 3, f"store.json merged_from: {sj.get('merged_from')}"
a, b = docs(merged), docs(full)
w = max(worst(a[k]["attention"], b[k]["attention"]) for k in b)
assert w <= 1e-5, w
for k in b:
    for member in b[k]:
        if member not in ("attention", "meta"):
            assert (a[k][member] == b[k][member]).all(), (k, member)
PY
then pass "merged store equals the single run per document (failed ones stay failed)"; else fail "merged store contents"; fi
run merged_resume extract "${COMMON[@]}" -o "$OUT/merged" --json
if [ "$rc" -eq 0 ] && "$PY" -c "
import json; s = json.load(open('$OUT/merged_resume.out')); assert s['documents_ok'] == 0 and s['documents_skipped'] + s['documents_failed'] == 10, s"
then pass "the merged store resumes as the unsharded run (nothing to do but retry the failed)"
else fail "resume of the merged store with the unsharded command: exit $rc $(cat "$OUT/merged_resume.err" "$OUT/merged_resume.out" | head -c 400)"; fi

expect_error "merge refuses overlapping stores (the same part twice)" "$OUT/m_dup" "overlap|more than once|both|duplicate|twice" -- process merge "$OUT/p0" "$OUT/p0" -o "$OUT/m_dup"
run p0_l0 extract "${COMMON[@]}" --shard 1/3 --layers 0 -o "$OUT/p1_l0"
expect_error "merge refuses stores of different runs" "$OUT/m_diff" "layers|settings|differ" -- process merge "$OUT/p0" "$OUT/p1_l0" -o "$OUT/m_diff"
expect_error "resuming an OpenBLAS store with --gemm onednn names the setting" "" "gemm.*absent vs .onednn" -- extract "${COMMON[@]}" --gemm onednn -o "$OUT/full"
expect_error "merge refuses a non-empty output folder" "" "empty|exists" -- process merge "$OUT/p0" "$OUT/p1" -o "$OUT/full"
expect_error "merge of a folder that is not a store" "$OUT/m_ns" "store" -- process merge "$OUT/p0" "$TMP" -o "$OUT/m_ns"

# ------------------------------------------------------------------------------------------------
# 2. --topk 3: sparse members that densify to the top 3 of the dense run
run topk extract "${COMMON[@]}" --topk 3 -o "$OUT/topk"
if [ "$rc" -eq 0 ] && "$PY" - "$OUT/topk" "$OUT/full" <<'PY'
import json, sys, numpy as np
from storelib import *
topk, full = sys.argv[1:]
t, f = docs(topk), docs(full)
assert sorted(t) == sorted(f), (sorted(t), sorted(f))
w = 0.0
for k in f:
    A = f[k]["attention"]
    L, H, Q, _ = A.shape
    v, i, shape = t[k]["attention_topk_values"], t[k]["attention_topk_indices"], t[k]["attention_topk_shape"]
    assert "attention" not in t[k], "a --topk store should not also hold the dense attention"
    assert list(shape) == [L, H, Q, Q], (k, shape)
    assert i.dtype == np.int32 and v.dtype == np.float32, (i.dtype, v.dtype)
    kk = v.shape[-1]
    assert v.shape == (L, H, Q, kk) and i.shape == v.shape and kk in (3, min(3, Q)), (k, v.shape, i.shape)
    assert (i >= 0).all() and (i < Q).all(), (k, i.min(), i.max())
    assert (np.diff(v, axis=-1) <= 0).all(), f"{k}: topk values are not largest first"
    assert json.loads(str(t[k]["meta"])).get("topk") == 3, f"{k}: meta.topk"
    dense = np.zeros((L, H, Q, Q), np.float32)
    np.put_along_axis(dense, i.astype(np.int64), v, axis=-1)
    # the top 3 of the dense run (ties among equal values are interchangeable: compare values)
    order = np.argsort(-A, axis=-1, kind="stable")[..., :3]
    ref = np.zeros_like(A)
    np.put_along_axis(ref, order, np.take_along_axis(A, order, -1), axis=-1)
    w = max(w, worst(dense, ref))
    assert np.allclose(np.sort(v, -1), np.sort(np.take_along_axis(A, order[..., :kk], -1), -1), atol=1e-6), k
assert w <= 1e-6, w
print(f"topk: max |densified - top3(dense)| {w:.2e}; 'Tom' ({f['7']['attention'].shape[2]} tokens) has k={t['7']['attention_topk_values'].shape[-1]}")
PY
then pass "--topk 3: [L,H,Q,3] values, int32 indices, densify to the top 3 of the dense run"; else fail "--topk 3 (exit $rc): $(cat "$OUT/topk.err")"; fi
run topk_cat process cat "$OUT/topk" 2 -o "$OUT/topk2.npz"
if [ "$rc" -eq 0 ] && "$PY" - "$OUT/topk2.npz" "$OUT/topk" <<'PY'
import sys, numpy as np
from storelib import *
z = np.load(sys.argv[1])
d = docs(sys.argv[2])["2"]
for k in d:
    if k != "meta":
        assert k in z.files and np.array_equal(z[k], d[k]), k
PY
then pass "process cat of a --topk store keeps the sparse members"; else fail "process cat of a --topk document: exit $rc $(cat "$OUT/topk_cat.err")"; fi
run topk_viz visualize heatmap "$OUT/topk2.npz" -o "$OUT/topk2.png"
[ "$rc" -eq 0 ] && is_png "$OUT/topk2.png" && pass "visualize heatmap of a cat --topk NPZ" || fail "visualize heatmap of $OUT/topk2.npz: exit $rc $(cat "$OUT/topk_viz.err")"
run topk_viz2 visualize heatmap "$OUT/topk:2" -o "$OUT/topk2b.png"
[ "$rc" -eq 0 ] && is_png "$OUT/topk2b.png" && pass "visualize heatmap STORE:DOC of a --topk store" || fail "visualize heatmap topk:2: exit $rc $(cat "$OUT/topk_viz2.err")"

# ------------------------------------------------------------------------------------------------
# 3. process cat / list, visualize heatmap STORE:DOC
run cat3 process cat "$OUT/merged" 3 -o "$OUT/m3.npz"
if [ "$rc" -eq 0 ] && "$PY" - "$OUT/m3.npz" "$OUT/full" <<'PY'
import json, sys, numpy as np
from storelib import *
z = np.load(sys.argv[1]); d = docs(sys.argv[2])["3"]
assert z["attention"].shape == d["attention"].shape
meta = json.loads(str(z["meta"]))
assert meta["format"] == "atlas.attention" and meta["input"]["document_id"] == "3", meta["input"]
PY
then pass "process cat of a merged store"; else fail "process cat merged 3: exit $rc $(cat "$OUT/cat3.err")"; fi
expect_error "process cat of a missing document lists the ids" "$OUT/c99.npz" "no document '99'.*10 documents: [0-9]" -- process cat "$OUT/full" 99 -o "$OUT/c99.npz"
expect_error "process cat of a failed document says so" "$OUT/c4.npz" "failed.*empty" -- process cat "$OUT/full" 4 -o "$OUT/c4.npz"
expect_error "process cat of a folder that is not a store" "$OUT/cns.npz" "store" -- process cat "$TMP" 1 -o "$OUT/cns.npz"

run list process list "$OUT/merged"
if [ "$rc" -eq 0 ] && [ "$(grep -cE '^(10|[1-9]) +(ok|failed) ' "$OUT/list.out")" -eq 10 ] && grep -q '10 documents: 9 ok, 1 failed' "$OUT/list.out"; then
  pass "process list shows every document once"; else fail "process list: exit $rc $(cat "$OUT/list.out" "$OUT/list.err")"; fi

run viz visualize heatmap "$OUT/full:1" -o "$OUT/h1.png"
[ "$rc" -eq 0 ] && is_png "$OUT/h1.png" && pass "visualize heatmap STORE:ID writes a PNG" || fail "visualize heatmap full:1: exit $rc $(cat "$OUT/viz.err")"
expect_error "visualize heatmap STORE:missing lists the ids" "$OUT/hm.png" "no document 'missing'.*10 documents: [0-9]" -- visualize heatmap "$OUT/full:missing" -o "$OUT/hm.png"
expect_error "visualize heatmap STORE:failed-doc says it failed" "$OUT/h4.png" "failed" -- visualize heatmap "$OUT/full:4" -o "$OUT/h4.png"

# ------------------------------------------------------------------------------------------------
# 4. bad input: one line, exit 1, no store folder left behind
SMALL="$TMP/c10.txt"
expect_error "missing input file" "$OUT/e1" "nope.txt" -- extract --model "$MODEL" --input "$TMP/nope.txt" -o "$OUT/e1"
expect_error "--shard 3/2" "$OUT/e2" "shard" -- extract --model "$MODEL" --input "$SMALL" --shard 3/2 -o "$OUT/e2"
expect_error "--shard x" "$OUT/e3" "shard" -- extract --model "$MODEL" --input "$SMALL" --shard x -o "$OUT/e3"
expect_error "--shard 0/0" "$OUT/e4" "shard" -- extract --model "$MODEL" --input "$SMALL" --shard 0/0 -o "$OUT/e4"
expect_error "--batch-size 0" "$OUT/e5" "batch" -- extract --model "$MODEL" --input "$SMALL" --batch-size 0 -o "$OUT/e5"
expect_error "--stride without --window" "$OUT/e6" "window" -- extract --model "$MODEL" --input "$SMALL" --stride 4 -o "$OUT/e6"
expect_error "--stride larger than --window" "$OUT/e7" "stride" -- extract --model "$MODEL" --input "$SMALL" --window 4 --stride 8 -o "$OUT/e7"
expect_error "--compute-dtype float16 on CPU" "$OUT/e8" "float16" -- extract --model "$MODEL" --input "$SMALL" --compute-dtype float16 -o "$OUT/e8"
expect_error "--topk -1" "$OUT/e9" "topk" -- extract --model "$MODEL" --input "$SMALL" --topk -1 -o "$OUT/e9"
touch "$TMP/afile"
expect_error "-o an existing file" "" "folder|directory" -- extract --model "$MODEL" --input "$SMALL" -o "$TMP/afile"
finish
