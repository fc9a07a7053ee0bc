#!/usr/bin/env bash
# Long fuzzing runs measured in CPU time: run each TARGET in rounds of at most ROUND wall seconds
# (default 600) until the fuzzer processes have used CPU_SECONDS of CPU (user + system), so that
# "an hour per target" means an hour of fuzzing even on a machine shared with builds and tests
# (run it under `nice -n 19` beside other work). Rounds start from the committed corpus plus
# everything earlier rounds found (fuzz/target/soak/TARGET, kept across invocations; a later
# invocation continues the tally in fuzz/target/soak/TARGET.cpu). Stops at the first crash,
# hang or OOM (the input is in fuzz/artifacts/TARGET/) and exits non-zero.
#
#   fuzz/soak.sh CPU_SECONDS TARGET...
#
# Prints one line per round and a summary per target: CPU seconds, execs, and libFuzzer's
# coverage at the end of the last round.
set -uo pipefail
cd "$(dirname "$0")"

if [ $# -lt 2 ]; then
    echo "usage: fuzz/soak.sh CPU_SECONDS TARGET..." >&2
    exit 2
fi
want=$1
shift
round=${ROUND:-600}
export RUSTC_BOOTSTRAP=1
flags=(-s none -a)
cargo fuzz build "${flags[@]}" || exit 2

mkdir -p target/soak target/fuzz-logs
for t in "$@"; do
    dir="target/soak/$t"
    tally="target/soak/$t.cpu"
    mkdir -p "$dir" "corpus/$t"
    [ -f "$tally" ] || echo "0 0" >"$tally"
    read -r cpu execs <"$tally"
    n=0
    while [ "$cpu" -lt "$want" ]; do
        n=$((n + 1))
        left=$((want - cpu))
        secs=$((left < round ? left : round))
        [ "$secs" -lt 10 ] && secs=10
        log="target/fuzz-logs/soak-$t-$n.log"
        /usr/bin/time -f '%U %S' -o "target/soak/$t.time" \
            cargo fuzz run "${flags[@]}" "$t" "$dir" "corpus/$t" -- \
            -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
            >"$log" 2>&1
        rc=$?
        used=$(awk 'END { printf "%d", $1 + $2 }' "target/soak/$t.time")
        e=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cpu=$((cpu + used))
        execs=$((execs + ${e:-0}))
        echo "$cpu $execs" >"$tally"
        cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
        echo "$(date -u +%H:%M:%S) $t round $n: ${secs} s wall, ${used} s CPU, ${e:-?} execs, ${cov:-?}; total ${cpu} s CPU, ${execs} execs"
        if [ $rc -ne 0 ] && grep -q 'ERROR: libFuzzer: timeout' "$log"; then
            # libFuzzer's per-input timer runs on wall time: a fuzzer paused (SIGSTOP, e.g. by a
            # benchmark that wants a quiet machine) reports the input it was on as a timeout
            # when it resumes. Run that input again; if it takes well under the timeout it was
            # the pause: set the file aside (target/soak/paused/) and go on.
            # CPU time, not wall time: the re-run may be paused too.
            unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
            bin=target/x86_64-unknown-linux-gnu/release/$t
            if [ -f "$unit" ] && /usr/bin/time -f '%U %S' -o target/soak/rerun.time \
                "$bin" -runs=1 "$unit" >/dev/null 2>&1 &&
                awk '{ exit !($1 + $2 < 1) }' target/soak/rerun.time; then
                mkdir -p target/soak/paused
                mv "$unit" target/soak/paused/
                echo "fuzz/soak.sh: $t: the timeout input runs in under 1 s again: a paused fuzzer, not a hang; going on" >&2
                continue
            fi
        fi
        if [ $rc -ne 0 ]; then
            echo "fuzz/soak.sh: $t FAILED (exit $rc); see fuzz/$log" >&2
            grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -20 >&2
            exit 1
        fi
    done
    echo "== $t: ${cpu} s CPU, ${execs} execs, $(grep -o 'cov: [0-9]* ft: [0-9]*' "target/fuzz-logs/soak-$t-$n.log" 2>/dev/null | tail -1)"
done
