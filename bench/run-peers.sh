#!/usr/bin/env bash
# Each server on the configuration its users run (issue 16): sipcore on the bundled
# conf/sipcore.cfg, Kamailio 5.6 from Debian on bench/kamailio/kamailio-registrar.cfg (its
# Debian build, and the same with -x tlsf -X tlsf), and OpenSIPS 3.6 on
# ../shared/peers/opensips/ws.cfg.in when it is built (/opt/opensips-3.6). Scenario: OPTIONS
# addressed to the server itself (what keep-alive pings send; each configuration answers it
# statelessly after its sanity and max-forwards checks), 50 connections x 8 in flight, DUR
# seconds, ROUNDS interleaved rounds. Scenario `idle` (issue 16: memory of an idle
# connection): IDLE_N WebSocket connections opened from 8 source addresses and held;
# memory growth of the server's processes per connection (PSS and RSS). sipcore runs a copy of
# conf/sipcore.cfg with only its port, MI port and connection limits changed
# (ws_max_connections 20000, ws_max_connections_per_ip 0: the defaults, 2048 and 128 per IP,
# would refuse most of IDLE_N); OpenSIPS's template allows 19,800. Prints one line per run and
# the medians per server and scenario.
#
# Usage: bench/run-peers.sh   Env: DUR=8 ROUNDS=2 IDLE_N=19000 SKIP_BUILD=1 NO_WAIT=1
#        OPENSIPS=/opt/opensips-3.6 SERVERS="sipcore kamailio kamailio-tlsf opensips"
#        SCENARIOS="rr idle" SC_PEER_PORT=28080 TARGET=/work/target-bench
#        SIPCORE_BASE=DIR: also server `sipcore-base`, DIR/sipcore (and the plugins beside it) on
#        the same config, for a before/after comparison in the same run
set -u
DUR=${DUR:-8}
ROUNDS=${ROUNDS:-2}
IDLE_N=${IDLE_N:-19000}
SCENARIOS=${SCENARIOS:-rr}
OPENSIPS=${OPENSIPS:-/opt/opensips-3.6}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
results peers-
build
PEERS=$ROOT/../shared/peers/opensips
OS_PORT=23080
SC_PEER_PORT=${SC_PEER_PORT:-28080}
if [ -n "${SERVERS:-}" ]; then
    read -ra servers <<<"$SERVERS"
else
    servers=(sipcore kamailio kamailio-tlsf)
    [ -x "$OPENSIPS/sbin/opensips" ] && [ -x "$PEERS/run.sh" ] && servers+=(opensips)
    [ -n "${SIPCORE_BASE:-}" ] && servers=(sipcore-base "${servers[@]}")
fi
read -ra scenarios <<<"$SCENARIOS"
RUN=${TMPDIR:-/tmp}/sipcore-peers-run
mkdir -p "$RUN"
# The bundled config, on ports of its own (other sessions run sipcore on 8080/8888) and with
# the connection limits raised for IDLE_N connections from 8 source addresses.
sed -e "s#^socket = ws:127.0.0.1:8080\$#socket = ws:127.0.0.1:$SC_PEER_PORT#" \
    -e "s#^mi_http_port = 8888\$#mi_http_port = $((SC_PEER_PORT + 808))#" \
    -e '/^loadmodule "proto_ws.so"/a modparam("proto_ws", "ws_max_connections", 20000)\nmodparam("proto_ws", "ws_max_connections_per_ip", 0)' \
    "$ROOT/conf/sipcore.cfg" >"$RUN/sipcore.cfg"
grep -q "ws:127.0.0.1:$SC_PEER_PORT" "$RUN/sipcore.cfg" || { log "cannot rewrite conf/sipcore.cfg"; exit 1; }
# Open-file limit: the client and each server need IDLE_N + a few descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
wait_quiet
header "DUR=$DUR ROUNDS=$ROUNDS IDLE_N=$IDLE_N ulimit-n=$(ulimit -n) servers=${servers[*]} scenarios=${scenarios[*]}" >"$OUT"
[ -n "${SIPCORE_BASE:-}" ] && echo "# sipcore-base: $SIPCORE_BASE/sipcore" >>"$OUT"
echo "# tree: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + uncommitted changes'); sipcore binary built $(date -u -r "$R/sipcore" +%FT%TZ)" >>"$OUT"

# start NAME: start server NAME; set SP (the pid whose tree is measured) and PORT.
start() {
    case $1 in
    sipcore)
        "$R/sipcore" -f "$RUN/sipcore.cfg" 2>>"$OUT.sipcore.log" &
        SP=$! PORT=$SC_PEER_PORT ;;
    sipcore-base)
        "$SIPCORE_BASE/sipcore" -f "$RUN/sipcore.cfg" 2>>"$OUT.sipcore-base.log" &
        SP=$! PORT=$SC_PEER_PORT ;;
    kamailio | kamailio-tlsf)
        local mm=()
        [ "$1" = kamailio-tlsf ] && mm=(-x tlsf -X tlsf)
        "$KAM" -f "$ROOT/bench/kamailio/kamailio-registrar.cfg" -DD -E "${mm[@]}" >>"$OUT.$1.log" 2>&1 &
        SP=$! PORT=$KAM_PORT ;;
    opensips)
        PREFIX=$OPENSIPS WS_PORT=$OS_PORT MI_PORT=23088 "$PEERS/run.sh" start ws >>"$OUT.opensips.log" 2>&1
        SP=$(cat "${TMPDIR:-/tmp}/opensips-peer/ws.pid") PORT=$OS_PORT ;;
    esac
    wait_port "$PORT"
    sleep 1 # let multi-process servers fork their children before they are listed for --tree
}

halt() {
    if [ "$1" = opensips ]; then
        "$PEERS/run.sh" stop ws >>"$OUT.opensips.log" 2>&1
        SP=
        sleep 1
    else
        stop
    fi
}

# bench SCENARIO: the sipbench command of a scenario (after start), its RESULT line.
bench() {
    case $1 in
    rr) "$R/sipbench" -t 1 rr --addr "127.0.0.1:$PORT" --ruri "sip:127.0.0.1:$PORT" \
        -c 50 -w 8 -d "$DUR" --pid "$SP" --tree ;;
    idle) "$R/sipbench" -t 2 idle --addr "127.0.0.1:$PORT" -n "$IDLE_N" --concurrency 512 \
        --src-ips 8 --hold 2 --pid "$SP" --tree ;;
    esac 2>>"$OUT.client.log" | grep '^RESULT' | tail -1
}

for round in $(seq "$ROUNDS"); do
    for sc in "${scenarios[@]}"; do
        for srv in "${servers[@]}"; do
            start "$srv"
            line=$(bench "$sc")
            halt "$srv"
            echo "server=$srv scenario=$sc round=$round load=$(cut -d' ' -f1 /proc/loadavg) ${line#RESULT }" | tee -a "$OUT"
        done
    done
done
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"
echo
echo "results: $OUT"
med() { grep "^server=$1 scenario=$2 " "$OUT" | tr ' ' '\n' | sed -n "s/^$3=//p" | sort -n |
    awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
printf '%-14s %-6s %12s %12s %10s %12s %12s %12s\n' server scen req/s req/cpu_s non200 hs/s pss_B/conn rss_B/conn
for sc in "${scenarios[@]}"; do
    for srv in "${servers[@]}"; do
        printf '%-14s %-6s %12s %12s %10s %12s %12s %12s\n' "$srv" "$sc" "$(med "$srv" "$sc" rps)" \
            "$(med "$srv" "$sc" req_per_cpu_s)" "$(med "$srv" "$sc" non200)" \
            "$(med "$srv" "$sc" handshakes_per_s)" "$(med "$srv" "$sc" pss_per_conn_b)" \
            "$(med "$srv" "$sc" rss_per_conn_b)"
    done
done
