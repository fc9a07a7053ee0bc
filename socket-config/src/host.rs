//! `host[:ports]`: IP literals, bracketed IPv6, quoted names, `*`, host/interface names and the
//! port forms `N`, `N-M`, `N,M,...`, `any`.

use crate::cursor::Cursor;
use crate::error::{SocketError, SocketErrorKind as K};
use crate::types::{Host, Ports};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A parsed `host[:ports]` and where its ports started (for later count checks).
pub(crate) struct HostPorts {
    /// The host.
    pub host: Host,
    /// The ports, if any (`any` gives `None`).
    pub ports: Option<Ports>,
    /// Absolute offset of the ports token (meaningful only if a `:` was present).
    pub ports_off: usize,
}

/// True for an RFC 1123 §2.1 host name (labels of letters, digits, `-`, not starting or ending
/// with `-`, 1-63 bytes, 253 in all). `_` is also accepted, as the OpenSIPS lexer does (and
/// interface names such as `br_lan` need it).
pub(crate) fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// True when `s` would be taken for an IPv4 literal (only digits and dots).
pub(crate) fn is_dotted_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Classify a host token: IPv4 literal, (IPv6 literal when `v6` is allowed,) or name.
fn classify(c: &Cursor, off: usize, text: &str, v6: bool) -> Result<Host, SocketError> {
    if is_dotted_digits(text) {
        return text
            .parse::<Ipv4Addr>()
            .map(Host::V4)
            .map_err(|_| c.err(off, K::BadIpv4));
    }
    if v6 {
        if let Ok(ip) = text.parse::<Ipv6Addr>() {
            return Ok(Host::V6(ip));
        }
    }
    if is_hostname(text) {
        Ok(Host::Name(text.to_owned()))
    } else {
        Err(c.err(off, K::BadHost))
    }
}

/// True when the whitespace-delimited token `t` must be read as a bare IPv6 address: at least
/// two colons, and at most four hex digits before the first one.
fn looks_like_bare_v6(t: &str) -> bool {
    let Some((head, _)) = t.split_once(':') else {
        return false;
    };
    t.bytes().filter(|&b| b == b':').count() >= 2
        && head.len() <= 4
        && head.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A bare IPv6 token `t`. Accepted only when it cannot also be read as `address:ports`: if the
/// text before its last `:` is itself an IPv6 address and the text after it is shaped like
/// ports (a digit followed by digits, `-`, `,`; or `any`), brackets are demanded. So `::1`,
/// `2001:db8::1`, `fe80::` and `::ffff:1.2.3.4` are accepted, while `2001:db8::1:5060` (also a
/// valid address!), `2001:db8:::1` and `fe80::1:2` are refused.
fn bare_v6(c: &Cursor, off: usize, t: &str) -> Result<Host, SocketError> {
    let port_like = t.rsplit_once(':').is_some_and(|(addr, port)| {
        addr.parse::<Ipv6Addr>().is_ok()
            && (port.bytes().next().is_some_and(|b| b.is_ascii_digit())
                && port
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'-' || b == b',')
                || port.eq_ignore_ascii_case("any"))
    });
    if port_like {
        return Err(c.err(off, K::Ipv6NeedsBrackets));
    }
    t.parse::<Ipv6Addr>()
        .map(Host::V6)
        .map_err(|_| c.err(off, K::BadIpv6))
}

/// Parse `host[:ports]` at the cursor; stops at whitespace or the window end. `*` is refused
/// unless `allow_any` (it makes no sense as an advertised address).
pub(crate) fn parse_host_ports(c: &mut Cursor, allow_any: bool) -> Result<HostPorts, SocketError> {
    let start = c.pos();
    let host = match c.peek() {
        None => return Err(c.err(start, K::EmptyHost)),
        Some(b) if b.is_ascii_whitespace() => return Err(c.err(start, K::EmptyHost)),
        Some(b'[') => {
            let close = c.find_from(start + 1, |b| b == b']');
            if c.byte_at(close) != Some(b']') {
                return Err(c.err(start, K::UnterminatedBracket));
            }
            let ip = c
                .slice(start + 1, close)
                .parse::<Ipv6Addr>()
                .map_err(|_| c.err(start, K::BadIpv6))?;
            c.set_pos(close + 1);
            Host::V6(ip)
        }
        Some(b'"') => {
            let close = c.find_from(start + 1, |b| b == b'"');
            if c.byte_at(close) != Some(b'"') {
                return Err(c.err(start, K::UnterminatedQuote));
            }
            let text = c.slice(start + 1, close);
            if text.is_empty() {
                return Err(c.err(start, K::EmptyHost));
            }
            let host = classify(c, start, text, true)?;
            c.set_pos(close + 1);
            host
        }
        Some(_) => {
            let (_, tok_end, token) = c.peek_token();
            if looks_like_bare_v6(token) {
                let host = bare_v6(c, start, token)?;
                c.set_pos(tok_end);
                return Ok(HostPorts {
                    host,
                    ports: None,
                    ports_off: tok_end,
                });
            }
            let end = c.find_from(start, |b| b == b':' || b.is_ascii_whitespace());
            let text = c.slice(start, end);
            let host = if text == "*" {
                Host::Any
            } else if text.is_empty() {
                return Err(c.err(start, K::EmptyHost));
            } else {
                classify(c, start, text, false)?
            };
            c.set_pos(end);
            host
        }
    };
    if host == Host::Any && !allow_any {
        return Err(c.err(start, K::BadHost));
    }
    let mut out = HostPorts {
        host,
        ports: None,
        ports_off: c.pos(),
    };
    if c.peek() == Some(b':') {
        c.set_pos(c.pos() + 1);
        out.ports_off = c.pos();
        out.ports = parse_ports(c)?;
    } else if !c.at_boundary() {
        return Err(c.err(c.pos(), K::TrailingInput));
    }
    Ok(out)
}

/// One decimal port in 1..=65535 without leading zero, at absolute offset `off`.
fn port_number(c: &Cursor, off: usize, s: &str) -> Result<u16, SocketError> {
    let ok = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && !s.starts_with('0');
    match s.parse::<u16>() {
        Ok(p) if ok && p != 0 => Ok(p),
        _ => Err(c.err(off, K::BadPort)),
    }
}

/// One list element `N` or `N-M` at absolute offset `off`.
fn port_element(c: &Cursor, off: usize, s: &str) -> Result<(u16, u16), SocketError> {
    match s.split_once('-') {
        None => port_number(c, off, s).map(|p| (p, p)),
        Some((a, b)) => {
            let lo = port_number(c, off, a)?;
            let hi = port_number(c, off + a.len() + 1, b)?;
            if lo > hi {
                return Err(c.err(off, K::PortRange));
            }
            Ok((lo, hi))
        }
    }
}

/// Parse the ports token at the cursor (up to whitespace): `N`, `N-M`, `N,M,...` (elements may
/// be ranges, expanded into the list) or `any` (case-insensitive, = no port).
pub(crate) fn parse_ports(c: &mut Cursor) -> Result<Option<Ports>, SocketError> {
    let (start, end, token) = c.peek_token();
    c.set_pos(end);
    if token.eq_ignore_ascii_case("any") {
        return Ok(None);
    }
    if !token.contains(',') {
        let (lo, hi) = port_element(c, start, token)?;
        return Ok(Some(if lo == hi {
            Ports::One(lo)
        } else {
            Ports::Range(lo, hi)
        }));
    }
    let mut seen = [0u64; 1024];
    let mut list = Vec::new();
    let mut off = start;
    for elem in token.split(',') {
        let (lo, hi) = port_element(c, off, elem)?;
        for p in lo..=hi {
            let (word, bit) = (usize::from(p / 64), 1u64 << (p % 64));
            let slot = seen.get_mut(word).ok_or_else(|| c.err(off, K::BadPort))?;
            if *slot & bit != 0 {
                return Err(c.err(off, K::DuplicatePort(p)));
            }
            *slot |= bit;
            list.push(p);
        }
        off += elem.len() + 1;
    }
    Ok(Some(Ports::List(list)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_rules() {
        assert!(is_hostname("my-host.example.com"));
        assert!(is_hostname("eth0"));
        assert!(is_hostname("br_lan"));
        assert!(is_hostname("1and1.com"));
        assert!(!is_hostname("-bad.com"));
        assert!(!is_hostname("bad-.com"));
        assert!(!is_hostname("a..b"));
        assert!(!is_hostname("trailing.dot."));
        assert!(!is_hostname(&"a".repeat(64)));
        assert!(!is_hostname("sp ace"));
    }

    #[test]
    fn bare_v6_shapes() {
        assert!(looks_like_bare_v6("::1"));
        assert!(looks_like_bare_v6("2001:db8::1"));
        assert!(!looks_like_bare_v6("1.2.3.4:5060:5061"));
        assert!(!looks_like_bare_v6("eth0:5060"));
        assert!(!looks_like_bare_v6("dead:5060"));
    }
}
