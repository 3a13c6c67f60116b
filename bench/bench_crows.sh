#!/usr/bin/env bash
# Full CrowS-Pairs (1,508 pairs, biasbench) on the embedded model, stories260K: wall time of the
# scoring and of the whole command, and the same with 1 thread. Target: under 60 s on 2 cores.
#   bench/bench_crows.sh [ATLAS_BINARY] [CROWS_CSV]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
atlas=${1:-$here/build/bin/atlas}
csv=${2:-$here/../shared/data/bias/crows-pairs/crows_pairs_anonymized.csv}
model=$here/examples/models/stories260K
[ -f "$csv" ] || { echo "bench_crows.sh: $csv not found (scripts/get-bias-data.sh fetches it)" >&2; exit 2; }
for threads in 2 1; do
  start=$(date +%s.%N)
  line=$("$atlas" analyze bias -m "$model" --crows-pairs "$csv" --threads "$threads" --progress none | tail -1)
  end=$(date +%s.%N)
  printf 'threads %d: %.2f s total  (%s)\n' "$threads" "$(echo "$end - $start" | bc)" "$line"
done
