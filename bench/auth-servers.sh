# Shared by bench/run-auth.sh and bench/run-storm.sh (sourced after lib.sh, not run): the user
# databases and start/stop of the three servers with authenticated REGISTER (issue 12).
#   sipcore   conf/sipcore.cfg copied into $RUN/sipcore (so sipcore.db is created there), only
#             the ws and MI ports changed, plus the lines in SC_EXTRA (appended);
#   kamailio  bench/kamailio/kamailio-auth.cfg, Debian's build (kamailio-tlsf: -x tlsf -X tlsf),
#             memory KAM_MEM (default: none given, Debian's -m 64 -M 8);
#   opensips  bench/opensips/ws-auth.cfg.in, -m 4096 -M 32 (the shared peer's default).
# Users user<i>@example.com with password pw<i>, i < USERS: `sipcore user add` for sipcore
# (SC_USERS_FAST=1: bench/mkusers.py with OpenSIPS's schema, which sipcore reads as it is;
# the same HA1s), bench/mkusers.py with each peer's own schema for the peers.
OPENSIPS=${OPENSIPS:-/opt/opensips-3.6}
RUN=${RUN:-${TMPDIR:-/tmp}/sipcore-auth-run}
SC_AUTH=18080 SC_MI=18888 KAM_AUTH=18090 OS_AUTH=23180
KAM_MEM=${KAM_MEM:-}
SC_EXTRA=${SC_EXTRA:-}

# make_users SERVER: the user database of SERVER under $RUN (once per $RUN).
make_users() {
    mkdir -p "$RUN/sipcore" "$RUN/opensips" || return 1
    case $1 in
    sipcore)
        sed -e "s/^socket = ws:127.0.0.1:8080$/socket = ws:127.0.0.1:$SC_AUTH/" \
            -e "s/^mi_http_port = 8888$/mi_http_port = $SC_MI/" "$ROOT/conf/sipcore.cfg" >"$RUN/sipcore/sipcore.cfg"
        [ -n "$SC_EXTRA" ] && printf '\n# added by bench/auth-servers.sh\n%s\n' "$SC_EXTRA" >>"$RUN/sipcore/sipcore.cfg"
        [ -s "$RUN/sipcore/sipcore.db" ] && return 0
        local t0 i
        t0=$(date +%s)
        if [ -n "${SC_USERS_FAST:-}" ]; then
            log "sipcore: writing $USERS users with bench/mkusers.py (OpenSIPS's schema)"
            OPENSIPS=$OPENSIPS "$ROOT/bench/mkusers.py" opensips "$RUN/sipcore/sipcore.db" "$USERS" || return 1
        else
            log "sipcore: adding $USERS users with \`sipcore user add\`"
            for i in $(seq 0 $((USERS - 1))); do
                echo "pw$i" | "$R/sipcore" user add "user$i@example.com" -f "$RUN/sipcore/sipcore.cfg" >/dev/null ||
                    { log "sipcore user add user$i failed"; return 1; }
            done
        fi
        log "sipcore: $USERS users in $(($(date +%s) - t0)) s" ;;
    kamailio | kamailio-tlsf)
        [ -s "$RUN/kamailio.db" ] || "$ROOT/bench/mkusers.py" kamailio "$RUN/kamailio.db" "$USERS" ;;
    opensips)
        [ -s "$RUN/opensips.db" ] || OPENSIPS=$OPENSIPS "$ROOT/bench/mkusers.py" opensips "$RUN/opensips.db" "$USERS" ;;
    esac
}

# start NAME: start server NAME (its log: $OUT.NAME.log); set SP (the pid whose tree is
# measured) and PORT.
start() {
    SP=
    case $1 in
    sipcore)
        "$R/sipcore" -f "$RUN/sipcore/sipcore.cfg" 2>>"$OUT.sipcore.log" &
        SP=$! PORT=$SC_AUTH ;;
    kamailio | kamailio-tlsf)
        local mm=()
        [ "$1" = kamailio-tlsf ] && mm=(-x tlsf -X tlsf)
        # shellcheck disable=SC2086 # KAM_MEM is a list of options
        "$KAM" -f "$ROOT/bench/kamailio/kamailio-auth.cfg" -DD -E $KAM_MEM "${mm[@]}" -A "KAMAILIO_PORT=$KAM_AUTH" \
            -A "DBURL=\"sqlite://$RUN/kamailio.db\"" >>"$OUT.$1.log" 2>&1 &
        SP=$! PORT=$KAM_AUTH ;;
    opensips)
        sed -e "s#@PREFIX@#$OPENSIPS#g; s#@RUNDIR@#$RUN/opensips#g; s#@WS_PORT@#$OS_AUTH#g" \
            -e "s#@MI_PORT@#23188#g; s#@HEP_PORT@#23160#g; s#@HEP_SRC_PORT@#23161#g; s#@DB@#$RUN/opensips.db#g" \
            "$ROOT/bench/opensips/ws-auth.cfg.in" >"$RUN/opensips/ws-auth.cfg"
        rm -f "$RUN/opensips/pid"
        "$OPENSIPS/sbin/opensips" -f "$RUN/opensips/ws-auth.cfg" -P "$RUN/opensips/pid" -m 4096 -M 32 \
            >>"$OUT.opensips.log" 2>&1
        for _ in $(seq 1 50); do [ -s "$RUN/opensips/pid" ] && break; sleep 0.1; done
        SP=$(cat "$RUN/opensips/pid" 2>/dev/null) PORT=$OS_AUTH ;;
    esac
    [ -n "$SP" ] && wait_port "$PORT" || return 1
    sleep 1 # let multi-process servers fork their children before they are listed for --tree
}

# wait_builds: until no compiler or linker runs at normal priority (another session's build
# would share the cores with the servers), up to 10 tries 30 s apart; niced work (fuzzers) is
# left running. NO_WAIT=1: not at all.
wait_builds() {
    local i busy
    [ -n "${NO_WAIT:-}" ] && return 0
    for i in $(seq 1 10); do
        busy=$(ps -eo ni=,comm= | awk '$1 <= 0 && $2 ~ /^(rustc|cc1|cc1plus|ld|ld\.lld|cargo|clang|clippy-driver)$/' | wc -l)
        [ "$busy" -eq 0 ] && return 0
        log "$busy compiler processes at normal priority (another build?), waiting 30 s (try $i/10)"
        sleep 30
    done
}

# niced_note: what else runs, for the results header: niced processes (fuzzers), and
# compilers at normal priority (other sessions' builds, when wait_builds gave up).
niced_note() {
    echo "niced processes beside: $(ps -eo ni=,comm= | awk '$1 > 0' | wc -l) ($(ps -eo ni=,pcpu=,comm= | awk '$1 > 0 && $2 > 5 {printf "%s %s%% ", $3, $2}')); compilers at normal priority: $(ps -eo ni=,comm= | awk '$1 <= 0 && $2 ~ /^(rustc|cc1|cc1plus|ld|cargo|clang|clippy-driver)$/' | wc -l)"
}
