#!/usr/bin/env bash
# Make a test CA and a server certificate signed by it (ECDSA P-256, 825 days) for
# conf/sipcore-wss.cfg, with the openssl CLI:
#
#   conf/tls/make-cert.sh [DIR] [NAME...]     (default: conf/tls, names localhost 127.0.0.1 ::1)
#
# Writes DIR/ca.pem (trust this one: browsers, NODE_EXTRA_CA_CERTS), DIR/ca-key.pem,
# DIR/cert.pem (the server certificate followed by nothing else: the CA is the root) and
# DIR/key.pem. For a real certificate (e.g. from Let's Encrypt) point tls_mgm's certificate at
# fullchain.pem and private_key at privkey.pem instead.
set -euo pipefail
dir=${1:-$(dirname "$0")}
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localhost 127.0.0.1 ::1)
san=""
for n in "${names[@]}"; do
    if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
done
san=${san%,}
mkdir -p "$dir"
cd "$dir"
umask 077
openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem
openssl req -x509 -new -key ca-key.pem -sha256 -days 825 -subj "/CN=sipcore test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem
openssl ecparam -name prime256v1 -genkey -noout -out key.pem
openssl req -new -key key.pem -subj "/CN=${names[0]}" -out server.csr
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 \
    -sha256 -extfile server.ext -out cert.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 644 ca.pem cert.pem
echo "$dir: ca.pem cert.pem key.pem for ${names[*]}"
