#!/usr/bin/env bash
# Crash safety: SIGKILL at any moment of `atlas extract` (one text, a corpus), `process`, a bias report
# or a `visualize` batch leaves the previous complete output or none, never a truncated file that reads as valid; temp
# files of a killed run (".NAME.tmp-PID-N") do not confuse, and are gone after, the next run.
# A full disk (ulimit -f with SIGXFSZ ignored) is one clear error naming the file, exit 1, no output.
source "$(dirname "$0")/lib.sh"
MODEL="$ATLAS_SOURCE_DIR/examples/models/stories260K"
LONG=$("$ATLAS_PYTHON" -c "print(' '.join(['Once upon a time there was a little girl named Lily.'] * 30))")

# numpy must load every .npz under DIR fully (each member, CRC checked by zipfile).
npz_all_valid() {
  "$ATLAS_PYTHON" - "$1" <<'PY'
import glob, os, sys, zipfile, numpy as np
bad = 0
for f in sorted(glob.glob(os.path.join(sys.argv[1], '**', '*.npz'), recursive=True)):
    try:
        with zipfile.ZipFile(f) as z:
            assert z.testzip() is None
        d = np.load(f)
        for k in d.files:
            d[k]
    except Exception as e:
        print('INVALID', f, e); bad += 1
sys.exit(1 if bad else 0)
PY
}
png_all_valid() {  # every PNG ends with its IEND chunk
  "$ATLAS_PYTHON" - "$1" <<'PY'
import glob, os, sys
bad = [f for f in glob.glob(os.path.join(sys.argv[1], '*.png'))
       if not open(f, 'rb').read().endswith(b'IEND\xaeB`\x82')]
print('\n'.join('INVALID ' + f for f in bad)); sys.exit(1 if bad else 0)
PY
}
temps_in() { find "$1" -name '.*.tmp-*' | wc -l; }
# kill_after SECONDS -- command...: starts it, SIGKILLs it after SECONDS (if still running).
kill_after() {
  local t=$1; shift 2
  "$@" >/dev/null 2>&1 &
  local pid=$!
  sleep "$t"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# ---- one text: previous complete output, or none ----
mkdir -p "$TMP/one"
"$ATLAS" extract --model "$MODEL" --text "$LONG" -o "$TMP/one/prev.npz" --quiet || fail "first extract"
for t in 0.3 0.8 1.4 2.0; do
  kill_after "$t" -- "$ATLAS" extract --model "$MODEL" --text "$LONG" -o "$TMP/one/prev.npz" --quiet
  kill_after "$t" -- "$ATLAS" extract --model "$MODEL" --text "$LONG" -o "$TMP/one/fresh_$t.npz" --quiet
done
[ -s "$TMP/one/prev.npz" ] && pass "previous output survives SIGKILL" || fail "previous output lost"
if npz_all_valid "$TMP/one"; then pass "every extract output present after SIGKILL loads in numpy"; else fail "a truncated NPZ reads as present"; fi
"$ATLAS" extract --model "$MODEL" --text "$LONG" -o "$TMP/one/prev.npz" --quiet &&
  "$ATLAS" extract --model "$MODEL" --text "$LONG" -o "$TMP/one/fresh_0.3.npz" --quiet || fail "rerun after SIGKILL"
for t in 0.8 1.4 2.0; do "$ATLAS" extract --model "$MODEL" --text hi -o "$TMP/one/fresh_$t.npz" --quiet; done
[ "$(temps_in "$TMP/one")" -eq 0 ] && pass "no temp file left after the next successful runs" ||
  fail "temp files left: $(find "$TMP/one" -name '.*.tmp-*')"

# ---- a corpus: every shard present is complete, the rerun resumes to the full result ----
"$ATLAS_PYTHON" -c "
for i in range(300): print('Once upon a time there was a girl number %d. She liked to play in the park.' % i)" > "$TMP/corpus.txt"
kill_after 1.5 -- "$ATLAS" extract --model "$MODEL" --input "$TMP/corpus.txt" -o "$TMP/store" --threads 1 --shard-docs 20 --quiet
if npz_all_valid "$TMP/store"; then pass "corpus shards present after SIGKILL load in numpy"; else fail "corpus: truncated shard"; fi
if "$ATLAS" extract --model "$MODEL" --input "$TMP/corpus.txt" -o "$TMP/store" --threads 1 --shard-docs 20 --quiet &&
   npz_all_valid "$TMP/store" && [ "$(temps_in "$TMP/store")" -eq 0 ]; then
  pass "corpus rerun after SIGKILL completes, no temp files"
else
  fail "corpus rerun after SIGKILL: temps $(temps_in "$TMP/store")"
fi
n=$("$ATLAS_PYTHON" -c "
import json, sys
ok = set(json.loads(l)['id'] for l in open(sys.argv[1]) if json.loads(l).get('status', 'ok') == 'ok')
print(len(ok))" "$TMP/store/manifest.jsonl" 2>/dev/null)
[ "$n" = 300 ] && pass "corpus: 300 documents after resume" || fail "corpus: $n documents after resume, expected 300"

# ---- a visualize batch ----
mkdir -p "$TMP/figs"
for t in 0.4 0.9; do
  kill_after "$t" -- "$ATLAS" visualize heatmap "$TMP/one/prev.npz" --all-layers --all-heads -o "$TMP/figs/" --dpi 60 -j 1
  if png_all_valid "$TMP/figs"; then pass "visualize batch killed after $t s: every PNG present is complete"; else fail "visualize: truncated PNG"; fi
done
"$ATLAS" visualize heatmap "$TMP/one/prev.npz" --all-layers --all-heads -o "$TMP/figs/" --dpi 60 -j 1 >/dev/null || fail "visualize rerun"
[ "$(find "$TMP/figs" -name '*.png' | wc -l)" -eq 40 ] && [ "$(temps_in "$TMP/figs")" -eq 0 ] &&
  pass "visualize rerun writes all 40 figures, no temp files" || fail "visualize rerun: $(ls -a "$TMP/figs" | head)"

# ---- process: a killed flow (the slowest operation) leaves the previous output or none ----
mkdir -p "$TMP/proc"
"$ATLAS" process rollout "$TMP/one/prev.npz" -o "$TMP/proc/out.npz" >/dev/null 2>&1 || fail "process rollout"
for t in 0.3 0.8 1.5; do
  kill_after "$t" -- "$ATLAS" process flow "$TMP/one/prev.npz" -o "$TMP/proc/out.npz" --threads 1
  kill_after "$t" -- "$ATLAS" process flow "$TMP/one/prev.npz" -o "$TMP/proc/fresh_$t.npz" --threads 1
done
[ -s "$TMP/proc/out.npz" ] && npz_all_valid "$TMP/proc" && pass "process killed mid-flow: every output present loads in numpy" ||
  fail "process: output lost or truncated after SIGKILL"

# ---- a bias report: the previous complete PDF, or none ----
mkdir -p "$TMP/bias"
bias_run() { exec "$ATLAS" analyze bias -m "$MODEL" --suite "$ATLAS_SOURCE_DIR/configs/bias/gender-occupation.yaml" --limit 200 \
  --seed 1 --threads 1 --report "$1"; }
(bias_run "$TMP/bias/prev.pdf") >/dev/null 2>&1 || fail "bias report"
for t in 0.3 0.7 1.2 2.0; do
  kill_after "$t" -- bias_run "$TMP/bias/prev.pdf"
  kill_after "$t" -- bias_run "$TMP/bias/fresh_$t.pdf"
done
bad=0
for f in "$TMP"/bias/*.pdf; do [ "$(tail -c 6 "$f" | tr -d '\n')" = "%%EOF" ] || { bad=1; echo "truncated: $f"; }; done
[ -s "$TMP/bias/prev.pdf" ] && [ "$bad" -eq 0 ] && pass "bias report killed at any moment: every PDF present is complete" ||
  fail "bias report: lost or truncated PDF after SIGKILL"

# ---- disk full: "File too large" naming the file, exit 1, nothing left ----
mkdir -p "$TMP/full"
err=$( (ulimit -f 2048; trap '' XFSZ; "$ATLAS" extract --model "$MODEL" --text "$LONG" -o "$TMP/full/out.npz" --quiet) 2>&1); rc=$?
if [ "$rc" -eq 1 ] && printf '%s' "$err" | grep -q "^atlas: error: .*out.npz.*File too large" &&
   [ ! -e "$TMP/full/out.npz" ] && [ "$(temps_in "$TMP/full")" -eq 0 ]; then
  pass "extract on a full disk: $err"
else
  fail "extract on a full disk: rc $rc: $err"
fi
"$ATLAS" extract --model "$MODEL" --text "Once upon a time" -o "$TMP/full/small.npz" --quiet
err=$( (ulimit -f 8; trap '' XFSZ; "$ATLAS" visualize heatmap "$TMP/full/small.npz" -o "$TMP/full/fig.png" --dpi 300) 2>&1); rc=$?
if [ "$rc" -eq 1 ] && printf '%s' "$err" | grep -qi "fig.png.*\(file too large\|no space\)" && [ ! -e "$TMP/full/fig.png" ] &&
   [ "$(temps_in "$TMP/full")" -eq 0 ]; then
  pass "visualize on a full disk: $err"
else
  fail "visualize on a full disk: rc $rc: $err"
fi
err=$( (ulimit -f 64; trap '' XFSZ; "$ATLAS" process aggregate "$TMP/one/prev.npz" --over layers -o "$TMP/full/agg.npz") 2>&1); rc=$?
if [ "$rc" -eq 1 ] && printf '%s' "$err" | grep -qi "agg.npz.*\(file too large\|no space\)" && [ ! -e "$TMP/full/agg.npz" ] &&
   [ "$(temps_in "$TMP/full")" -eq 0 ]; then
  pass "process on a full disk: $err"
else
  fail "process on a full disk: rc $rc: $err"
fi
finish
