#!/usr/bin/env bash
# Registrations shared through Redis (issue 15): relayed MESSAGE transactions and REGISTERs
# with the usrloc cluster mode, beside the in-memory location in the same run.
#   memory    one node, bench/sipcore-redis.cfg.in without the cluster lines;
#   redis1    one node with usrloc working_mode_preset full-sharing-cachedb-cluster on a
#             redis-server started here (no persistence);
#   redis3    three nodes on 127.0.0.2, 127.0.0.3, 127.0.0.4 sharing that Redis; sipbench
#             relay puts pair i's B on node i mod 3 and its A on node (i / 3) mod 3, so with
#             PAIRS a multiple of 9 two thirds of the MESSAGEs cross nodes (A's node -> B's
#             node over UDP (node_uri ...;transport=udp), through the binding's Path, then down B's
#             WebSocket);
#   redis3tcp the same with the nodes linked over TCP (node_uri ...;transport=tcp, the default
#             when the node has a tcp socket).
# Scenarios: relay (PAIRS pairs x WIN in flight: throughput), relay1 (PAIRS pairs x 1 in flight),
# hop (one pair, one MESSAGE in flight, crossing nodes in redis3*: the latency the extra hop
# adds without queueing), register (CONNS connections re-registering USERS users,
# no authentication; memory and redis1 only). Server CPU is the sum over the nodes; Redis's
# CPU seconds over the whole sipbench run (registrations, settle, warm-up, window) are added
# as redis_cpu_s. ROUNDS interleaved rounds.
#
# Usage: bench/run-redis.sh
# Env:   DUR=10 ROUNDS=2 PAIRS=27 WIN=10 CONNS=50 USERS=1000 SKIP_BUILD=1 NO_WAIT=1
#        MODES="memory redis1 redis3"
set -u
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-2}
PAIRS=${PAIRS:-27}
WIN=${WIN:-10}
CONNS=${CONNS:-50}
USERS=${USERS:-1000}
read -ra modes <<<"${MODES:-memory redis1 redis3 redis3tcp}"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
results "redis-"
if [ -z "${SKIP_BUILD:-}" ]; then
    log "building release into $TARGET"
    CARGO_TARGET_DIR=$TARGET cargo build --release -p sipcore-bench -p sipcore -p proto_ws -p proto_udp -p proto_tcp ||
        exit 1
fi
RUNDIR=${TMPDIR:-/tmp}/sipcore-redis-run
rm -rf "$RUNDIR" && mkdir -p "$RUNDIR"
REDIS_PORT=${REDIS_PORT:-16379}
WS=18080 UDP=15060
wait_quiet
header "DUR=$DUR ROUNDS=$ROUNDS PAIRS=$PAIRS WIN=$WIN CONNS=$CONNS USERS=$USERS modes=${modes[*]}; $(redis-server --version | cut -d' ' -f1-3)" >"$OUT"
echo "# tree: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + uncommitted changes')" >>"$OUT"

RP= PIDS=()
cleanup() {
    for p in "${PIDS[@]}" $RP; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    PIDS=() RP=
}
trap cleanup EXIT

start_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$RUNDIR" \
        >>"$OUT.redis.log" 2>&1 &
    RP=$!
    for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    log "redis-server did not start"
    return 1
}

# cpu_ticks PID: utime + stime of PID.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# node I MODE: node I (1-based) on 127.0.0.(I+1).
node() {
    local i=$1 ip=127.0.0.$(($1 + 1)) cl=""
    [ "$2" != memory ] && cl="modparam(\"usrloc\", \"working_mode_preset\", \"full-sharing-cachedb-cluster\")\\nmodparam(\"usrloc\", \"cachedb_url\", \"redis://127.0.0.1:$REDIS_PORT/\")"
    [ "$2" = redis3 ] && cl+="\\nmodparam(\"usrloc\", \"node_uri\", \"sip:$ip:$UDP;transport=udp\")"
    [ "$2" = redis3tcp ] && cl+="\\nmodparam(\"usrloc\", \"node_uri\", \"sip:$ip:$UDP;transport=tcp\")"
    sed -e "s/@IP@/$ip/; s/@WS@/$WS/; s/@UDP@/$UDP/; s/@MI@/$((18880 + i))/" -e "s|@CLUSTER@|$cl|" \
        "$ROOT/bench/sipcore-redis.cfg.in" >"$RUNDIR/node$i.cfg"
    "$R/sipcore" -f "$RUNDIR/node$i.cfg" 2>>"$OUT.node$i.log" &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/$ip/$WS") 2>/dev/null && return 0
        sleep 0.1
    done
    log "node $i does not listen on $ip:$WS"
    return 1
}

# run MODE SCENARIO sipbench-mode-args...: fresh Redis and nodes, one sipbench run, its line.
run() {
    local mode=$1 name=$2 n=1 addrs="" line r0 r1 extra=""
    shift 2
    case $mode in redis3*) n=3 ;; esac
    if [ "$mode" != memory ]; then start_redis || return; fi
    for i in $(seq 1 "$n"); do
        node "$i" "$mode" || { cleanup; return; }
        addrs+="${addrs:+,}127.0.0.$((i + 1)):$WS"
    done
    local pids=()
    for p in "${PIDS[@]}"; do pids+=(--pid "$p"); done
    r0=$([ -n "$RP" ] && cpu_ticks "$RP" || echo 0)
    log "$mode $name: sipbench $* --addr $addrs"
    line=$("$R/sipbench" -t 1 "$@" --addr "$addrs" "${pids[@]}" -d "$DUR" 2>>"$OUT.client.log" | grep '^RESULT')
    r1=$([ -n "$RP" ] && cpu_ticks "$RP" || echo 0)
    [ -n "$RP" ] && extra=" redis_cpu_s=$(awk -v a="$r0" -v b="$r1" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / t }')"
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || extra+=" SERVER_DIED=1"; done
    echo "setup=$mode scenario=$name nodes=$n load=$(cut -d' ' -f1 /proc/loadavg) ${line#RESULT }$extra" | tee -a "$OUT"
    cleanup
}

for round in $(seq "$ROUNDS"); do
    log "round $round/$ROUNDS"
    for mode in "${modes[@]}"; do
        run "$mode" relay relay -p "$PAIRS" -w "$WIN" --settle 2
        run "$mode" relay1 relay -p "$PAIRS" -w 1 --settle 2
        run "$mode" hop relay -p 1 -w 1 --all-cross --settle 2
        case $mode in redis3*) ;; *) run "$mode" register register -c "$CONNS" -u "$USERS" ;; esac
    done
done
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"

echo
echo "results: $OUT"
printf "%-7s %-9s %9s %8s %8s %9s %11s %9s %7s %6s\n" setup scenario per_s p50_us p99_us \
    srv_cpu_s per_cpu_s redis_cpu non200 load
grep "^setup=" "$OUT" | while read -r l; do
    rate=$(get "$l" tps)$(get "$l" regs)
    per=$(get "$l" tx_per_cpu_s)$(get "$l" reg_per_cpu_s)
    printf '%-7s %-9s %9s %8s %8s %9s %11s %9s %7s %6s\n' "$(get "$l" setup)" "$(get "$l" scenario)" \
        "$rate" "$(get "$l" p50_us)" "$(get "$l" p99_us)" "$(get "$l" server_cpu_s)" "$per" \
        "$(get "$l" redis_cpu_s)" "$(get "$l" non200)$(get "$l" failed_conns)" "$(get "$l" load)"
done
