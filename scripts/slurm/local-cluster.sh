#!/usr/bin/env bash
# A private single-node Slurm cluster on this host, for tests/e2e/test_slurm.sh and for trying the
# array scripts locally. Everything it makes (slurm.conf, munge key and socket, state, spool, logs,
# pid files) lives in DIR; /etc/slurm and /etc/munge are neither read nor written, and a system
# munged or slurmctld that may be running is not touched (own socket, own ports).
#
# Usage: scripts/slurm/local-cluster.sh start|stop|status DIR
#   start   write DIR/slurm.conf, start munged (as user munge), slurmctld and slurmd (as root), wait
#           until the node is idle (ATLAS_SLURM_START_TIMEOUT seconds, default 60), print the
#           `export SLURM_CONF=...` line (also in DIR/env.sh)
#   stop    cancel the cluster's jobs, stop the daemons by their pid files, remove nothing else
#   status  which daemons run, and sinfo
# Needs root (SlurmUser=root), the Debian packages slurmctld slurmd slurm-client munge
# (scripts/install-deps.sh --slurm) and a free port pair (ATLAS_SLURM_PORT=P uses P and P+1).
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
[ "$action" != start ] || mkdir -p "$2"
[ -d "$2" ] || { echo "local-cluster: error: $2 is not a directory" >&2; exit 1; }
dir=$(cd "$2" && pwd)
conf="$dir/slurm.conf"
run="$dir/run"
node=$(hostname -s)

log() { echo "local-cluster: $*"; }
die() { echo "local-cluster: error: $*" >&2; exit 1; }

pid_of() {  # pid_of NAME: the pid in run/NAME.pid if that process is alive
  local f="$run/$1.pid" pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

free_port_pair() {  # two consecutive free TCP ports
  if [ -n "${ATLAS_SLURM_PORT:-}" ]; then echo "$ATLAS_SLURM_PORT"; return; fi
  local p
  for _ in $(seq 50); do
    p=$(( 20000 + RANDOM % 20000 ))
    if ! ss -Htan "( sport = :$p or sport = :$((p + 1)) )" 2>/dev/null | grep -q .; then
      echo "$p"; return
    fi
  done
  die "no free port pair found between 20000 and 40000 (set ATLAS_SLURM_PORT)"
}

write_conf() {
  local port=$1 cpus mem_mb
  cpus=$(nproc)
  # RealMemory a bit below what is free, so slurmd never drains the node for "low memory".
  mem_mb=$(awk '/^MemAvailable:/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
  [ "$mem_mb" -ge 256 ] || mem_mb=256
  : > "$dir/plugstack.conf"
  cat > "$conf" <<EOF
# Written by scripts/slurm/local-cluster.sh: a private single-node cluster on $node.
ClusterName=atlas-local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$run/slurmctld.pid
SlurmdPidFile=$run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
PlugStackConfig=$dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
SlurmdParameters=config_overrides
ReturnToService=2
# Keep finished jobs visible to scontrol for an hour (there is no accounting database).
MinJobAge=3600
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  local m="$dir/munge"
  mkdir -p "$m"
  chown munge:munge "$m"; chmod 0755 "$m"   # clients need x on the socket dir
  if [ ! -s "$m/munge.key" ]; then
    if command -v mungekey >/dev/null; then
      runuser -u munge -- mungekey --create --keyfile="$m/munge.key"
    else
      dd if=/dev/urandom of="$m/munge.key" bs=1024 count=1 status=none
    fi
  fi
  chown munge:munge "$m/munge.key"; chmod 0400 "$m/munge.key"
  # munged writes its pid file as user munge, so it lives in its own directory.
  runuser -u munge -- munged --socket="$m/munge.socket" --key-file="$m/munge.key" \
    --pid-file="$m/munged.pid" --log-file="$m/munged.log" --seed-file="$m/munged.seed" ||
    die "munged did not start (see $m/munged.log; munge must be able to reach $dir)"
  for _ in $(seq 50); do [ -s "$m/munged.pid" ] && break; sleep 0.1; done
  cp "$m/munged.pid" "$run/munged.pid"
}

wait_idle() {
  local timeout=${ATLAS_SLURM_START_TIMEOUT:-60} state=""
  for _ in $(seq "$timeout"); do
    state=$(SLURM_CONF=$conf sinfo -h -n "$node" -o %T 2>/dev/null | head -n1 || true)
    [ "$state" = "idle" ] && return 0
    sleep 1
  done
  echo "local-cluster: error: node $node is not idle after ${timeout} s (state: '${state:-no answer}')" >&2
  SLURM_CONF=$conf scontrol show node "$node" >&2 2>/dev/null || true
  for f in "$dir/log/slurmctld.log" "$dir/log/slurmd.log" "$dir/munge/munged.log"; do
    [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 15 "$f" >&2; }
  done
  return 1
}

do_start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (SlurmUser=root)"
  for b in munged slurmctld slurmd sinfo; do
    command -v "$b" >/dev/null || die "$b not found (bash scripts/install-deps.sh --slurm)"
  done
  for d in munged slurmctld slurmd; do
    if pid=$(pid_of "$d"); then die "$d already runs for $dir (pid $pid); run '$0 stop $dir' first"; fi
  done
  mkdir -p "$run" "$dir/state" "$dir/spool" "$dir/log"
  chmod 0755 "$dir"
  write_conf "$(free_port_pair)"
  start_munge
  slurmctld -f "$conf" || die "slurmctld did not start (see $dir/log/slurmctld.log)"
  slurmd -f "$conf" || die "slurmd did not start (see $dir/log/slurmd.log)"
  if ! wait_idle; then do_stop >/dev/null 2>&1 || true; exit 1; fi
  echo "export SLURM_CONF=$conf" > "$dir/env.sh"
  log "up: node $node idle, partition local, ports $(awk -F= '/^SlurmctldPort/ {print $2}' "$conf")/$(awk -F= '/^SlurmdPort/ {print $2}' "$conf"), logs in $dir/log"
  echo "export SLURM_CONF=$conf"
}

stop_pid() {  # stop_pid NAME PID: TERM, up to 10 s, then KILL
  local name=$1 pid=$2
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { log "stopped $name (pid $pid)"; return 0; }; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  log "killed $name (pid $pid)"
}

do_stop() {
  [ -f "$conf" ] || die "no cluster in $dir (no slurm.conf)"
  if pid_of slurmctld >/dev/null; then
    SLURM_CONF=$conf scancel --quiet --full --state=RUNNING,PENDING --user=root 2>/dev/null || true
    SLURM_CONF=$conf scancel --quiet --user=root 2>/dev/null || true
    for _ in $(seq 20); do
      [ -z "$(SLURM_CONF=$conf squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  for d in slurmd slurmctld; do
    if pid=$(pid_of "$d"); then stop_pid "$d" "$pid"; fi
  done
  # A job step whose slurmd is gone: slurmstepd keeps files under our spool dir open.
  local p fd
  for p in $(pgrep -x slurmstepd || true); do
    for fd in /proc/"$p"/fd/*; do
      case "$(readlink "$fd" 2>/dev/null)" in "$dir/spool"/*) stop_pid slurmstepd "$p"; break ;; esac
    done
  done
  if pid=$(pid_of munged); then stop_pid munged "$pid"; fi
  rm -f "$run"/*.pid
}

do_status() {
  local rc=0
  for d in munged slurmctld slurmd; do
    if pid=$(pid_of "$d"); then echo "$d: running (pid $pid)"; else echo "$d: not running"; rc=3; fi
  done
  if [ -f "$conf" ] && pid_of slurmctld >/dev/null; then
    echo "export SLURM_CONF=$conf"
    SLURM_CONF=$conf sinfo || true
  fi
  return $rc
}

case "$action" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) usage ;;
esac
