#!/usr/bin/env bash
# Build the Debian package with cargo-deb; prints the .deb's path on its last line.
#
#   pkg/build-deb.sh
#
# 1. writes pkg/out/sipcore.cfg: conf/sipcore.cfg with the package's paths (users database in
#    /var/lib/sipcore, commands without -f, since /etc/sipcore/sipcore.cfg is the default);
# 2. builds sipcore and the six plugins in the `deb` profile (release settings, its own
#    directory target/deb, so that target/release keeps the plain build) with
#    SIPCORE_DEFAULT_MPATH=/usr/lib/sipcore/modules compiled in as the default mpath;
# 3. runs `cargo deb --no-build` (installs cargo-deb first when missing), which takes the
#    assets, the unit (pkg/sipcore.service) and the maintainer scripts (pkg/debian/) named in
#    host/Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p pkg/out
cfg=$(<conf/sipcore.cfg)
sub() {
    if [[ $cfg != *"$1"* ]]; then
        echo "build-deb.sh: conf/sipcore.cfg no longer contains: $1 (update pkg/build-deb.sh)" >&2
        exit 1
    fi
    cfg=${cfg//"$1"/"$2"}
}
sub 'modparam("auth_db", "db_url", "sqlite://sipcore.db")' \
    'modparam("auth_db", "db_url", "sqlite:///var/lib/sipcore/sipcore.db")'
sub 'users in sipcore.db beside this file' 'users in /var/lib/sipcore/sipcore.db'
sub 'The users live in a SQLite file beside this config,' 'The users live in /var/lib/sipcore/sipcore.db,'
sub 'target/release/sipcore user add alice@example.com -f conf/sipcore.cfg' \
    'sudo -u sipcore sipcore user add alice@example.com'
sub 'cargo build --release && target/release/sipcore -f conf/sipcore.cfg' \
    'systemctl enable --now sipcore   (foreground: sipcore -f /etc/sipcore/sipcore.cfg)'
sub 'target/release/sipcore -c -f conf/sipcore.cfg' 'sipcore -c -f /etc/sipcore/sipcore.cfg'
sub 'Left unset, it is the directory of the sipcore binary' \
    'Left unset, it is where this package installs them,'
sub '# (target/release after `cargo build --release`), which is where cargo puts libproto_ws.so.' \
    '# /usr/lib/sipcore/modules (proto_ws.so, proto_wss.so, proto_udp.so, proto_tcp.so, proto_tls.so, proto_hep.so).'
sub ' -f conf/sipcore.cfg' ''
for left in target/release conf/sipcore.cfg 'sqlite://sipcore.db'; do
    if [[ $cfg == *"$left"* ]]; then
        echo "build-deb.sh: the packaged config still mentions $left (update pkg/build-deb.sh)" >&2
        exit 1
    fi
done
printf '%s\n' "$cfg" >pkg/out/sipcore.cfg

if ! cargo deb --version >/dev/null 2>&1; then cargo install cargo-deb --locked; fi
SIPCORE_DEFAULT_MPATH=/usr/lib/sipcore/modules \
    cargo build --profile deb -p sipcore -p proto_ws -p proto_wss -p proto_udp -p proto_tcp -p proto_tls -p proto_hep >&2
cargo deb -p sipcore --profile deb --no-build -o pkg/out/ | tail -1
