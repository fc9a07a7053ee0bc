//! The client side of SIP digest authentication (RFC 3261 §22.4, RFC 2617 §3.2.2 with
//! `qop=auth`): pick the MD5 challenge of a 401 (a server may offer SHA-512-256, SHA-256 and MD5
//! as separate `WWW-Authenticate` headers, RFC 8760 §2.4), and build the `Authorization` header,
//! counting `nc` up for each request that reuses the nonce.

use md5::{Digest, Md5};
use std::fmt::Write as _;

/// The parameters of one MD5 `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back when present.
    pub opaque: Option<String>,
    /// The server offered `qop="auth"`; without it the RFC 2069 form is used.
    pub qop_auth: bool,
    /// `stale=true`: the credentials were right, only the nonce had expired.
    pub stale: bool,
}

/// Lowercase hex of an MD5 digest of `parts` joined by `:`.
fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    let mut s = String::with_capacity(32);
    for b in h.finalize() {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// HA1 = MD5(user:realm:password), what a subscriber table stores in `ha1`.
pub fn ha1(user: &str, realm: &str, password: &str) -> String {
    md5_hex(&[user, realm, password])
}

/// The password of bench user number `n`: known to the load generator and the scripts that
/// fill the user tables (`pw<n>`).
pub fn password(n: usize) -> String {
    format!("pw{n}")
}

/// Split the parameter list of a `Digest` challenge into `(name, value)` pairs, unquoting
/// quoted-string values (no backslash escapes: none of the values used here has them).
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            value = r[..end].to_string();
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.push((name, value));
    }
    out
}

/// The MD5 challenge among the `WWW-Authenticate` (or `Proxy-Authenticate`) headers of the
/// response `msg`: the one whose `algorithm` is MD5 or absent (RFC 2617's default).
pub fn md5_challenge(msg: &[u8]) -> Option<Challenge> {
    let text = std::str::from_utf8(msg).ok()?;
    let head = text.split("\r\n\r\n").next()?;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if !name.eq_ignore_ascii_case("www-authenticate")
            && !name.eq_ignore_ascii_case("proxy-authenticate")
        {
            continue;
        }
        let value = value.trim();
        let Some(scheme_end) = value.find(' ') else {
            continue;
        };
        if !value[..scheme_end].eq_ignore_ascii_case("digest") {
            continue;
        }
        let p = params(&value[scheme_end..]);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if !get("algorithm").is_none_or(|a| a.eq_ignore_ascii_case("md5")) {
            continue;
        }
        return Some(Challenge {
            realm: get("realm")?.to_string(),
            nonce: get("nonce")?.to_string(),
            opaque: get("opaque").map(str::to_string),
            qop_auth: get("qop")
                .is_some_and(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth"))),
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        });
    }
    None
}

/// Append `Authorization: Digest ...` (with CRLF) answering `ch` for `method uri` as `user`
/// whose HA1 is `ha1`, with nonce count `nc` and client nonce `cnonce`.
pub fn write_authorization(
    out: &mut String,
    ch: &Challenge,
    auth: (&str, &str),
    req: (&str, &str),
    nc: u32,
    cnonce: &str,
) {
    let (user, ha1) = auth;
    let (method, uri) = req;
    let ha2 = md5_hex(&[method, uri]);
    let _ = write!(
        out,
        "Authorization: Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", ",
        ch.realm, ch.nonce
    );
    if ch.qop_auth {
        let nc = format!("{nc:08x}");
        let resp = md5_hex(&[ha1, &ch.nonce, &nc, cnonce, "auth", &ha2]);
        let _ = write!(
            out,
            "response=\"{resp}\", algorithm=MD5, cnonce=\"{cnonce}\", qop=auth, nc={nc}"
        );
    } else {
        let resp = md5_hex(&[ha1, &ch.nonce, &ha2]);
        let _ = write!(out, "response=\"{resp}\", algorithm=MD5");
    }
    if let Some(o) = &ch.opaque {
        let _ = write!(out, ", opaque=\"{o}\"");
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_md5_challenge_of_several() {
        let r = b"SIP/2.0 401 Unauthorized\r\nCSeq: 1 REGISTER\r\n\
            WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\", algorithm=SHA-512-256\r\n\
            WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n2\", qop=\"auth\", algorithm=SHA-256\r\n\
            WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n3\", qop=\"auth,auth-int\", algorithm=MD5, stale=true\r\n\
            Content-Length: 0\r\n\r\n";
        let c = md5_challenge(r).unwrap();
        assert_eq!((c.nonce.as_str(), c.qop_auth, c.stale), ("n3", true, true));
        let k = b"SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"x\", nonce=\"abc\", opaque=\"o\"\r\n\r\n";
        let c = md5_challenge(k).unwrap();
        assert_eq!(
            (c.realm.as_str(), c.opaque.as_deref(), c.qop_auth),
            ("x", Some("o"), false)
        );
    }

    #[test]
    fn rfc2617_example_response() {
        // RFC 2617 §3.5 (an HTTP example, the same computation).
        let ch = Challenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            qop_auth: true,
            stale: false,
        };
        let h = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        let mut out = String::new();
        write_authorization(
            &mut out,
            &ch,
            ("Mufasa", &h),
            ("GET", "/dir/index.html"),
            1,
            "0a4f113b",
        );
        assert!(
            out.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{out}"
        );
        assert!(out.contains("nc=00000001"), "{out}");
    }
}
