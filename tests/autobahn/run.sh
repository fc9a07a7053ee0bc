#!/usr/bin/env bash
# Autobahn|Testsuite (crossbario, the standard WebSocket conformance suite) against proto_ws's
# own codec, connection state machine and I/O workers, through the two examples:
#   server side: wstest fuzzingclient -> ws_echo_server on 127.0.0.1:9001
#   client side: ws_echo_client -> wstest fuzzingserver on 127.0.0.1:9002
# Needs Python 2.7 with `pip install autobahntestsuite` (wstest; pyenv's 2.7.18 works).
# Reports go to tests/autobahn/reports/{servers,clients}/index.html; a summary is printed.
# Cases 1-7 and 10 (framing, pings, reserved bits, opcodes, fragmentation, UTF-8, close,
# auto-fragmentation). Not run: 9.* (throughput with messages up to 16 MiB, beyond any SIP
# message size) and 12.*/13.* (permessage-deflate, which proto_ws does not negotiate).
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$HERE/../.."
WSTEST="${WSTEST:-wstest}"
cd "$ROOT" && cargo build --release -p sipcore-ws --example ws_echo_server --example ws_echo_client
EX="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples"
cd "$HERE"
"$EX/ws_echo_server" 127.0.0.1:9001 >/tmp/ab-echo-server.log 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null' EXIT
sleep 1
"$WSTEST" -m fuzzingclient -s fuzzingclient.json
# -u 0: no web UI (its default port 8080 is the ws port of conf/sipcore.cfg).
"$WSTEST" -u 0 -m fuzzingserver -s fuzzingserver.json &
FS=$!
sleep 3
"$EX/ws_echo_client" ws://127.0.0.1:9002 sipcore-client
kill $FS 2>/dev/null || true
python3 - <<'PY'
import json, collections
for side in ("servers", "clients"):
    d = json.load(open(f"reports/{side}/index.json"))
    for agent, res in d.items():
        c = collections.Counter(f"{v['behavior']}/{v['behaviorClose']}" for v in res.values())
        print(side, agent, len(res), "cases:", dict(c))
PY
