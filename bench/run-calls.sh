#!/usr/bin/env bash
# Calls through a stateful proxy over UDP (issue 14): SIPp UAC -> proxy -> SIPp UAS on loopback,
# INVITE/100/180/200/ACK/BYE/200, t_relay() with record-route; the UAC's ACK and BYE follow the
# route set (bench/sipp/uac_rr.xml; the UAS bench/sipp/uas_rr.xml copies Record-Route). Servers,
# interleaved in each round, each on the same routing logic written as its users write it:
#   sipcore        bench/sipcore-calls.cfg (release build from this tree)
#   sipcore-call   the same with modparam("proto_udp", "udp_spread", "call") (not run unless
#                  named in SERVERS): the threads share one socket, a call's datagrams in order
#   kamailio       bench/kamailio/kamailio-calls.cfg, Debian's build at its default memory
#   kamailio-tlsf  the same with -x tlsf -X tlsf
#   opensips       bench/opensips/calls.cfg.in, OpenSIPS 3.6 from ../shared/peers/opensips, at
#                  its default memory (when /opt/opensips-3.6 is built)
# PEER_SHM=N: the peers' shared memory in MB (-m N; unset: their defaults, Kamailio 64, OpenSIPS
# 32, which run out at a few hundred calls/s, see BENCHMARKS.md). Every server: 2 UDP workers. Per run: offered and achieved calls/s, failed calls, server CPU
# (utime+stime of the server and all its processes, before/after), calls per server CPU-second,
# p50/p99 call setup time (INVITE to 200 at the UAC: from a tcpdump of the UAC's port, as
# SIPp's -trace_rtt, also recorded, has a 4 ms clock here; CAPTURE=0: none; CAPTURE=hops: both
# SIPp ports, and the setup time split by hop, see bench/calls_setup.py), RSS and PSS of the
# server's processes before/after, and the CPU SIPp itself used (UAC and UAS).
#
# MODE=calls (default): RATES x ROUNDS x servers, each run DUR seconds of calls.
# MODE=ring: RING_N calls held ringing (the UAS answers 180, waits HOLD ms, then 200): memory per
#            call held = (PSS while held - PSS before) / RING_N; sipcore's tm:inuse_transactions.
# MODE=soak: sipcore only, SOAK_RATE calls/s for SOAK_DUR seconds; RSS/PSS every 30 s.
#            SOAK_MAX_TXN=N: the soak's config raises modparam("tm", "max_transactions") to N
#            (over UDP a call holds two transactions for 32 s: 64 per call/s, so the default
#            100,000 caps the rate at about 1,560 calls/s).
#
# Usage: bench/run-calls.sh   Env: MODE RATES="500 1000" DUR=20 ROUNDS=2 SERVERS="..."
#        RING_N=5000 RING_RATE=500 SOAK_RATE=1000 SOAK_DUR=600 SKIP_BUILD=1 NO_WAIT=1
#        PERF=1 (calls mode: perf record -g on sipcore during its first run at each rate)
#        KERNEL=1 (calls mode: kernel_share, the kernel's share of every server's CPU, from
#        perf record -F 1999 of all its processes during the UAC's run)
set -u
MODE=${MODE:-calls}
RATES=${RATES:-500 1000}
DUR=${DUR:-20}
ROUNDS=${ROUNDS:-2}
RING_N=${RING_N:-5000}
RING_RATE=${RING_RATE:-500}
SOAK_RATE=${SOAK_RATE:-1000}
SOAK_DUR=${SOAK_DUR:-600}
OPENSIPS=${OPENSIPS:-/opt/opensips-3.6}
SIPP=${SIPP:-/usr/bin/sipp}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
results "calls-$MODE-"
WORK=$OUT.d # SIPp's files (stat, rtt, errors), one directory per run
mkdir -p "$WORK"
UAS_PORT=5090
UAC_PORT=5091
HZ=$(getconf CLK_TCK)

build() {
    [ -n "${SKIP_BUILD:-}" ] && return 0
    log "building release into $TARGET"
    CARGO_TARGET_DIR=$TARGET cargo build --release -j 2 -p sipcore -p proto_udp -p proto_ws || exit 1
}
build

SC_CFG=$ROOT/bench/sipcore-calls.cfg
if [ "$MODE" = soak ] && [ -n "${SOAK_MAX_TXN:-}" ]; then
    sed -e "/max_transactions_per_source/a modparam(\"tm\", \"max_transactions\", $SOAK_MAX_TXN)" \
        "$SC_CFG" >"$WORK/sipcore-soak.cfg"
    grep -q "\"max_transactions\", $SOAK_MAX_TXN)" "$WORK/sipcore-soak.cfg" || { log "SOAK_MAX_TXN: not applied"; exit 1; }
    SC_CFG=$WORK/sipcore-soak.cfg
fi

# sipcore-call: the same config, every thread serving every peer (README "SIP over UDP")
sed -e '/^loadmodule "proto_udp.so"/a modparam("proto_udp", "udp_spread", "call")' "$SC_CFG" >"$WORK/sipcore-call.cfg"
grep -q '"udp_spread", "call"' "$WORK/sipcore-call.cfg" || { log "sipcore-call: udp_spread not applied"; exit 1; }

servers=(sipcore kamailio kamailio-tlsf)
[ -x "$OPENSIPS/sbin/opensips" ] && servers+=(opensips)
[ -n "${SERVERS:-}" ] && read -r -a servers <<<"$SERVERS"

# start NAME: start server NAME in the foreground of a background job; set SP and PORT.
start() {
    case $1 in
    sipcore)
        "$R/sipcore" -f "$SC_CFG" >>"$OUT.sipcore.log" 2>&1 &
        SP=$! PORT=5070 ;;
    sipcore-call)
        "$R/sipcore" -f "$WORK/sipcore-call.cfg" >>"$OUT.sipcore-call.log" 2>&1 &
        SP=$! PORT=5070 ;;
    kamailio | kamailio-tlsf)
        local mm=()
        [ "$1" = kamailio-tlsf ] && mm=(-x tlsf -X tlsf)
        "$KAM" -f "$ROOT/bench/kamailio/kamailio-calls.cfg" -DD -E "${mm[@]}" ${PEER_SHM:+-m $PEER_SHM} \
            >>"$OUT.$1.log" 2>&1 &
        SP=$! PORT=5072 ;;
    opensips)
        sed -e "s#@PREFIX@#$OPENSIPS#g; s#@PORT@#5074#g" "$ROOT/bench/opensips/calls.cfg.in" \
            >"$WORK/opensips.cfg"
        "$OPENSIPS/sbin/opensips" -F -f "$WORK/opensips.cfg" ${PEER_SHM:+-m $PEER_SHM} >>"$OUT.opensips.log" 2>&1 &
        SP=$! PORT=5074 ;;
    esac
    # UDP: wait until the port is bound, then let multi-process servers fork their children
    for _ in $(seq 1 100); do
        ss -Hlun "sport = :$PORT" | grep -q . && break
        sleep 0.1
    done
    sleep 2
    kill -0 "$SP" 2>/dev/null || { log "$1 did not start (see $OUT.$1.log)"; return 1; }
}

# tree PID: PID and all its descendants.
tree() {
    local c
    echo "$1"
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do tree "$c"; done
}
# ticks PID...: utime+stime of these processes (all their threads), in clock ticks.
ticks() {
    local p s t=0
    for p in "$@"; do
        s=$(cat /proc/"$p"/stat 2>/dev/null) || continue
        s=${s##*) }
        t=$((t + $(cut -d' ' -f12 <<<"$s") + $(cut -d' ' -f13 <<<"$s")))
    done
    echo "$t"
}
# mem PID...: "RSS_kB PSS_kB", summed over the processes.
mem() {
    local p
    for p in "$@"; do cat /proc/"$p"/smaps_rollup 2>/dev/null; done |
        awk '$1 == "Rss:" {r += $2} $1 == "Pss:" {p += $2} END {printf "%d %d", r, p}'
}
# rcvbuf_errors: the kernel's UDP RcvbufErrors (datagrams dropped at a full receive buffer, any
# socket on the machine: on loopback that is SIPp or a server falling behind).
rcvbuf_errors() { awk '$1 == "Udp:" && $6 ~ /^[0-9]+$/ {print $6; exit}' /proc/net/snmp; }
# inuse: sipcore's tm:inuse_transactions (MI), "-" for the others.
inuse() {
    if [ "$1" = sipcore ]; then
        "$R/sipcore" mi -f "$SC_CFG" get_statistics tm:inuse_transactions 2>/dev/null |
            tr -d ' \n' | sed -n 's/.*"tm:inuse_transactions":\([0-9]*\).*/\1/p'
    else echo -; fi
}
halt_srv() {
    [ -n "${SP:-}" ] || return 0
    kill "$SP" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$SP" 2>/dev/null || break; sleep 0.1; done
    wait "$SP" 2>/dev/null
    SP=
    sleep 1
}
trap 'halt_srv; [ -n "${UAS:-}" ] && kill "$UAS" 2>/dev/null' EXIT

# pct FILE P...: percentiles (nearest rank) of the response times (ms, column 2) of a SIPp rtt csv.
pct() {
    local f=$1
    shift
    grep -E '^[0-9]' "$f" | cut -d';' -f2 | sort -g |
        awk -v ps="$*" '{a[NR] = $1} END {n = split(ps, q, " "); for (i = 1; i <= n; i++) {
            k = int(q[i] / 100 * NR + 0.999999); if (k < 1) k = 1; printf "%s%.3f", (i > 1 ? " " : ""), a[k] }}'
}

# uac_uas SRV RATE N TAG [UAS_SCENARIO [HOLD_MS]]: one SIPp UAS + UAC run of N calls at RATE through
# the server SP (already started); sets the globals C0 C1 (server ticks), M0 M1 (mem), D (run dir),
# RC (the UAC's exit code), SIPP_TICKS (the UAS's CPU), UAC_CPU (s); with RING_NOW, MH and IH
# (mem and tm:inuse_transactions while the calls are held).
uac_uas() {
    local srv=$1 rate=$2 n=$3 tag=$4 uas_sf=${5:-$ROOT/bench/sipp/uas_rr.xml} hold=${6:-0} pids uac u0
    D=$WORK/$tag
    mkdir -p "$D"
    (cd "$D" && exec "$SIPP" -sf "$uas_sf" -i 127.0.0.1 -p $UAS_PORT -d "$hold" -nostdin \
        -trace_err -trace_stat -stf uas_stat.csv -fd 1 >uas.out 2>&1) &
    UAS=$!
    sleep 0.5
    read -r -a pids <<<"$(tree "$SP" | tr '\n' ' ')"
    C0=$(ticks "${pids[@]}")
    M0=$(mem "${pids[@]}")
    u0=$(ticks "$UAS")
    E0=$(rcvbuf_errors)
    local cap=""
    if [ "${CAPTURE:-1}" = 1 ] || [ "${CAPTURE:-1}" = hops ]; then
        # the UAC's INVITEs and the 200s it gets (BPF on the first bytes), for bench/calls_setup.py;
        # hops: also the UAS's INVITEs and every 1xx, 2xx on either port (where the time goes)
        local filter="udp port $UAC_PORT and (udp[8:4] = 0x494e5649 or \
            (udp[8:4] = 0x5349502f and udp[16:4] = 0x32303020))"
        [ "${CAPTURE:-1}" = hops ] && filter="(udp port $UAC_PORT or udp port $UAS_PORT) and \
            (udp[8:4] = 0x494e5649 or (udp[8:4] = 0x5349502f and (udp[16:1] = 0x31 or udp[16:4] = 0x32303020)))"
        tcpdump -i lo -n -s 1500 -B 32768 -w "$D/uac.pcap" "$filter" 2>"$D/tcpdump.err" &
        cap=$!
        for _ in $(seq 1 50); do grep -q listening "$D/tcpdump.err" && break; sleep 0.1; done
        sleep 1
    fi
    (cd "$D" && exec /usr/bin/time -f '%U %S' -o uac.time "$SIPP" -sf "$ROOT/bench/sipp/uac_rr.xml" \
        -i 127.0.0.1 -p $UAC_PORT "127.0.0.1:$PORT" -s bench -r "$rate" -m "$n" -l $((rate * 70)) -nostdin \
        -timeout $((n / rate + 120))s -trace_err -trace_rtt -rtt_freq 1 -trace_stat -stf uac_stat.csv \
        -fd 1 >uac.out 2>&1) &
    uac=$!
    local kperf=""
    KSHARE=-
    if [ -n "${KERNEL:-}" ]; then
        # the kernel's share of the server's CPU: perf's samples (all CPUs) of the server's processes
        # (cpu-clock, no call graph) in the kernel against all; /proc's utime/stime split is
        # tick-sampled and was seen to alias with the servers' activity (0.36 to 3.00 s of
        # system time in runs of one server)
        perf record -a -F 1999 -o "$D/kperf.data" >"$D/kperf.out" 2>&1 &
        kperf=$!
    fi
    if [ -n "${PERF_NOW:-}" ]; then
        sleep 3
        perf record -g -o "$D/perf.data" -p "$SP" -- sleep 10 >"$D/perf.out" 2>&1
    fi
    if [ -n "${RING_NOW:-}" ]; then
        # all N calls sent and ringing: measure while they are held
        sleep $((n / rate + 3))
        read -r -a pids <<<"$(tree "$SP" | tr '\n' ' ')"
        MH=$(mem "${pids[@]}")
        IH=$(inuse "$srv")
    fi
    wait "$uac"
    RC=$?
    if [ -n "$kperf" ]; then
        kill -INT "$kperf"
        wait "$kperf" 2>/dev/null
        KSHARE=$(perf script -i "$D/kperf.data" -F pid,ip,dso 2>/dev/null |
            awk -v pids="${pids[*]}" 'BEGIN {n = split(pids, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1}
                ($1 in want) {t++; if ($0 ~ /kernel\.kallsyms/) k++}
                END {printf "%.3f", (t > 0 ? k / t : 0)}')
        rm -f "$D/kperf.data"
    fi
    read -r -a pids <<<"$(tree "$SP" | tr '\n' ' ')"
    C1=$(ticks "${pids[@]}")
    M1=$(mem "${pids[@]}")
    SETUP="n=0"
    if [ -n "$cap" ]; then
        sleep 1 # let tcpdump read its last buffer
        kill -INT "$cap"
        wait "$cap" 2>/dev/null
        SETUP=$(python3 "$ROOT/bench/calls_setup.py" "$D/uac.pcap" $UAC_PORT \
            $([ "${CAPTURE:-1}" = hops ] && echo $UAS_PORT))
        grep -h 'packets' "$D/tcpdump.err" | tr '\n' ' ' >"$D/tcpdump.counts"
        rm -f "$D/uac.pcap"
    fi
    SIPP_TICKS=$(($(ticks "$UAS") - u0))
    RCVBUF_DROPS=$(($(rcvbuf_errors) - E0))
    kill "$UAS" 2>/dev/null
    wait "$UAS" 2>/dev/null
    UAS=
    UAC_CPU=$(tail -1 "$D/uac.time" | awk '{printf "%.2f", $1 + $2}')
}

one_calls() { # srv rate round
    local srv=$1 rate=$2 round=$3 n=$(($2 * DUR)) tag ok fail el p cpu
    tag=$srv-r$rate-$round
    start "$srv" || { echo "server=$srv rate=$rate round=$round START_FAILED=1" | tee -a "$OUT"; halt_srv; return; }
    PERF_NOW=
    [ -n "${PERF:-}" ] && [ "$srv" = sipcore ] && [ "$round" = 1 ] && PERF_NOW=1
    uac_uas "$srv" "$rate" "$n" "$tag"
    local died=""
    kill -0 "$SP" 2>/dev/null || died=" SERVER_DIED=1"
    halt_srv
    ok=$(statcol "$D/uac_stat.csv" 'SuccessfulCall(C)')
    fail=$(statcol "$D/uac_stat.csv" 'FailedCall(C)')
    el=$(statcol "$D/uac_stat.csv" 'ElapsedTime(C)') # HH:MM:SS:mmm...
    el=$(awk -F: '{printf "%.3f", $1 * 3600 + $2 * 60 + $3 + $4 / 1000}' <<<"$el")
    p=$(pct "$(ls "$D"/*_rtt.csv | head -1)" 50 99)
    rm -f "$D"/*_rtt.csv # 4 ms resolution: kept only as the two percentiles above
    cpu=$(awk -v a="$C0" -v b="$C1" -v hz="$HZ" 'BEGIN {printf "%.2f", (b - a) / hz}')
    echo "server=$srv rate=$rate round=$round load=$(cut -d' ' -f1 /proc/loadavg) offered_cps=$rate calls=$n" \
        "ok=$ok failed=$fail elapsed_s=$el achieved_cps=$(awk -v o="$ok" -v e="$el" 'BEGIN {printf "%.1f", o / e}')" \
        "server_cpu_s=$cpu kernel_share=$KSHARE calls_per_cpu_s=$(awk -v o="$ok" -v c="$cpu" 'BEGIN {printf "%.0f", (c > 0 ? o / c : 0)}')" \
        "setup_$(sed 's/ / setup_/g' <<<"$SETUP") sipp_rtd_p50_ms=$(cut -d' ' -f1 <<<"$p") sipp_rtd_p99_ms=$(cut -d' ' -f2 <<<"$p")" \
        "rss_kb_before=${M0% *} pss_kb_before=${M0#* } rss_kb_after=${M1% *} pss_kb_after=${M1#* }" \
        "uas_cpu_s=$(awk -v t="$SIPP_TICKS" -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}') uac_cpu_s=$UAC_CPU udp_rcvbuf_drops=$RCVBUF_DROPS uac_rc=$RC$died" | tee -a "$OUT"
}

one_ring() { # srv
    local srv=$1 hold tag
    hold=$(((RING_N / RING_RATE + 15) * 1000))
    tag=$srv-ring
    start "$srv" || { echo "server=$srv mode=ring START_FAILED=1" | tee -a "$OUT"; halt_srv; return; }
    local i0
    i0=$(inuse "$srv")
    RING_NOW=1 uac_uas "$srv" "$RING_RATE" "$RING_N" "$tag" "$ROOT/bench/sipp/uas_ring.xml" "$hold"
    sleep 8 # the ended transactions' wait timers
    local pids m2 i2
    read -r -a pids <<<"$(tree "$SP" | tr '\n' ' ')"
    m2=$(mem "${pids[@]}")
    i2=$(inuse "$srv")
    halt_srv
    echo "server=$srv mode=ring load=$(cut -d' ' -f1 /proc/loadavg) held=$RING_N hold_ms=$hold" \
        "ok=$(statcol "$D/uac_stat.csv" 'SuccessfulCall(C)') failed=$(statcol "$D/uac_stat.csv" 'FailedCall(C)')" \
        "inuse_before=$i0 inuse_held=$IH inuse_after=$i2" \
        "rss_kb_before=${M0% *} pss_kb_before=${M0#* } rss_kb_held=${MH% *} pss_kb_held=${MH#* }" \
        "rss_kb_after=${m2% *} pss_kb_after=${m2#* }" \
        "rss_bytes_per_call=$(((${MH% *} - ${M0% *}) * 1024 / RING_N))" \
        "pss_bytes_per_call=$(((${MH#* } - ${M0#* }) * 1024 / RING_N)) udp_rcvbuf_drops=$RCVBUF_DROPS uac_rc=$RC" | tee -a "$OUT"
}

one_soak() {
    local n=$((SOAK_RATE * SOAK_DUR)) tag=sipcore-soak pids uac E0
    start sipcore || exit 1
    E0=$(rcvbuf_errors)
    D=$WORK/$tag
    mkdir -p "$D"
    (cd "$D" && exec "$SIPP" -sf "$ROOT/bench/sipp/uas_rr.xml" -i 127.0.0.1 -p $UAS_PORT -nostdin \
        -trace_err >uas.out 2>&1) &
    UAS=$!
    sleep 0.5
    (cd "$D" && exec "$SIPP" -sf "$ROOT/bench/sipp/uac_rr.xml" -i 127.0.0.1 -p $UAC_PORT \
        "127.0.0.1:$PORT" -s bench -r "$SOAK_RATE" -m "$n" -l $((SOAK_RATE * 70)) -nostdin \
        -timeout $((SOAK_DUR + 120))s -trace_err -trace_stat -stf uac_stat.csv -fd 10 >uac.out 2>&1) &
    uac=$!
    local t=0
    while kill -0 "$uac" 2>/dev/null; do
        read -r -a pids <<<"$(tree "$SP" | tr '\n' ' ')"
        echo "server=sipcore mode=soak t_s=$t load=$(cut -d' ' -f1 /proc/loadavg) mem_kb=\"$(mem "${pids[@]}")\"" \
            "inuse=$(inuse sipcore) calls_done=$(statcol "$D/uac_stat.csv" 'SuccessfulCall(C)' 2>/dev/null)" \
            "failed=$(statcol "$D/uac_stat.csv" 'FailedCall(C)' 2>/dev/null)" \
            "udp_rcvbuf_drops=$(($(rcvbuf_errors) - E0))" | tee -a "$OUT"
        sleep 30
        t=$((t + 30))
    done
    wait "$uac"
    RC=$?
    # then idle: every transaction ends within 64*T1 (32 s) and the memory should be given back
    for t in 8 45; do
        sleep $((t == 8 ? 8 : 37))
        read -r -a pids <<<"$(tree "$SP" | tr '\n' ' ')"
        echo "server=sipcore mode=soak end=1 idle_s=$t load=$(cut -d' ' -f1 /proc/loadavg) mem_kb=\"$(mem "${pids[@]}")\"" \
            "inuse=$(inuse sipcore) calls=$n ok=$(statcol "$D/uac_stat.csv" 'SuccessfulCall(C)')" \
            "failed=$(statcol "$D/uac_stat.csv" 'FailedCall(C)') udp_rcvbuf_drops_total=$(($(rcvbuf_errors) - E0))" \
            "uac_rc=$RC" | tee -a "$OUT"
    done
    kill "$UAS" 2>/dev/null
    wait "$UAS" 2>/dev/null
    UAS=
    halt_srv
}

wait_quiet
header "MODE=$MODE RATES=$RATES DUR=$DUR ROUNDS=$ROUNDS RING_N=$RING_N RING_RATE=$RING_RATE SOAK_RATE=$SOAK_RATE SOAK_DUR=$SOAK_DUR SOAK_MAX_TXN=${SOAK_MAX_TXN:-default} PEER_SHM=${PEER_SHM:-default} CAPTURE=${CAPTURE:-1} servers=${servers[*]}" >"$OUT"
log "results: $OUT"
case $MODE in
calls)
    for rate in $RATES; do
        for round in $(seq "$ROUNDS"); do
            for srv in "${servers[@]}"; do one_calls "$srv" "$rate" "$round"; done
        done
    done ;;
ring) for srv in "${servers[@]}"; do one_ring "$srv"; done ;;
soak) one_soak ;;
esac
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"
echo "results: $OUT"
