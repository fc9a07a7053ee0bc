#!/usr/bin/env bash
# sipcore vs Kamailio 5.6 benchmarks (SIP over WebSocket, OPTIONS answered statelessly).
# Builds release, starts each server in turn, runs the scenarios with sipbench, stops it, and
# prints a table. Raw RESULT lines go to $OUT (default bench/results/<UTC time>.txt).
# See BENCHMARKS.md for what each figure means.
#
# Usage: bench/run.sh            (from anywhere; needs /usr/sbin/kamailio with websocket/xhttp)
# Env:   DUR=10 (rr seconds), N1=5000 N2=19000 (idle connections), SKIP_BUILD=1,
#        TARGET=/work/target-bench (CARGO_TARGET_DIR)
set -u
DUR=${DUR:-10}
N1=${N1:-5000}
N2=${N2:-19000}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
results ""
KCFG=$ROOT/bench/kamailio/kamailio-ws.cfg
RR_CLIENT=(-t 1)
IDLE_CLIENT=(-t 2)
IDLE_OPTS=(--concurrency 512 --src-ips 8 --hold 2)
build

# Open-file limit: the client and each server process need N2 + a few descriptors each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((N2 + 200)) ]; then
    N2=$((NOFILE - 200))
    log "open-file limit $NOFILE: idle N2 lowered to $N2"
fi

wait_quiet
header "ulimit -n $NOFILE; N2=$N2" >"$OUT"

# start NAME: start server NAME in the background, set SP, PORT, TREE.
start() {
    case $1 in
    sipcore)
        "$R/sipcore" -f "$ROOT/bench/sipcore-bench.cfg" 2>>"$OUT.sipcore.log" &
        SP=$! PORT=$SC_PORT TREE=() ;;
    sipcore-hep)
        "$R/sipbench" sink --bind 127.0.0.1:9060 >"$OUT.sink.log" 2>&1 &
        SK=$!
        "$R/sipcore" -f "$ROOT/bench/sipcore-bench-hep.cfg" 2>>"$OUT.sipcore-hep.log" &
        SP=$! PORT=$SC_PORT TREE=() ;;
    kamailio)
        "$KAM" -f "$KCFG" -DD -E -m 2048 -M 16 >>"$OUT.kamailio.log" 2>&1 &
        SP=$! PORT=$KAM_PORT TREE=(--tree) ;;
    kamailio-tlsf)
        "$KAM" -f "$KCFG" -DD -E -m 2048 -M 16 -x tlsf -X tlsf >>"$OUT.kamailio-tlsf.log" 2>&1 &
        SP=$! PORT=$KAM_PORT TREE=(--tree) ;;
    esac
    wait_port "$PORT"
    sleep 1 # let Kamailio fork all its children before they are listed for --tree
}

# extra_for SERVER: the HEP counters after a traced run (see scenario in lib.sh).
extra_for() {
    [ "$1" = sipcore-hep ] || return 0
    hep_stats "$ROOT/bench/sipcore-bench-hep.cfg"
    echo -n " sink_$(tail -1 "$OUT.sink.log" 2>/dev/null | tr ' ' '_')"
}

for srv in sipcore sipcore-hep kamailio kamailio-tlsf; do
    scenario $srv rr50x10 "${RR_CLIENT[@]}" rr -c 50 -w 10 -d "$DUR"
    scenario $srv rr1x1 "${RR_CLIENT[@]}" rr -c 1 -w 1 -d "$DUR"
    [ $srv = sipcore-hep ] && continue
    scenario $srv idle$N1 "${IDLE_CLIENT[@]}" idle -n "$N1" "${IDLE_OPTS[@]}"
    scenario $srv idle$N2 "${IDLE_CLIENT[@]}" idle -n "$N2" "${IDLE_OPTS[@]}"
done
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"

# Table: one row per server and scenario.
echo
echo "results: $OUT"
printf '%-14s %-10s %9s %9s %9s %9s %11s %9s %10s %8s %7s\n' server scenario req/s p50_us p99_us \
    p999_us req/cpu_s hs/s B/conn errors load
grep '^server=' "$OUT" | while read -r l; do
    printf '%-14s %-10s %9s %9s %9s %9s %11s %9s %10s %8s %7s\n' "$(get "$l" server)" \
        "$(get "$l" scenario)" "$(get "$l" rps)" "$(get "$l" p50_us)" "$(get "$l" p99_us)" \
        "$(get "$l" p999_us)" "$(get "$l" req_per_cpu_s)" "$(get "$l" handshakes_per_s)" \
        "$(get "$l" pss_per_conn_b)" "$(get "$l" errors)$(get "$l" failed)" "$(get "$l" load)"
done
