#!/usr/bin/env bash
# Tracing cost (issue 4): OPTIONS throughput (sipbench rr -c 50 -w 10) with HEP tracing of every
# connection and SIP message off, on over UDP, and on over TCP, alternating for ROUNDS rounds so
# that drift on a shared machine hits all three alike. The HEP collector is `sipbench sink`
# (UDP, or --tcp) on the same machine. Raw lines go to $OUT. See BENCHMARKS.md.
#
# Usage: bench/run-trace.sh      Env: DUR=6 ROUNDS=3 SKIP_BUILD=1 TARGET=/work/target-bench
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${TARGET:-/work/target-bench}
R=$TARGET/release
DUR=${DUR:-6}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$ROOT/bench/results/trace-$(date -u +%Y%m%dT%H%M%SZ).txt}
mkdir -p "$(dirname "$OUT")"
if [ -z "${SKIP_BUILD:-}" ]; then
    CARGO_TARGET_DIR=$TARGET cargo build --release -p sipcore-bench -p sipcore -p proto_ws -p proto_hep || exit 1
fi
echo "# $(date -u) on $(hostname): nproc=$(nproc) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT"

one() { # name cfg sink-args ("" = no sink)
    local name=$1 cfg=$2 sargs=$3 SK= SP line extra=""
    if [ -n "$sargs" ]; then
        # shellcheck disable=SC2086
        "$R/sipbench" sink --bind 127.0.0.1:9060 $sargs >/tmp/sipbench-sink.log 2>&1 &
        SK=$!
        sleep 0.3
    fi
    "$R/sipcore" -f "$cfg" 2>/dev/null &
    SP=$!
    sleep 1
    line=$("$R/sipbench" -t 1 rr -c 50 -w 10 -d "$DUR" --pid "$SP" | grep '^RESULT')
    if [ -n "$SK" ]; then
        local st
        st=$("$R/sipcore" mi -f "$cfg" hep_stats 2>/dev/null | tr -d ' \n')
        extra=" hep_sent=$(echo "$st" | sed -n 's/.*"sent":\([0-9]*\)}$/\1/p')"
        extra+=" hep_dropped=$(echo "$st" | sed -n 's/.*},*\],"dropped":\([0-9]*\),.*/\1/p')"
        kill "$SK"
        wait "$SK" 2>/dev/null
    fi
    kill "$SP"
    wait "$SP" 2>/dev/null
    echo "tracing=$name ${line#RESULT }$extra" | tee -a "$OUT"
    sleep 0.5
}

for _ in $(seq 1 "$ROUNDS"); do
    one off "$ROOT/bench/sipcore-bench.cfg" ""
    one udp "$ROOT/bench/sipcore-bench-hep.cfg" " "
    one tcp "$ROOT/bench/sipcore-bench-hep-tcp.cfg" "--tcp"
done
get() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
echo
for t in off udp tcp; do
    grep "^tracing=$t " "$OUT" | while read -r l; do
        printf '%-4s rps=%-7s req_per_cpu_s=%-7s hep_sent=%-8s hep_dropped=%s\n' "$t" \
            "$(get "$l" rps)" "$(get "$l" req_per_cpu_s)" "$(get "$l" hep_sent)" "$(get "$l" hep_dropped)"
    done
done
