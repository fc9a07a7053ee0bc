#!/usr/bin/env bash
# Registration storm (issue 12): N clients (default 10,000), each its own WebSocket connection
# from its own loopback source address (127.1.0.1, 127.1.0.2, ...) and its own user, all
# registered first (401, digest, 200), then all re-registering at the same instant (a fresh
# 401 round each; SCENARIOS="fresh reuse" adds a round where they reuse their nonce). Measured:
# how many got their 200 within the 32 s of Timer F (RFC 3261 §17.1.2.2), the distribution of
# completion times, the server CPU during the storm, and a witness connection's OPTIONS latency
# (one every 10 ms, from 127.0.0.1) before and during the storm. One fresh server per scenario.
#
# Servers (bench/auth-servers.sh), with only the limits that 10,000 connections need raised:
#   sipcore   conf/sipcore.cfg + modparam("proto_ws", "ws_max_connections", 12000) (default 2048;
#             the 128 per source address are kept: one connection per address here); pike stays
#             on for non-loopback sources, which all clients are (2 requests each per 2 s unit);
#   kamailio  kamailio-auth.cfg (tcp_max_connections 20000 already) with -m 2048 -M 16: Debian's
#             64 MB of shared memory do not hold 10,000 connections (a 64 KB websocket buffer and a
#             16 KB TCP read buffer each; 512 MB did not either);
#   opensips  ws-auth.cfg.in (tcp_max_connections 19800) with its usual -m 4096 -M 32.
# The users: USERS = N + 1; sipcore's written with bench/mkusers.py (OpenSIPS's schema, the same
# HA1s as `sipcore user add`, which would take minutes for 10,000).
#
# Usage: bench/run-storm.sh
# Env:   N=10000 SERVERS="sipcore kamailio opensips" SCENARIOS=fresh SKIP_BUILD=1 NO_WAIT=1
#        CONC=20 (connection setups with their first registration in progress at once)
set -u
N=${N:-10000}
CONC=${CONC:-20}
USERS=$((N + 1))
read -ra scenarios <<<"${SCENARIOS:-fresh}"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
results storm-
build
RUN=${TMPDIR:-/tmp}/sipcore-storm-run
SC_EXTRA='modparam("proto_ws", "ws_max_connections", 12000)'
SC_USERS_FAST=1
KAM_MEM="-m 2048 -M 16"
# shellcheck source=bench/auth-servers.sh
. "$ROOT/bench/auth-servers.sh"
read -ra servers <<<"${SERVERS:-sipcore}"
# 10,000 connections on each side, and the server's own.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" -ge $((N + 1000)) ] || { log "ulimit -n $(ulimit -n) < $((N + 1000))"; exit 1; }

rm -rf "$RUN"
for srv in "${servers[@]}"; do make_users "$srv" || exit 1; done
wait_builds
header "N=$N CONC=$CONC servers=${servers[*]} scenarios=${scenarios[*]} ulimit_n=$(ulimit -n)" >"$OUT"
echo "# tree: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + uncommitted changes'); sipcore binary built $(date -u -r "$R/sipcore" +%FT%TZ); $(niced_note)" >>"$OUT"
trap halt EXIT

for sc in "${scenarios[@]}"; do
    extra=()
    [ "$sc" = reuse ] && extra=(--reuse-nonce)
    for srv in "${servers[@]}"; do
        start "$srv" || { log "$srv did not start"; halt; continue; }
        log "$srv $sc: $N clients"
        line=$("$R/sipbench" -t 1 storm --addr "127.0.0.1:$PORT" -n "$N" --first 1 --concurrency "$CONC" "${extra[@]}" \
            --witness-ruri "sip:127.0.0.1:$PORT" --pid "$SP" --tree 2>>"$OUT.client.log" | grep '^RESULT')
        died=""
        kill -0 "$SP" 2>/dev/null || died=" SERVER_DIED=1"
        halt
        echo "server=$srv scenario=$sc load=$(cut -d' ' -f1 /proc/loadavg) ${line#RESULT }$died" | tee -a "$OUT"
    done
done
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"
echo
echo "results: $OUT"
printf '%-10s %-6s %8s %8s %6s %9s %9s %9s %10s %10s\n' server scen ok/N late failed p50_ms p99_ms \
    max_ms wit_before wit_during
grep '^server=' "$OUT" | while read -r l; do
    printf '%-10s %-6s %8s %8s %6s %9s %9s %9s %10s %10s\n' "$(get "$l" server)" "$(get "$l" scenario)" \
        "$(get "$l" ok_in_window)/$(get "$l" clients)" "$(get "$l" late)" "$(get "$l" failed)" \
        "$(get "$l" done_p50_ms)" "$(get "$l" done_p99_ms)" "$(get "$l" done_max_ms)" \
        "$(get "$l" witness_before_p99_ms)" "$(get "$l" witness_during_p99_ms)"
done
