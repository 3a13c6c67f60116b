#!/usr/bin/env bash
# Fuzzes the parsers of outside data with libFuzzer (tests/fuzz; one target per parser).
#   scripts/fuzz.sh [--time SECONDS] [--jobs N] [target...]   (default: 60 s each, every target, N = 1)
# --jobs N runs N targets at the same time (each target is one libFuzzer process).
# Configures and builds build-fuzz (clang++, ATLAS_FUZZ=ON: ASan + UBSan, no LibTorch), writes the
# seed corpora into build-fuzz/fuzz-seeds (scripts/fuzz_seeds.py, from ../shared and the repo), runs
# each target and prints its executions and findings. A crash input is copied to
# tests/fuzz/regressions/<target>/, where the normal build's unit_fuzz_regressions test replays it.
# Exit status: 0 when no target found anything, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
time_s=60
jobs=1
targets=()
while (($#)); do
  case "$1" in
    --time) time_s="$2"; shift 2 ;;
    --time=*) time_s="${1#--time=}"; shift ;;
    --jobs) jobs="$2"; shift 2 ;;
    --jobs=*) jobs="${1#--jobs=}"; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option '$1'" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(npy npz manifest safetensors sharded_index pickle torch_bin config adapter_config tokenizer_text tokenizer_json style corpus expr serve bias_suite)
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (have: ${all[*]})" >&2; exit 2; }
done

src=$PWD
build=${ATLAS_FUZZ_BUILD_DIR:-$src/build-fuzz}
shared=${ATLAS_SHARED_DIR:-$src/../shared}
python=/usr/bin/python3; [[ -x $python ]] || python=python3
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (scripts/install-deps.sh installs clang and libclang-rt-14-dev)" >&2; exit 2; }
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-/work}
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
        -DCMAKE_C_COMPILER=clang -DATLAS_FUZZ=ON -DATLAS_SHARED_DIR="$shared" >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")

seeds=$build/fuzz-seeds   # regenerated in place (not removed: another fuzz.sh may be reading it)
"$python" scripts/fuzz_seeds.py "$src" "$shared" "$seeds"

export ATLAS_SHARED_DIR=$shared
# Leaks are not findings here (a parser's caches live for the process); UB already aborts.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
# run_target T: fuzzes T and writes its summary line(s) to $build/fuzz-logs/T.summary; status 1 on a finding.
run_target() {
  local t=$1
  local corpus=$build/fuzz-corpus/$t artifacts=$build/fuzz-artifacts/$t log=$build/fuzz-logs/$t.log
  local rc execs cov line f
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")" "$seeds/$t"
  set +e
  "$build/bin/fuzz_$t" -max_total_time="$time_s" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" "$seeds/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1 || true)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  local crashes=()
  for f in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-* "$artifacts"/slow-unit-*; do
    [[ -f $f ]] || continue
    mkdir -p "tests/fuzz/regressions/$t"
    cp "$f" "tests/fuzz/regressions/$t/"
    crashes+=("tests/fuzz/regressions/$t/$(basename "$f")")
    rm -f "$f"
  done
  line="fuzz_$t: ${execs:-?} executions, coverage ${cov:-?}, ${#crashes[@]} findings (exit $rc)"
  local status=0
  if ((${#crashes[@]} || rc != 0)); then
    status=1
    line+=$'\n'"$(grep -E 'ERROR: |SUMMARY: |uncaught exception|what\(\)' "$log" | head -5 | sed 's/^/    /' || true)"
    for c in "${crashes[@]}"; do line+=$'\n'"    new regression input: $c"; done
    ((${#crashes[@]})) || line+=$'\n'"    (no artifact; log: $log)"
  fi
  printf '%s\n' "$line" >"$build/fuzz-logs/$t.summary"
  return "$status"
}

mkdir -p "$build/fuzz-logs"
found=0
pids=()
for t in "${targets[@]}"; do
  echo "== fuzz_$t: ${time_s} s"
  run_target "$t" &
  pids+=($!)
  # At most $jobs at once: wait for the oldest before starting another.
  if ((${#pids[@]} >= jobs)); then
    wait "${pids[0]}" || found=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || found=1; done
summary=()
for t in "${targets[@]}"; do summary+=("$(cat "$build/fuzz-logs/$t.summary")"); done
echo "== fuzz summary (${time_s} s per target)"
printf '%s\n' "${summary[@]}"
exit "$found"
