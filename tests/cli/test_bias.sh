#!/usr/bin/env bash
# `atlas analyze bias` end to end: the embedded causal model (stories260K) and the tiny random masked
# model (reference/models/bert) on every dataset of ../shared/data/bias, determinism with a fixed seed,
# batching, --per-pair / --csv / --json files, gating (exit 3 / 0) and bad datasets.
source "$(dirname "$0")/lib.sh"
CAUSAL="$ATLAS_SOURCE_DIR/examples/models/stories260K"
MASKED="$ATLAS_SHARED_DIR/reference/models/bert"
DATA="$ATLAS_SHARED_DIR/data/bias"
CROWS="$DATA/crows-pairs/crows_pairs_anonymized.csv"
PY="$ATLAS_PYTHON"
if [ ! -f "$CROWS" ] || [ ! -d "$MASKED" ]; then echo "SKIPPED: $DATA or $MASKED missing"; exit 77; fi
OUT="$TMP/out"; mkdir -p "$OUT"
run() { local name=$1; shift; "$ATLAS" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; rc=$?; }
COMMON=(--threads 1 --progress none)

# 1. CrowS-Pairs on the causal model: every pair, biasbench, --per-pair and --json files
run crows_causal analyze bias -m "$CAUSAL" --crows-pairs "$CROWS" "${COMMON[@]}" --json -o "$OUT/c.json" \
  --per-pair "$OUT/pairs.csv" --csv "$OUT/c.csv"
if [ "$rc" -eq 0 ] && "$PY" - "$OUT" <<'PY'
import csv, json, sys
out = sys.argv[1]
rep = json.load(open(f"{out}/c.json"))
stdout = json.loads(open(f"{out}/crows_causal.out").read())
assert rep == stdout, "stdout --json differs from -o"
c = rep["crows_pairs"]
assert c["method"] == "biasbench", c["method"]
o = c["overall"]
assert o["n"] == 1508 and set(o) == {"metric", "stereotype", "anti_stereotype", "neutral", "n"}, o
assert sum(v["n"] for v in c["per_bias_type"].values()) == 1508
assert len(c["per_bias_type"]) == 9, sorted(c["per_bias_type"])
rows = list(csv.DictReader(open(f"{out}/pairs.csv")))
assert len(rows) == 1508 and list(rows[0]) == ["index", "bias_type", "direction", "sent_more_score", "sent_less_score", "counted"]
counted = sum(int(r["counted"]) for r in rows)
assert abs(o["metric"] - round(100 * counted / 1508, 2)) < 1e-9, (o["metric"], counted)
for r in rows:   # geometric-mean token probabilities
    assert 0 < float(r["sent_more_score"]) < 1 and 0 < float(r["sent_less_score"]) < 1, r
    assert int(r["counted"]) == (float(r["sent_more_score"]) > float(r["sent_less_score"]))
assert rep["datasets"]["crows_pairs"]["sha256"] and rep["model"]["checkpoint_sha256"]
assert "crows_pairs,overall.metric," in open(f"{out}/c.csv").read()
PY
then pass "CrowS-Pairs causal: 1,508 pairs, metric = counted / n, per-pair CSV, --json"; else fail "CrowS-Pairs causal (rc $rc: $(tail -3 "$OUT/crows_causal.err"))"; fi

# 2. Batching does not change scores; a fixed seed gives the same JSON twice
run b1 analyze bias -m "$CAUSAL" --crows-pairs "$CROWS" --limit 40 "${COMMON[@]}" --batch-size 1 --per-pair "$OUT/b1.csv"
run b64 analyze bias -m "$CAUSAL" --crows-pairs "$CROWS" --limit 40 "${COMMON[@]}" --batch-size 64 --per-pair "$OUT/b64.csv"
if "$PY" - "$OUT/b1.csv" "$OUT/b64.csv" <<'PY'
import csv, sys
a = list(csv.DictReader(open(sys.argv[1]))); b = list(csv.DictReader(open(sys.argv[2])))
assert len(a) == len(b) == 40
for x, y in zip(a, b):
    for k in ("sent_more_score", "sent_less_score"):
        assert abs(float(x[k]) - float(y[k])) <= 1e-5 * abs(float(x[k])), (x, y)
PY
then pass "--batch-size 1 and 64 give the same scores"; else fail "batching changes scores"; fi

# 3. The masked model: nangia (default) and biasbench
run crows_masked analyze bias -m "$MASKED" --crows-pairs "$CROWS" --limit 60 "${COMMON[@]}" -o "$OUT/m.json" --per-pair "$OUT/m.csv"
run crows_masked_bb analyze bias -m "$MASKED" --crows-pairs "$CROWS" --limit 60 "${COMMON[@]}" --crows-method biasbench -o "$OUT/mb.json"
if [ "$rc" -eq 0 ] && "$PY" - "$OUT" <<'PY'
import csv, json, sys
out = sys.argv[1]
m = json.load(open(f"{out}/m.json"))["crows_pairs"]; b = json.load(open(f"{out}/mb.json"))["crows_pairs"]
assert m["method"] == "nangia" and b["method"] == "biasbench"
assert m["overall"]["n"] == 60 == b["overall"]["n"]
for r in csv.DictReader(open(f"{out}/m.csv")):   # summed log-probabilities rounded to 3 decimals
    v = float(r["sent_more_score"])
    assert v < 0 and round(v, 3) == v, r
PY
then pass "CrowS-Pairs masked: nangia default, biasbench, scores rounded to 3 decimals"; else fail "CrowS-Pairs masked ($(tail -2 "$OUT/crows_masked.err") $(tail -2 "$OUT/crows_masked_bb.err"))"; fi

# 4. nangia on a causal model is refused
expect_error "nangia on a causal LM" "" "crows-method nangia.*causal" -- analyze bias -m "$CAUSAL" \
  --crows-pairs "$CROWS" --crows-method nangia "${COMMON[@]}"

# 5. StereoSet (processed TSV), WinoBias, Winogender on both models
for kind in causal masked; do
  model=$CAUSAL; [ $kind = masked ] && model=$MASKED
  run "wino_$kind" analyze bias -m "$model" --stereoset "$DATA/stereoset-intrasentence/stereoset_processed.tsv" \
    --winobias "$DATA/winobias" --winogender "$DATA/winogender" --limit 80 "${COMMON[@]}" -o "$OUT/w_$kind.json"
  if [ "$rc" -eq 0 ] && "$PY" - "$OUT/w_$kind.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["stereoset"]
assert s["per_target_averaging"] is False and "note" in s and s["format"] == "tsv"
o = s["overall"]
assert o["count"] == 80 and 0 <= o["ss"] <= 100 and 0 <= o["lms"] <= 100
assert abs(o["icat"] - o["lms"] * min(o["ss"], 100 - o["ss"]) / 50) < 1e-9
assert set(s["per_domain"]) <= {"gender", "profession", "race", "religion"}
w = r["winobias"]["overall"]
assert w["n_pro"] > 0 and w["n_anti"] > 0 and abs(w["gap"] - (w["pro"] - w["anti"])) < 1e-9
g = r["winogender"]
assert g["occupations"] == 80 or g["occupations"] == 60 or g["occupations"] > 0
assert g["spearman_bls"] is None or -1 <= g["spearman_bls"] <= 1
assert len(r["datasets"]["winobias"]) >= 2 and len(r["datasets"]["winogender"]) == 2
PY
  then pass "StereoSet TSV + WinoBias + Winogender ($kind)"; else fail "StereoSet/WinoBias/Winogender $kind (rc $rc: $(tail -3 "$OUT/wino_$kind.err"))"; fi
done

# 6. Bad datasets: a missing column names file and column; a missing file
printf ',sent_more,sent_less,bias_type\n0,a b,a c,age\n' > "$TMP/bad.csv"
expect_error "CrowS CSV without stereo_antistereo" "$OUT/bad.json" "bad.csv.*stereo_antistereo" -- analyze bias \
  -m "$CAUSAL" --crows-pairs "$TMP/bad.csv" "${COMMON[@]}" -o "$OUT/bad.json"
printf 'a [MASK] b\tgender\tx\ty\n' > "$TMP/bad.tsv"
expect_error "StereoSet TSV with 4 columns" "" "bad.tsv:1: 4 fields, expected 5" -- analyze bias \
  -m "$CAUSAL" --stereoset "$TMP/bad.tsv" "${COMMON[@]}"
expect_error "missing dataset" "" "does not exist" -- analyze bias -m "$CAUSAL" --crows-pairs "$TMP/none.csv" "${COMMON[@]}"
expect_error "nothing to audit" "" "nothing to audit" -- analyze bias -m "$CAUSAL" "${COMMON[@]}"


# 6b. Gating: exit 3 and one stderr line per crossed threshold; 0 when none is crossed; a suite's own
# thresholds count too; an object path means its metric (crows_pairs.overall -> .metric)
run gate3 analyze bias -m "$CAUSAL" --crows-pairs "$CROWS" --limit 50 "${COMMON[@]}" \
  --fail-if 'crows_pairs.overall > 1' --fail-if 'crows_pairs.overall.n >= 50' --fail-if 'crows_pairs.overall.metric > 101'
if [ "$rc" -eq 3 ] && [ "$(grep -c '^atlas: threshold crossed: ' "$OUT/gate3.err")" -eq 2 ] && [ "$(grep -vc '^atlas: threshold crossed: ' "$OUT/gate3.err")" -eq 0 ]; then
  pass "gating: exit 3, two crossed thresholds, two lines"
else fail "gating exit 3 (rc $rc: $(cat "$OUT/gate3.err"))"; fi
run gate0 analyze bias -m "$CAUSAL" --crows-pairs "$CROWS" --limit 50 "${COMMON[@]}" --fail-if 'crows_pairs.overall > 101'
[ "$rc" -eq 0 ] && [ ! -s "$OUT/gate0.err" ] && pass "gating: exit 0 below the threshold" || fail "gating exit 0 (rc $rc: $(cat "$OUT/gate0.err"))"
sed 's/^# thresholds:/thresholds:/; s/^#   - "suite.attention.max_abs_mean_difference > 0.2"/  - "suite.attention.max_abs_mean_difference > 0"/' \
  "$ATLAS_SOURCE_DIR/configs/bias/gender-occupation.yaml" > "$TMP/gated.yaml"
run gate_suite analyze bias -m "$CAUSAL" --suite "$TMP/gated.yaml" --limit 20 "${COMMON[@]}"
[ "$rc" -eq 3 ] && grep -q "threshold crossed: suite.attention.max_abs_mean_difference" "$OUT/gate_suite.err" \
  && pass "a suite's own threshold gates (exit 3)" || fail "suite threshold (rc $rc: $(cat "$OUT/gate_suite.err"))"

# 6c. Suites on both models; determinism: the same command twice gives the same JSON
for kind in causal masked; do
  model=$CAUSAL; [ $kind = masked ] && model=$MASKED
  run "suite_$kind" analyze bias -m "$model" --suite "$ATLAS_SOURCE_DIR/configs/bias/gender-occupation.yaml" \
    --limit 60 --seed 7 --bootstrap 300 --permutations 300 "${COMMON[@]}" -o "$OUT/s_$kind.json"
  rc1=$rc; mv "$OUT/s_$kind.json" "$OUT/s1_$kind.json"   # the command line (with -o) is in the report
  run "suite2_$kind" analyze bias -m "$model" --suite "$ATLAS_SOURCE_DIR/configs/bias/gender-occupation.yaml" \
    --limit 60 --seed 7 --bootstrap 300 --permutations 300 "${COMMON[@]}" -o "$OUT/s_$kind.json"
  if [ "$rc1" -eq 0 ] && [ "$rc" -eq 0 ] && cmp -s "$OUT/s1_$kind.json" "$OUT/s_$kind.json" && "$PY" - "$OUT/s1_$kind.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = r["suite"]
assert s["pairs"] == 60 and s["name"] == "gender-occupation"
heads = s["heads"]
assert len(heads) == s["attention"]["heads_tested"] > 0
for h in heads:
    assert h["ci_low"] <= h["mean_difference"] <= h["ci_high"], h
    assert 0 < h["p_value"] <= 1 and h["p_value"] <= h["q_value"] <= 1, h
assert abs(heads[0]["mean_difference"] - (heads[0]["attention_a"] - heads[0]["attention_b"])) < 1e-9
assert r["datasets"]["suite"]["sha256"] and r["seed"] == 7
g = s["logprob_gap"]; assert g["ci_low"] <= g["mean"] <= g["ci_high"]
PY
  then pass "suite gender-occupation ($kind): CIs, p <= q, deterministic JSON with --seed 7"; else fail "suite $kind (rc $rc1/$rc: $(tail -2 "$OUT/suite_$kind.err"))"; fi
done

# 6d. Suite errors name file and line
printf 'lists:\n  occupation: []\ntemplates: []\n' > "$TMP/empty.yaml"
expect_error "suite with an empty list" "" "empty.yaml:2: list 'occupation' is empty" -- analyze bias -m "$CAUSAL" --suite "$TMP/empty.yaml" "${COMMON[@]}"
printf 'pairs: [[he, she]]\nlists: {x: [a]}\ntemplates:\n  - {text: "The {y} said he", target: he, attribute: x}\n' > "$TMP/slot.yaml"
expect_error "suite with an unknown slot" "" "slot.yaml:4: unknown slot '\\{y\\}'" -- analyze bias -m "$CAUSAL" --suite "$TMP/slot.yaml" "${COMMON[@]}"
printf 'pairs: [[he, she]]\nsentences:\n  - {a: "he is a nurse", b: "she is a doctor", target: he, attribute: nurse}\n' > "$TMP/pair.yaml"
expect_error "suite pair differing in more than the swap" "" "pair.yaml:3: the sides of the pair" -- analyze bias -m "$CAUSAL" --suite "$TMP/pair.yaml" "${COMMON[@]}"


# 6e. --report: a multi-page PDF with the provenance in its metadata; --csv
run pdf analyze bias -m "$CAUSAL" --crows-pairs "$CROWS" --suite "$ATLAS_SOURCE_DIR/configs/bias/gender-occupation.yaml" \
  --winogender "$DATA/winogender" --limit 30 --bootstrap 200 --permutations 200 "${COMMON[@]}" --report "$OUT/audit.pdf" --csv "$OUT/audit.csv"
if [ "$rc" -eq 0 ] && [ "$(head -c 5 "$OUT/audit.pdf")" = "%PDF-" ]; then
  if command -v pdfinfo >/dev/null; then
    pages=$(pdfinfo "$OUT/audit.pdf" | awk '/^Pages:/ {print $2}')
    subject=$(pdfinfo "$OUT/audit.pdf" | grep '^Subject:')
    if [ "$pages" -eq 4 ] && printf '%s' "$subject" | grep -q "sha256"; then pass "--report: 4-page PDF, provenance in its metadata"
    else fail "--report: $pages pages, subject '$subject'"; fi
  else pass "--report: a PDF (pdfinfo not installed: pages not counted)"; fi
  grep -q '^suite,attention.significant_heads,' "$OUT/audit.csv" && pass "--csv rows" || fail "--csv: $(head -3 "$OUT/audit.csv")"
else fail "--report (rc $rc: $(tail -2 "$OUT/pdf.err"))"; fi

# 7. --help
"$ATLAS" analyze bias --help >/dev/null && pass "analyze bias --help exits 0" || fail "analyze bias --help"

finish
