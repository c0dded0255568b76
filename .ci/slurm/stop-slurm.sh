#!/usr/bin/env bash
# stop-slurm.sh - stop daemons started by start-slurm.sh, and only those.
#
#   .ci/slurm/stop-slurm.sh                 stop every daemon of the cluster under $SLURM_CI_BASE
#   .ci/slurm/stop-slurm.sh slurmd munged   stop only the named ones (e.g. those listed in run/started)
#
# Each daemon is found through the PID file that start-slurm.sh had it write under $BASE/run, checked to
# be that program (/proc/PID/comm), sent SIGTERM and waited for (SIGKILL after a grace period). No pkill,
# no killall: a process that is not ours is never signalled. Daemons are stopped in reverse start order.
# When none of the cluster's daemons is left running, the /etc/slurm links that start-slurm.sh made are
# removed too, so that SLURM clients (and the snakemake slurm plugin, which asks `scontrol` at import)
# fail at once instead of waiting for a controller that is gone. Packages, state and logs stay, so
# start-slurm.sh can start the same cluster again.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE=${SLURM_CI_BASE:-$REPO/.slurm-ci}
GRACE=${SLURM_CI_STOP_GRACE:-20}
ALL=(slurmd slurmctld slurmdbd mariadbd munged) # reverse start order
log() { echo "[stop-slurm] $*"; }

# gone PID: no such process, or a zombie (its parent reaps it later).
gone() {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
  [ -z "$state" ] || [ "$state" = Z ] || [ "$state" = X ]
}

# stop_one NAME: stop the daemon NAME through $BASE/run/NAME.pid (the program name is NAME too).
stop_one() {
  local name=$1 pidfile=$BASE/run/$1.pid pid comm i
  if [ ! -s "$pidfile" ]; then
    log "$name: no PID file, not running"
    return 0
  fi
  pid=$(cat "$pidfile")
  if ! [[ "$pid" =~ ^[0-9]+$ ]] || gone "$pid"; then
    log "$name: stale PID file ($pid), removed"
    rm -f "$pidfile"
    return 0
  fi
  comm=$(cat "/proc/$pid/comm" 2>/dev/null)
  if [ "$comm" != "$name" ]; then
    log "$name: pid $pid is '$comm', not '$name': not touching it; stale PID file removed"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < GRACE * 4; i++)); do
    gone "$pid" && break
    sleep 0.25
  done
  if ! gone "$pid"; then
    log "$name: pid $pid ignored SIGTERM for ${GRACE} s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
  fi
  rm -f "$pidfile"
  log "$name: stopped (pid $pid)"
}

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=("${ALL[@]}")
for w in "${wanted[@]}"; do
  [[ " ${ALL[*]} " == *" $w "* ]] || { echo "[stop-slurm] ERROR: unknown daemon '$w' (known: ${ALL[*]})" >&2; exit 2; }
done
for name in "${ALL[@]}"; do
  [[ " ${wanted[*]} " == *" $name "* ]] && stop_one "$name"
done

# Remove our /etc/slurm links once the whole cluster is down (never a file or link that is not ours).
for name in "${ALL[@]}"; do
  pidfile=$BASE/run/$name.pid
  if [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    [[ "$pid" =~ ^[0-9]+$ ]] && ! gone "$pid" && exit 0
  fi
done
for conf in slurm.conf slurmdbd.conf; do
  link=/etc/slurm/$conf
  if [ -L "$link" ] && [ "$(readlink "$link")" = "$BASE/etc/$conf" ]; then
    rm -f "$link"
    log "removed link $link"
  fi
done
exit 0
