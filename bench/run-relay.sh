#!/usr/bin/env bash
# Relay benchmark (issue 5): pairs of users over WebSocket, B registered, A sends MESSAGE to B
# through the server, B answers 200. sipcore (registrar + t_relay, bench/sipcore-relay.cfg) vs
# Kamailio 5.6 on the registrar config its users run (bench/kamailio/kamailio-registrar.cfg:
# sanity, maxfwd, NAT detection, registrar, lookup + t_relay; -m 2048 as in run-peers.sh), in its Debian
# build and with -x tlsf -X tlsf. Every server is warmed up first (bench/lib.sh `warm`). Raw
# RESULT lines go to $OUT. See BENCHMARKS.md for what each figure means; bench/run-peers.sh
# (scenario relay) adds OpenSIPS and runs sipcore's default config.
#
# Usage: bench/run-relay.sh      (from anywhere; needs /usr/sbin/kamailio with websocket/xhttp)
# Env:   DUR=10 (seconds per run), SKIP_BUILD=1, TARGET=/work/target-bench (CARGO_TARGET_DIR),
#        SERVERS="sipcore kamailio" (a subset, in that order), WARM=5000
set -u
DUR=${DUR:-10}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
results "relay-"
KCFG=$ROOT/bench/kamailio/kamailio-registrar.cfg
CLIENT=(-t 1)
build
wait_quiet
header >"$OUT"

# start NAME: start server NAME in the background, set SP, PORT, TREE.
start() {
    case $1 in
    sipcore)
        "$R/sipcore" -f "$ROOT/bench/sipcore-relay.cfg" 2>>"$OUT.sipcore.log" &
        SP=$! PORT=$SC_PORT TREE=() ;;
    kamailio)
        "$KAM" -f "$KCFG" -DD -E -m 2048 >>"$OUT.kamailio.log" 2>&1 &
        SP=$! PORT=$KAM_PORT TREE=(--tree) ;;
    kamailio-tlsf)
        "$KAM" -f "$KCFG" -DD -E -m 2048 -x tlsf -X tlsf >>"$OUT.kamailio-tlsf.log" 2>&1 &
        SP=$! PORT=$KAM_PORT TREE=(--tree) ;;
    esac
    wait_port "$PORT"
    sleep 1 # let Kamailio fork all its children before they are listed for --tree
}


for srv in ${SERVERS:-sipcore kamailio kamailio-tlsf}; do
    scenario $srv relay25x10 "${CLIENT[@]}" relay -p 25 -w 10 -d "$DUR"
    scenario $srv relay1x1 "${CLIENT[@]}" relay -p 1 -w 1 -d "$DUR"
done
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"

# Table: one row per server and scenario.
echo
echo "results: $OUT"
printf '%-22s %-11s %9s %9s %9s %9s %11s %8s %7s\n' server scenario tx/s p50_us p99_us \
    p999_us tx/cpu_s non200 load
grep '^server=' "$OUT" | while read -r l; do
    printf '%-22s %-11s %9s %9s %9s %9s %11s %8s %7s\n' "$(get "$l" server)" \
        "$(get "$l" scenario)" "$(get "$l" tps)" "$(get "$l" p50_us)" "$(get "$l" p99_us)" \
        "$(get "$l" p999_us)" "$(get "$l" tx_per_cpu_s)" "$(get "$l" non200)$(get "$l" failed_conns)" "$(get "$l" load)"
done
