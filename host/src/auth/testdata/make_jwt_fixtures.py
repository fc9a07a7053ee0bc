#!/usr/bin/env python3
"""Make the JWT fixtures of host/src/auth/jwt.rs's tests with an independent implementation
(Python's `cryptography` package; no JWT library): fresh keys, then tokens signed with them.

Run from anywhere: python3 host/src/auth/testdata/make_jwt_fixtures.py
Writes, beside this script: hs256.secret, rsa.pem, rsa_other.pem, ec.pem, ec_other.pem,
ec384.pem (public keys only; the private ones are thrown away) and tokens.json.
"""
import base64
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = Path(__file__).resolve().parent
FAR = 4102444800  # 2100-01-01T00:00:00Z
PAST = 1700000000  # 2023-11-14T22:13:20Z


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(obj) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def pem(public_key) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def hs256(secret: bytes, header, claims) -> str:
    signing_input = f"{part(header)}.{part(claims)}"
    h = hmac.HMAC(secret, hashes.SHA256())
    h.update(signing_input.encode())
    return f"{signing_input}.{b64(h.finalize())}"


def rs256(key, header, claims) -> str:
    signing_input = f"{part(header)}.{part(claims)}"
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(sig)}"


def es256(key, header, claims, raw=True) -> str:
    signing_input = f"{part(header)}.{part(claims)}"
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    if not raw:  # the DER form, which JWS does not use (RFC 7518 §3.4)
        return f"{signing_input}.{b64(der)}"
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def main():
    secret = b64(os.urandom(32)).encode()  # 43 printable bytes, as a script would hold it
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_other = ec.generate_private_key(ec.SECP256R1())
    ec384 = ec.generate_private_key(ec.SECP384R1())
    rsa_pem = pem(rsa_key.public_key())

    alice = {"sub": "alice", "exp": FAR, "iat": PAST}
    hs = {"alg": "HS256", "typ": "JWT"}
    rs = {"alg": "RS256", "typ": "JWT"}
    es = {"alg": "ES256", "typ": "JWT"}
    tokens = {
        "hs256_valid": hs256(secret, hs, alice),
        "rs256_valid": rs256(rsa_key, rs, alice),
        "es256_valid": es256(ec_key, es, alice),
        # exp PAST: expired once now > PAST + skew.
        "hs256_exp_past": hs256(secret, hs, {"sub": "alice", "exp": PAST}),
        # nbf FAR: not yet valid.
        "hs256_nbf_far": hs256(secret, hs, {"sub": "alice", "nbf": FAR, "exp": FAR + 60}),
        # nbf PAST, exp PAST + 3600: valid only around PAST.
        "hs256_window": hs256(secret, hs, {"sub": "alice", "nbf": PAST, "exp": PAST + 3600}),
        "rs256_other_key": rs256(rsa_other, rs, alice),
        "es256_other_key": es256(ec_other, es, alice),
        "es256_der_signature": es256(ec_key, es, alice, raw=False),
        "hs256_other_secret": hs256(b"another secret of more than 32 bytes!", hs, alice),
        # The classic confusion: HS256 with the RSA public key's PEM text as the secret.
        "rs_pem_as_hs256_secret": hs256(rsa_pem.encode(), hs, alice),
        "alg_none": f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(alice)}.",
        "hs256_crit": hs256(secret, {"alg": "HS256", "crit": ["exp2"], "exp2": 1}, alice),
        "hs256_bob": hs256(secret, hs, {"sub": "bob", "exp": FAR}),
        "hs256_no_sub": hs256(secret, hs, {"exp": FAR, "name": "alice"}),
        "hs256_sip_user": hs256(
            secret, hs, {"sub": "42", "sip_user": "alice@example.com", "exp": FAR}
        ),
        "hs256_sub_number": hs256(secret, hs, {"sub": 42, "exp": FAR}),
        "hs256_exp_string": hs256(secret, hs, {"sub": "alice", "exp": "never"}),
        "hs256_claims_array": hs256(secret, hs, ["alice"]),
    }
    (HERE / "hs256.secret").write_bytes(secret)
    (HERE / "rsa.pem").write_text(rsa_pem)
    (HERE / "rsa_other.pem").write_text(pem(rsa_other.public_key()))
    (HERE / "ec.pem").write_text(pem(ec_key.public_key()))
    (HERE / "ec_other.pem").write_text(pem(ec_other.public_key()))
    (HERE / "ec384.pem").write_text(pem(ec384.public_key()))
    (HERE / "tokens.json").write_text(json.dumps(tokens, indent=1) + "\n")


if __name__ == "__main__":
    main()
