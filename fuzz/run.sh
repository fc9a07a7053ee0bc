#!/usr/bin/env bash
# Run every cargo-fuzz target for SECONDS each (default 60), FUZZ_JOBS of them at a time (default:
# the number of cores, each libFuzzer process being single-threaded, so every target still gets
# SECONDS of a core), starting from the committed corpus fuzz/corpus/TARGET, and print execs and
# coverage per target from libFuzzer's final stats. Exits non-zero if any target crashed, hung (-timeout) or ran out of
# memory; the input that did it is in fuzz/artifacts/TARGET/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly-only flags,
# and `-s none` builds without a sanitizer (libFuzzer's coverage instrumentation only).
# Debug assertions (overflow checks) are on (`-a`).
# New inputs go to fuzz/target/corpus-new/TARGET (not committed); FUZZ_GROW=1 writes them into
# fuzz/corpus/TARGET instead (then minimize: cargo fuzz cmin -s none -a TARGET).
set -uo pipefail
cd "$(dirname "$0")"

secs=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
flags=(-s none -a)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: cargo-fuzz is missing (cargo install cargo-fuzz --locked)" >&2
    exit 2
fi
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

start=$(date +%s)
cargo fuzz build "${flags[@]}" || exit 2
echo "fuzz/run.sh: built ${#targets[@]} targets in $(($(date +%s) - start)) s; ${secs} s each"

logs=target/fuzz-logs
mkdir -p "$logs"
jobs_max=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs_max" -ge 1 ] 2>/dev/null || jobs_max=1
echo "fuzz/run.sh: ${jobs_max} at a time"

# One target: its log in $logs/T.log, its table row in $logs/T.row, its exit code in $logs/T.rc.
run_one() {
    local t=$1 dirs log t0 rc dur execs rate cov corp result
    mkdir -p "corpus/$t"
    if [ "${FUZZ_GROW:-0}" = 1 ]; then
        dirs=("corpus/$t")
    else
        rm -rf "target/corpus-new/$t"
        mkdir -p "target/corpus-new/$t"
        dirs=("target/corpus-new/$t" "corpus/$t")
    fi
    log="$logs/$t.log"
    echo "== $t (${secs} s)"
    t0=$(date +%s)
    cargo fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        >"$log" 2>&1
    rc=$?
    dur=$(($(date +%s) - t0))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        result=ok
    else
        result="FAILED (exit $rc)"
        echo "-- $t failed; end of $log:"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written|^ *[0-9]+: .*(sipcore|proto_ws|proto_hep|fuzz_targets)' \
            "$log" | head -40
    fi
    printf '%-13s %12s %8s %-22s %-18s %5ss  %s\n' "$t" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${corp:-?}" "$dur" "$result" >"$logs/$t.row"
    echo "$rc" >"$logs/$t.rc"
}

for t in "${targets[@]}"; do
    rm -f "$logs/$t.row" "$logs/$t.rc"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
        wait -n
    done
    run_one "$t" &
done
wait

failed=()
rows=()
for t in "${targets[@]}"; do
    if [ -f "$logs/$t.row" ]; then
        rows+=("$(cat "$logs/$t.row")")
    else
        rows+=("$(printf '%-13s did not report' "$t")")
    fi
    [ "$(cat "$logs/$t.rc" 2>/dev/null)" = 0 ] || failed+=("$t")
done

echo
printf '%-13s %12s %8s %-22s %-18s %6s  %s\n' target execs exec/s coverage corpus time result
printf '%s\n' "${rows[@]}"
echo "fuzz/run.sh: total $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/run.sh: FAILED: ${failed[*]} (inputs in fuzz/artifacts/; logs in fuzz/$logs/)" >&2
    exit 1
fi
