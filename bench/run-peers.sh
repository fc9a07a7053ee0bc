#!/usr/bin/env bash
# Each server on the configuration its users run (issue 16): sipcore on the bundled
# conf/sipcore.cfg, Kamailio 5.6 from Debian on bench/kamailio/kamailio-registrar.cfg (its
# Debian build, and the same with -x tlsf -X tlsf), and OpenSIPS 3.6 on
# ../shared/peers/opensips/ws.cfg.in when it is built (/opt/opensips-3.6). Scenario: OPTIONS
# addressed to the server itself (what keep-alive pings send; each configuration answers it
# statelessly after its sanity and max-forwards checks), 50 connections x 8 in flight, DUR
# seconds, ROUNDS interleaved rounds, each server first warmed up with WARM registrations
# (bench/lib.sh `warm`: Debian's Kamailio is 2.5x slower fresh than in use). Scenario `hs`
# (issue 16, part 5): WebSocket handshakes (TCP connect + upgrade + close) per server
# CPU-second, 64 at once from 8 source addresses, 2 client threads. Scenario `relay`: MESSAGE
# relayed through lookup and each server's tm (`sipbench relay -p 50 -w 1`: 50 pairs, one in
# flight each); scenario `reg`: REGISTER saved and answered with the contacts (`sipbench
# register`, 5,000 users over 50 connections); both on sipcore's default config with
# route(authenticate) taken out, as the peers' configs have no authentication. Scenario
# `ws2udp` (issue 14: WebSocket -> UDP relayed transactions): relay with B registered and
# answering over UDP (`sipbench relay --callee-udp`), each server given a UDP socket on
# UDP_PORT (sipcore: `socket=udp:` and proto_udp in the same config; Kamailio: its config
# with -A WITH_UDP; OpenSIPS: its template with a `socket = udp:` line and proto_udp.so).
# sipcore's `max_transactions` is raised to SC_MAX_TX (1,000,000): every relayed MESSAGE
# keeps its UDP client transaction for Timer K (T4, 5 s), as the peers keep theirs for
# `wt_timer` (5 s), and the default (100,000) would cap it at 20,000 relayed per second
# (README "Transactions (tm)"); the peers have no such cap. Scenario `idle` (issue 16: memory of an idle
# connection): IDLE_N WebSocket connections opened from 8 source addresses and held;
# memory growth of the server's processes per connection (PSS and RSS). sipcore runs a copy of
# conf/sipcore.cfg with only its port, MI port and connection limits changed
# (ws_max_connections 20000, ws_max_connections_per_ip 0: the defaults, 2048 and 128 per IP,
# would refuse most of IDLE_N); OpenSIPS's template allows 19,800. Prints one line per run and
# the medians per server and scenario.
#
# Usage: bench/run-peers.sh   Env: DUR=8 ROUNDS=2 IDLE_N=19000 SKIP_BUILD=1 NO_WAIT=1
#        KAM_MEM="-m 2048" OPENSIPS=/opt/opensips-3.6 SERVERS="sipcore kamailio kamailio-tlsf opensips"
#        SCENARIOS="rr reg relay hs idle" WARM=5000 SC_PEER_PORT=28080 TARGET=/work/target-bench
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
# Kamailio's websocket module takes 64 KiB of shared memory per connection (wsconn_add): at
# Debian's default -m 64 it refuses connections beyond ~1,000 ("allocating shared memory"), so
# a WebSocket deployment raises it; OpenSIPS's run.sh gives it -m 4096 likewise.
KAM_MEM=${KAM_MEM:--m 2048}
SC_PEER_PORT=${SC_PEER_PORT:-28080}
UDP_PORT=${UDP_PORT:-28060}
SC_MAX_TX=${SC_MAX_TX:-1000000}
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
# Scenarios relay and reg: the same config without authentication (the peers' registrar
# configs have none either); everything else in it (sanity_check, max-forwards, registrar,
# t_relay) stays.
sed -e 's/^    route(authenticate);$/    # route(authenticate): off for the relay and reg scenarios/' \
    "$RUN/sipcore.cfg" >"$RUN/sipcore-noauth.cfg"
grep -q '^    # route(authenticate)' "$RUN/sipcore-noauth.cfg" || { log "cannot rewrite route(authenticate)"; exit 1; }
# Scenario ws2udp: the same with a UDP socket, proto_udp and max_transactions raised (above).
sed -e "s#^socket = ws:127.0.0.1:$SC_PEER_PORT\$#&\nsocket = udp:127.0.0.1:$UDP_PORT#" \
    -e "/^loadmodule \"proto_ws.so\"/i loadmodule \"proto_udp.so\"\nloadmodule \"tm.so\"\nmodparam(\"tm\", \"max_transactions\", $SC_MAX_TX)" \
    "$RUN/sipcore-noauth.cfg" >"$RUN/sipcore-ws2udp.cfg"
grep -q "^socket = udp:127.0.0.1:$UDP_PORT" "$RUN/sipcore-ws2udp.cfg" || { log "cannot add a udp socket"; exit 1; }
# OpenSIPS's template with a UDP socket (started as its run.sh starts it, see start()).
sed -e "s#^socket = ws:127.0.0.1:@WS_PORT@\$#&\nsocket = udp:127.0.0.1:$UDP_PORT#" \
    -e '/^loadmodule "proto_ws.so"/i loadmodule "proto_udp.so"' \
    -e "s#@PREFIX@#$OPENSIPS#g; s#@RUNDIR@#$RUN#g; s#@WS_PORT@#$OS_PORT#g; s#@MI_PORT@#23088#g" \
    -e "s#@HEP_PORT@#23060#g; s#@HEP_SRC_PORT@#23061#g" \
    "$PEERS/ws.cfg.in" >"$RUN/opensips-ws2udp.cfg"
grep -q "^socket = udp:127.0.0.1:$UDP_PORT" "$RUN/opensips-ws2udp.cfg" || { log "cannot add a udp socket to OpenSIPS's template"; exit 1; }
# The warm-up registrations (lib.sh `warm`) are authenticated on the default config: its users
# (OpenSIPS's subscriber schema, which sipcore reads as it is) in the sipcore.db beside it.
if [ "${WARM:-5000}" -gt 0 ]; then
    OPENSIPS=$OPENSIPS "$ROOT/bench/mkusers.py" opensips "$RUN/sipcore.db" "${WARM:-5000}" || exit 1
fi
# Open-file limit: the client and each server need IDLE_N + a few descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
wait_quiet
header "DUR=$DUR ROUNDS=$ROUNDS IDLE_N=$IDLE_N ulimit-n=$(ulimit -n) servers=${servers[*]} scenarios=${scenarios[*]}" >"$OUT"
[ -n "${SIPCORE_BASE:-}" ] && echo "# sipcore-base: $SIPCORE_BASE/sipcore" >>"$OUT"
echo "# tree: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + uncommitted changes'); sipcore binary built $(date -u -r "$R/sipcore" +%FT%TZ)" >>"$OUT"

# sc_cfg SCENARIO: sipcore's config for SCENARIO.
sc_cfg() {
    case $1 in
    relay | reg) echo "$RUN/sipcore-noauth.cfg" ;;
    ws2udp) echo "$RUN/sipcore-ws2udp.cfg" ;;
    *) echo "$RUN/sipcore.cfg" ;;
    esac
}

# start NAME SCENARIO: start server NAME, and warm it up (lib.sh `warm`) unless SCENARIO is
# idle (whose memory growth per connection is measured from a fresh process); set SP (the pid
# whose tree is measured) and PORT.
start() {
    case $1 in
    sipcore)
        "$R/sipcore" -f "$(sc_cfg "$2")" 2>>"$OUT.sipcore.log" &
        SP=$! PORT=$SC_PEER_PORT ;;
    sipcore-base)
        "$SIPCORE_BASE/sipcore" -f "$(sc_cfg "$2")" 2>>"$OUT.sipcore-base.log" &
        SP=$! PORT=$SC_PEER_PORT ;;
    kamailio | kamailio-tlsf)
        local mm=()
        [ "$1" = kamailio-tlsf ] && mm=(-x tlsf -X tlsf)
        [ "$2" = ws2udp ] && mm+=(-A WITH_UDP -A "UDP_PORT=$UDP_PORT")
        # shellcheck disable=SC2086 # KAM_MEM is a list of options
        "$KAM" -f "$ROOT/bench/kamailio/kamailio-registrar.cfg" -DD -E $KAM_MEM "${mm[@]}" >>"$OUT.$1.log" 2>&1 &
        SP=$! PORT=$KAM_PORT ;;
    opensips)
        if [ "$2" = ws2udp ]; then
            # As ../shared/peers/opensips/run.sh starts its template.
            "$OPENSIPS/sbin/opensips" -f "$RUN/opensips-ws2udp.cfg" -P "$RUN/opensips-ws2udp.pid" \
                -m 4096 -M 32 >>"$OUT.opensips.log" 2>&1
            SP=$(cat "$RUN/opensips-ws2udp.pid")
        else
            PREFIX=$OPENSIPS WS_PORT=$OS_PORT MI_PORT=23088 "$PEERS/run.sh" start ws >>"$OUT.opensips.log" 2>&1
            SP=$(cat "${TMPDIR:-/tmp}/opensips-peer/ws.pid")
        fi
        PORT=$OS_PORT ;;
    esac
    wait_port "$PORT"
    sleep 1 # let multi-process servers fork their children before they are listed for --tree
    [ "$2" = idle ] || warm "$PORT" "$SP"
}

halt() {
    if [ "$1" = opensips ] && [ "$2" = ws2udp ]; then
        kill "$SP" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$SP" 2>/dev/null || break; sleep 0.1; done
        SP=
        sleep 1
    elif [ "$1" = opensips ]; then
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
    # Users in domain 127.0.0.1: OpenSIPS's template has no alias for example.com.
    relay) "$R/sipbench" -t 1 relay --addr "127.0.0.1:$PORT" --domain 127.0.0.1 -p 50 -w 1 -d "$DUR" \
        --pid "$SP" --tree ;;
    ws2udp) "$R/sipbench" -t 1 relay --addr "127.0.0.1:$PORT" --callee-udp "127.0.0.1:$UDP_PORT" \
        --domain 127.0.0.1 -p 50 -w 1 -d "$DUR" --pid "$SP" --tree ;;
    reg) "$R/sipbench" -t 1 register --addr "127.0.0.1:$PORT" -c 50 -u 5000 -d "$DUR" --expires 3600 \
        --pid "$SP" --tree ;;
    hs) "$R/sipbench" -t 2 hs --addr "127.0.0.1:$PORT" -c 64 --src-ips 8 -d "$DUR" --pid "$SP" --tree ;;
    idle) "$R/sipbench" -t 2 idle --addr "127.0.0.1:$PORT" -n "$IDLE_N" --concurrency 512 \
        --src-ips 8 --hold 2 --pid "$SP" --tree ;;
    esac 2>>"$OUT.client.log" | grep '^RESULT' | tail -1
}

for round in $(seq "$ROUNDS"); do
    for sc in "${scenarios[@]}"; do
        for srv in "${servers[@]}"; do
            start "$srv" "$sc"
            line=$(bench "$sc")
            halt "$srv" "$sc"
            echo "server=$srv scenario=$sc round=$round load=$(cut -d' ' -f1 /proc/loadavg) ${line#RESULT }" | tee -a "$OUT"
        done
    done
done
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"
echo
echo "results: $OUT"
med() { grep "^server=$1 scenario=$2 " "$OUT" | tr ' ' '\n' | sed -n "s/^$3=//p" | sort -n |
    awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# Per scenario: rate = requests (rr) or handshakes (hs, idle) per second; per_cpu_s = the same
# per server CPU-second (idle: none); client_cpu_s = sipbench's own CPU seconds (a client near
# DUR seconds of one core per thread was the limit, not the server).
printf '%-14s %-6s %10s %12s %13s %8s %11s %11s\n' server scen rate per_cpu_s client_cpu_s non200 pss_B/conn rss_B/conn
for sc in "${scenarios[@]}"; do
    for srv in "${servers[@]}"; do
        printf '%-14s %-6s %10s %12s %13s %8s %11s %11s\n' "$srv" "$sc" \
            "$(med "$srv" "$sc" rps)$(med "$srv" "$sc" tps)$(med "$srv" "$sc" regs)$(med "$srv" "$sc" hs_per_s)$(med "$srv" "$sc" handshakes_per_s)" \
            "$(med "$srv" "$sc" req_per_cpu_s)$(med "$srv" "$sc" tx_per_cpu_s)$(med "$srv" "$sc" reg_per_cpu_s)$(med "$srv" "$sc" hs_per_cpu_s)" \
            "$(med "$srv" "$sc" client_cpu_s)" "$(med "$srv" "$sc" non200)" \
            "$(med "$srv" "$sc" pss_per_conn_b)" "$(med "$srv" "$sc" rss_per_conn_b)"
    done
done
