#!/usr/bin/env bash
# Instructions per request on the bundled default config, counted by callgrind (deterministic,
# unlike the throughput on a noisy machine; SHA-1 and other code with CPU-specific paths runs
# its portable version there).
#
# Usage: bench/callgrind.sh [SCENARIO] [RELEASE_DIR] [OUT]
#   SCENARIO:    options (default): `sipbench rr -c 4 -w 2`, OPTIONS answered by the script;
#                relay: `sipbench relay -p 4 -w 1`, MESSAGE relayed through lookup and t_relay,
#                on the config without authentication (as bench/run-peers.sh runs it); a
#                "request" there is one relayed transaction (the MESSAGE and its 200)
#   RELEASE_DIR: where sipcore, sipbench and the plugins are (default target/release)
#   OUT:         the callgrind file to write (default /tmp/callgrind-SCENARIO.out)
# Prints the inclusive instructions per request of the message path (`core::handle`) and of
# the WebSocket worker's loop (framing and the socket calls' user-space side included), and
# the functions below `handle` by inclusive instructions per request.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCENARIO=${1:-options}
DIR=${2:-$ROOT/target/release}
OUT=${3:-/tmp/callgrind-$SCENARIO.out}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
rm -f "$OUT"
cd "$WORK"
case "$SCENARIO" in
    options) CFG=$ROOT/conf/sipcore.cfg; PER=1 ;;
    relay)
        CFG=$WORK/sipcore-noauth.cfg; PER=2
        sed -e 's/^    route(authenticate);$/    # route(authenticate): off for relay/' \
            "$ROOT/conf/sipcore.cfg" >"$CFG"
        ;;
    *) echo "unknown scenario $SCENARIO (options, relay)" >&2; exit 2 ;;
esac
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$DIR/sipcore" -f "$CFG" \
    >"$WORK/sipcore.log" 2>&1 &
VP=$!
for _ in $(seq 1 150); do ss -tln | grep -q ':8080 ' && break; sleep 0.2; done
case "$SCENARIO" in
    options) "$DIR/sipbench" rr --addr 127.0.0.1:8080 --ruri sip:127.0.0.1:8080 -c 4 -w 2 -d 8 \
        --warmup 1 2>/dev/null | grep '^RESULT' || true ;;
    relay) "$DIR/sipbench" relay --addr 127.0.0.1:8080 --domain 127.0.0.1 -p 4 -w 1 -d 8 \
        2>/dev/null | grep '^RESULT' || true ;;
esac
kill "$VP"
wait "$VP" 2>/dev/null || true
python3 - "$OUT" "$PER" <<'PY'
import collections, re, sys
# Call counts and inclusive cost per callee, from the callgrind file's `calls=` records.
names, calls, incl = {}, collections.Counter(), collections.Counter()
def name(s):
    m = re.match(r'\((\d+)\)(?: (.*))?', s)
    if not m:
        return s
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), s)
cfn, pending = None, None
for line in open(sys.argv[1], errors='replace'):
    if line.startswith('fn='):
        name(line[3:].strip())
    elif line.startswith('cfn='):
        cfn = name(line[4:].strip())
    elif line.startswith('calls='):
        pending = int(line[6:].split()[0])
    elif pending is not None:
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            calls[cfn] += pending
            incl[cfn] += int(parts[1])
        pending = None
n = calls.get('sipcore::core::handle', 0) / int(sys.argv[2])
if not n:
    sys.exit('no request reached core::handle')
print(f'requests: {n:.0f}')
for f in ('sipcore::core::handle', 'sipcore_ws::driver::worker::Worker::run_loop'):
    print(f'{incl[f] / n:9.0f} instructions per request  {f}')
print('largest parts (inclusive, per request):')
for f, c in sorted(incl.items(), key=lambda x: -x[1]):
    if c / n < 300 or not re.match(r'(sipcore|<sipcore|sha1|xxhash|core::str)', f):
        continue
    print(f'{c / n:9.0f}  {calls[f] / n:5.2f} calls  {f[:110]}')
PY
