#!/usr/bin/env bash
# A/B of two sipcore builds in one sitting: ROUNDS rounds, each running build A then build B on
# OPTIONS (rr50x10, bench/sipcore-bench.cfg) and on the relay (relay25x10,
# bench/sipcore-relay.cfg), 5 s each; prints every round and the medians of req (tx) per server
# CPU-second. Alternating in one sitting is what makes a difference of a few percent visible on
# a shared machine whose absolute figures drift by 20% from one hour to the next.
#
# Usage: bench/run-ab.sh DIR_A DIR_B [ROUNDS]   (DIR_*: release dirs with sipcore + plugins;
#        sipbench is taken from $TARGET/release)
# Env:   CFG_A=... when build A does not accept today's bench config (e.g. an older build that
#        lacks a parameter), RR_SECS=5.
set -u
A=$1
B=$2
ROUNDS=${3:-5}
SECS=${RR_SECS:-5}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
CFG_A=${CFG_A:-$ROOT/bench/sipcore-bench.cfg}
wait_quiet

# one DIR CFG MODE: start DIR/sipcore on CFG, run sipbench MODE, print the per-CPU-s figure.
one() {
    "$1/sipcore" -f "$2" 2>/dev/null &
    SP=$!
    wait_port "$SC_PORT" || return 1
    local key=req_per_cpu_s
    local args=(rr -c 50 -w 10 -d "$SECS")
    if [ "$3" = relay ]; then
        key=tx_per_cpu_s
        args=(relay -p 25 -w 10 -d "$SECS")
    fi
    "$R/sipbench" -t 1 "${args[@]}" --pid "$SP" 2>/dev/null | tail -1 | tr ' ' '\n' | sed -n "s/^$key=//p"
    stop
}

declare -A all
for i in $(seq "$ROUNDS"); do
    for side in A B; do
        if [ $side = A ]; then dir=$A cfg=$CFG_A; else dir=$B cfg=$ROOT/bench/sipcore-bench.cfg; fi
        rr=$(one "$dir" "$cfg" rr)
        relay=$(one "$dir" "$ROOT/bench/sipcore-relay.cfg" relay)
        echo "round $i $side: rr50x10 ${rr:-?} req/CPU-s, relay25x10 ${relay:-?} tx/CPU-s"
        all[$side-rr]+=" ${rr:-0}"
        all[$side-relay]+=" ${relay:-0}"
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for k in A-rr B-rr A-relay B-relay; do
    echo "$k median $(echo "${all[$k]}" | median) of${all[$k]}"
done
