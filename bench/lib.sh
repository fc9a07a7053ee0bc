# Shared by bench/run.sh, bench/run-relay.sh and bench/run-trace.sh (sourced, not run): the
# paths, the results file, the release build, waiting for a quiet machine, stopping servers.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$PWD
TARGET=${TARGET:-/work/target-bench}
R=$TARGET/release
KAM=${KAM:-/usr/sbin/kamailio}
SC_PORT=8080
KAM_PORT=8090
SP=
SK=

# results PREFIX: OUT (raw lines) defaults to bench/results/PREFIX<UTC time>.txt.
results() {
    OUT=${OUT:-$ROOT/bench/results/$1$(date -u +%Y%m%dT%H%M%SZ).txt}
    mkdir -p "$(dirname "$OUT")"
}

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# build: release binaries into $TARGET unless SKIP_BUILD is set.
build() {
    [ -n "${SKIP_BUILD:-}" ] && return 0
    log "building release into $TARGET"
    CARGO_TARGET_DIR=$TARGET cargo build --release -p sipcore-bench -p sipcore -p proto_ws -p proto_wss -p proto_hep \
        || exit 1
}

# wait_quiet: until load1 <= 1.5 (other builds?), up to 5 tries a minute apart (NO_WAIT=1: not
# at all, for a smoke run).
wait_quiet() {
    local i load
    [ -n "${NO_WAIT:-}" ] && return 0
    for i in 1 2 3 4 5; do
        load=$(cut -d' ' -f1 /proc/loadavg)
        if awk -v l="$load" 'BEGIN { exit !(l <= 1.5) }'; then return 0; fi
        log "load $load > 1.5 (other builds?), waiting 60 s (try $i/5)"
        sleep 60
    done
}

# header EXTRA...: the machine lines that open $OUT.
header() {
    echo "# $(date -u) on $(hostname): nproc=$(nproc) kernel=$(uname -r)"
    echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "# loadavg before: $(cat /proc/loadavg)${1:+; $*}"
}

# statcol FILE NAME: the value of column NAME in the last line of a SIPp -trace_stat csv.
statcol() {
    awk -F';' -v n="$2" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == n) c = i} END {print $c}' "$1"
}
wait_port() { # port
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    log "nothing listens on port $1"
    return 1
}

# stop: the server ($SP) and the HEP sink ($SK), if running.
stop() {
    if [ -n "$SP" ]; then
        kill "$SP" 2>/dev/null
        wait "$SP" 2>/dev/null
        SP=
    fi
    if [ -n "$SK" ]; then
        kill "$SK" 2>/dev/null
        wait "$SK" 2>/dev/null
        SK=
    fi
    sleep 1
}
trap stop EXIT

# halt: stop the server started last, also one that daemonized and is not our child
# (OpenSIPS: wait by polling its pid). run-peers.sh has its own, by server name.
halt() {
    [ -n "${SP:-}" ] || return 0
    kill "$SP" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$SP" 2>/dev/null || break; sleep 0.1; done
    wait "$SP" 2>/dev/null
    SP=
    sleep 1
}

# warm PORT PID: before a measured run, WARM users (default 5000; 0 skips) register over 50
# WebSocket connections for 2 s (`sipbench register`, answering 401 challenges with pw<i>), so
# every server is measured holding registrations, as a registrar in use is. Without it, the
# Debian build of Kamailio 5.6 (q_malloc with DBG_SR_MEMORY, free fragments joined) is measured
# in its worst state: fresh, it answered 38k OPTIONS per CPU-second, and 95-98k once it held
# 5,000 registrations (same process, same load); its tlsf build and sipcore do not change.
# The warm-up's RESULT line goes to $OUT as a comment.
warm() {
    local n=${WARM:-5000}
    [ "$n" -gt 0 ] || return 0
    "$R/sipbench" register --addr "127.0.0.1:$1" -c 50 -u "$n" -d 2 --warmup 0 --expires 3600 \
        --pid "$2" 2>>"$OUT.client.log" | grep '^RESULT' | sed 's/^RESULT/# warm-up:/' >>"$OUT"
}

# get LINE KEY: the value of KEY=value in a RESULT-style line.
get() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# hep_stats CFG: " hep_sent=N hep_dropped=M" from `sipcore mi hep_stats` of the server run with CFG
# (cumulative since it started).
hep_stats() {
    local st
    st=$("$R/sipcore" mi -f "$1" hep_stats 2>/dev/null | tr -d ' \n')
    echo -n " hep_sent=$(echo "$st" | sed -n 's/.*"sent":\([0-9]*\)}$/\1/p')"
    echo -n " hep_dropped=$(echo "$st" | sed -n 's/.*},*\],"dropped":\([0-9]*\),.*/\1/p')"
}

# scenario SERVER NAME sipbench-args...: a fresh server (the caller's `start SERVER` sets SP,
# PORT and TREE), warmed up (`warm`) unless NAME starts with idle, one sipbench run, its RESULT line (plus `extra_for SERVER`, if the caller
# defines it) appended to $OUT.
scenario() {
    local srv=$1 name=$2 line extra=""
    shift 2
    start "$srv" || return
    case $name in idle*) ;; *) warm "$PORT" "$SP" ;; esac
    log "$srv $name: sipbench $*"
    line=$("$R/sipbench" "$@" --addr "127.0.0.1:$PORT" --pid "$SP" "${TREE[@]}" 2>>"$OUT.client.log" |
        grep '^RESULT')
    if declare -F extra_for >/dev/null; then extra=$(extra_for "$srv"); fi
    if ! kill -0 "$SP" 2>/dev/null; then extra+=" SERVER_DIED=1"; fi
    echo "server=$srv scenario=$name load=$(cut -d' ' -f1 /proc/loadavg) ${line#RESULT }$extra" | tee -a "$OUT"
    stop
}

