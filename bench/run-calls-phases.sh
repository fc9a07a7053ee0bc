#!/usr/bin/env bash
# Does sipcore keep memory per call once the calls are over (issue 14, "no growth")? One server
# on bench/sipcore-calls.cfg (with max_transactions raised to MAX_TXN), one SIPp UAS, then PHASES
# runs of SIPp's UAC, each N calls at RATE per second; after each, the server's RSS once every
# transaction has ended (tm:inuse_transactions 0) and its trim ran. A leak of a few bytes per
# call grows this figure phase after phase; fragmentation and high-water marks do not.
#
# Usage: bench/run-calls-phases.sh [DIR]   (DIR holds sipcore and its plugins; default the
#        release build in $TARGET)   Env: PHASES=4 N=150000 RATE=3000 MAX_TXN=400000
set -u
PHASES=${PHASES:-4}
N=${N:-150000}
RATE=${RATE:-3000}
MAX_TXN=${MAX_TXN:-400000}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
BIN=${1:-$R}
results "calls-phases-"
WORK=$OUT.d
mkdir -p "$WORK"
sed -e "/max_transactions_per_source/a modparam(\"tm\", \"max_transactions\", $MAX_TXN)" \
    "$ROOT/bench/sipcore-calls.cfg" >"$WORK/sipcore.cfg"
CFG=$WORK/sipcore.cfg

rss_kb() { awk '$1 == "Rss:" {print $2}' /proc/"$1"/smaps_rollup; }
inuse() {
    "$BIN/sipcore" mi -f "$CFG" get_statistics tm:inuse_transactions 2>/dev/null |
        tr -d ' \n' | sed -n 's/.*"tm:inuse_transactions":\([0-9]*\).*/\1/p'
}

"$BIN/sipcore" -f "$CFG" >>"$OUT.sipcore.log" 2>&1 &
SP=$!
(cd "$WORK" && exec sipp -sf "$ROOT/bench/sipp/uas_rr.xml" -i 127.0.0.1 -p 5090 -nostdin \
    >uas.out 2>&1) &
UAS=$!
trap 'kill "$UAS" "$SP" 2>/dev/null' EXIT
for _ in $(seq 1 100); do ss -Hlun "sport = :5070" | grep -q . && break; sleep 0.1; done
sleep 1
header "PHASES=$PHASES N=$N RATE=$RATE MAX_TXN=$MAX_TXN bin=$BIN" >"$OUT"
log "results: $OUT"
echo "phase=0 calls_total=0 rss_kb=$(rss_kb "$SP")" | tee -a "$OUT"
total=0
for p in $(seq 1 "$PHASES"); do
    (cd "$WORK" && sipp -sf "$ROOT/bench/sipp/uac_rr.xml" -i 127.0.0.1 -p 5091 127.0.0.1:5070 \
        -s bench -r "$RATE" -m "$N" -l $((RATE * 70)) -nostdin -timeout 300s -trace_stat \
        -stf "uac_stat_$p.csv" >"uac_$p.out" 2>&1)
    rc=$?
    busy=$(rss_kb "$SP")
    # every transaction ends within 64*T1 (32 s); then the trim runs after 0.5 s without one
    for _ in $(seq 1 120); do [ "$(inuse)" = 0 ] && break; sleep 1; done
    sleep 3
    total=$((total + N))
    echo "phase=$p calls_total=$total uac_rc=$rc ok=$(statcol "$WORK/uac_stat_$p.csv" 'SuccessfulCall(C)')" \
        "failed=$(statcol "$WORK/uac_stat_$p.csv" 'FailedCall(C)') rss_kb_at_end=$busy" \
        "inuse=$(inuse) rss_kb_idle=$(rss_kb "$SP")" | tee -a "$OUT"
done
