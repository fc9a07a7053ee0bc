//! The `hep_id` module parameter: one HEP destination per value (OpenSIPS proto_hep `hep_id`).
//!
//! ```text
//! hep_id   = WS "[" WS name WS "]" WS host [WS ":" WS port] WS *(";" WS [param WS]) WS
//! host     = IPv4 / hostname / "[" IPv6 "]"
//! param    = "transport" WS "=" WS ("udp" / "tcp" / "tls")
//!          / "version" WS "=" WS ("1" / "2" / "3")
//! name     = 1*(ALPHA / DIGIT / "_" / "-" / ".")
//! ```
//!
//! * The name is required and must be unique ([`parse_many`]); it is what scripts and other
//!   modules refer to.
//! * Keys are case-sensitive (as in OpenSIPS), values case-insensitive; each key at most once.
//!   The trailing `;` is optional. Spaces and tabs are allowed around every token.
//! * Defaults: port 9060, version 3, transport **TCP** for HEPv3 (as OpenSIPS; heplify-server
//!   listens on UDP by default, so most deployments write `transport=udp`) and UDP for HEPv1/v2.
//! * HEPv1/v2 have no length field and cannot be framed on a stream: an explicit `tcp`/`tls`
//!   with version 1 or 2 is replaced by UDP and reported as a [`Warning`].
//! * Hostnames are kept as text; they are resolved by the sender at connect/send time.
//!
//! Error columns are 1-based character positions in the parameter value.

use crate::codec::Version;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Port used when the `hep_id` has none (the HEP default, 9060).
pub const DEFAULT_PORT: u16 = 9060;

/// Transport to the HEP collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// One datagram per packet.
    Udp,
    /// HEP3 packets back to back on a TCP connection.
    Tcp,
    /// Like TCP, inside TLS.
    Tls,
}

impl Transport {
    /// The lowercase configuration spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Collector host: an IP literal, or a name to resolve later.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// IPv4 or (bracketed in the text) IPv6 literal.
    Ip(IpAddr),
    /// DNS name, resolved by the sender.
    Name(String),
}

impl fmt::Display for Host {
    /// IPv6 is written in brackets, ready for `host:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// One parsed `hep_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HepDest {
    /// Destination name (from the brackets).
    pub name: String,
    /// Collector host.
    pub host: Host,
    /// Collector port.
    pub port: u16,
    /// Transport (after the HEPv1/v2 → UDP rule).
    pub transport: Transport,
    /// HEP version to encode with.
    pub version: Version,
}

impl fmt::Display for HepDest {
    /// The canonical `hep_id` text, which parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}]{}:{};transport={};version={}",
            self.name,
            self.host,
            self.port,
            self.transport,
            self.version.number()
        )
    }
}

/// A non-fatal remark about a `hep_id`, for the caller to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// HEPv1/v2 with `transport=tcp|tls`: UDP is used instead (v1/v2 cannot be framed).
    #[error("HEPv{} can only be sent over UDP: transport={requested} ignored, using udp", version.number())]
    ForcedUdp {
        /// The configured version (1 or 2).
        version: Version,
        /// The transport that was asked for.
        requested: Transport,
    },
}

/// A `hep_id` syntax error, at a 1-based character column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {kind}")]
pub struct HepIdError {
    /// 1-based character column where the problem starts.
    pub column: usize,
    /// What is wrong.
    pub kind: HepIdErrorKind,
}

/// The kinds of [`HepIdError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HepIdErrorKind {
    /// The value does not start with `[name]`.
    #[error("expected '[name]' at the start")]
    MissingName,
    /// `[` without a closing `]`.
    #[error("unterminated '[name': missing ']'")]
    UnterminatedName,
    /// `[]` or only spaces inside the brackets.
    #[error("empty destination name")]
    EmptyName,
    /// A name character other than letters, digits, `_`, `-`, `.`.
    #[error("invalid character {0:?} in destination name")]
    InvalidNameChar(char),
    /// Nothing where the host should be.
    #[error("missing host")]
    MissingHost,
    /// A hostname character other than letters, digits, `-`, `_`, `.`.
    #[error("invalid character {0:?} in host")]
    InvalidHostChar(char),
    /// A hostname with an empty label (`a..b`, `.a`).
    #[error("empty label in hostname {0:?}")]
    EmptyLabel(String),
    /// Digits and dots that are not an IPv4 address.
    #[error("invalid IPv4 address {0:?}")]
    InvalidIpv4(String),
    /// Bracketed text that is not an IPv6 address.
    #[error("invalid IPv6 address {0:?}")]
    InvalidIpv6(String),
    /// `[` of an IPv6 host without `]`.
    #[error("unterminated IPv6 address: missing ']'")]
    UnterminatedIpv6,
    /// An IPv6 address without brackets (ambiguous with the port).
    #[error("IPv6 addresses must be written in brackets, e.g. [::1]:9060")]
    UnbracketedIpv6,
    /// `:` with no port after it.
    #[error("missing port after ':'")]
    MissingPort,
    /// A port that is not a number in 1..=65535.
    #[error("invalid port {0:?} (expected 1..65535)")]
    InvalidPort(String),
    /// A character where `;` or the end was expected.
    #[error("unexpected {0:?}, expected ';' or end of value")]
    UnexpectedChar(char),
    /// `;;` or `;=value`.
    #[error("empty parameter")]
    EmptyParam,
    /// A key without `=value`, or with an empty value.
    #[error("parameter '{0}' needs a value")]
    MissingValue(String),
    /// A key other than `transport` and `version` (keys are case-sensitive).
    #[error("unknown parameter '{0}' (expected 'transport' or 'version')")]
    UnknownParam(String),
    /// The same key twice.
    #[error("parameter '{0}' given twice")]
    DuplicateParam(String),
    /// A transport other than udp, tcp, tls.
    #[error("invalid transport {0:?} (expected udp, tcp or tls)")]
    InvalidTransport(String),
    /// A version other than 1, 2, 3.
    #[error("invalid version {0:?} (expected 1, 2 or 3)")]
    InvalidVersion(String),
    /// [`parse_many`]: the name was already used by an earlier `hep_id`.
    #[error("destination name '{name}' already defined by hep_id #{}", first + 1)]
    DuplicateName {
        /// The repeated name.
        name: String,
        /// 0-based index of the first definition.
        first: usize,
    },
}

/// [`parse_many`] failure: which value (0-based) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hep_id #{}: {error}", index + 1)]
pub struct ManyError {
    /// 0-based index of the failing value.
    pub index: usize,
    /// The error in that value.
    pub error: HepIdError,
}

/// Parses one `hep_id` value. Returns the destination and, for HEPv1/v2 with an explicit
/// `tcp`/`tls`, the warning to log.
pub fn parse_hep_id(s: &str) -> Result<(HepDest, Option<Warning>), HepIdError> {
    Parser { s, pos: 0 }.hep_id().map(|(d, w, _)| (d, w))
}

/// Parses every `hep_id` value (in order) and rejects a name used twice.
pub fn parse_many<'a, I>(values: I) -> Result<Vec<(HepDest, Option<Warning>)>, ManyError>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut out: Vec<(HepDest, Option<Warning>)> = Vec::new();
    for (index, s) in values.into_iter().enumerate() {
        let (dest, warning, name_col) = Parser { s, pos: 0 }
            .hep_id()
            .map_err(|error| ManyError { index, error })?;
        if let Some(first) = out.iter().position(|(d, _)| d.name == dest.name) {
            let kind = HepIdErrorKind::DuplicateName {
                name: dest.name,
                first,
            };
            let error = HepIdError {
                column: name_col,
                kind,
            };
            return Err(ManyError { index, error });
        }
        out.push((dest, warning));
    }
    Ok(out)
}

/// Cursor over the value; `pos` is a byte offset, always on a char boundary.
struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

/// Space or tab.
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Ends a host, port, key or value token.
fn ends_token(b: u8) -> bool {
    is_ws(b) || b == b';'
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// 1-based character column of byte offset `at`.
    fn col(&self, at: usize) -> usize {
        self.s.get(..at).map_or(at, |p| p.chars().count()) + 1
    }

    fn err(&self, at: usize, kind: HepIdErrorKind) -> HepIdError {
        HepIdError {
            column: self.col(at),
            kind,
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// Takes bytes while `keep` holds (stopping at ASCII delimiters keeps char boundaries).
    fn take(&mut self, keep: impl Fn(u8) -> bool) -> (usize, &'a str) {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        (start, self.s.get(start..self.pos).unwrap_or(""))
    }

    /// Error for the character at the cursor (end of input cannot happen here).
    fn unexpected(&self) -> HepIdError {
        let c = self.s.get(self.pos..).and_then(|r| r.chars().next());
        self.err(self.pos, HepIdErrorKind::UnexpectedChar(c.unwrap_or(' ')))
    }

    fn hep_id(mut self) -> Result<(HepDest, Option<Warning>, usize), HepIdError> {
        self.skip_ws();
        let (name, name_col) = self.name()?;
        self.skip_ws();
        let host = self.host()?;
        self.skip_ws();
        let mut port = DEFAULT_PORT;
        if self.peek() == Some(b':') {
            self.pos += 1;
            self.skip_ws();
            port = self.port()?;
            self.skip_ws();
        }
        let (transport, version) = self.params()?;
        let version = version.unwrap_or(Version::V3);
        let (transport, warning) = match (version, transport) {
            (Version::V3, t) => (t.unwrap_or(Transport::Tcp), None),
            (_, None | Some(Transport::Udp)) => (Transport::Udp, None),
            (v, Some(requested)) => (
                Transport::Udp,
                Some(Warning::ForcedUdp {
                    version: v,
                    requested,
                }),
            ),
        };
        let dest = HepDest {
            name,
            host,
            port,
            transport,
            version,
        };
        Ok((dest, warning, name_col))
    }

    fn name(&mut self) -> Result<(String, usize), HepIdError> {
        if self.peek() != Some(b'[') {
            return Err(self.err(self.pos, HepIdErrorKind::MissingName));
        }
        let open = self.pos;
        self.pos += 1;
        let (start, raw) = self.take(|b| b != b']');
        if self.peek() != Some(b']') {
            return Err(self.err(open, HepIdErrorKind::UnterminatedName));
        }
        self.pos += 1;
        let lead = raw.len() - raw.trim_start_matches([' ', '\t']).len();
        let name = raw.trim_matches([' ', '\t']);
        if name.is_empty() {
            return Err(self.err(start, HepIdErrorKind::EmptyName));
        }
        for (i, c) in name.char_indices() {
            if !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
                return Err(self.err(start + lead + i, HepIdErrorKind::InvalidNameChar(c)));
            }
        }
        Ok((name.to_owned(), self.col(start + lead)))
    }

    fn host(&mut self) -> Result<Host, HepIdError> {
        let start = self.pos;
        if self.peek() == Some(b'[') {
            self.pos += 1;
            let (_, raw) = self.take(|b| b != b']' && !ends_token(b));
            if self.peek() != Some(b']') {
                return Err(self.err(start, HepIdErrorKind::UnterminatedIpv6));
            }
            self.pos += 1;
            return raw
                .parse::<Ipv6Addr>()
                .map(|a| Host::Ip(a.into()))
                .map_err(|_| self.err(start + 1, HepIdErrorKind::InvalidIpv6(raw.to_owned())));
        }
        let segment = self.s.get(start..).unwrap_or("");
        let segment_end = segment
            .bytes()
            .position(ends_token)
            .unwrap_or(segment.len());
        if segment
            .bytes()
            .take(segment_end)
            .filter(|&b| b == b':')
            .count()
            > 1
        {
            return Err(self.err(start, HepIdErrorKind::UnbracketedIpv6));
        }
        let (_, host) = self.take(|b| !ends_token(b) && b != b':');
        if host.is_empty() {
            return Err(self.err(start, HepIdErrorKind::MissingHost));
        }
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return host
                .parse::<Ipv4Addr>()
                .map(|a| Host::Ip(a.into()))
                .map_err(|_| self.err(start, HepIdErrorKind::InvalidIpv4(host.to_owned())));
        }
        for (i, c) in host.char_indices() {
            if !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
                return Err(self.err(start + i, HepIdErrorKind::InvalidHostChar(c)));
            }
        }
        // Labels may not be empty; one trailing dot (absolute name) is allowed.
        let labels = host.strip_suffix('.').unwrap_or(host);
        if labels.split('.').any(str::is_empty) {
            return Err(self.err(start, HepIdErrorKind::EmptyLabel(host.to_owned())));
        }
        Ok(Host::Name(host.to_owned()))
    }

    fn port(&mut self) -> Result<u16, HepIdError> {
        let (start, raw) = self.take(|b| !ends_token(b));
        if raw.is_empty() {
            return Err(self.err(start, HepIdErrorKind::MissingPort));
        }
        match raw.parse::<u16>() {
            Ok(p) if p != 0 && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
            _ => Err(self.err(start, HepIdErrorKind::InvalidPort(raw.to_owned()))),
        }
    }

    /// `*(";" [param])` up to the end; returns the explicit transport and version.
    fn params(&mut self) -> Result<(Option<Transport>, Option<Version>), HepIdError> {
        let (mut transport, mut version) = (None, None);
        loop {
            match self.peek() {
                None => return Ok((transport, version)),
                Some(b';') => self.pos += 1,
                Some(_) => return Err(self.unexpected()),
            }
            self.skip_ws();
            match self.peek() {
                None => return Ok((transport, version)),
                Some(b';' | b'=') => return Err(self.err(self.pos, HepIdErrorKind::EmptyParam)),
                Some(_) => {}
            }
            let (key_at, key) = self.take(|b| !ends_token(b) && b != b'=');
            self.skip_ws();
            if self.peek() != Some(b'=') {
                let kind = HepIdErrorKind::MissingValue(key.to_owned());
                return Err(self.err(self.pos, kind));
            }
            self.pos += 1;
            self.skip_ws();
            let (value_at, value) = self.take(|b| !ends_token(b));
            if value.is_empty() {
                let kind = HepIdErrorKind::MissingValue(key.to_owned());
                return Err(self.err(value_at, kind));
            }
            match key {
                "transport" if transport.is_some() => {
                    return Err(self.err(key_at, HepIdErrorKind::DuplicateParam(key.to_owned())))
                }
                "version" if version.is_some() => {
                    return Err(self.err(key_at, HepIdErrorKind::DuplicateParam(key.to_owned())))
                }
                "transport" => transport = Some(self.transport(value_at, value)?),
                "version" => version = Some(self.version(value_at, value)?),
                _ => return Err(self.err(key_at, HepIdErrorKind::UnknownParam(key.to_owned()))),
            }
            self.skip_ws();
        }
    }

    fn transport(&self, at: usize, value: &str) -> Result<Transport, HepIdError> {
        [Transport::Udp, Transport::Tcp, Transport::Tls]
            .into_iter()
            .find(|t| value.eq_ignore_ascii_case(t.as_str()))
            .ok_or_else(|| self.err(at, HepIdErrorKind::InvalidTransport(value.to_owned())))
    }

    fn version(&self, at: usize, value: &str) -> Result<Version, HepIdError> {
        match value {
            "1" => Ok(Version::V1),
            "2" => Ok(Version::V2),
            "3" => Ok(Version::V3),
            _ => Err(self.err(at, HepIdErrorKind::InvalidVersion(value.to_owned()))),
        }
    }
}

#[cfg(test)]
#[path = "hep_id_tests.rs"]
mod tests;
