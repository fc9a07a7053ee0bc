#!/usr/bin/env bash
# Calls per server CPU-second of two sipcore builds, alternating (issue 14): for each build, a
# fresh server on bench/sipcore-calls.cfg (UDP 127.0.0.1:5070, stateful t_relay() with
# record-route), SIPp's UAS (bench/sipp/uas_rr.xml) and UAC (bench/sipp/uac_rr.xml) on
# loopback, N calls at RATE per second; the server's utime+stime over the UAC's run from
# /proc/PID/stat. No tcpdump needed (bench/run-calls.sh measures setup times with it).
#
# Usage: bench/run-calls-ab.sh DIR_A DIR_B [ROUNDS]   (each DIR holds sipcore and its plugins)
# Env:   N=15000 RATE=1000
set -u
N=${N:-15000}
RATE=${RATE:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
HZ=$(getconf CLK_TCK)

one() {
    local dir=$1 sp up t0 t1 rc ok
    "$dir/sipcore" -f "$ROOT/bench/sipcore-calls.cfg" 2>"$WORK/sipcore.log" &
    sp=$!
    for _ in $(seq 1 50); do ss -uln | grep -q ":5070 " && break; sleep 0.1; done
    (cd "$WORK" && exec sipp -sf "$ROOT/bench/sipp/uas_rr.xml" -i 127.0.0.1 -p 5090 -nostdin -fd 1 >uas.out 2>&1) &
    up=$!
    for _ in $(seq 1 50); do ss -uln | grep -q ":5090 " && break; sleep 0.1; done
    t0=$(awk '{print $14 + $15}' "/proc/$sp/stat")
    (cd "$WORK" && sipp -sf "$ROOT/bench/sipp/uac_rr.xml" -i 127.0.0.1 -p 5091 127.0.0.1:5070 -s bench \
        -r "$RATE" -m "$N" -l $((RATE * 70)) -nostdin -timeout 120s -trace_stat -stf uac_stat.csv \
        >uac.out 2>&1)
    rc=$?
    t1=$(awk '{print $14 + $15}' "/proc/$sp/stat")
    kill "$up" "$sp" 2>/dev/null
    wait "$sp" 2>/dev/null
    ok=$(awk -F';' 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "SuccessfulCall(C)") c = i} END {print $c}' \
        "$WORK/uac_stat.csv")
    echo "build=$dir calls=$N rate=$RATE uac_rc=$rc ok=$ok server_cpu_s=$(awk -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}') calls_per_cpu_s=$(awk -v ok="$ok" -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN {printf "%.0f", ok * hz / t}')"
    rm -f "$WORK/uac_stat.csv"
    sleep 1
}

for _ in $(seq 1 "${3:-2}"); do
    one "$1"
    one "$2"
done
