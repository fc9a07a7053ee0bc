#!/usr/bin/env bash
# Authenticated REGISTER (issue 12): REGISTER -> 401 (digest challenge) -> REGISTER with MD5
# credentials (qop=auth) -> 200, users in SQLite, per server CPU-second and p99 latency.
# Servers on the configurations their users run, with authentication added the way each
# project's default script does it:
#   sipcore        conf/sipcore.cfg as bundled (www_authorize + check_to + save; sqlite://sipcore.db
#                  beside the config: a copy in $RUN/sipcore with only the ws and MI ports changed),
#                  users added with `sipcore user add`;
#   kamailio       bench/kamailio/kamailio-auth.cfg (kamailio-registrar.cfg + db_sqlite, auth,
#                  auth_db, route[AUTH]), Debian's build and memory; kamailio-tlsf: the same with
#                  -x tlsf -X tlsf;
#   opensips       bench/opensips/ws-auth.cfg.in (the shared peer's ws.cfg.in + db_sqlite, auth,
#                  auth_db as in the residential template), when /opt/opensips-3.6 is built.
# Kamailio and OpenSIPS users are written by bench/mkusers.py with each one's own schema.
# Every server gets the same USERS users (user<i>@example.com, password pw<i>); sipbench
# register runs CONNS connections from 127.0.0.1 sharing them (connection i registers users i,
# i+CONNS, ... in turn, one registration in flight per connection, as a proxy in front of the
# registrar would; 100 connections stay below sipcore's default 128 per source address, and
# loopback is exempt from its pike check) for DUR seconds after WARMUP; SCENARIOS
# "fresh" (a 401 round per registration, what the issue measures) and "reuse" (re-registration
# with credentials for the previous nonce, nc + 1, as clients do); ROUNDS interleaved rounds.
# Nothing is paused: niced work (fuzzers) may run beside, and the results header counts it;
# the script waits (wait_builds) while compilers run at normal priority instead of lib.sh's
# wait_quiet (load 1.5), which niced fuzzers would never let through.
#
# Usage: bench/run-auth.sh
# Env:   DUR=8 WARMUP=3 ROUNDS=3 CONNS=100 USERS=1000 SCENARIOS="fresh reuse" SKIP_BUILD=1
#        NO_WAIT=1 SERVERS="sipcore kamailio kamailio-tlsf opensips" OPENSIPS=/opt/opensips-3.6
set -u
DUR=${DUR:-8}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-100}
USERS=${USERS:-1000}
read -ra scenarios <<<"${SCENARIOS:-fresh reuse}"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
results auth-
build
# shellcheck source=bench/auth-servers.sh
. "$ROOT/bench/auth-servers.sh"
if [ -z "${SERVERS:-}" ]; then
    SERVERS="sipcore kamailio kamailio-tlsf"
    [ -x "$OPENSIPS/sbin/opensips" ] && SERVERS+=" opensips"
fi
read -ra servers <<<"$SERVERS"
[ "$CONNS" -le "$USERS" ] || { log "CONNS ($CONNS) > USERS ($USERS)"; exit 2; }

# The user databases, once per run of this script.
rm -rf "$RUN"
for srv in "${servers[@]}"; do make_users "$srv" || exit 1; done

wait_builds
header "DUR=$DUR WARMUP=$WARMUP ROUNDS=$ROUNDS CONNS=$CONNS USERS=$USERS servers=${servers[*]} scenarios=${scenarios[*]}" >"$OUT"
echo "# tree: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + uncommitted changes'); sipcore binary built $(date -u -r "$R/sipcore" +%FT%TZ); $(niced_note)" >>"$OUT"

trap halt EXIT

for round in $(seq "$ROUNDS"); do
    for sc in "${scenarios[@]}"; do
        extra=()
        [ "$sc" = reuse ] && extra=(--reuse-nonce)
        for srv in "${servers[@]}"; do
            start "$srv" || { log "$srv did not start"; halt; continue; }
            line=$("$R/sipbench" -t 1 register --addr "127.0.0.1:$PORT" -c "$CONNS" -u "$USERS" "${extra[@]}" \
                -d "$DUR" --warmup "$WARMUP" --pid "$SP" --tree 2>>"$OUT.client.log" | grep '^RESULT')
            died=""
            kill -0 "$SP" 2>/dev/null || died=" SERVER_DIED=1"
            halt
            echo "server=$srv scenario=$sc round=$round load=$(cut -d' ' -f1 /proc/loadavg) ${line#RESULT }$died" |
                tee -a "$OUT"
        done
    done
done
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"

echo
echo "results: $OUT"
printf '%-14s %-6s %10s %12s %10s %10s %8s\n' server scen reg/s reg/cpu_s p50_us p99_us non200
for sc in "${scenarios[@]}"; do
    for srv in "${servers[@]}"; do
        med() { grep "^server=$srv scenario=$sc " "$OUT" | tr ' ' '\n' | sed -n "s/^$1=//p" | sort -n |
            awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
        printf '%-14s %-6s %10s %12s %10s %10s %8s\n' "$srv" "$sc" "$(med regs)" "$(med reg_per_cpu_s)" \
            "$(med p50_us)" "$(med p99_us)" "$(med non200)"
    done
done
