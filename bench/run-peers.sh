#!/usr/bin/env bash
# Each server on the configuration its users run (issue 16): sipcore on the bundled
# conf/sipcore.cfg, Kamailio 5.6 from Debian on bench/kamailio/kamailio-registrar.cfg (its
# Debian build, and the same with -x tlsf -X tlsf), and OpenSIPS 3.6 on
# ../shared/peers/opensips/ws.cfg.in when it is built (/opt/opensips-3.6). Scenario: OPTIONS
# addressed to the server itself (what keep-alive pings send; each configuration answers it
# statelessly after its sanity and max-forwards checks), 50 connections x 8 in flight, DUR
# seconds, ROUNDS interleaved rounds. Prints one line per run and the medians per server.
#
# Usage: bench/run-peers.sh   Env: DUR=8 ROUNDS=2 SKIP_BUILD=1 OPENSIPS=/opt/opensips-3.6
set -u
DUR=${DUR:-8}
ROUNDS=${ROUNDS:-2}
OPENSIPS=${OPENSIPS:-/opt/opensips-3.6}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
results peers-
build
PEERS=$ROOT/../shared/peers/opensips
OS_PORT=23080
servers=(sipcore kamailio kamailio-tlsf)
[ -x "$OPENSIPS/sbin/opensips" ] && [ -x "$PEERS/run.sh" ] && servers+=(opensips)
wait_quiet
header "DUR=$DUR ROUNDS=$ROUNDS servers=${servers[*]}" >"$OUT"

# start NAME: start server NAME; set SP (the pid whose tree is measured) and PORT.
start() {
    case $1 in
    sipcore)
        "$R/sipcore" -f "$ROOT/conf/sipcore.cfg" 2>>"$OUT.sipcore.log" &
        SP=$! PORT=8080 ;;
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

for round in $(seq "$ROUNDS"); do
    for srv in "${servers[@]}"; do
        start "$srv"
        line=$("$R/sipbench" -t 1 rr --addr "127.0.0.1:$PORT" --ruri "sip:127.0.0.1:$PORT" \
            -c 50 -w 8 -d "$DUR" --pid "$SP" --tree 2>&1 | tail -1)
        halt "$srv"
        echo "server=$srv round=$round load=$(cut -d' ' -f1 /proc/loadavg) ${line#RESULT }" | tee -a "$OUT"
    done
done
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"
echo
echo "results: $OUT"
printf '%-14s %12s %12s %10s\n' server req/s req/cpu_s non200
for srv in "${servers[@]}"; do
    med() { grep "^server=$srv " "$OUT" | tr ' ' '\n' | sed -n "s/^$1=//p" | sort -n |
        awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
    printf '%-14s %12s %12s %10s\n' "$srv" "$(med rps)" "$(med req_per_cpu_s)" "$(med non200)"
done
