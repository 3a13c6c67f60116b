#!/usr/bin/env bash
# The corpus-engine benchmarks in one go: makes the random checkpoints (cached in BUILD/bench-data/),
# runs bench_corpus (extraction vs. the bare forward pass, in one process) and bench_corpus_cli.py
# (tokens/s by batch size and compute dtype, peak RSS, start-up cost, the 4096-token case), and
# prints one summary. About 10 minutes on a 2-core machine. Never part of CI: numbers, not checks.
#
#   bench/run_corpus_bench.sh [BUILD_DIR]         (default: build; configured with -DATLAS_BUILD_BENCH=ON)
#   ROUNDS=5 REPS=3 THREADS=2 bench/run_corpus_bench.sh
# The environment passes through: on a machine that other jobs keep busy, GNU OpenMP's spin-waiting
# threads make every number several times worse; OMP_WAIT_POLICY=PASSIVE shows how much.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rounds=${ROUNDS:-3}
reps=${REPS:-1}
threads=${THREADS:-2}
data="$build/bench-data"

if [[ ! -f "$build/CMakeCache.txt" ]] || ! grep -q '^ATLAS_BUILD_BENCH:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "run_corpus_bench: $build is not a build folder configured with -DATLAS_BUILD_BENCH=ON" >&2
  exit 2
fi
cmake --build "$build" --target atlas_cli bench_corpus >/dev/null

# Checkpoints, remade when the generator changes.
stamp=$(sha256sum "$here/make_gpt2_small.py" | cut -c1-16)
make_model() {  # folder, generator arguments...
  local dir=$1
  shift
  if [[ ! -f "$dir/model.safetensors" || "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]]; then
    python3 "$here/make_gpt2_small.py" --out "$dir" "$@" >/dev/null
    echo "$stamp" >"$dir/.stamp"
  fi
}
mkdir -p "$data"
make_model "$data/gpt2-small" --arch gpt2
make_model "$data/llama-long" --arch llama

log="$data/corpus-bench-$(date +%Y%m%d-%H%M%S).txt"
{
  echo "== corpus benchmarks: $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown), $(date -u +%FT%TZ)"
  echo "   $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, load average" \
       "$(cut -d' ' -f1-3 /proc/loadavg) at start; $threads threads"
  echo "   token ids: random, below 1000 (the checkpoints carry the 1000-token reference GPT-2 tokenizer),"
  echo "   fed as JSONL {\"ids\": [...]}; OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}, OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset}"
  echo
  "$build/bench/bench_corpus" --model "$data/gpt2-small" --threads "$threads" --rounds "$rounds"
  python3 "$here/bench_corpus_cli.py" --atlas "$build/bin/atlas" --model "$data/gpt2-small" \
    --llama "$data/llama-long" --threads "$threads" --reps "$reps"
  echo
  echo "   load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
} 2>&1 | tee "$log"

echo
echo "== summary (full log: $log)"
grep -E '^  (bare forward|corpus extraction) |^    of which|bfloat16 vs float32|^    batch +[0-9]+ |^  (loop of|corpus mode,|one process|peak RSS|budget|ratio|wall time) ' "$log"
