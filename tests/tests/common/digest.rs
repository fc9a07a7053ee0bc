//! Digest authentication for raw test clients against configurations that authenticate (the
//! bundled default config): users added with `sipcore user add`, and MD5 credentials
//! (RFC 2617 §3.2.2, `qop=auth`) computed with the `md-5` crate, independently of the
//! server's own digest code. Every user has the password [`PASSWORD`].
#![allow(dead_code)]
use super::ws::{next_text, send_text, status, Ws};
use super::{header, headers, sipcore_bin, Server};
use md5::{Digest, Md5};
use std::process::Command;

/// The password of every user [`add_users`] adds.
pub const PASSWORD: &str = "s3cret";

/// Add `users` (`alice` or `alice@domain`; `example.com` when no domain is given) with
/// [`PASSWORD`] to the user database of `srv`'s configuration, through `sipcore user add`.
pub fn add_users(srv: &Server, users: &[&str]) {
    for u in users {
        let aor = if u.contains('@') {
            u.to_string()
        } else {
            format!("{u}@example.com")
        };
        let out = Command::new(sipcore_bin())
            .args(["user", "add", &aor, "--password", PASSWORD, "-f"])
            .arg(&srv.cfg_path)
            .output()
            .expect("run sipcore user add");
        assert!(
            out.status.success(),
            "sipcore user add {aor} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// MD5 of `s`, in lowercase hex.
pub fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of `name=` in a challenge (quoted or not).
pub fn param(challenge: &str, name: &str) -> Option<String> {
    let at = challenge.find(&format!("{name}="))? + name.len() + 1;
    let rest = &challenge[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => q[..q.find('"')?].to_string(),
        None => rest
            .split([',', ' ', '\r'])
            .next()
            .unwrap_or("")
            .to_string(),
    })
}

/// MD5 Digest credentials for `user` answering `challenge`, `qop=auth` with nonce count `nc`.
pub fn credentials(
    challenge: &str,
    user: &str,
    pw: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let realm = param(challenge, "realm").expect("realm");
    let nonce = param(challenge, "nonce").expect("nonce");
    let ha1 = md5_hex(&format!("{user}:{realm}:{pw}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let r = md5_hex(&format!("{ha1}:{nonce}:{nc}:0a4f113b:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{r}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"0a4f113b\""
    )
}

/// Is `reply` a challenge (401 or 407)?
pub fn is_challenge(reply: &str) -> bool {
    matches!(status(reply), 401 | 407)
}

/// `req` sent again answering the challenge in `reply` (its 401 or 407) as the user of its
/// From with [`PASSWORD`]: a new branch, CSeq one higher, and the `Authorization` (401) or
/// `Proxy-Authorization` (407) header with the MD5 credentials.
pub fn authorize(req: &str, reply: &str) -> String {
    let (hdr, name) = match status(reply) {
        401 => ("WWW-Authenticate", "Authorization"),
        407 => ("Proxy-Authenticate", "Proxy-Authorization"),
        s => panic!("not a challenge ({s}): {reply}"),
    };
    let challenge = headers(reply, hdr)
        .into_iter()
        .find(|c| c.contains("algorithm=MD5"))
        .unwrap_or_else(|| panic!("no MD5 challenge in {reply}"));
    let line = req.split("\r\n").next().unwrap();
    let mut parts = line.split(' ');
    let (method, uri) = (parts.next().unwrap(), parts.next().unwrap());
    let from = header(req, "From").expect("From");
    let user = from
        .split("sip:")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .expect("a user in From");
    let creds = credentials(challenge, user, PASSWORD, method, uri, 1);
    let cseq = header(req, "CSeq").expect("CSeq");
    let n: u32 = cseq.split(' ').next().unwrap().parse().unwrap();
    let bumped = cseq.replacen(&n.to_string(), &(n + 1).to_string(), 1);
    let out = req
        .replacen(
            &format!("CSeq: {cseq}\r\n"),
            &format!("CSeq: {bumped}\r\n"),
            1,
        )
        .replacen("branch=z9hG4bK", "branch=z9hG4bKau", 1);
    let head_end = out.find("\r\n").unwrap() + 2;
    format!(
        "{}{name}: {creds}\r\n{}",
        &out[..head_end],
        &out[head_end..]
    )
}

/// Send `req`, which the server must challenge; then send it again with credentials
/// ([`authorize`]) and return what was sent. Its answer is left to read: it may come only
/// after a callee answers.
pub async fn send_authorized(ws: &mut Ws, req: String) -> String {
    send_text(ws, req.clone()).await;
    let reply = next_text(ws).await;
    assert!(is_challenge(&reply), "not challenged: {reply}");
    let signed = authorize(&req, &reply);
    send_text(ws, signed.clone()).await;
    signed
}

/// Send `req` and return its answer; a challenge is answered once ([`authorize`]) and the
/// answer to the authorized request returned. Without authentication it is a plain ask.
pub async fn ask_authorized(ws: &mut Ws, req: String) -> String {
    send_text(ws, req.clone()).await;
    let reply = next_text(ws).await;
    if !is_challenge(&reply) {
        return reply;
    }
    send_text(ws, authorize(&req, &reply)).await;
    next_text(ws).await
}

/// [`authorize`] for a request whose body need not be UTF-8 (the head must be).
pub fn authorize_bytes(req: &[u8], reply: &str) -> Vec<u8> {
    let end = req
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head")
        + 4;
    let head = std::str::from_utf8(&req[..end]).expect("a UTF-8 head");
    let mut out = authorize(head, reply).into_bytes();
    out.extend_from_slice(&req[end..]);
    out
}
