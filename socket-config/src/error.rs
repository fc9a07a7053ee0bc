//! Errors of the `socket=` parser: what went wrong and the column where the offending token starts.

use thiserror::Error;

/// A `socket=` value that could not be parsed.
///
/// `column` is 1-based, counted in characters (not bytes) from the start of the value the caller
/// passed to [`crate::parse`], leading whitespace included. It points at the first character of
/// the offending token (for a missing value: the parameter that lacks it; for premature end of
/// input: one past the last character).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("column {column}: {kind}")]
pub struct SocketError {
    /// 1-based character column of the offending token.
    pub column: usize,
    /// What is wrong there.
    pub kind: SocketErrorKind,
}

/// The kinds of [`SocketError`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SocketErrorKind {
    /// The value is empty or whitespace only.
    #[error("empty socket definition")]
    Empty,
    /// The value does not start with `proto:` (e.g. `"host":5060` or `10.0.0.1:5060`).
    #[error("missing protocol (expected proto:host[:port], e.g. udp:10.0.0.1:5060)")]
    MissingProto,
    /// `name:` where `name` is not one of the protocols of [`crate::Proto`] (nor `bond`).
    #[error("cannot handle protocol '{0}'")]
    UnknownProto(String),
    /// A known protocol name that is not followed by `:` (e.g. `udp 10.0.0.1`).
    #[error("expected ':' after the protocol")]
    MissingColon,
    /// A member of a `bond:` group is itself a bond.
    #[error("a bond member cannot itself be a bond")]
    NestedBond,
    /// Nothing where the host should be (`udp:`, `udp::5060`, `udp:""`).
    #[error("missing host")]
    EmptyHost,
    /// The host is not an IP literal, `*`, or an RFC 1123 host/interface name; or `*` used as an
    /// advertised address.
    #[error("invalid host (expected an IP address, a host or interface name, or '*')")]
    BadHost,
    /// Dotted digits that are not a valid IPv4 address (e.g. `1.2.3.256`, `1.2.3`, `01.2.3.4`).
    #[error("invalid IPv4 address")]
    BadIpv4,
    /// Text in brackets, or a bare token shaped like IPv6, that is not a valid IPv6 address.
    #[error("invalid IPv6 address")]
    BadIpv6,
    /// An unbracketed IPv6 address followed by something that reads as a port, e.g.
    /// `udp:2001:db8::1:5060`: the split between address and port is ambiguous.
    #[error("an IPv6 address followed by a port must be bracketed, e.g. [2001:db8::1]:5060")]
    Ipv6NeedsBrackets,
    /// `[` without the closing `]`.
    #[error("unterminated '[' (missing ']')")]
    UnterminatedBracket,
    /// `"` without the closing `"`.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// A port that is empty, not decimal, has a leading zero, or is outside 1-65535.
    #[error("invalid port (expected 1-65535, a range N-M, a list N,M or 'any')")]
    BadPort,
    /// A port range `N-M` with `N > M`.
    #[error("port range start is greater than its end")]
    PortRange,
    /// The same port appears twice in a port list.
    #[error("port {0} is listed twice")]
    DuplicatePort(u16),
    /// A parameter keyword this grammar does not know.
    #[error("unknown socket parameter '{0}'")]
    UnknownParam(String),
    /// A parameter given twice (spelling variants count as the same parameter). Holds the
    /// canonical name.
    #[error("parameter '{0}' is given more than once")]
    DuplicateParam(&'static str),
    /// A parameter that takes a value (`as`, `use_workers`, `tos`, `tag`,
    /// `use_auto_scaling_profile`) is last, or is followed by another keyword. Holds the
    /// canonical name; the column is the parameter's.
    #[error("parameter '{0}' needs a value")]
    MissingValue(&'static str),
    /// A parameter value of the wrong shape: `use_workers` not in 1..=u32::MAX, `tos` not in
    /// 0..=255 nor an `IPTOS_*` name, a name with characters outside `[A-Za-z0-9_.-]` (quote it).
    #[error("invalid value for '{0}'")]
    BadValue(&'static str),
    /// `as host:ports` whose number of ports differs from the socket's (ranges and lists are
    /// advertised 1:1).
    #[error("the advertised address has {advertised} port(s) but the socket has {socket}")]
    AdvertisedMismatch {
        /// Number of ports of the socket itself (1 when it has none).
        socket: usize,
        /// Number of advertised ports.
        advertised: usize,
    },
    /// A bond name that is empty or has characters outside `[A-Za-z0-9_-]`.
    #[error("invalid bond name")]
    BadBondName,
    /// A punctuation token of the bond syntax was expected here (the payload says which).
    #[error("expected {0}")]
    Expected(&'static str),
    /// `bond:NAME {}` with no member.
    #[error("a bond needs at least one member")]
    EmptyBond,
    /// Text directly after a closing `]`, `"` or `}` that cannot follow it.
    #[error("unexpected text after the end of the definition")]
    TrailingInput,
}
