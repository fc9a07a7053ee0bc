#!/usr/bin/env bash
# Validate the JsSIP / SIP.js harness against Kamailio 5.6 acting as a
# SIP-over-WebSocket registrar/proxy (kamailio-ws-registrar.cfg).
#
#   bash tests/js/run-against-kamailio.sh [scenario ...]     (default: all scenarios)
#   STACKS="jssip sipjs mixed" DOMAIN=example.com KAMAILIO=/usr/sbin/kamailio
#
# Exits 0 only if every (stack, scenario) run passed.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAMAILIO="${KAMAILIO:-/usr/sbin/kamailio}"
MODPATH="${KAMAILIO_MODULES:-/usr/lib/x86_64-linux-gnu/kamailio/modules}"
DOMAIN="${DOMAIN:-example.com}"
STACKS="${STACKS:-jssip sipjs mixed}"
if [ $# -gt 0 ]; then SCENARIOS="$*"; else SCENARIOS="register message options call cancel unregistered all"; fi

command -v node >/dev/null || { echo "node not found" >&2; exit 1; }
[ -x "$KAMAILIO" ] || { echo "kamailio not found at $KAMAILIO" >&2; exit 1; }
if [ ! -d "$HERE/node_modules/jssip" ] || [ ! -d "$HERE/node_modules/sip.js" ] || [ ! -d "$HERE/node_modules/ws" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund) || exit 1
fi

WORK="$(mktemp -d /tmp/sipcore-kam.XXXXXX)"

KPID=
start_kamailio() { # $1: extra -A define or ""
  PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  KLOG="$WORK/kamailio-$PORT.log"
  local extra=()
  [ -n "$1" ] && extra=(-A "$1")
  "$KAMAILIO" -f "$HERE/kamailio-ws-registrar.cfg" -DD -E -L "$MODPATH" -Y "$WORK" -P "$WORK/kamailio.pid" \
    -m 64 -M 8 -A "WS_PORT=$PORT" -A "SIP_DOMAIN=\"$DOMAIN\"" "${extra[@]}" >"$KLOG" 2>&1 &
  KPID=$!
  for _ in $(seq 1 100); do
    if node -e 'const c=require("net").connect(+process.argv[1],"127.0.0.1");c.on("connect",()=>process.exit(0));c.on("error",()=>process.exit(1))' "$PORT"; then break; fi
    kill -0 "$KPID" 2>/dev/null || { echo "kamailio died:" >&2; cat "$KLOG" >&2; exit 1; }
    sleep 0.1
  done
  echo "kamailio $("$KAMAILIO" -v | head -1 | awk '{print $3}') ${1:-(no GRUU)} listening on ws://127.0.0.1:$PORT (log: $KLOG)"
}
stop_kamailio() {
  [ -n "$KPID" ] || return 0
  kill "$KPID" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$KPID" 2>/dev/null
  wait "$KPID" 2>/dev/null
  KPID=
}
trap stop_kamailio EXIT

pass=0; fail=0; failed=()
run_matrix() { # $1: label, then stacks x scenarios from $STACKS / $2
  local label="$1" scs="$2"
  for stack in $STACKS; do
    for sc in $scs; do
      outf="$WORK/$label-$stack-$sc.jsonl"
      if node "$HERE/scenario.js" --stack "$stack" --url "ws://127.0.0.1:$PORT" --domain "$DOMAIN" \
           --scenario "$sc" >"$outf" 2>"$WORK/$label-$stack-$sc.stderr"; then
        pass=$((pass+1)); echo "PASS $label $stack $sc ($(grep -c '"ok":true' "$outf") steps)"
      else
        fail=$((fail+1)); failed+=("$label/$stack/$sc"); echo "FAIL $label $stack $sc"
        grep '"ok":false' "$outf" | head -3 | sed 's/^/    /'
        sed 's/^/    /' "$WORK/$label-$stack-$sc.stderr" | tail -20
      fi
    done
  done
}

# 1) plain registrar (no GRUU): the stacks use their ".invalid" contacts
start_kamailio ""
run_matrix nogruu "$SCENARIOS"
stop_kamailio
# 2) GRUU on (JsSIP then puts its pub-gruu in Contact); SKIP_GRUU=1 to skip
if [ "${SKIP_GRUU:-0}" != 1 ]; then
  start_kamailio "WITH_GRUU"
  run_matrix gruu "all"
  stop_kamailio
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && rm -rf "$WORK"
[ "$fail" -eq 0 ]
