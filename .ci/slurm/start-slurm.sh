#!/usr/bin/env bash
# start-slurm.sh - bring up a single-node SLURM cluster on this machine (Debian 12, root, no systemd), so
# that the workflow's cluster profile (profiles/slurm) is exercised against a real scheduler in CI and by
# tests/test_slurm.py. Based on the worked example in shared/reference/slurm; see docs/cluster.md.
#
# Daemons, in start order: munged, [mariadbd, slurmdbd,] slurmctld, slurmd. Idempotent: packages already
# installed are not reinstalled, and a daemon whose PID file points at a live process is left alone.
# The names of the daemons that *this* call started are written to $BASE/run/started (one a line), so a
# caller can stop exactly those afterwards: `.ci/slurm/stop-slurm.sh $(cat $BASE/run/started)`.
#
# Everything lives under $SLURM_CI_BASE (default: <repo>/.slurm-ci, git-ignored), except
#   - the Debian packages (apt-get);
#   - /etc/slurm/slurm.conf and /etc/slurm/slurmdbd.conf, symlinks into $BASE/etc: the default path is
#     required because snakemake-executor-plugin-slurm-jobstep strips SLURM_CONF from the environment of
#     the `srun` it runs inside each job (stop-slurm.sh removes the links again);
#   - munge's default socket /run/munge/munge.socket.2 (sacct/sacctmgr of SLURM 22.05 ignore
#     AuthInfo=socket=... for their connection to slurmdbd).
# An existing /etc/slurm/slurm.conf that is not our link, or a munged/slurmctld that we did not start, is
# another cluster: the script refuses to touch it and stops with an error.
#
# Environment knobs:
#   SLURM_CI_BASE        state, configs, logs, PID files    (default: <repo>/.slurm-ci)
#   SLURM_CI_ACCOUNTING  dbd  = MariaDB + slurmdbd, so sacct works (default; what real clusters have)
#                        none = no accounting: pass --slurm-status-command squeue --slurm-no-account
#   SLURM_CI_DB_PORT     MariaDB port on 127.0.0.1          (default: 3307)
#   SLURM_CI_ACCOUNT     account created in slurmdbd for the current user (default: ci)
#   SLURM_CI_PARTITION   the single partition               (default: main)
#
# Exit status: 0 ready; 3 the packages cannot be installed here (not root, no apt-get, apt-get failed):
# callers such as the tests skip on 3; 1 any other failure (logs are printed).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE=${SLURM_CI_BASE:-$REPO/.slurm-ci}
ACCOUNTING=${SLURM_CI_ACCOUNTING:-dbd}
DB_PORT=${SLURM_CI_DB_PORT:-3307}
ACCOUNT=${SLURM_CI_ACCOUNT:-ci}
PARTITION=${SLURM_CI_PARTITION:-main}
CLUSTER=ci
MUNGE_SOCKET=/run/munge/munge.socket.2

log() { echo "[start-slurm] $*"; }
die() { echo "[start-slurm] ERROR: $*" >&2; exit 1; }
unavailable() { echo "[start-slurm] UNAVAILABLE: $*" >&2; exit 3; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T_ALL=$(now)

# alive PIDFILE: does the PID file name a live (non-zombie) process?
alive() {
  local pid state
  [ -s "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# wait_for SECONDS CMD...: poll CMD every 0.25 s until it succeeds; fail after SECONDS.
wait_for() {
  local end=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.25
  done
}

# show_log FILE: the tail of a daemon's log, for error messages.
show_log() {
  if [ -f "$1" ]; then tail -n 20 "$1" >&2; fi
}

[ "$(id -u)" = 0 ] || unavailable "must run as root (daemons, apt-get and /etc/slurm)"
case "$ACCOUNTING" in dbd | none) ;; *) die "SLURM_CI_ACCOUNTING must be dbd or none, not '$ACCOUNTING'" ;; esac

mkdir -p "$BASE"/{etc/munge,run,log,state/ctld,state/d,state/munge}
STARTED=$BASE/run/started
: >"$STARTED"
started() { echo "$1" >>"$STARTED"; log "$1 started (pid $(cat "$BASE/run/$1.pid"))"; }

# ----------------------------------------------------------------------------------------------- packages
T=$(now)
PACKAGES=(munge slurm-wlm)
[ "$ACCOUNTING" = dbd ] && PACKAGES+=(slurmdbd mariadb-server)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || unavailable "apt-get not found; install ${missing[*]} by hand"
  log "installing ${missing[*]} (apt-get, once per machine)"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt may hold the dpkg lock (e.g. .ci/run installing fonts): wait up to 10 minutes for it.
  { apt-get -o DPkg::Lock::Timeout=600 update -qq &&
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$BASE/log/apt-install.log" 2>&1 ||
    { show_log "$BASE/log/apt-install.log"; unavailable "apt-get install ${missing[*]} failed"; }
fi
log "packages ready ($(since "$T") s): slurm $(dpkg-query -W -f='${Version}' slurm-wlm)"

T_DAEMONS=$(now)
# ------------------------------------------------------------------------------------------------- munge
KEY=$BASE/etc/munge/munge.key
if [ ! -s "$KEY" ]; then
  dd if=/dev/urandom of="$KEY" bs=1024 count=1 status=none
fi
chown root:root "$KEY"
chmod 400 "$KEY"
chmod 700 "$BASE/etc/munge"
mkdir -p "$(dirname "$MUNGE_SOCKET")"
chmod 755 "$(dirname "$MUNGE_SOCKET")"
if alive "$BASE/run/munged.pid"; then
  log "munged already running (pid $(cat "$BASE/run/munged.pid"))"
else
  if [ -S "$MUNGE_SOCKET" ] && munge -n </dev/null >/dev/null 2>&1; then
    die "a munged that this script did not start answers on $MUNGE_SOCKET; stop it first"
  fi
  rm -f "$BASE/run/munged.pid"
  # --force: start even over a stale socket left by a killed munged (a live one was ruled out above).
  munged --force --key-file="$KEY" --socket="$MUNGE_SOCKET" --pid-file="$BASE/run/munged.pid" \
    --log-file="$BASE/log/munged.log" --seed-file="$BASE/state/munge/munged.seed"
  wait_for 10 sh -c 'munge -n | unmunge' || { show_log "$BASE/log/munged.log"; die "munged did not come up"; }
  started munged
fi

# -------------------------------------------------------------------------------------------- slurm.conf
HOST=$(hostname -s)
NCPU=$(nproc)
MEM_MB=$(($(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) - 1024))
if [ "$ACCOUNTING" = dbd ]; then
  ACCOUNTING_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819"
else
  ACCOUNTING_LINES="AccountingStorageType=accounting_storage/none"
fi
cat >"$BASE/etc/slurm.conf.new" <<CONF
# Single-node SLURM for CI, generated by .ci/slurm/start-slurm.sh: do not edit.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$BASE/state/ctld
SlurmdSpoolDir=$BASE/state/d
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups and no systemd here: track job processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
$ACCOUNTING_LINES
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job without --mem gets 1000 MB per CPU, not the whole node (which would serialise all jobs).
DefMemPerCPU=1000
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ReturnToService=2
# Finished jobs stay visible to squeue for 5 minutes: the slurm plugin accepts
# --slurm-status-command squeue only if MinJobAge >= 3 x its first status-check delay.
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
mv "$BASE/etc/slurm.conf.new" "$BASE/etc/slurm.conf"

# link_conf NAME: /etc/slurm/NAME -> $BASE/etc/NAME, refusing to replace a file that is not our link.
link_conf() {
  local target=$BASE/etc/$1 dst=/etc/slurm/$1
  mkdir -p /etc/slurm
  if [ -e "$dst" ] || [ -L "$dst" ]; then
    if [ ! -L "$dst" ] || [[ "$(readlink "$dst")" != "$BASE"/etc/* ]]; then
      die "$dst exists and is not a link into $BASE/etc: another SLURM setup; not touching it"
    fi
  fi
  ln -sfn "$target" "$dst"
}
link_conf slurm.conf

# --------------------------------------------------------------------------------- accounting (optional)
if [ "$ACCOUNTING" = dbd ]; then
  DATADIR=$BASE/state/mysql
  DB_SOCKET=$BASE/run/mysqld.sock
  if [ ! -d "$DATADIR/mysql" ]; then
    mkdir -p "$DATADIR"
    mariadb-install-db --no-defaults --user=root --datadir="$DATADIR" \
      --auth-root-authentication-method=socket --skip-test-db >"$BASE/log/mariadb-install-db.log" 2>&1 ||
      { show_log "$BASE/log/mariadb-install-db.log"; die "mariadb-install-db failed"; }
  fi
  db_ping() { mariadb-admin --no-defaults -S "$DB_SOCKET" ping; }
  if alive "$BASE/run/mariadbd.pid"; then
    log "mariadbd already running (pid $(cat "$BASE/run/mariadbd.pid"))"
  else
    rm -f "$BASE/run/mariadbd.pid"
    # mariadbd does not daemonise itself: detach it from this shell and its terminal.
    setsid nohup mariadbd --no-defaults --user=root --datadir="$DATADIR" --socket="$DB_SOCKET" \
      --pid-file="$BASE/run/mariadbd.pid" --bind-address=127.0.0.1 --port="$DB_PORT" \
      --log-error="$BASE/log/mariadbd.log" --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &
    wait_for 60 db_ping || { show_log "$BASE/log/mariadbd.log"; die "mariadbd did not come up"; }
    wait_for 10 test -s "$BASE/run/mariadbd.pid" || die "mariadbd wrote no PID file"
    started mariadbd
  fi
  mariadb --no-defaults -S "$DB_SOCKET" -u root <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmci';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmci';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
  cat >"$BASE/etc/slurmdbd.conf" <<CONF
# Generated by .ci/slurm/start-slurm.sh: do not edit. The password guards a database bound to 127.0.0.1
# that exists only for this throwaway CI cluster.
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$BASE/run/slurmdbd.pid
LogFile=$BASE/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurmci
StorageLoc=slurm_acct_db
CONF
  chmod 600 "$BASE/etc/slurmdbd.conf"
  link_conf slurmdbd.conf
  if alive "$BASE/run/slurmdbd.pid"; then
    log "slurmdbd already running (pid $(cat "$BASE/run/slurmdbd.pid"))"
  else
    rm -f "$BASE/run/slurmdbd.pid"
    slurmdbd
    wait_for 60 sacctmgr -n show cluster || { show_log "$BASE/log/slurmdbd.log"; die "slurmdbd did not come up"; }
    started slurmdbd
  fi
  # `sacctmgr add` exits 1 when the entity exists: look before adding.
  [ -n "$(sacctmgr -n -P show cluster "$CLUSTER" format=cluster)" ] ||
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  [ -n "$(sacctmgr -n -P show account "$ACCOUNT" format=account)" ] ||
    sacctmgr -i add account "$ACCOUNT" Description=ci Organization=ci >/dev/null
  USER_NAME=$(id -un)
  [ -n "$(sacctmgr -n -P show assoc cluster="$CLUSTER" account="$ACCOUNT" user="$USER_NAME" format=user)" ] ||
    sacctmgr -i add user "$USER_NAME" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null
fi

# ------------------------------------------------------------------------------------- slurmctld, slurmd
if alive "$BASE/run/slurmctld.pid"; then
  log "slurmctld already running (pid $(cat "$BASE/run/slurmctld.pid"))"
  scontrol reconfigure || true
else
  rm -f "$BASE/run/slurmctld.pid"
  slurmctld
  wait_for 30 scontrol ping || { show_log "$BASE/log/slurmctld.log"; die "slurmctld did not come up"; }
  started slurmctld
fi
if alive "$BASE/run/slurmd.pid"; then
  log "slurmd already running (pid $(cat "$BASE/run/slurmd.pid"))"
else
  rm -f "$BASE/run/slurmd.pid"
  slurmd
  wait_for 10 test -s "$BASE/run/slurmd.pid" || { show_log "$BASE/log/slurmd.log"; die "slurmd did not start"; }
  started slurmd
fi
node_ready() { sinfo -h -n "$HOST" -o '%T' | grep -Eq '^(idle|mixed|allocated)$'; }
if ! wait_for 30 node_ready; then
  # A node left DOWN or DRAINED by an earlier run (e.g. a killed slurmd): bring it back.
  scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
  wait_for 30 node_ready || { sinfo >&2; show_log "$BASE/log/slurmd.log"; die "node $HOST is not idle"; }
fi
log "daemons up ($(since "$T_DAEMONS") s)"

# ------------------------------------------------------------------------------------------ smoke test
T=$(now)
out=$(srun -N1 -n1 -t 1 -p "$PARTITION" hostname) || die "srun smoke test failed"
if [ "$ACCOUNTING" = dbd ]; then
  sacct -X -n -P -o JobIDRaw,State >/dev/null || die "sacct does not work"
fi
log "smoke test ok: srun ran on '$out' ($(since "$T") s)"
sinfo
log "SLURM ready: accounting=$ACCOUNTING partition=$PARTITION account=$ACCOUNT base=$BASE ($(since "$T_ALL") s)"
