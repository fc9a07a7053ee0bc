//! SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), parsed from
//! borrowed text without copying. Other schemes are kept opaque.

use std::borrow::Cow;
use std::net::Ipv6Addr;

use super::error::ParseError;
use super::params::Params;

/// The scheme of a [`Uri`] (compared case-insensitively, RFC 3261 §19.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:` (RFC 3261 §19.1).
    Sip,
    /// `sips:` (RFC 3261 §19.1).
    Sips,
    /// `tel:` (RFC 3966).
    Tel,
    /// Any other scheme; see [`Uri::opaque`] (RFC 4475 §3.3.2-§3.3.4).
    Other,
}

/// A parsed URI borrowing from the message text.
///
/// Components are returned as written (still `%`-escaped); use [`unescape`]
/// to decode them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    pub(crate) raw: &'a str,
    pub(crate) scheme: &'a str,
    pub(crate) kind: Scheme,
    pub(crate) user: Option<&'a str>,
    pub(crate) password: Option<&'a str>,
    pub(crate) host: &'a str,
    pub(crate) port: Option<u16>,
    pub(crate) params: Params<'a>,
    pub(crate) headers: Option<&'a str>,
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

const fn is_user(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

const fn is_password(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

const fn is_paramchar(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

const fn is_hnvchar(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

const fn is_hostchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

const fn is_telchar(b: u8) -> bool {
    b.is_ascii_hexdigit() || matches!(b, b'*' | b'#' | b'+' | b'-' | b'.' | b'(' | b')')
}

/// Characters a URI may contain at all (RFC 3261 §25.1 reserved, unreserved,
/// escaped, plus `[]` for IPv6 references).
const fn uri_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b';' | b'/'
                | b'?'
                | b':'
                | b'@'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b'%'
                | b'['
                | b']'
        )
}

/// Character classes of RFC 3261 §25.1 as bit masks over one table lookup per byte (the
/// URI parser runs several times per message: a `matches!` chain per byte, called through a
/// function pointer, was 2-3% of an OPTIONS).
const URI: u8 = 1;
const USER: u8 = 2;
const PASSWORD: u8 = 4;
const PARAM: u8 = 8;
const HNV: u8 = 16;
const HOST: u8 = 32;

const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if uri_char(b) {
            c |= URI;
        }
        if is_user(b) {
            c |= USER;
        }
        if is_password(b) {
            c |= PASSWORD;
        }
        if is_paramchar(b) {
            c |= PARAM;
        }
        if is_hnvchar(b) {
            c |= HNV;
        }
        if is_hostchar(b) {
            c |= HOST;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Every class is made of URI characters: a SIP URI whose parts all pass their class
/// checks holds no other character (what lets [`Uri::parse`] skip a pass over it).
const _: () = {
    let mut i = 0;
    while i < 256 {
        assert!(CLASSES[i] == 0 || CLASSES[i] & URI != 0);
        i += 1;
    }
};

/// Whether byte `b` is in any of the classes of `mask`.
#[inline]
fn is(b: u8, mask: u8) -> bool {
    CLASSES[usize::from(b)] & mask != 0
}

/// Characters a URI may contain at all (RFC 3261 §25.1 reserved, unreserved,
/// escaped, plus `[]` for IPv6 references).
#[inline]
pub(crate) fn is_uri_char(b: u8) -> bool {
    is(b, URI)
}

/// The two halves of `s` around the first `b` (an ASCII byte), as `str::split_once` without
/// its UTF-8 char searcher (URI components are short: a plain loop beats `memchr`'s setup).
fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Whether `s` is non-empty and every byte is in `class` or part of a
/// `% HEX HEX` escape.
fn check(s: &str, class: u8) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            match (b.get(i + 1), b.get(i + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else if is(b[i], class) {
            i += 1;
        } else {
            return false;
        }
    }
    !b.is_empty()
}

/// Length of a valid scheme (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`)
/// followed by `:` at the start of `s`.
pub(crate) fn scheme_len(s: &str) -> Option<usize> {
    // `sip:`, nearly every URI a proxy reads, without the general scan.
    if s.as_bytes()
        .get(..4)
        .is_some_and(|p| p[3] == b':' && p[..3].eq_ignore_ascii_case(b"sip"))
    {
        return Some(3);
    }
    let colon = s.bytes().position(|c| c == b':')?;
    let scheme = s.get(..colon)?.as_bytes();
    let ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    ok.then_some(colon)
}

/// Validates `;`-separated URI parameters (`pname [ "=" pvalue ]`, §19.1.1), in one pass:
/// each parameter's name, and its value after a single `=`, is non-empty and made of
/// `paramchar`s and `%` escapes.
fn check_uri_params(s: &str) -> bool {
    let Some(list) = s.strip_prefix(';') else {
        return false;
    };
    let b = list.as_bytes();
    // `part`: bytes in the current name or value; `eq`: the value has started.
    let (mut i, mut part, mut eq) = (0, 0usize, false);
    while let Some(&c) = b.get(i) {
        match c {
            b';' | b'=' => {
                if part == 0 || (c == b'=' && eq) {
                    return false;
                }
                eq = c == b'=';
                part = 0;
            }
            b'%' => match (b.get(i + 1), b.get(i + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    i += 2;
                    part += 1;
                }
                _ => return false,
            },
            c if is(c, PARAM) => part += 1,
            _ => return false,
        }
        i += 1;
    }
    part > 0
}

/// Validates `hname "=" hvalue *( "&" hname "=" hvalue )` (§19.1.1).
fn check_uri_headers(s: &str) -> bool {
    s.split('&').all(|h| {
        h.split_once('=')
            .is_some_and(|(n, v)| check(n, HNV) && (v.is_empty() || check(v, HNV)))
    })
}

impl<'a> Uri<'a> {
    /// Parses a URI. SIP/SIPS URIs are checked against RFC 3261 §25.1
    /// (userinfo, IPv6 references, port, parameters, headers); tel URIs against
    /// RFC 3966 loosely; other schemes only need a valid scheme and URI
    /// characters.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        // Every character must be a URI character, and a bad one is the error reported,
        // whatever else is wrong. A SIP or SIPS URI that parses has had each of its parts
        // checked against a class of URI characters (`CLASSES`: every class is inside
        // `URI`), so only a failure, or another scheme, needs the pass over every byte.
        Self::parse_parts(s).map_err(|e| {
            if s.bytes().all(is_uri_char) {
                e
            } else {
                ParseError::BadUri("character not allowed in a URI")
            }
        })
    }

    /// [`Uri::parse`] but for the error a bad character gives.
    fn parse_parts(s: &'a str) -> Result<Self, ParseError> {
        let colon = scheme_len(s).ok_or(ParseError::BadUri("missing or invalid scheme"))?;
        let scheme = s.get(..colon).unwrap_or("");
        let rest = s.get(colon + 1..).unwrap_or("");
        let mut uri = Uri {
            raw: s,
            scheme,
            kind: Scheme::Other,
            user: None,
            password: None,
            host: "",
            port: None,
            params: Params::default(),
            headers: None,
        };
        if rest.is_empty() {
            return Err(ParseError::BadUri("empty after scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            uri.kind = if scheme.len() == 3 {
                Scheme::Sip
            } else {
                Scheme::Sips
            };
            uri.parse_sip(rest)?;
            return Ok(uri);
        }
        if !s.bytes().all(is_uri_char) {
            return Err(ParseError::BadUri("character not allowed in a URI"));
        }
        if scheme.eq_ignore_ascii_case("tel") {
            uri.kind = Scheme::Tel;
            let (number, params) = rest.split_at(rest.find(';').unwrap_or(rest.len()));
            if !number.bytes().all(is_telchar) || number.is_empty() {
                return Err(ParseError::BadUri("bad telephone number"));
            }
            if !params.is_empty() && !check_uri_params(params) {
                return Err(ParseError::BadUri("bad tel parameters"));
            }
            uri.user = Some(number);
            uri.params = Params::from_validated(params);
        }
        Ok(uri)
    }

    fn parse_sip(&mut self, rest: &'a str) -> Result<(), ParseError> {
        // '@' is legal in none of the later components, so the first one ends
        // the userinfo even when the user part holds ';' or '?' (RFC 4475 §3.1.1.9).
        let hostport = match split_byte(rest, b'@') {
            Some((userinfo, hostport)) => {
                let (user, password) = match split_byte(userinfo, b':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                if !check(user, USER) {
                    return Err(ParseError::BadUri("bad user part"));
                }
                if password.is_some_and(|p| !p.is_empty() && !check(p, PASSWORD)) {
                    return Err(ParseError::BadUri("bad password"));
                }
                self.user = Some(user);
                self.password = password;
                hostport
            }
            None => rest,
        };
        let b = hostport.as_bytes();
        let mut i = if b.first() == Some(&b'[') {
            let close = hostport
                .find(']')
                .ok_or(ParseError::BadUri("unterminated IPv6 reference"))?;
            let inner = hostport.get(1..close).unwrap_or("");
            if inner.parse::<Ipv6Addr>().is_err() {
                return Err(ParseError::BadUri("bad IPv6 address"));
            }
            close + 1
        } else {
            b.iter().position(|&c| !is(c, HOST)).unwrap_or(b.len())
        };
        if i == 0 {
            return Err(ParseError::BadUri("missing host"));
        }
        self.host = hostport.get(..i).unwrap_or("");
        if b.get(i) == Some(&b':') {
            let start = i + 1;
            let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
            let port = hostport.get(start..end).unwrap_or("");
            self.port = Some(
                port.parse::<u16>()
                    .map_err(|_| ParseError::BadUri("bad port"))?,
            );
            i = end;
        }
        let tail = hostport.get(i..).unwrap_or("");
        let (params, headers) = match split_byte(tail, b'?') {
            Some((p, h)) => (p, Some(h)),
            None => (tail, None),
        };
        if !params.is_empty() && !check_uri_params(params) {
            return Err(ParseError::BadUri("bad URI parameters"));
        }
        if headers.is_some_and(|h| !check_uri_headers(h)) {
            return Err(ParseError::BadUri("bad URI headers"));
        }
        self.params = Params::from_validated(params);
        self.headers = headers;
        Ok(())
    }

    /// The whole URI as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The scheme kind.
    pub fn scheme(&self) -> Scheme {
        self.kind
    }

    /// The scheme as written (e.g. `sip`, `SIPS`, `soap.beep`).
    pub fn scheme_str(&self) -> &'a str {
        self.scheme
    }

    /// The user part (still escaped); for `tel:` the telephone number.
    pub fn user(&self) -> Option<&'a str> {
        self.user
    }

    /// The password part of the userinfo (still escaped), if any.
    pub fn password(&self) -> Option<&'a str> {
        self.password
    }

    /// The host: a name, an IPv4 address, or an IPv6 reference with its
    /// brackets (RFC 3261 §25.1). Empty for tel and other schemes.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The URI parameters (`;transport=ws;lr`, §19.1.1).
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// Looks up one URI parameter (see [`Params::get`]).
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params.get(name)
    }

    /// The headers component after `?` (still escaped), if any.
    pub fn headers(&self) -> Option<&'a str> {
        self.headers
    }

    /// Everything after `scheme:`, as written.
    pub fn opaque(&self) -> &'a str {
        self.raw.get(self.scheme.len() + 1..).unwrap_or("")
    }
}

/// Decodes `% HEX HEX` escapes (RFC 3261 §19.1.4); borrows when there are
/// none. The result may hold any octet, including NUL (RFC 4475 §3.1.1.4).
pub fn unescape(s: &str) -> Cow<'_, [u8]> {
    if !s.contains('%') {
        return Cow::Borrowed(s.as_bytes());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(b.get(i + 1)), hex(b.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A character no URI may hold is the error reported wherever it stands in a SIP URI,
    /// as when every character was checked before anything else.
    #[test]
    fn a_bad_character_anywhere_is_reported_as_such() {
        let good = "sip:user:pw@host.example:5060;lr;x=1?h=v";
        assert!(Uri::parse(good).is_ok());
        for bad in [
            " ", "\"", "<", ">", "{", "}", "^", "`", "|", "\\", "\u{7f}", "\u{e9}", "#",
        ] {
            for at in 0..=good.len() {
                let s = format!("{}{bad}{}", &good[..at], &good[at..]);
                assert_eq!(
                    Uri::parse(&s).map(|_| ()),
                    Err(ParseError::BadUri("character not allowed in a URI")),
                    "{s:?}"
                );
            }
        }
    }

    /// The parameter check as it was before the single pass (split on `;`, then on the first
    /// `=`, each part checked on its own): the reference for the differential test below.
    fn check_uri_params_by_splitting(s: &str) -> bool {
        s.strip_prefix(';').is_some_and(|list| {
            list.split(';').all(|p| match p.split_once('=') {
                Some((n, v)) => check(n, PARAM) && check(v, PARAM),
                None => check(p, PARAM),
            })
        })
    }

    /// Every string of up to 6 bytes over an alphabet of the interesting bytes: the single
    /// pass accepts exactly what splitting accepted.
    #[test]
    fn uri_params_single_pass_agrees_with_splitting() {
        const A: &[u8] = b";=%a1F@ ";
        let mut buf = Vec::new();
        for len in 0..=6u32 {
            for mut n in 0..A.len().pow(len) {
                buf.clear();
                buf.push(b';');
                for _ in 0..len {
                    buf.push(A[n % A.len()]);
                    n /= A.len();
                }
                let s = std::str::from_utf8(&buf).unwrap();
                assert_eq!(
                    check_uri_params(s),
                    check_uri_params_by_splitting(s),
                    "{s:?}"
                );
                assert!(!check_uri_params(&s[1..]) || s[1..].starts_with(';'));
            }
        }
    }

    /// The table holds exactly the classes the predicates define.
    #[test]
    fn class_table_matches_the_predicates() {
        for b in 0..=255u8 {
            assert_eq!(is(b, URI), uri_char(b), "{b}");
            assert_eq!(is(b, USER), is_user(b), "{b}");
            assert_eq!(is(b, PASSWORD), is_password(b), "{b}");
            assert_eq!(is(b, PARAM), is_paramchar(b), "{b}");
            assert_eq!(is(b, HNV), is_hnvchar(b), "{b}");
            assert_eq!(is(b, HOST), is_hostchar(b), "{b}");
        }
    }

    #[test]
    fn sip_uri_full() {
        let u =
            Uri::parse("sip:alice:secret@Example.COM:5061;transport=ws;lr?Subject=hi&X=").unwrap();
        assert_eq!(u.scheme(), Scheme::Sip);
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.password(), Some("secret"));
        assert_eq!(u.host(), "Example.COM");
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.param("TRANSPORT"), Some(Some("ws")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.headers(), Some("Subject=hi&X="));
        assert_eq!(
            u.opaque(),
            "alice:secret@Example.COM:5061;transport=ws;lr?Subject=hi&X="
        );
    }

    #[test]
    fn ipv6_references() {
        let u = Uri::parse("sips:[2001:db8::10]:5070;maddr=[2001:db8::1]").unwrap();
        assert_eq!(u.scheme(), Scheme::Sips);
        assert_eq!(u.user(), None);
        assert_eq!(u.host(), "[2001:db8::10]");
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.param("maddr"), Some(Some("[2001:db8::1]")));
        let u = Uri::parse("sip:user@[::ffff:192.0.2.1]").unwrap();
        assert_eq!(u.host(), "[::ffff:192.0.2.1]");
        assert_eq!(u.port(), None);
        assert!(Uri::parse("sip:[2001:db8::10").is_err());
        assert!(Uri::parse("sip:[2001:db8:::10]").is_err());
        assert!(Uri::parse("sip:[2001:db8::10]x").is_err());
    }

    #[test]
    fn escaped_user_and_semicolon_user() {
        let u = Uri::parse("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(u.user(), Some("sips%3Auser%40example.com"));
        assert_eq!(&*unescape(u.user().unwrap()), b"sips:user@example.com");
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
        assert_eq!(u.host(), "example.com");
        assert!(u.params().is_empty());
        assert_eq!(&*unescape("null-%00-null"), b"null-\0-null");
        assert!(matches!(unescape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn tel_and_other_schemes() {
        let u = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(u.scheme(), Scheme::Tel);
        assert_eq!(u.user(), Some("+1-201-555-0123"));
        assert_eq!(u.param("phone-context"), Some(Some("example.com")));
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme(), Scheme::Other);
        assert_eq!(u.scheme_str(), "soap.beep");
        assert_eq!(u.opaque(), "//192.0.2.103:3002");
        assert_eq!(u.host(), "");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "sip:",
            "sip",
            "1sip:a@b",
            "sip:a@",
            "sip:@host",
            "sip:a b@host",
            "sip:host:99999",
            "sip:host:",
            "sip:host;;lr",
            "sip:host;=x",
            "sip:host?noequals",
            "sip:us%4@host",
            "<sip:a@b>",
            "sip:a@b c",
            "tel:",
            "tel:xyz",
            "sip:a@b\"",
            "sip:h%zz",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad:?}");
        }
    }
}
