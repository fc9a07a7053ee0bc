#!/usr/bin/env bash
# SIP over secure WebSocket (issue 11): sipcore (proto_wss, the bundled conf/sipcore-wss.cfg),
# Kamailio 5.6 from Debian with its tls module (bench/kamailio/kamailio-wss.cfg, and the same
# with -x tlsf -X tlsf) and OpenSIPS 3.6 with proto_wss + tls_mgm + tls_openssl
# (bench/opensips/wss.cfg.in, when /opt/opensips-3.6 is built), all on the same certificate
# (ECDSA P-256; RSA 2048 for hs-rsa), interleaved for ROUNDS rounds, a fresh server per run.
# Scenarios (SCENARIOS, default all):
#   rr      OPTIONS to the server itself over wss at saturation: sipbench rr -c 50 -w 8, DUR s
#   hs-ec   TCP connect + full TLS handshake + WebSocket upgrade + close, HS_C at once, DUR s
#           (the client never resumes a session), ECDSA P-256 certificate
#   hs-rsa  the same with an RSA 2048 certificate
#   idle    IDLE_N wss connections opened and held; memory growth per connection (PSS over the
#           server's processes)
# The fuzzers of the other sessions (nice 19) are paused during each sipbench run and resumed
# right after (also on failure). Prints one line per run and the medians.
#
# Usage: bench/run-wss.sh   Env: DUR=8 ROUNDS=3 IDLE_N=5000 HS_C=16 SKIP_BUILD=1 NO_WAIT=1 NO_PAUSE=1
#        SERVERS="sipcore kamailio kamailio-tlsf opensips" SCENARIOS="rr hs-ec hs-rsa idle"
set -u
DUR=${DUR:-8}
ROUNDS=${ROUNDS:-3}
IDLE_N=${IDLE_N:-5000}
HS_C=${HS_C:-16}
SCENARIOS=${SCENARIOS:-rr hs-ec hs-rsa idle}
OPENSIPS=${OPENSIPS:-/opt/opensips-3.6}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
results wss-
build
CERTS=${CERTS:-${TMPDIR:-/tmp}/sipcore-wss-certs}
RUN=${TMPDIR:-/tmp}/sipcore-wss-run
mkdir -p "$RUN"
SC_WSS=18443 KAM_WSS=8091 OS_WSS=23443
if [ -z "${SERVERS:-}" ]; then
    SERVERS="sipcore kamailio kamailio-tlsf"
    [ -x "$OPENSIPS/sbin/opensips" ] && SERVERS+=" opensips"
fi
read -ra servers <<<"$SERVERS"
read -ra scenarios <<<"$SCENARIOS"

# The same certificates for every server: ec/ from conf/tls/make-cert.sh (a test CA and an
# ECDSA P-256 certificate for localhost), rsa/ an RSA 2048 one signed by the same CA.
if [ ! -s "$CERTS/ec/cert.pem" ]; then
    "$ROOT/conf/tls/make-cert.sh" "$CERTS/ec" >/dev/null 2>&1 || { log "make-cert.sh failed"; exit 1; }
fi
if [ ! -s "$CERTS/rsa/cert.pem" ]; then
    (
        set -e
        mkdir -p "$CERTS/rsa" && cd "$CERTS/rsa"
        openssl req -new -newkey rsa:2048 -nodes -keyout key.pem -subj /CN=localhost -out s.csr 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >s.ext
        openssl x509 -req -in s.csr -CA ../ec/ca.pem -CAkey ../ec/ca-key.pem -CAcreateserial -days 825 \
            -sha256 -extfile s.ext -out cert.pem 2>/dev/null
        rm -f s.csr s.ext ../ec/ca.srl
    ) || { log "RSA certificate failed"; exit 1; }
fi

# Pause/resume the other sessions' fuzzers (the pattern is built here so that no command
# line of ours contains it).
FUZZ="x86_64-unknown-linux-gnu""/release/"
# NO_PAUSE=1: leave them running (they are niced; say so with the figures).
fuzz_stop() { [ -n "${NO_PAUSE:-}" ] || pkill -STOP -f "$FUZZ" 2>/dev/null || true; }
fuzz_cont() { [ -n "${NO_PAUSE:-}" ] || pkill -CONT -f "$FUZZ" 2>/dev/null || true; }
trap 'fuzz_cont; halt' EXIT
trap 'exit 130' INT TERM

wait_quiet
header "DUR=$DUR ROUNDS=$ROUNDS IDLE_N=$IDLE_N HS_C=$HS_C servers=${servers[*]} scenarios=${scenarios[*]}" >"$OUT"
echo "# openssl: $(openssl version); tree: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + uncommitted changes'); sipcore binary built $(date -u -r "$R/sipcore" +%FT%TZ)" >>"$OUT"

# start NAME CERT: start server NAME with certificate kind CERT (ec|rsa); sets SP (the pid
# whose tree is measured) and PORT.
start() {
    local crt=$CERTS/$2/cert.pem key=$CERTS/$2/key.pem
    case $1 in
    sipcore)
        # The bundled config; certificate paths, ports off the defaults (other sessions run
        # sipcore on 8080/8443/8889), and the connection limits raised for IDLE_N from 8 source
        # addresses (wss_max_connections 2048 and 128 per IP by default).
        sed -e "s#^\(modparam(\"tls_mgm\", \"certificate\", \"\[default\]\)[^\"]*\"#\1$crt\"#" \
            -e "s#^\(modparam(\"tls_mgm\", \"private_key\", \"\[default\]\)[^\"]*\"#\1$key\"#" \
            -e "s#^socket = ws:127.0.0.1:8080#socket = ws:127.0.0.1:18080#" \
            -e "s#^socket = wss:127.0.0.1:8443#socket = wss:127.0.0.1:$SC_WSS#" \
            -e "s#^mi_http_port = 8889#mi_http_port = 18889#" \
            -e '/^loadmodule "proto_wss.so"/a modparam("proto_wss", "wss_max_connections", 20000)\nmodparam("proto_wss", "wss_max_connections_per_ip", 0)' \
            "$ROOT/conf/sipcore-wss.cfg" >"$RUN/sipcore-wss.cfg"
        "$R/sipcore" -f "$RUN/sipcore-wss.cfg" 2>>"$OUT.sipcore.log" &
        SP=$! PORT=$SC_WSS ;;
    kamailio | kamailio-tlsf)
        local mm=()
        [ "$1" = kamailio-tlsf ] && mm=(-x tlsf -X tlsf)
        # One TCP worker: see kamailio-wss.cfg (Debian's 5.6.3 crashes with two on OpenSSL 3).
        # No core files (a crash is reported as SERVER_DIED; cores would land in /).
        (ulimit -c 0; exec "$KAM" -f "$ROOT/bench/kamailio/kamailio-wss.cfg" -DD -E -m 1024 "${mm[@]}" \
            -A TCP_CHILDREN="${KAM_TCP_CHILDREN:-1}" -A "TLS_CERT=\"$crt\"" -A "TLS_KEY=\"$key\"" \
            >>"$OUT.$1.log" 2>&1) &
        SP=$! PORT=$KAM_WSS ;;
    opensips)
        sed -e "s#@PREFIX@#$OPENSIPS#g; s#@RUNDIR@#$RUN#g; s#@WSS_PORT@#$OS_WSS#g" \
            -e "s#@MI_PORT@#23488#g; s#@HEP_PORT@#23460#g; s#@HEP_SRC_PORT@#23461#g" \
            -e "s#@CERT@#$crt#g; s#@KEY@#$key#g" "$ROOT/bench/opensips/wss.cfg.in" >"$RUN/opensips-wss.cfg"
        rm -f "$RUN/opensips-wss.pid"
        (ulimit -n 20000 2>/dev/null; "$OPENSIPS/sbin/opensips" -f "$RUN/opensips-wss.cfg" \
            -P "$RUN/opensips-wss.pid" -m 4096 -M 32 >>"$OUT.opensips.log" 2>&1)
        for _ in $(seq 1 50); do [ -s "$RUN/opensips-wss.pid" ] && break; sleep 0.1; done
        SP=$(cat "$RUN/opensips-wss.pid" 2>/dev/null) PORT=$OS_WSS ;;
    esac
    [ -n "$SP" ] && wait_port "$PORT" || return 1
    sleep 1 # let multi-process servers fork their children before they are listed for --tree
}

# bench SCENARIO: the sipbench command of a scenario (after start), its RESULT line on stdout.
bench() {
    local a=(--addr "wss://127.0.0.1:$PORT" --pid "$SP" --tree)
    case $1 in
    rr) "$R/sipbench" -t 1 rr "${a[@]}" --ruri "sip:127.0.0.1:$PORT" -c 50 -w 8 -d "$DUR" ;;
    hs-*) "$R/sipbench" -t 2 hs "${a[@]}" -c "$HS_C" --src-ips 8 -d "$DUR" ;;
    idle) "$R/sipbench" -t 2 idle "${a[@]}" -n "$IDLE_N" --concurrency 64 --src-ips 8 --hold 2 ;;
    esac 2>>"$OUT.client.log" | grep '^RESULT'
}

for round in $(seq "$ROUNDS"); do
    for sc in "${scenarios[@]}"; do
        cert=ec
        [ "$sc" = hs-rsa ] && cert=rsa
        for srv in "${servers[@]}"; do
            if ! start "$srv" "$cert"; then
                echo "server=$srv scenario=$sc round=$round START_FAILED=1" | tee -a "$OUT"
                halt
                continue
            fi
            log "$srv $sc round $round"
            fuzz_stop
            line=$(bench "$sc")
            fuzz_cont
            extra=""
            kill -0 "$SP" 2>/dev/null || extra=" SERVER_DIED=1"
            halt
            echo "server=$srv scenario=$sc round=$round load=$(cut -d' ' -f1 /proc/loadavg) ${line#RESULT }$extra" | tee -a "$OUT"
        done
    done
done
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"
echo
echo "results: $OUT"
med() { # server scenario key
    grep "^server=$1 scenario=$2 " "$OUT" | tr ' ' '\n' | sed -n "s/^$3=//p" | sort -n |
        awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print "-"}'
}
printf '%-14s %-7s %12s %14s %10s\n' server scenario per_s per_server_cpu_s bytes/conn
for sc in "${scenarios[@]}"; do
    for srv in "${servers[@]}"; do
        case $sc in
        rr) printf '%-14s %-7s %12s %14s %10s\n' "$srv" "$sc" "$(med "$srv" rr rps)" "$(med "$srv" rr req_per_cpu_s)" - ;;
        hs-*) printf '%-14s %-7s %12s %14s %10s\n' "$srv" "$sc" "$(med "$srv" "$sc" hs_per_s)" "$(med "$srv" "$sc" hs_per_cpu_s)" - ;;
        idle) printf '%-14s %-7s %12s %14s %10s\n' "$srv" "$sc" "$(med "$srv" idle handshakes_per_s)" - "$(med "$srv" idle pss_per_conn_b)" ;;
        esac
    done
done
