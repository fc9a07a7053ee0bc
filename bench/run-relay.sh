#!/usr/bin/env bash
# Relay benchmark (issue 5): pairs of users over WebSocket, B registered, A sends MESSAGE to B
# through the server, B answers 200. sipcore (registrar + stateless proxy, bench/sipcore-relay.cfg)
# vs Kamailio 5.6 with lookup("location") + forward() and with t_relay()
# (bench/kamailio/kamailio-relay.cfg). Raw RESULT lines go to $OUT.
# See BENCHMARKS.md for what each figure means.
#
# Usage: bench/run-relay.sh      (from anywhere; needs /usr/sbin/kamailio with websocket/xhttp)
# Env:   DUR=10 (seconds per run), SKIP_BUILD=1, TARGET=/work/target-bench (CARGO_TARGET_DIR)
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${TARGET:-/work/target-bench}
R=$TARGET/release
DUR=${DUR:-10}
OUT=${OUT:-$ROOT/bench/results/relay-$(date -u +%Y%m%dT%H%M%SZ).txt}
mkdir -p "$(dirname "$OUT")"
KAM=${KAM:-/usr/sbin/kamailio}
KCFG=$ROOT/bench/kamailio/kamailio-relay.cfg
SC_PORT=8080
KAM_PORT=8090
CLIENT=(-t 1)
SP=
SINK=

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

if [ -z "${SKIP_BUILD:-}" ]; then
    log "building release into $TARGET"
    CARGO_TARGET_DIR=$TARGET cargo build --release -p sipcore-bench -p sipcore -p proto_ws -p proto_hep \
        || exit 1
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
    echo "# loadavg before: $LOAD_START"
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
        "$R/sipcore" -f "$ROOT/bench/sipcore-relay.cfg" 2>>"$OUT.sipcore.log" &
        SP=$! PORT=$SC_PORT TREE=() ;;
    kamailio-forward)
        "$KAM" -f "$KCFG" -DD -E -m 2048 -M 16 >>"$OUT.kamailio-forward.log" 2>&1 &
        SP=$! PORT=$KAM_PORT TREE=(--tree) ;;
    kamailio-t_relay)
        "$KAM" -f "$KCFG" -DD -E -m 2048 -M 16 -A WITH_TM >>"$OUT.kamailio-t_relay.log" 2>&1 &
        SP=$! PORT=$KAM_PORT TREE=(--tree) ;;
    kamailio-forward-tlsf)
        "$KAM" -f "$KCFG" -DD -E -m 2048 -M 16 -x tlsf -X tlsf >>"$OUT.kamailio-forward-tlsf.log" 2>&1 &
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
    if ! kill -0 "$SP" 2>/dev/null; then extra+=" SERVER_DIED=1"; fi
    echo "server=$srv scenario=$name load=$(cut -d' ' -f1 /proc/loadavg) ${line#RESULT }$extra" | tee -a "$OUT"
    stop
}

for srv in sipcore kamailio-forward kamailio-t_relay kamailio-forward-tlsf; do
    scenario $srv relay25x10 "${CLIENT[@]}" relay -p 25 -w 10 -d "$DUR"
    scenario $srv relay1x1 "${CLIENT[@]}" relay -p 1 -w 1 -d "$DUR"
done
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"

# Table: one row per server and scenario.
get() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
echo
echo "results: $OUT"
printf '%-22s %-11s %9s %9s %9s %9s %11s %8s %7s\n' server scenario tx/s p50_us p99_us \
    p999_us tx/cpu_s non200 load
grep '^server=' "$OUT" | while read -r l; do
    printf '%-22s %-11s %9s %9s %9s %9s %11s %8s %7s\n' "$(get "$l" server)" \
        "$(get "$l" scenario)" "$(get "$l" tps)" "$(get "$l" p50_us)" "$(get "$l" p99_us)" \
        "$(get "$l" p999_us)" "$(get "$l" tx_per_cpu_s)" "$(get "$l" non200)$(get "$l" failed_conns)" "$(get "$l" load)"
done
