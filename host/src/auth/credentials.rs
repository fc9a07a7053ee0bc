//! The `Authorization` / `Proxy-Authorization` header value of the Digest scheme (RFC 3261
//! §25.1 `credentials`, `digest-response`; RFC 7616 §3.4), parsed without allocating unless a
//! quoted value holds escapes. Unknown parameters are ignored (RFC 7616 §3.4: "MUST ignore");
//! a parameter given twice, a missing required one or a malformed value is an error.
use std::borrow::Cow;
use thiserror::Error;

/// Why a credentials value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialsError {
    /// Another scheme than Digest (e.g. `Bearer`, handled elsewhere).
    #[error("not Digest credentials")]
    NotDigest,
    /// The parameter list does not follow the grammar.
    #[error("malformed credentials at byte {0}")]
    Syntax(usize),
    /// A parameter appears twice.
    #[error("parameter {0} given twice")]
    Duplicate(&'static str),
    /// A required parameter is missing.
    #[error("parameter {0} missing")]
    Missing(&'static str),
    /// `qop=auth` without `nc`/`cnonce`, an `nc` that is not 8 hex digits, or another qop.
    #[error("bad qop parameters: {0}")]
    Qop(&'static str),
}

/// Digest credentials (the parameters sipcore uses).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials<'a> {
    /// `username` (or, with `userhash=true`, its hash).
    pub username: Cow<'a, str>,
    /// `realm`.
    pub realm: Cow<'a, str>,
    /// `nonce`.
    pub nonce: Cow<'a, str>,
    /// `uri` (digest-uri).
    pub uri: Cow<'a, str>,
    /// `response` (hex).
    pub response: Cow<'a, str>,
    /// `algorithm`, if given (absent = MD5).
    pub algorithm: Option<Cow<'a, str>>,
    /// `cnonce`.
    pub cnonce: Option<Cow<'a, str>>,
    /// `opaque`.
    pub opaque: Option<Cow<'a, str>>,
    /// `qop` (only `auth` is accepted).
    pub qop: Option<Cow<'a, str>>,
    /// `nc`, as sent, and its value.
    pub nc: Option<(Cow<'a, str>, u32)>,
    /// `userhash=true` (RFC 7616 §3.4.4).
    pub userhash: bool,
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

fn skip_lws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// One `name = value` at `i`; returns name, value (unescaped) and the index after it.
fn param(s: &str, i: usize) -> Result<(&str, Cow<'_, str>, usize), CredentialsError> {
    let b = s.as_bytes();
    let start = i;
    let mut i = i;
    while i < b.len() && is_token(b[i]) {
        i += 1;
    }
    if i == start {
        return Err(CredentialsError::Syntax(i));
    }
    let name = &s[start..i];
    i = skip_lws(b, i);
    if b.get(i) != Some(&b'=') {
        return Err(CredentialsError::Syntax(i));
    }
    i = skip_lws(b, i + 1);
    if b.get(i) == Some(&b'"') {
        i += 1;
        let vstart = i;
        let mut owned: Option<String> = None;
        loop {
            match b.get(i) {
                None => return Err(CredentialsError::Syntax(i)),
                Some(b'"') => break,
                Some(b'\\') => {
                    let next = *b.get(i + 1).ok_or(CredentialsError::Syntax(i))?;
                    if next > 0x7f || next == b'\r' || next == b'\n' {
                        return Err(CredentialsError::Syntax(i));
                    }
                    owned
                        .get_or_insert_with(|| s[vstart..i].to_string())
                        .push(char::from(next));
                    i += 2;
                }
                Some(&c) if c < 0x80 => {
                    if let Some(o) = owned.as_mut() {
                        o.push(char::from(c));
                    }
                    i += 1;
                }
                Some(_) => {
                    // A whole UTF-8 character (quoted-string allows UTF8-NONASCII).
                    let ch = s[i..].chars().next().ok_or(CredentialsError::Syntax(i))?;
                    if let Some(o) = owned.as_mut() {
                        o.push(ch);
                    }
                    i += ch.len_utf8();
                }
            }
        }
        let value = match owned {
            Some(o) => Cow::Owned(o),
            None => Cow::Borrowed(&s[vstart..i]),
        };
        Ok((name, value, i + 1))
    } else {
        let vstart = i;
        while i < b.len() && is_token(b[i]) {
            i += 1;
        }
        if i == vstart {
            return Err(CredentialsError::Syntax(i));
        }
        Ok((name, Cow::Borrowed(&s[vstart..i]), i))
    }
}

/// The parameters sipcore reads, the required ones first.
const NAMES: [&str; 11] = [
    "username",
    "realm",
    "nonce",
    "uri",
    "response",
    "algorithm",
    "cnonce",
    "opaque",
    "qop",
    "nc",
    "userhash",
];

/// Parse a Digest credentials value (`Digest username="alice", realm=...`).
pub fn parse(value: &str) -> Result<Credentials<'_>, CredentialsError> {
    let b = value.as_bytes();
    let mut i = skip_lws(b, 0);
    let scheme_end = b[i..]
        .iter()
        .position(|c| !is_token(*c))
        .map_or(b.len(), |p| i + p);
    if !value[i..scheme_end].eq_ignore_ascii_case("Digest") {
        return Err(CredentialsError::NotDigest);
    }
    i = skip_lws(b, scheme_end);
    let mut c = Credentials::default();
    let mut seen: u16 = 0;
    let mut nc_text: Option<Cow<'_, str>> = None;
    loop {
        let (name, v, next) = param(value, i)?;
        if let Some(k) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) {
            let bit = 1u16 << k;
            if seen & bit != 0 {
                return Err(CredentialsError::Duplicate(NAMES[k]));
            }
            seen |= bit;
            match NAMES[k] {
                "username" => c.username = v,
                "realm" => c.realm = v,
                "nonce" => c.nonce = v,
                "uri" => c.uri = v,
                "response" => c.response = v,
                "algorithm" => c.algorithm = Some(v),
                "cnonce" => c.cnonce = Some(v),
                "opaque" => c.opaque = Some(v),
                "qop" => c.qop = Some(v),
                "nc" => nc_text = Some(v),
                _ => c.userhash = v.eq_ignore_ascii_case("true"),
            }
        }
        i = skip_lws(b, next);
        match b.get(i) {
            None => break,
            Some(b',') => i = skip_lws(b, i + 1),
            Some(_) => return Err(CredentialsError::Syntax(i)),
        }
    }
    // The first five of NAMES are required.
    if let Some(k) = (0..5).find(|k| seen & (1 << k) == 0) {
        return Err(CredentialsError::Missing(NAMES[k]));
    }
    match (&c.qop, nc_text, &c.cnonce) {
        (None, None, _) => {}
        (Some(q), Some(nc), Some(_)) if q.eq_ignore_ascii_case("auth") => {
            let ok = nc.len() == 8 && nc.bytes().all(|d| d.is_ascii_hexdigit());
            let n = u32::from_str_radix(&nc, 16)
                .ok()
                .filter(|_| ok)
                .ok_or(CredentialsError::Qop("nc is not 8 hex digits"))?;
            c.nc = Some((nc, n));
        }
        (Some(q), _, _) if !q.eq_ignore_ascii_case("auth") => {
            return Err(CredentialsError::Qop("only qop=auth is offered"))
        }
        _ => return Err(CredentialsError::Qop("qop, nc and cnonce go together")),
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jssip_style_credentials() {
        let v = "Digest algorithm=MD5, username=\"alice\", realm=\"example.com\", \
                 nonce=\"abc\", uri=\"sip:example.com\", response=\"0123abcd\", \
                 qop=auth, cnonce=\"xyz\", nc=0000000a, opaque=\"op\"";
        let c = parse(v).unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.realm, "example.com");
        assert_eq!(c.uri, "sip:example.com");
        assert_eq!(c.algorithm.as_deref(), Some("MD5"));
        assert_eq!(c.nc.as_ref().map(|n| n.1), Some(10));
        assert_eq!(c.opaque.as_deref(), Some("op"));
        assert!(matches!(c.username, Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_case_and_unknown_parameters() {
        let v = "digest USERNAME=\"a\\\"b\", Realm=r, nonce=\"n\",uri=\"u\",response=\"x\",\
                 foo=\"bar, baz\", userhash=true";
        let c = parse(v).unwrap();
        assert_eq!(c.username, "a\"b");
        assert_eq!(c.realm, "r");
        assert!(c.userhash);
        assert_eq!(c.qop, None);
    }

    #[test]
    fn refusals() {
        let base = "username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"";
        assert_eq!(
            parse(&format!("Bearer {base}")),
            Err(CredentialsError::NotDigest)
        );
        assert_eq!(
            parse(&format!("Digest {base}, realm=\"s\"")),
            Err(CredentialsError::Duplicate("realm"))
        );
        assert_eq!(
            parse("Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\""),
            Err(CredentialsError::Missing("response"))
        );
        assert!(matches!(
            parse(&format!("Digest {base}, qop=auth, nc=1, cnonce=\"c\"")),
            Err(CredentialsError::Qop(_))
        ));
        assert!(matches!(
            parse(&format!(
                "Digest {base}, qop=auth-int, nc=00000001, cnonce=\"c\""
            )),
            Err(CredentialsError::Qop(_))
        ));
        assert!(matches!(
            parse(&format!("Digest {base}, qop=auth")),
            Err(CredentialsError::Qop(_))
        ));
        assert!(matches!(
            parse(&format!("Digest {base}, nc=00000001")),
            Err(CredentialsError::Qop(_))
        ));
        for bad in [
            "Digest username=\"a",
            "Digest username=",
            "Digest =x",
            "Digest username=\"a\" realm=\"r\"",
            "Digest username=\"a\\",
        ] {
            assert!(
                matches!(parse(bad), Err(CredentialsError::Syntax(_))),
                "{bad}"
            );
        }
    }
}
