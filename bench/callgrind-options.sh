#!/usr/bin/env bash
# Instructions per OPTIONS on the bundled default config, counted by callgrind (deterministic,
# unlike the throughput on a noisy machine; SHA-1 and other code with CPU-specific paths runs
# its portable version there).
#
# Usage: bench/callgrind-options.sh [RELEASE_DIR] [OUT]
#   RELEASE_DIR: where sipcore, sipbench and the plugins are (default target/release)
#   OUT:         the callgrind file to write (default /tmp/callgrind-options.out)
# Prints the inclusive instructions per request of the message path (`core::handle`) and of
# the WebSocket worker's loop (framing and the socket calls' user-space side included), and
# the functions below `handle` by inclusive instructions per request.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$ROOT/target/release}
OUT=${2:-/tmp/callgrind-options.out}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
rm -f "$OUT"
cd "$WORK"
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$DIR/sipcore" -f "$ROOT/conf/sipcore.cfg" \
    >"$WORK/sipcore.log" 2>&1 &
VP=$!
for _ in $(seq 1 150); do ss -tln | grep -q ':8080 ' && break; sleep 0.2; done
"$DIR/sipbench" rr --addr 127.0.0.1:8080 --ruri sip:127.0.0.1:8080 -c 4 -w 2 -d 8 --warmup 1 \
    2>/dev/null | grep '^RESULT' || true
kill "$VP"
wait "$VP" 2>/dev/null || true
python3 - "$OUT" <<'PY'
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
n = calls.get('sipcore::core::handle', 0)
if not n:
    sys.exit('no request reached core::handle')
print(f'requests: {n}')
for f in ('sipcore::core::handle', 'sipcore_ws::driver::worker::Worker::run_loop'):
    print(f'{incl[f] / n:9.0f} instructions per request  {f}')
print('largest parts (inclusive, per request):')
for f, c in sorted(incl.items(), key=lambda x: -x[1]):
    if c / n < 300 or not re.match(r'(sipcore|<sipcore|sha1|xxhash|core::str)', f):
        continue
    print(f'{c / n:9.0f}  {calls[f] / n:5.2f} calls  {f[:110]}')
PY
