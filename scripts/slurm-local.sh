#!/usr/bin/env bash
# A SLURM test cluster on one Debian host for peerlab's tests, in one of two
# shapes:
#
# - single-host (default): one slurmctld and three emulated nodes
#   (slurmd -N n1..n3) sharing 127.0.0.1;
# - netns (--netns): every node is a network namespace (plns-n1..) with its
#   own IPv4 address on a private bridge (plnsbr0, veth pairs plnsvN/plnspN)
#   and its own slurmd; the head (slurmctld, munged, peerlab run) stays in
#   the host's namespace and reaches the nodes only through the bridge.
#
# Both are authenticated by a private munged. Everything (config, key,
# sockets, spool, logs, pid files, the list of namespaces and links made)
# lives in one state directory, so it never touches the machine's own SLURM,
# munge or network: the netns shape only adds interfaces and namespaces
# named plns*, and only addresses inside its own subnet.
#
#   scripts/slurm-local.sh [--netns] start    install if missing, configure, start, wait until idle
#   scripts/slurm-local.sh [--netns] stop     cancel our jobs, stop exactly the daemons, processes,
#                                             namespaces and links started here (also after a failed start)
#   scripts/slurm-local.sh [--netns] status   show whether it runs (exit 0) or not (exit 1)
#   scripts/slurm-local.sh [--netns] env      print `export SLURM_CONF=...` for eval
#   scripts/slurm-local.sh --netns kill-node N  kill every process in node nN's namespace (its slurmd,
#                                             job steps and instances): a node failure, for tests
#   scripts/slurm-local.sh --netns restart-node N  start nN's slurmd again, wait until every node is idle
#
# Clients (sbatch, squeue, peerlab run --runner slurm) find the cluster through
# SLURM_CONF=$PEERLAB_SLURM_DIR/slurm.conf.
#
# Settings (environment): PEERLAB_SLURM_DIR (default /tmp/peerlab-slurm, or
# /tmp/peerlab-slurm-netns with --netns), PEERLAB_SLURM_PORT (slurmctld's
# port, default 17817, or 17837 with --netns; single-host nodes use the next
# three, netns nodes all the next one), PEERLAB_SLURM_NODES (default 3),
# PEERLAB_SLURM_NETNS=1 (same as --netns), PEERLAB_SLURM_SUBNET (the netns
# cluster's /24, first three octets, default 10.213.17: the head is .1, node
# nN is .(10+N)), PEERLAB_SLURM_NO_INSTALL=1 (never run apt-get). Installing
# and the netns shape need root (and Debian's apt-get to install).
set -euo pipefail

NETNS="${PEERLAB_SLURM_NETNS:-0}"
if [[ "${1:-}" == --netns ]]; then
    NETNS=1
    shift
fi
if [[ "$NETNS" == 1 ]]; then
    DIR="${PEERLAB_SLURM_DIR:-/tmp/peerlab-slurm-netns}"
    PORT="${PEERLAB_SLURM_PORT:-17837}"
else
    DIR="${PEERLAB_SLURM_DIR:-/tmp/peerlab-slurm}"
    PORT="${PEERLAB_SLURM_PORT:-17817}"
fi
NODES="${PEERLAB_SLURM_NODES:-3}"
SUBNET="${PEERLAB_SLURM_SUBNET:-10.213.17}"
BRIDGE=plnsbr0
MADE="$DIR/run/made" # one line per namespace or link made: "netns NAME" / "link NAME"
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
    local ctld_addr=127.0.0.1 shape="a single-host test cluster" timeout=60 nodes_line i
    nodes_line="NodeName=n[1-$NODES] NodeHostname=$host NodeAddr=127.0.0.1 Port=$((PORT + 1))-$last CPUs=$cpus State=UNKNOWN"
    if [[ "$NETNS" == 1 ]]; then
        ctld_addr="$SUBNET.1"
        shape="nodes in network namespaces on $BRIDGE ($SUBNET.0/24)"
        # A dead node is noticed (and marked DOWN) within about 10 s.
        timeout=10
        nodes_line=""
        for i in $(seq 1 "$NODES"); do
            nodes_line+="NodeName=n$i NodeHostname=n$i NodeAddr=$(node_addr "$i") Port=$((PORT + 1)) CPUs=$cpus State=UNKNOWN"$'\n'
        done
    fi
    cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: $shape.
ClusterName=peerlab-local
SlurmctldHost=$host($ctld_addr)
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
SlurmdTimeout=$timeout
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
$nodes_line
PartitionName=debug Nodes=n[1-$NODES] Default=YES MaxTime=INFINITE State=UP
EOF
}

# ---- the netns shape: a bridge, and per node a namespace and a veth pair ----

node_addr() { echo "$SUBNET.$((10 + $1))"; }

# Note a namespace or link as ours before making it, so stop removes it even
# when making it (or anything after it) fails.
note_made() { # <netns|link> <name>
    mkdir -p "$DIR/run"
    grep -qx "$1 $2" "$MADE" 2>/dev/null || echo "$1 $2" >>"$MADE"
}

made() { # <netns|link> <name>: whether this script made it
    grep -qx "$1 $2" "$MADE" 2>/dev/null
}

netns_up() {
    [[ "$(id -u)" == 0 ]] || die "the netns cluster needs root (network namespaces, veth pairs, a bridge)"
    command -v ip >/dev/null || die "the netns cluster needs iproute2's ip: apt-get install iproute2"
    [[ "$SUBNET" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] ||
        die "PEERLAB_SLURM_SUBNET=$SUBNET is not the first three octets of an IPv4 /24 (e.g. 10.213.17)"
    ((NODES <= 200)) || die "PEERLAB_SLURM_NODES=$NODES: the netns cluster has room for 200 nodes"
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        made link "$BRIDGE" || die "$BRIDGE exists but this script (state in $DIR) did not make it: another netns test cluster runs; stop it with its own PEERLAB_SLURM_DIR"
    else
        # The subnet must be free on this machine: no address or route in it.
        if ip -4 -o addr show | grep -q " inet $SUBNET\." || [[ -n "$(ip -4 route show "$SUBNET.0/24")" ]]; then
            die "the subnet $SUBNET.0/24 is in use on this machine: choose another with PEERLAB_SLURM_SUBNET"
        fi
        note_made link "$BRIDGE"
        ip link add "$BRIDGE" type bridge
        ip addr add "$SUBNET.1/24" dev "$BRIDGE"
        ip link set "$BRIDGE" up
    fi
    local i ns host peer
    for i in $(seq 1 "$NODES"); do
        ns="plns-n$i" host="plnsv$i" peer="plnsp$i"
        if ! ip netns list | grep -qw "$ns"; then
            note_made netns "$ns"
            ip netns add "$ns"
        else
            made netns "$ns" || die "namespace $ns exists but this script (state in $DIR) did not make it"
        fi
        if ! ip link show "$host" >/dev/null 2>&1; then
            note_made link "$host"
            ip link add "$host" type veth peer name "$peer"
            ip link set "$peer" netns "$ns"
            ip link set "$host" master "$BRIDGE" up
            ip -n "$ns" addr add "$(node_addr "$i")/24" dev "$peer"
            ip -n "$ns" link set "$peer" up
            ip -n "$ns" link set lo up
        fi
    done
}

# Stop every process in one of our namespaces: TERM, then KILL after 5 s.
kill_netns_pids() { # <namespace> [signal]
    local ns="$1" pids i
    pids="$(ip netns pids "$ns" 2>/dev/null || true)"
    [[ -z "$pids" ]] && return 0
    # shellcheck disable=SC2086
    kill -"${2:-TERM}" $pids 2>/dev/null || true
    [[ "${2:-TERM}" == KILL ]] && return 0
    for i in $(seq 1 50); do
        [[ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ]] && return 0
        sleep 0.1
    done
    pids="$(ip netns pids "$ns" 2>/dev/null || true)"
    say "processes in $ns ignored TERM: killing $pids"
    # shellcheck disable=SC2086
    [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null || true
}

# Remove exactly what netns_up noted, namespaces first (their processes
# stopped), then the links (a veth's peer goes with its namespace).
netns_down() {
    [[ -s "$MADE" ]] || return 0
    local kind name
    while read -r kind name; do
        [[ "$kind" == netns ]] || continue
        kill_netns_pids "$name"
        ip netns del "$name" 2>/dev/null || true
    done <"$MADE"
    while read -r kind name; do
        [[ "$kind" == link ]] || continue
        ip link del "$name" 2>/dev/null || true
    done <"$MADE"
    local left=()
    while read -r kind name; do
        case "$kind" in
        netns) ip netns list | grep -qw "$name" && left+=("namespace $name") ;;
        link) ip link show "$name" >/dev/null 2>&1 && left+=("link $name") ;;
        esac
    done <"$MADE"
    [[ ${#left[@]} -eq 0 ]] || die "could not remove ${left[*]}"
    rm -f "$MADE"
}

# Start node nN's slurmd again after kill-node and wait until every node is
# idle (a node SLURM set down for not responding returns by itself).
cmd_restart_node() { # <N>
    [[ "$NETNS" == 1 ]] || die "restart-node is for the netns cluster (--netns)"
    local n="${1:-}"
    [[ "$n" =~ ^[0-9]+$ ]] || die "usage: $0 --netns restart-node N"
    made netns "plns-n$n" || die "no node n$n in this netns cluster ($DIR)"
    start_daemons
    scontrol update "NodeName=n$n" State=RESUME >/dev/null 2>&1 || true
    wait_idle
    say "node n$n is back"
}

cmd_kill_node() { # <N>
    [[ "$NETNS" == 1 ]] || die "kill-node is for the netns cluster (--netns)"
    local n="${1:-}"
    [[ "$n" =~ ^[0-9]+$ ]] || die "usage: $0 --netns kill-node N"
    made netns "plns-n$n" || die "no node n$n in this netns cluster ($DIR)"
    kill_netns_pids "plns-n$n" KILL
    say "killed every process of node n$n (namespace plns-n$n)"
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
            if [[ "$NETNS" == 1 ]]; then
                # nsenter joins only the network namespace (ip netns exec would
                # also remount /sys, hiding the cgroup file system slurmd needs).
                nsenter "--net=/run/netns/plns-n$i" slurmd -f "$CONF" -N "n$i" ||
                    die "slurmd n$i did not start in namespace plns-n$i: see $DIR/log/slurmd-n$i.log"
            else
                slurmd -f "$CONF" -N "n$i" || die "slurmd n$i did not start: see $DIR/log/slurmd-n$i.log"
            fi
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
    [[ "$NETNS" == 1 ]] && netns_up
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
    netns_down
    say "stopped"
}

cmd_status() {
    local ok=0 i
    alive_pid "$DIR/run/munged.pid" munged >/dev/null || { say "munged is not running"; ok=1; }
    alive_pid "$DIR/run/slurmctld.pid" slurmctld >/dev/null || { say "slurmctld is not running"; ok=1; }
    for i in $(seq 1 "$NODES"); do
        alive_pid "$DIR/run/slurmd-n$i.pid" slurmd >/dev/null || { say "slurmd n$i is not running"; ok=1; }
        if [[ "$NETNS" == 1 ]] && ! ip netns list | grep -qw "plns-n$i"; then
            say "namespace plns-n$i does not exist"
            ok=1
        fi
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
kill-node) cmd_kill_node "${2:-}" ;;
restart-node) cmd_restart_node "${2:-}" ;;
*)
    echo "usage: $0 [--netns] start|stop|status|env, or $0 --netns kill-node|restart-node N" >&2
    exit 2
    ;;
esac
