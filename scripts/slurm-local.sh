#!/usr/bin/env bash
# A single-host SLURM cluster for peerlab's tests: one slurmctld and three
# emulated nodes (slurmd -N n1..n3) on 127.0.0.1, authenticated by a private
# munged. Everything (config, key, sockets, spool, logs, pid files) lives in
# one state directory, so it never touches the machine's own SLURM or munge.
#
#   scripts/slurm-local.sh start    install if missing, configure, start, wait until idle
#   scripts/slurm-local.sh stop     cancel our jobs, stop exactly the daemons started here
#   scripts/slurm-local.sh status   show whether it runs (exit 0) or not (exit 1)
#   scripts/slurm-local.sh env      print `export SLURM_CONF=...` for eval
#
# Clients (sbatch, squeue, peerlab run --runner slurm) find the cluster through
# SLURM_CONF=$PEERLAB_SLURM_DIR/slurm.conf.
#
# Settings (environment): PEERLAB_SLURM_DIR (default /tmp/peerlab-slurm),
# PEERLAB_SLURM_PORT (slurmctld's port, default 17817; the nodes use the next
# three), PEERLAB_SLURM_NODES (default 3), PEERLAB_SLURM_NO_INSTALL=1 (never
# run apt-get). Installing needs root and Debian's apt-get.
set -euo pipefail

DIR="${PEERLAB_SLURM_DIR:-/tmp/peerlab-slurm}"
PORT="${PEERLAB_SLURM_PORT:-17817}"
NODES="${PEERLAB_SLURM_NODES:-3}"
CONF="$DIR/slurm.conf"
MUNGE_SOCKET="$DIR/munge/munge.socket"
export SLURM_CONF="$CONF"

say() { echo "slurm-local: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# The pid in a pid file, if that process still runs the program we expect.
alive_pid() { # <pidfile> <program>
    local pidfile="$1" program="$2" pid comm
    [[ -s "$pidfile" ]] || return 1
    pid="$(tr -dc '0-9' <"$pidfile")"
    [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    [[ "$comm" == "$program"* ]] || return 1
    echo "$pid"
}

install_if_missing() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ "${PEERLAB_SLURM_NO_INSTALL:-}" == 1 ]] && die "missing ${missing[*]} and PEERLAB_SLURM_NO_INSTALL=1: install slurm-wlm and munge"
    [[ "$(id -u)" == 0 ]] || die "missing ${missing[*]}: run as root to install them, or apt-get install slurm-wlm munge"
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get here: install slurm-wlm and munge by hand"
    say "installing slurm-wlm and munge (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps the packages from starting the system's own daemons.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        made_policy=1
    fi
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null ||
        { [[ $made_policy == 1 ]] && rm -f "$policy"; die "apt-get install slurm-wlm munge failed"; }
    [[ $made_policy == 1 ]] && rm -f "$policy"
    return 0
}

write_config() {
    local host cpus last
    host="$(uname -n | cut -d. -f1)"
    cpus="$(nproc)"
    last=$((PORT + NODES))
    mkdir -p "$DIR"/{munge,state,spool,log,run}
    chmod 700 "$DIR/munge"
    if [[ ! -s "$DIR/munge/munge.key" ]]; then
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$DIR/munge/munge.key" --force >/dev/null
        else
            dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
        fi
        chmod 400 "$DIR/munge/munge.key"
    fi
    cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: a single-host test cluster.
ClusterName=peerlab-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/linear
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=n[1-$NODES] NodeHostname=$host NodeAddr=127.0.0.1 Port=$((PORT + 1))-$last CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=n[1-$NODES] Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munged() {
    if alive_pid "$DIR/run/munged.pid" munged >/dev/null; then return 0; fi
    munged --force \
        --key-file="$DIR/munge/munge.key" \
        --socket="$MUNGE_SOCKET" \
        --pid-file="$DIR/run/munged.pid" \
        --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed" ||
        die "munged did not start: see $DIR/log/munged.log"
}

start_daemons() {
    if ! alive_pid "$DIR/run/slurmctld.pid" slurmctld >/dev/null; then
        # -c -i: start afresh, ignoring jobs an earlier run of this test cluster saved.
        slurmctld -f "$CONF" -c -i || die "slurmctld did not start: see $DIR/log/slurmctld.log"
    fi
    local i
    for i in $(seq 1 "$NODES"); do
        if ! alive_pid "$DIR/run/slurmd-n$i.pid" slurmd >/dev/null; then
            slurmd -f "$CONF" -N "n$i" || die "slurmd n$i did not start: see $DIR/log/slurmd-n$i.log"
        fi
    done
}

# Wait until sinfo shows every node idle.
wait_idle() {
    local deadline=$((SECONDS + 60)) idle=0
    while ((SECONDS < deadline)); do
        idle="$(sinfo -h -N -t idle -o '%N' 2>/dev/null | sort -u | wc -l)"
        ((idle >= NODES)) && return 0
        sleep 1
    done
    sinfo -N -l >&2 || true
    die "the nodes were not idle within 60 s ($idle of $NODES idle): see $DIR/log"
}

cmd_start() {
    install_if_missing
    write_config
    start_munged
    start_daemons
    wait_idle
    say "running: $NODES nodes idle; use export SLURM_CONF=$CONF"
}

# Stop daemons by their pid files (pairs of <pidfile> <program>): TERM to
# all, then KILL to whatever still runs after 15 s.
stop_pids() {
    local pids=() i pid
    while (($# >= 2)); do
        if pid="$(alive_pid "$1" "$2")"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$1"
        shift 2
    done
    for i in $(seq 1 150); do
        local left=0
        for pid in "${pids[@]}"; do [[ -d "/proc/$pid" ]] && left=1; done
        [[ $left == 0 ]] && return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if [[ -d "/proc/$pid" ]]; then
            say "$(cat "/proc/$pid/comm" 2>/dev/null) ($pid) ignored TERM: killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

cmd_stop() {
    [[ -d "$DIR" ]] || { say "not running (no $DIR)"; return 0; }
    # Jobs first: their slurmstepd processes outlive slurmd.
    if alive_pid "$DIR/run/slurmctld.pid" slurmctld >/dev/null; then
        scancel --full --quiet "--user=$(id -un)" 2>/dev/null || true
        local deadline=$((SECONDS + 30))
        while ((SECONDS < deadline)) && [[ -n "$(squeue -h -o '%i' 2>/dev/null)" ]]; do
            sleep 0.5
        done
    fi
    local i nodes=()
    for i in $(seq 1 "$NODES"); do
        nodes+=("$DIR/run/slurmd-n$i.pid" slurmd)
    done
    stop_pids "${nodes[@]}"
    stop_pids "$DIR/run/slurmctld.pid" slurmctld
    stop_pids "$DIR/run/munged.pid" munged
    say "stopped"
}

cmd_status() {
    local ok=0 i
    alive_pid "$DIR/run/munged.pid" munged >/dev/null || { say "munged is not running"; ok=1; }
    alive_pid "$DIR/run/slurmctld.pid" slurmctld >/dev/null || { say "slurmctld is not running"; ok=1; }
    for i in $(seq 1 "$NODES"); do
        alive_pid "$DIR/run/slurmd-n$i.pid" slurmd >/dev/null || { say "slurmd n$i is not running"; ok=1; }
    done
    if [[ $ok == 0 ]]; then
        sinfo -N || true
        say "running; export SLURM_CONF=$CONF"
    fi
    return $ok
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) echo "export SLURM_CONF=$CONF" ;;
*)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
