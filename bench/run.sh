#!/usr/bin/env bash
# sipcore vs Kamailio 5.6 benchmarks (SIP over WebSocket, OPTIONS answered statelessly).
# Builds release, starts each server in turn, runs the scenarios with sipbench, stops it, and
# prints a table. Raw RESULT lines go to $OUT (default bench/results-<UTC time>.txt).
# See BENCHMARKS.md for what each figure means.
#
# Usage: bench/run.sh            (from anywhere; needs /usr/sbin/kamailio with websocket/xhttp)
# Env:   DUR=10 (rr seconds), N1=5000 N2=19000 (idle connections), SKIP_BUILD=1,
#        TARGET=/work/target-bench (CARGO_TARGET_DIR)
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${TARGET:-/work/target-bench}
R=$TARGET/release
DUR=${DUR:-10}
N1=${N1:-5000}
N2=${N2:-19000}
OUT=${OUT:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ).txt}
mkdir -p "$(dirname "$OUT")"
KAM=${KAM:-/usr/sbin/kamailio}
KCFG=$ROOT/bench/kamailio/kamailio-ws.cfg
SC_PORT=8080
KAM_PORT=8090
RR_CLIENT=(-t 1)
IDLE_CLIENT=(-t 2)
IDLE_OPTS=(--concurrency 512 --src-ips 8 --hold 2)
SP=
SINK=

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

if [ -z "${SKIP_BUILD:-}" ]; then
    log "building release into $TARGET"
    CARGO_TARGET_DIR=$TARGET cargo build --release -p sipcore-bench -p sipcore -p proto_ws -p proto_hep \
        || exit 1
fi

# Open-file limit: the client and each server process need N2 + a few descriptors each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((N2 + 200)) ]; then
    N2=$((NOFILE - 200))
    log "open-file limit $NOFILE: idle N2 lowered to $N2"
fi

# Wait for a quiet machine: load1 <= 1.5, up to 5 tries a minute apart.
for i in 1 2 3 4 5; do
    LOAD=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$LOAD" 'BEGIN { exit !(l <= 1.5) }'; then break; fi
    log "load $LOAD > 1.5 (other builds?), waiting 60 s (try $i/5)"
    sleep 60
done
LOAD_START=$(cat /proc/loadavg)

{
    echo "# $(date -u) on $(hostname): nproc=$(nproc) kernel=$(uname -r)"
    echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "# loadavg before: $LOAD_START; ulimit -n $NOFILE; N2=$N2"
} >"$OUT"

wait_port() { # port
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    log "nothing listens on port $1"
    return 1
}

stop() {
    if [ -n "$SP" ]; then
        kill "$SP" 2>/dev/null
        wait "$SP" 2>/dev/null
        SP=
    fi
    if [ -n "$SINK" ]; then
        kill "$SINK" 2>/dev/null
        wait "$SINK" 2>/dev/null
        SINK=
    fi
    sleep 1
}
trap stop EXIT

# start NAME: start server NAME in the background, set SP, PORT, TREE.
start() {
    case $1 in
    sipcore)
        "$R/sipcore" -f "$ROOT/bench/sipcore-bench.cfg" 2>>"$OUT.sipcore.log" &
        SP=$! PORT=$SC_PORT TREE=() ;;
    sipcore-hep)
        "$R/sipbench" sink --bind 127.0.0.1:9060 >"$OUT.sink.log" 2>&1 &
        SINK=$!
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

# scenario SERVER NAME sipbench-args...: fresh server, one run, RESULT line to $OUT.
scenario() {
    local srv=$1 name=$2
    shift 2
    start "$srv" || return
    log "$srv $name: sipbench $*"
    local line
    line=$("$R/sipbench" "$@" --addr "127.0.0.1:$PORT" --pid "$SP" "${TREE[@]}" 2>>"$OUT.client.log" |
        grep '^RESULT')
    local extra=""
    if [ "$srv" = sipcore-hep ]; then
        local st
        st=$("$R/sipcore" mi -f "$ROOT/bench/sipcore-bench-hep.cfg" hep_stats 2>/dev/null | tr -d ' \n')
        extra=" hep_sent=$(echo "$st" | sed -n 's/.*"sent":\([0-9]*\)}$/\1/p')"
        extra+=" hep_dropped=$(echo "$st" | sed -n 's/.*},*\],"dropped":\([0-9]*\),.*/\1/p')"
        extra+=" sink_$(tail -1 "$OUT.sink.log" 2>/dev/null | tr ' ' '_')"
    fi
    if ! kill -0 "$SP" 2>/dev/null; then extra+=" SERVER_DIED=1"; fi
    echo "server=$srv scenario=$name load=$(cut -d' ' -f1 /proc/loadavg) ${line#RESULT }$extra" | tee -a "$OUT"
    stop
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
get() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
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
