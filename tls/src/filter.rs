//! The matching filters of a TLS domain: `match_ip_address` and `match_sip_domain` (OpenSIPS
//! tls_mgm README, same names; `parse_match_addresses()`/`parse_match_domains()` in
//! `modules/tls_mgm/tls_domain.c`). Both take a comma-separated list.
//!
//! Where we differ: OpenSIPS takes a value whose *first character* is `*` as "any" and ignores
//! the rest; here `*` is one list item like the others. Host-name patterns are validated and
//! lowercased once at parse time (SNI is case-insensitive, RFC 6066 §3 / RFC 4343).

use std::net::{IpAddr, SocketAddr};

/// One `match_ip_address` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrFilter {
    /// `*`: any address.
    Any,
    /// `ip:port` (IPv6 as `[v6]:port` or bare `v6:port`, the port after the last colon).
    Exact(SocketAddr),
}

/// One `match_sip_domain` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameFilter {
    /// `*`: any name, and no SNI at all.
    Any,
    /// `none`: only a handshake without SNI (server domains).
    NoName,
    /// A host name without wildcards, lowercased.
    Exact(String),
    /// A shell-style pattern with `*` and/or `?` (as OpenSIPS's `fnmatch`), lowercased.
    Pattern(String),
}

/// Why a list item was refused; the caller adds the parameter name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadItem(pub String);

/// Maps an IPv4-mapped IPv6 address to IPv4, so `::ffff:10.0.0.1` matches `10.0.0.1:port`.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim)
}

/// Parses a `match_ip_address` value.
pub fn parse_addr_filters(value: &str) -> Result<Vec<AddrFilter>, BadItem> {
    split_list(value)
        .map(|item| {
            if item == "*" {
                return Ok(AddrFilter::Any);
            }
            parse_ip_port(item)
                .map(AddrFilter::Exact)
                .ok_or_else(|| BadItem(item.to_string()))
        })
        .collect()
}

/// Parses `ip:port`, `[v6]:port` or `v6:port` (no host names: the match is on sockets).
pub fn parse_ip_port(item: &str) -> Option<SocketAddr> {
    if let Ok(sa) = item.parse::<SocketAddr>() {
        return Some(canonical(sa));
    }
    let (ip, port) = item.rsplit_once(':')?;
    let ip: IpAddr = ip.parse().ok()?;
    let port: u16 = port.parse().ok()?;
    Some(canonical(SocketAddr::new(ip, port)))
}

/// Parses a `match_sip_domain` value.
pub fn parse_name_filters(value: &str) -> Result<Vec<NameFilter>, BadItem> {
    split_list(value)
        .map(|item| {
            if item == "*" {
                return Ok(NameFilter::Any);
            }
            if item.eq_ignore_ascii_case("none") {
                return Ok(NameFilter::NoName);
            }
            let valid = !item.is_empty()
                && item
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._*?".contains(&b));
            if !valid {
                return Err(BadItem(item.to_string()));
            }
            let lower = item.to_ascii_lowercase();
            Ok(if lower.contains(['*', '?']) {
                NameFilter::Pattern(lower)
            } else {
                NameFilter::Exact(lower)
            })
        })
        .collect()
}

/// Shell-style match of `name` against `pattern` (`*` any run, `?` one character), both
/// already lowercased; like `fnmatch(3)` without flags, `*` also spans dots.
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, n));
            p += 1;
        } else if let Some((bp, bn)) = backtrack {
            p = bp + 1;
            n = bn + 1;
            backtrack = Some((bp, bn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// How well a name filter list matches, higher is more specific; `None` if it does not match.
/// Exact names and `none` rank 3; patterns rank 2 and, among themselves, by their count of
/// literal characters (so `*.a.example.com` beats `*.example.com`, where OpenSIPS only sorts
/// "has a wildcard" after "has none"); `*` ranks 1.
pub fn name_rank(filters: &[NameFilter], name: Option<&str>) -> Option<(u8, usize)> {
    let lower = name.map(str::to_ascii_lowercase);
    filters
        .iter()
        .filter_map(|f| match (f, lower.as_deref()) {
            (NameFilter::Any, _) => Some((1, 0)),
            (NameFilter::NoName, None) => Some((3, 0)),
            (NameFilter::Exact(e), Some(n)) if e == n => Some((3, 0)),
            (NameFilter::Pattern(p), Some(n)) if glob_match(p.as_bytes(), n.as_bytes()) => {
                Some((2, p.bytes().filter(|c| !b"*?".contains(c)).count()))
            }
            _ => None,
        })
        .max()
}

/// How well an address filter list matches `addr`: 2 for an exact `ip:port`, 1 for `*`.
pub fn addr_rank(filters: &[AddrFilter], addr: SocketAddr) -> Option<u8> {
    let addr = canonical(addr);
    filters
        .iter()
        .filter_map(|f| match f {
            AddrFilter::Any => Some(1),
            AddrFilter::Exact(a) if *a == addr => Some(2),
            AddrFilter::Exact(_) => None,
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let f = parse_addr_filters("10.0.0.10:5061, 10.0.0.11:5061").unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(addr_rank(&f, "10.0.0.11:5061".parse().unwrap()), Some(2));
        assert_eq!(addr_rank(&f, "10.0.0.11:5062".parse().unwrap()), None);
        assert_eq!(
            addr_rank(&f, "[::ffff:10.0.0.10]:5061".parse().unwrap()),
            Some(2)
        );
        let v6 = parse_addr_filters("[2001:db8::1]:443,2001:db8::2:443,*").unwrap();
        assert_eq!(
            addr_rank(&v6, "[2001:db8::2]:443".parse().unwrap()),
            Some(2)
        );
        assert_eq!(addr_rank(&v6, "192.0.2.1:1".parse().unwrap()), Some(1));
        assert_eq!(
            parse_addr_filters("host.example:5061"),
            Err(BadItem("host.example:5061".into()))
        );
        assert_eq!(
            parse_addr_filters("10.0.0.1"),
            Err(BadItem("10.0.0.1".into()))
        );
        assert_eq!(
            parse_addr_filters("10.0.0.1:99999"),
            Err(BadItem("10.0.0.1:99999".into()))
        );
        assert_eq!(parse_addr_filters("*x"), Err(BadItem("*x".into())));
    }

    #[test]
    fn names_and_ranks() {
        let f = parse_name_filters("foo.com, Bar.com, *.baz.com").unwrap();
        assert_eq!(f[1], NameFilter::Exact("bar.com".into()));
        assert_eq!(name_rank(&f, Some("BAR.com")), Some((3, 0)));
        assert_eq!(name_rank(&f, Some("a.b.baz.com")), Some((2, 8)));
        assert_eq!(name_rank(&f, Some("baz.com")), None);
        assert_eq!(name_rank(&f, None), None);
        let any = parse_name_filters("*").unwrap();
        assert_eq!(name_rank(&any, None), Some((1, 0)));
        let none = parse_name_filters("none").unwrap();
        assert_eq!(name_rank(&none, None), Some((3, 0)));
        assert_eq!(name_rank(&none, Some("x.com")), None);
        let narrow = parse_name_filters("*.a.example.com").unwrap();
        let wide = parse_name_filters("*.example.com").unwrap();
        assert!(
            name_rank(&narrow, Some("x.a.example.com")) > name_rank(&wide, Some("x.a.example.com"))
        );
        assert_eq!(
            parse_name_filters("bad name"),
            Err(BadItem("bad name".into()))
        );
        assert_eq!(
            parse_name_filters("a.com,,b.com"),
            Err(BadItem(String::new()))
        );
    }

    #[test]
    fn globbing() {
        assert!(glob_match(b"*.example.com", b"sip.example.com"));
        assert!(glob_match(b"*.example.com", b"a.b.example.com"));
        assert!(!glob_match(b"*.example.com", b"example.com"));
        assert!(glob_match(b"sip?.example.com", b"sip1.example.com"));
        assert!(!glob_match(b"sip?.example.com", b"sip12.example.com"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"aXbYbZc"));
        assert!(!glob_match(b"a*b*c", b"aXbYbZ"));
    }
}
