#!/usr/bin/env bash
# Autobahn|Testsuite over secure WebSocket (wss): run.sh's cases through the same two
# examples, with TLS (the driver's TLS listener and client, sipcore-tls contexts built from
# tls_mgm parameters) between them and wstest:
#   server side: wstest fuzzingclient -> wss://127.0.0.1:9011  ws_echo_server --tls CERT KEY
#   client side: ws_echo_client wss://127.0.0.1:9012 --ca CA -> wstest fuzzingserver (TLS)
# The certificates are made afresh by conf/tls/make-cert.sh (test CA, ECDSA P-256 certificate
# for localhost, 127.0.0.1 and ::1). ws_echo_client verifies wstest's certificate against that
# CA (the IP address 127.0.0.1 included); wstest's fuzzingclient does not verify ours (it
# verifies only with a spec "hostname", and then against the system roots).
# Needs Python 2.7 with `pip install autobahntestsuite` (wstest; pyenv's 2.7.18 works;
# WSTEST=/path/to/wstest overrides). wstest's embedded web server is turned off (-u 0), so
# nothing else needs port 8080.
# Reports go to tests/autobahn/reports/{servers,clients}-wss/index.html (REPORTS=DIR for
# another place); a summary is printed, in run.sh's format.
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$HERE/../.."
WSTEST="${WSTEST:-wstest}"
REPORTS="${REPORTS:-$HERE/reports}"
CASES='["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]'
cd "$ROOT" && cargo build --release -p sipcore-ws --example ws_echo_server --example ws_echo_client
EX="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples"
WORK="$(mktemp -d)"
SRV=
FS=
trap 'kill $SRV $FS 2>/dev/null; rm -rf "$WORK"' EXIT
bash "$ROOT/conf/tls/make-cert.sh" "$WORK/pki" >/dev/null
mkdir -p "$REPORTS"

# Wait until 127.0.0.1:$1 accepts connections (at most 10 s).
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# Server side.
"$EX/ws_echo_server" 127.0.0.1:9011 --tls "$WORK/pki/cert.pem" "$WORK/pki/key.pem" \
    >/tmp/ab-echo-server-wss.log 2>&1 &
SRV=$!
wait_port 9011
cat >"$WORK/fuzzingclient.json" <<EOF
{
  "outdir": "$REPORTS/servers-wss",
  "servers": [{"agent": "sipcore-proto_wss", "url": "wss://127.0.0.1:9011"}],
  "cases": $CASES,
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
"$WSTEST" -m fuzzingclient -s "$WORK/fuzzingclient.json"

# Client side.
cat >"$WORK/fuzzingserver.json" <<EOF
{
  "url": "wss://127.0.0.1:9012",
  "key": "$WORK/pki/key.pem",
  "cert": "$WORK/pki/cert.pem",
  "outdir": "$REPORTS/clients-wss",
  "cases": $CASES,
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
"$WSTEST" -m fuzzingserver -u 0 -s "$WORK/fuzzingserver.json" &
FS=$!
wait_port 9012
"$EX/ws_echo_client" wss://127.0.0.1:9012 sipcore-client-wss --ca "$WORK/pki/ca.pem"
kill $FS 2>/dev/null || true
REPORTS="$REPORTS" python3 - <<'PY'
import json, collections, os
for side in ("servers-wss", "clients-wss"):
    d = json.load(open(os.path.join(os.environ["REPORTS"], side, "index.json")))
    for agent, res in d.items():
        c = collections.Counter(f"{v['behavior']}/{v['behaviorClose']}" for v in res.values())
        print(side, agent, len(res), "cases:", dict(c))
PY
