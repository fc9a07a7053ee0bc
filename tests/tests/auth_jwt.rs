//! Issue "authentication", part 4, end to end: `Authorization: Bearer <JWT>` (RFC 8898) checked
//! by `jwt_script_authorize()` and `check_to()` in a REGISTER route. A valid token binds; an
//! expired one, one not yet valid, one signed with another key, `alg: none`, one signed HS256
//! with the server's RSA public key as the secret, and bob's token in alice's REGISTER do not.
//!
//! The tokens are made here with OpenSSL (HMAC, RSA and ECDSA signatures) and serde_json, with
//! `exp`/`nbf` relative to the clock: nothing of the server's JWT code is used.
mod common;
use common::sipws::*;
use common::ws::connect_sip;
use common::*;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &str = "a shared secret of the web backend, 32+ bytes";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64url(data: &[u8]) -> String {
    openssl::base64::encode_block(data)
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_string()
}

enum Signing<'a> {
    Hmac(&'a [u8]),
    Rsa(&'a PKey<Private>),
    Ec(&'a EcKey<Private>),
    Unsigned,
}

/// A compact JWS of `claims` (RFC 7515 §7.1).
fn token(alg: &str, claims: Value, how: Signing<'_>) -> String {
    let header = json!({"alg": alg, "typ": "JWT"});
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = match how {
        Signing::Hmac(secret) => {
            let key = PKey::hmac(secret).unwrap();
            let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
            s.sign_oneshot_to_vec(input.as_bytes()).unwrap()
        }
        Signing::Rsa(key) => {
            let mut s = Signer::new(MessageDigest::sha256(), key).unwrap();
            s.sign_oneshot_to_vec(input.as_bytes()).unwrap()
        }
        Signing::Ec(key) => {
            // JWS wants R || S (RFC 7518 §3.4).
            let digest = openssl::sha::sha256(input.as_bytes());
            let sig = openssl::ecdsa::EcdsaSig::sign(&digest, key).unwrap();
            let mut raw = sig.r().to_vec_padded(32).unwrap();
            raw.extend(sig.s().to_vec_padded(32).unwrap());
            raw
        }
        Signing::Unsigned => Vec::new(),
    };
    format!("{input}.{}", b64url(&sig))
}

/// A script string literal of a PEM text (its newlines as `\n` escapes).
fn literal(pem: &[u8]) -> String {
    String::from_utf8(pem.to_vec())
        .unwrap()
        .trim_end()
        .replace('\n', "\\n")
}

/// The script picks one of its three keys by `X-Key` (as a server trusting several issuers
/// would by `iss`); REGISTERs need a valid token for the To user.
fn config(mi: u16, rsa_pub: &str, ec_pub: &str) -> String {
    format!(
        r#"
log_level = 3
mpath = "{{MPATH}}"
socket = ws:127.0.0.1:{{PORT}}
mi_http_port = {mi}
loadmodule "proto_ws.so"
loadmodule "sl.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth_jwt.so"
modparam("proto_ws", "require_origin", 0)
modparam("auth_jwt", "username_claim", "sub")
modparam("auth_jwt", "clock_skew", 30)
route {{
    if (!is_method("REGISTER")) {{ sl_send_reply(405, "Method Not Allowed"); exit; }}
    $var(key) = "{SECRET}";
    if ($hdr(X-Key) == "rsa") {{ $var(key) = "{rsa_pub}"; }}
    if ($hdr(X-Key) == "ec") {{ $var(key) = "{ec_pub}"; }}
    if (!jwt_script_authorize("$hdr(Authorization)", "$var(key)", $var(jwt), $var(user))) {{
        xlog("L_WARN", "jwt refused: rc=$rc decoded=$var(jwt)\n");
        sl_send_reply(401, "Unauthorized");
        exit;
    }}
    xlog("L_WARN", "jwt accepted: user=$var(user) au=$au decoded=$var(jwt)\n");
    if (!check_to()) {{ sl_send_reply(403, "Forbidden"); exit; }}
    consume_credentials();
    save("location");
    exit;
}}
"#
    )
}

fn register(to: &str, call_id: &str, cseq: u32, extra: &str) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS c.invalid;branch=z9hG4bK{call_id}x{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{to}@example.com>;tag=t{cseq}\r\nTo: <sip:{to}@example.com>\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{to}@{to}.invalid;transport=ws>\r\n\
         Expires: 600\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

async fn bound(srv: &Server, user: &str) -> usize {
    let aor = format!("{user}@example.com");
    match mi(&srv.cfg_path, &["ul_show_contact", "location", &aor]).await {
        Ok(v) => v["Contacts"].as_array().map_or(0, Vec::len),
        Err(_) => 0,
    }
}

#[tokio::test]
async fn bearer_tokens_register_only_their_own_user_while_valid() {
    let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let ec = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
    let rsa_pem = rsa.public_key_to_pem().unwrap();
    let ec_pem = PKey::from_ec_key(ec.clone())
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    let srv = Server::start(&config(free_port(), &literal(&rsa_pem), &literal(&ec_pem)));
    let mut ws = connect_sip(&srv.ws_url()).await;
    let t = now();
    let hs = |claims: Value| token("HS256", claims, Signing::Hmac(SECRET.as_bytes()));
    let bearer = |tok: &str, key: &str| {
        let x = if key.is_empty() {
            String::new()
        } else {
            format!("X-Key: {key}\r\n")
        };
        format!("Authorization: Bearer {tok}\r\n{x}")
    };
    let mut cseq = 0;
    let mut send = async |to: &str, extra: String| {
        cseq += 1;
        status(&ask(&mut ws, register(to, "j1", cseq, &extra)).await)
    };

    // Refused, each leaving alice unbound: no token; expired beyond the skew; not yet valid;
    // another secret; alg none; HS256 with the RSA public key's PEM as the secret; garbage.
    assert_eq!(send("alice", String::new()).await, 401);
    let expired = hs(json!({"sub": "alice", "exp": t - 120}));
    assert_eq!(send("alice", bearer(&expired, "")).await, 401);
    srv.wait_log(
        "authentication failed: user=alice realm= ip=127.0.0.1",
        Duration::from_secs(5),
    );
    srv.wait_log("reason=token expired", Duration::from_secs(5));
    let early = hs(json!({"sub": "alice", "nbf": t + 600, "exp": t + 1200}));
    assert_eq!(send("alice", bearer(&early, "")).await, 401);
    srv.wait_log("reason=token not yet valid", Duration::from_secs(5));
    let wrong = token(
        "HS256",
        json!({"sub": "alice", "exp": t + 300}),
        Signing::Hmac(b"not the server's secret, but long enough"),
    );
    assert_eq!(send("alice", bearer(&wrong, "")).await, 401);
    srv.wait_log("reason=token bad signature", Duration::from_secs(5));
    let none = token(
        "none",
        json!({"sub": "alice", "exp": t + 300}),
        Signing::Unsigned,
    );
    assert_eq!(send("alice", bearer(&none, "")).await, 401);
    srv.wait_log("reason=token alg none", Duration::from_secs(5));
    let confused = token(
        "HS256",
        json!({"sub": "alice", "exp": t + 300}),
        Signing::Hmac(&rsa_pem),
    );
    assert_eq!(send("alice", bearer(&confused, "rsa")).await, 401);
    srv.wait_log(
        "reason=token alg HS256 does not match the key, which verifies RS256",
        Duration::from_secs(5),
    );
    assert_eq!(send("alice", bearer("not.a.token", "")).await, 401);
    srv.wait_log("jwt refused: rc=-2 decoded=", Duration::from_secs(5));
    assert_eq!(bound(&srv, "alice").await, 0, "nothing bound");

    // bob's valid token in alice's REGISTER: authenticated as bob, check_to() refuses.
    let bobs = hs(json!({"sub": "bob", "exp": t + 300}));
    assert_eq!(send("alice", bearer(&bobs, "")).await, 403);
    assert_eq!(bound(&srv, "alice").await, 0, "bob bound nothing for alice");

    // Valid tokens, each algorithm: 200 and the binding; the outputs and $au are set.
    let good = hs(json!({"sub": "alice", "exp": t + 300, "nbf": t - 10}));
    assert_eq!(send("alice", bearer(&good, "")).await, 200);
    assert_eq!(bound(&srv, "alice").await, 1);
    srv.wait_log(
        "jwt accepted: user=alice au=alice decoded={\"alg\":\"HS256\",\"typ\":\"JWT\"}.{",
        Duration::from_secs(5),
    );
    let rs = token(
        "RS256",
        json!({"sub": "bob", "exp": t + 300}),
        Signing::Rsa(&rsa),
    );
    assert_eq!(send("bob", bearer(&rs, "rsa")).await, 200);
    assert_eq!(bound(&srv, "bob").await, 1);
    let es = token(
        "ES256",
        json!({"sub": "carol", "exp": t + 300}),
        Signing::Ec(&ec),
    );
    assert_eq!(send("carol", bearer(&es, "ec")).await, 200);
    assert_eq!(bound(&srv, "carol").await, 1);
    // An RS256 token where the HMAC secret is configured: refused (the key picks the alg).
    assert_eq!(send("bob", bearer(&rs, "")).await, 401);
}

/// `loadmodule "auth_jwt.so"` with OpenSIPS's modparams passes `sipcore -c`; a parameter
/// auth_jwt has not is an error at its file:line:col.
#[test]
fn auth_jwt_modparams_are_checked() {
    let head = "mpath = \"{MPATH}\"\nsocket = ws:127.0.0.1:{PORT}\nloadmodule \"proto_ws.so\"\n\
                loadmodule \"auth_jwt.so\"\n";
    let params = [
        "modparam(\"auth_jwt\", \"db_mode\", 0)",
        "modparam(\"auth_jwt\", \"db_url\", \"mysql://opensips:pw@localhost/opensips\")",
        "modparam(\"auth_jwt\", \"profiles_table\", \"jwt_profiles\")",
        "modparam(\"auth_jwt\", \"secrets_table\", \"jwt_secrets\")",
        "modparam(\"auth_jwt\", \"tag_column\", \"tag\")",
        "modparam(\"auth_jwt\", \"username_column\", \"sip_username\")",
        "modparam(\"auth_jwt\", \"secret_tag_column\", \"corresponding_tag\")",
        "modparam(\"auth_jwt\", \"secret_column\", \"secret\")",
        "modparam(\"auth_jwt\", \"start_ts_column\", \"start_ts\")",
        "modparam(\"auth_jwt\", \"end_ts_column\", \"end_ts\")",
        "modparam(\"auth_jwt\", \"tag_claim\", \"tag\")",
        "modparam(\"auth_jwt\", \"load_credentials\", \"\")",
        "modparam(\"auth_jwt\", \"username_claim\", \"preferred_username\")",
        "modparam(\"auth_jwt\", \"clock_skew\", 10)",
    ];
    let route =
        "route { if (!jwt_script_authorize(\"$hdr(Authorization)\", \"k\", $var(d))) exit; }\n";
    let dir = temp_dir("jwt-check");
    let check = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, render(&text, free_port())).unwrap();
        let out = std::process::Command::new(sipcore_bin())
            .args(["-c", "-f"])
            .arg(&p)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            p,
        )
    };
    let (ok, err, _) = check("ok.cfg", format!("{head}{}\n{route}", params.join("\n")));
    assert!(ok, "{err}");

    let (ok, err, p) = check(
        "bad.cfg",
        format!("{head}modparam(\"auth_jwt\", \"tag_claim\", \"tag\")\nmodparam(\"auth_jwt\", \"no_such\", 1)\n{route}"),
    );
    assert!(!ok, "an unknown auth_jwt parameter was accepted");
    assert!(
        err.contains(&format!(
            "{}:6:22: module 'auth_jwt' has no parameter 'no_such'",
            p.display()
        )),
        "{err}"
    );
    let (ok, err, p) = check(
        "dbmode.cfg",
        format!("{head}modparam(\"auth_jwt\", \"db_mode\", 1)\n{route}"),
    );
    assert!(!ok);
    assert!(
        err.contains(&format!("{}:5:33: auth_jwt db_mode: only 0", p.display())),
        "{err}"
    );
}
