//! One Via value: `SIP/2.0/WS host:port;branch=...;rport` (RFC 3261 §20.42,
//! §25.1 via-parm; RFC 3581 rport; RFC 7118 WS/WSS transports).

use std::net::Ipv6Addr;

use super::error::ParseError;
use super::params::Params;
use super::scan::{parse_u64, skip_ws, token_end};

/// RFC 3261 §8.1.1.7 magic cookie that starts every RFC 3261 branch.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// A parsed Via value borrowing from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    pub(crate) protocol: &'a str,
    pub(crate) version: &'a str,
    pub(crate) transport: &'a str,
    pub(crate) host: &'a str,
    pub(crate) port: Option<u16>,
    pub(crate) params: Params<'a>,
    /// The value of the first `branch` parameter, found by the parse.
    pub(crate) branch: Option<&'a str>,
}

/// Reads a token at `i` (after white space); error if empty.
fn token_at<'s>(s: &'s str, i: usize, what: &'static str) -> Result<(&'s str, usize), ParseError> {
    let b = s.as_bytes();
    let start = skip_ws(b, i);
    let end = token_end(b, start);
    match s.get(start..end) {
        Some(t) if !t.is_empty() => Ok((t, skip_ws(b, end))),
        _ => Err(ParseError::BadVia(what)),
    }
}

/// Expects `/` at `i`, returns the index after it and any white space.
fn slash_at(b: &[u8], i: usize) -> Result<usize, ParseError> {
    if b.get(i) == Some(&b'/') {
        Ok(skip_ws(b, i + 1))
    } else {
        Err(ParseError::BadVia("expected / in sent-protocol"))
    }
}

impl<'a> Via<'a> {
    /// Parses one via-parm (one element of a comma-separated Via header):
    /// `sent-protocol LWS sent-by *( SEMI via-params )`, with LWS allowed around
    /// `/`, `:`, `;` and `=` (RFC 4475 §3.1.1.1).
    ///
    /// Checks the parameters RFC 3261 §20.42 defines: `branch`, `received` and
    /// `maddr` need a value, `ttl` is 0..=255, `rport` is valueless or a port.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        let b = s.as_bytes();
        let (protocol, i) = token_at(s, 0, "missing protocol name")?;
        let i = slash_at(b, i)?;
        let (version, i) = token_at(s, i, "missing protocol version")?;
        let i = slash_at(b, i)?;
        let (transport, i) = token_at(s, i, "missing transport")?;
        let start = i;
        let mut i = if b.get(i) == Some(&b'[') {
            let close = s
                .get(i..)
                .and_then(|t| t.find(']'))
                .map(|c| i + c + 1)
                .ok_or(ParseError::BadVia("unterminated IPv6 reference"))?;
            if s.get(start + 1..close - 1)
                .and_then(|a| a.parse::<Ipv6Addr>().ok())
                .is_none()
            {
                return Err(ParseError::BadVia("bad IPv6 address"));
            }
            close
        } else {
            let mut j = i;
            while j < b.len()
                && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'-' | b'.' | b'_'))
            {
                j += 1;
            }
            j
        };
        if i == start {
            return Err(ParseError::BadVia("missing sent-by host"));
        }
        let host = s.get(start..i).unwrap_or("");
        i = skip_ws(b, i);
        let mut port = None;
        if b.get(i) == Some(&b':') {
            let ps = skip_ws(b, i + 1);
            let pe = ps
                + b.get(ps..)
                    .unwrap_or(&[])
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
            port = Some(
                s.get(ps..pe)
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or(ParseError::BadVia("bad sent-by port"))?,
            );
            i = pe;
        }
        // The parameters' values are checked as the list is (one walk), and the branch kept.
        let mut branch = None;
        let mut bad = false;
        let params = Params::parse_header_with(s.get(i..).unwrap_or(""), |name, value| {
            let ok = if name.eq_ignore_ascii_case("branch") {
                if branch.is_none() {
                    branch = Some(value.unwrap_or_default());
                }
                value.is_some()
            } else if name.eq_ignore_ascii_case("received") || name.eq_ignore_ascii_case("maddr") {
                value.is_some()
            } else if name.eq_ignore_ascii_case("ttl") {
                value
                    .and_then(|v| parse_u64(v).ok())
                    .is_some_and(|v| v <= 255)
            } else if name.eq_ignore_ascii_case("rport") {
                value.is_none_or(|v| v.parse::<u16>().is_ok())
            } else {
                true
            };
            // The grammar of the whole list decides first, as it always did.
            bad |= !ok;
        })?;
        if bad {
            return Err(ParseError::BadVia(
                "bad branch, received, maddr, ttl or rport",
            ));
        }
        Ok(Via {
            protocol,
            version,
            transport,
            host,
            port,
            params,
            branch,
        })
    }

    /// The protocol name, normally `SIP`.
    pub fn protocol(&self) -> &'a str {
        self.protocol
    }

    /// The protocol version, normally `2.0`.
    pub fn version(&self) -> &'a str {
        self.version
    }

    /// The transport token as written (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, `WSS`, ...).
    pub fn transport(&self) -> &'a str {
        self.transport
    }

    /// The sent-by host; IPv6 references keep their brackets.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The sent-by port, if given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// All via-params.
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// Looks up one parameter (see [`Params::get`]).
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params.get(name)
    }

    /// The `branch` parameter (RFC 3261 §8.1.1.7), if any.
    pub fn branch(&self) -> Option<&'a str> {
        self.branch
    }

    /// Whether the branch starts with the RFC 3261 magic cookie.
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.starts_with(BRANCH_MAGIC_COOKIE))
    }

    /// The `received` parameter (RFC 3261 §18.2.1), if any.
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }

    /// The `rport` parameter (RFC 3581 §3): `None` if absent, `Some(None)` if
    /// present without a value, `Some(Some(port))` if filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|v| v.parse::<u16>().ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_via() {
        let v = Via::parse("SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK1234;rport").unwrap();
        assert_eq!(
            (v.protocol(), v.version(), v.transport()),
            ("SIP", "2.0", "WS")
        );
        assert_eq!(v.host(), "df7jal23ls0d.invalid");
        assert_eq!(v.port(), None);
        assert_eq!(v.branch(), Some("z9hG4bK1234"));
        assert!(v.is_rfc3261_branch());
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), None);
    }

    #[test]
    fn lws_everywhere() {
        let v = Via::parse("SIP  /    2.0   / UDP  192.168.255.111   ; branch=   z9hG4bK30239")
            .unwrap();
        assert_eq!(
            (v.protocol(), v.version(), v.transport()),
            ("SIP", "2.0", "UDP")
        );
        assert_eq!(v.host(), "192.168.255.111");
        assert_eq!(v.branch(), Some("z9hG4bK30239"));
        let v = Via::parse(" SIP/2.0/TCP  host.example.com : 5061 ;received=192.0.2.5;rport=5070")
            .unwrap();
        assert_eq!(v.port(), Some(5061));
        assert_eq!(v.received(), Some("192.0.2.5"));
        assert_eq!(v.rport(), Some(Some(5070)));
        assert_eq!(v.branch(), None);
    }

    #[test]
    fn ipv6_sent_by() {
        let v = Via::parse(
            "SIP/2.0/UDP [2001:db8::9:1]:5060;received=[2001:db8::9:255];branch=z9hG4bKas3",
        )
        .unwrap();
        assert_eq!(v.host(), "[2001:db8::9:1]");
        assert_eq!(v.port(), Some(5060));
        assert_eq!(v.received(), Some("[2001:db8::9:255]"));
        assert!(Via::parse("SIP/2.0/UDP [2001:db8::9:1;branch=z9hG4bKx").is_err());
        assert!(Via::parse("SIP/2.0/UDP [fe80:::1]").is_err());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "SIP/2.0",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ;branch=x",
            "SIP 2.0/UDP h",
            "SIP/2.0/UDP h:",
            "SIP/2.0/UDP h:70000",
            "SIP/2.0/UDP 192.0.2.15;;",
            ";",
            "SIP/2.0/UDP h;branch",
            "SIP/2.0/UDP h;ttl=256",
            "SIP/2.0/UDP h;rport=x",
            "SIP/2.0/UDP h;received",
            "SIP/2.0/UDP h junk",
            "/2.0/UDP h",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad:?}");
        }
    }
}
