#!/usr/bin/env bash
# Submits a sharded `atlas extract` as a Slurm array (extract-array.sbatch, task I writes
# STORE/part-I) and the merge (merge.sbatch, STORE/merged) that runs after every task succeeded.
#
# Usage: scripts/slurm/submit.sh --model DIR --input FILE --store DIR --tasks N [options] [-- extract args]
#   --model DIR          model folder (as for atlas extract --model)
#   --input FILE         corpus, one document per line
#   --store DIR          store root on a filesystem every node sees; created if missing
#   --tasks N            array size = shard count
#   --partition P        Slurm partition (default: the cluster's default)
#   --gpus-per-task G    GPUs per array task (also pass `-- --device cuda`)
#   --cpus-per-task C    CPUs per array task, also atlas --threads (default 1)
#   --time T             time limit per array task (sbatch --time)
#   --max-running K      at most K tasks at once (--array=0-(N-1)%K)
#   --only LIST          (re)submit only these tasks, e.g. 2,5 or 3-7; shards stay I/N of --tasks N
#   --out-store DIR      merged store (default: STORE/merged)
#   --log-dir DIR        job logs (default: STORE/logs)
#   --atlas PATH         the atlas binary (default: $ATLAS, else atlas on PATH)
#   --sbatch-arg ARG     one more argument for both sbatch calls, repeatable (--account=..., --qos=...)
#   --wait               block until the merge job ends; exit 0 only if it completed
#   --wait-timeout S     give up waiting after S seconds (default 3600), exit 1
# Prints the job ids, also as ARRAY_JOB=<id> and MERGE_JOB=<id> lines.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

die() { echo "submit: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

model="" input="" store="" tasks="" partition="" gpus="" cpus=1 time_limit="" max_running=""
only="" out_store="" log_dir="" atlas=${ATLAS:-atlas} wait=0 wait_timeout=3600
sbatch_extra=()
extract_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --input) input=$2; shift 2 ;;
    --store) store=$2; shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --partition) partition=$2; shift 2 ;;
    --gpus-per-task) gpus=$2; shift 2 ;;
    --cpus-per-task) cpus=$2; shift 2 ;;
    --time) time_limit=$2; shift 2 ;;
    --max-running) max_running=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --out-store) out_store=$2; shift 2 ;;
    --log-dir) log_dir=$2; shift 2 ;;
    --atlas) atlas=$2; shift 2 ;;
    --sbatch-arg) sbatch_extra+=("$2"); shift 2 ;;
    --wait) wait=1; shift ;;
    --wait-timeout) wait_timeout=$2; shift 2 ;;
    -h|--help) usage ;;
    --) shift; extract_args=("$@"); break ;;
    *) echo "submit: error: unknown option '$1'" >&2; usage ;;
  esac
done
[ -n "$model" ] && [ -n "$input" ] && [ -n "$store" ] && [ -n "$tasks" ] ||
  { echo "submit: error: --model, --input, --store and --tasks are required" >&2; usage; }
[[ "$tasks" =~ ^[1-9][0-9]*$ ]] || die "--tasks must be a positive integer, got '$tasks'"
[[ "$cpus" =~ ^[1-9][0-9]*$ ]] || die "--cpus-per-task must be a positive integer, got '$cpus'"
[ -z "$max_running" ] || [[ "$max_running" =~ ^[1-9][0-9]*$ ]] || die "--max-running must be a positive integer"
[ -z "$only" ] || [[ "$only" =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || die "--only takes a list like 2,5 or 3-7, got '$only'"
[ -d "$model" ] || die "model folder $model does not exist"
[ -f "$input" ] || die "input $input does not exist"
command -v sbatch >/dev/null || die "sbatch not found (is this a Slurm login node? SLURM_CONF=${SLURM_CONF:-unset})"
case "$atlas" in */*) atlas=$(abspath "$atlas") ;; esac
command -v "$atlas" >/dev/null ||
  echo "submit: warning: $atlas is not found here; the jobs need it on the compute nodes" >&2

model=$(abspath "$model"); input=$(abspath "$input"); store=$(abspath "$store")
out_store=$(abspath "${out_store:-$store/merged}")
log_dir=$(abspath "${log_dir:-$store/logs}")
mkdir -p "$store" "$log_dir"

# The jobs read these from their environment (--export=ALL): commas in values, e.g. --layers 0,2,
# would break sbatch's --export=VAR=value list.
export MODEL=$model INPUT=$input STORE=$store OUT_STORE=$out_store SHARDS=$tasks ATLAS=$atlas
ATLAS_EXTRACT_ARGS=""
if [ ${#extract_args[@]} -gt 0 ]; then ATLAS_EXTRACT_ARGS=$(printf '%q ' "${extract_args[@]}"); fi
export ATLAS_EXTRACT_ARGS

common=(--parsable --export=ALL "${sbatch_extra[@]}")
[ -n "$partition" ] && common+=(--partition="$partition")
array="${only:-0-$((tasks - 1))}"
[ -n "$max_running" ] && array+="%$max_running"
for i in $(echo "$array" | sed 's/%.*//; s/,/ /g; s/-/ /g'); do
  [ "$i" -lt "$tasks" ] || die "task $i is outside 0..$((tasks - 1))"
done

extract_opts=(--array="$array" --cpus-per-task="$cpus" --output="$log_dir/extract-%A_%a.out")
[ -n "$gpus" ] && extract_opts+=(--gpus-per-task="$gpus")
[ -n "$time_limit" ] && extract_opts+=(--time="$time_limit")
array_job=$(sbatch "${common[@]}" "${extract_opts[@]}" "$here/extract-array.sbatch")
array_job=${array_job%%;*}   # --parsable prints "id[;cluster]"
# A failed task makes afterok impossible: then the merge is cancelled instead of pending forever.
merge_job=$(sbatch "${common[@]}" --dependency="afterok:$array_job" --kill-on-invalid-dep=yes \
  --output="$log_dir/merge-%j.out" "$here/merge.sbatch")
merge_job=${merge_job%%;*}

echo "submit: array job $array_job (tasks $array of $tasks shards), merge job $merge_job (afterok:$array_job)"
echo "submit: store $store, merged store $out_store, logs $log_dir"
echo "ARRAY_JOB=$array_job"
echo "MERGE_JOB=$merge_job"
[ "$wait" -eq 1 ] || exit 0

# Job states without an accounting database: scontrol knows a job until MinJobAge after its end;
# sacct (when the cluster has accounting) afterwards.
job_states() {  # job_states ID: one state per job (an array job: one per task)
  local s
  s=$(scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 || true)
  if [ -z "$s" ] && command -v sacct >/dev/null; then
    s=$(sacct -n -X -P -j "$1" -o State 2>/dev/null | awk '{print $1}' || true)
  fi
  echo "$s"
}
done_state() { case "$1" in PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUED|RESIZING|"") return 1 ;; *) return 0 ;; esac; }

deadline=$(( $(date +%s) + wait_timeout ))
merge_state=""
while :; do
  merge_state=$(job_states "$merge_job" | head -n1)
  done_state "$merge_state" && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "submit: error: merge job $merge_job still '${merge_state:-unknown}' after ${wait_timeout} s" >&2
    exit 1
  fi
  sleep 2
done
tasks_summary=$(job_states "$array_job" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')
echo "submit: array job $array_job: ${tasks_summary:-no state}; merge job $merge_job: $merge_state"
if [ "$merge_state" != COMPLETED ]; then
  echo "submit: error: merge job $merge_job ended $merge_state; see $log_dir" >&2
  exit 1
fi
