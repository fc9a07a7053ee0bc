#!/usr/bin/env bash
# Install the Debian package into this machine, check it, run it, and remove it again (the
# machine is left as found: package purged, and the sipcore user removed if this script's
# install created it). Needs root, dpkg and Node.js (the WebSocket client is tests/js's `ws`).
#
#   pkg/test-deb.sh [PATH.deb]        (default: build it with pkg/build-deb.sh)
#
# Checks: files where the package puts them (/usr/sbin/sipcore, the plugins as
# /usr/lib/sipcore/modules/proto_*.so, the conffile /etc/sipcore/sipcore.cfg, the unit), the
# system user and /var/lib/sipcore; `sipcore -c` on the installed config; `systemd-analyze
# verify` on the unit (when the command exists); then the installed binary, as root in the
# foreground, on a copy of the installed config with free ports and UDP and TCP sockets added (no
# mpath: the compiled-in /usr/lib/sipcore/modules) answers an OPTIONS over WebSocket, one
# over UDP and one over TCP with 200; `dpkg -r` keeps the
# conffile, `dpkg -P` removes it and the state directory.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs the package with dpkg -i)"
command -v dpkg >/dev/null || fail "needs dpkg (Debian or Ubuntu)"
command -v node >/dev/null || fail "needs Node.js for the WebSocket client"
if dpkg-query -W -f='${Status}' sipcore 2>/dev/null | grep -q 'installed'; then
    fail "a sipcore package is already installed here; not touching it"
fi
[ -d tests/js/node_modules/ws ] || (cd tests/js && npm ci --no-audit --no-fund >&2)

user_existed=no
getent passwd sipcore >/dev/null && user_existed=yes
tmp=$(mktemp -d)
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    dpkg -P sipcore >/dev/null 2>&1 || true
    if [ "$user_existed" = no ] && getent passwd sipcore >/dev/null; then
        userdel sipcore 2>/dev/null || true
        getent group sipcore >/dev/null && groupdel sipcore 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

deb=${1:-}
if [ -z "$deb" ]; then
    start=$SECONDS
    deb=$(pkg/build-deb.sh | tail -1)
    echo "built $deb in $((SECONDS - start)) s"
fi
[ -f "$deb" ] || fail "no package at '$deb'"

dpkg -i "$deb"
for f in /usr/sbin/sipcore /usr/lib/sipcore/modules/proto_ws.so \
    /usr/lib/sipcore/modules/proto_wss.so /usr/lib/sipcore/modules/proto_hep.so \
    /usr/lib/sipcore/modules/proto_udp.so /usr/lib/sipcore/modules/proto_tcp.so \
    /usr/lib/sipcore/modules/proto_tls.so \
    /etc/sipcore/sipcore.cfg /usr/share/doc/sipcore/LICENSE-MIT; do
    [ -f "$f" ] || fail "$f not installed"
done
unit=$(dpkg -L sipcore | grep '/systemd/system/sipcore.service$') || fail "no systemd unit"
dpkg-query -W -f='${Conffiles}\n' sipcore | grep -q '^ /etc/sipcore/sipcore.cfg ' ||
    fail "/etc/sipcore/sipcore.cfg is not a conffile"
getent passwd sipcore >/dev/null || fail "no sipcore user"
[ "$(stat -c %U /var/lib/sipcore)" = sipcore ] || fail "/var/lib/sipcore is not sipcore's"
grep -q 'sqlite:///var/lib/sipcore/sipcore.db' /etc/sipcore/sipcore.cfg ||
    fail "the packaged config does not keep its users in /var/lib/sipcore"

/usr/sbin/sipcore -c -f /etc/sipcore/sipcore.cfg || fail "sipcore -c failed on the installed config"
# The service's own check, as the service's user.
runuser -u sipcore -- /usr/sbin/sipcore -c -f /etc/sipcore/sipcore.cfg ||
    fail "sipcore -c failed as user sipcore"

if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
    echo "systemd-analyze verify: ok"
else
    echo "systemd-analyze not installed: unit not verified"
fi

free_port() {
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
free_udp_port() {
    node -e 'const s=require("dgram").createSocket("udp4");s.bind(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
port=$(free_port)
mi=$(free_port)
uport=$(free_udp_port)
tport=$(free_port)
sed -e "s/^socket = ws:127.0.0.1:8080$/socket = ws:127.0.0.1:$port\nsocket = udp:127.0.0.1:$uport\nsocket = tcp:127.0.0.1:$tport/" \
    -e 's/^loadmodule "proto_ws.so"$/loadmodule "proto_ws.so"\nloadmodule "proto_udp.so"\nloadmodule "proto_tcp.so"/' \
    -e "s/^mi_http_port = 8888$/mi_http_port = $mi/" /etc/sipcore/sipcore.cfg >"$tmp/sipcore.cfg"
grep -q "^socket = ws:127.0.0.1:$port$" "$tmp/sipcore.cfg" || fail "no socket line to change"
grep -q '^loadmodule "proto_udp.so"$' "$tmp/sipcore.cfg" || fail "no loadmodule line for proto_udp"
/usr/sbin/sipcore -f "$tmp/sipcore.cfg" 2>"$tmp/stderr.log" &
server=$!
deadline=$((SECONDS + 20))
until grep -qs "listening on" "$tmp/stderr.log"; do
    kill -0 "$server" 2>/dev/null || { cat "$tmp/stderr.log" >&2; fail "sipcore exited"; }
    [ $SECONDS -lt $deadline ] || { cat "$tmp/stderr.log" >&2; fail "sipcore did not listen"; }
    sleep 0.1
done
grep -q "module proto_ws .* loaded from /usr/lib/sipcore/modules/proto_ws.so" "$tmp/stderr.log" ||
    { cat "$tmp/stderr.log" >&2; fail "proto_ws not loaded from /usr/lib/sipcore/modules"; }
reply=$(NODE_PATH=tests/js/node_modules node pkg/ws-options.js "ws://127.0.0.1:$port/")
[ "$reply" = "SIP/2.0 200 OK" ] || fail "OPTIONS got '$reply'"
echo "OPTIONS over WebSocket: $reply"
grep -q "module proto_udp .* loaded from /usr/lib/sipcore/modules/proto_udp.so" "$tmp/stderr.log" ||
    { cat "$tmp/stderr.log" >&2; fail "proto_udp not loaded from /usr/lib/sipcore/modules"; }
reply=$(node pkg/udp-options.js 127.0.0.1 "$uport")
[ "$reply" = "SIP/2.0 200 OK" ] || fail "OPTIONS over UDP got '$reply'"
echo "OPTIONS over UDP: $reply"
grep -q "module proto_tcp .* loaded from /usr/lib/sipcore/modules/proto_tcp.so" "$tmp/stderr.log" ||
    { cat "$tmp/stderr.log" >&2; fail "proto_tcp not loaded from /usr/lib/sipcore/modules"; }
reply=$(node pkg/tcp-options.js 127.0.0.1 "$tport")
[ "$reply" = "SIP/2.0 200 OK" ] || fail "OPTIONS over TCP got '$reply'"
echo "OPTIONS over TCP: $reply"
kill "$server"
wait "$server" || true
server=""

dpkg -r sipcore
[ ! -e /usr/sbin/sipcore ] || fail "dpkg -r left /usr/sbin/sipcore"
[ -f /etc/sipcore/sipcore.cfg ] || fail "dpkg -r removed the conffile"
dpkg -P sipcore
[ ! -e /etc/sipcore/sipcore.cfg ] || fail "dpkg -P left /etc/sipcore/sipcore.cfg"
[ ! -e /var/lib/sipcore ] || fail "dpkg -P left /var/lib/sipcore"
echo "test-deb.sh: ok"
