//! The DNS records server location uses (RFC 3263 §4), decoupled from the wire format.
use std::net::IpAddr;

/// A record type the location procedure asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// NAPTR (RFC 3403), for the transport (RFC 3263 §4.1).
    Naptr,
    /// SRV (RFC 2782), for port and host (RFC 3263 §4.2).
    Srv,
    /// A (RFC 1035).
    A,
    /// AAAA (RFC 3596).
    Aaaa,
}

/// A NAPTR record (RFC 3403 §4.1), the fields RFC 3263 §4.1 reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// ORDER.
    pub order: u16,
    /// PREFERENCE.
    pub preference: u16,
    /// FLAGS (`S` for an SRV lookup next).
    pub flags: String,
    /// SERVICES, e.g. `SIP+D2U`, `SIPS+D2W` (RFC 7118 §7).
    pub services: String,
    /// REPLACEMENT: the SRV name to query (lower case, no final dot).
    pub replacement: String,
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Priority (lower first).
    pub priority: u16,
    /// Weight within a priority.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host (lower case, no final dot; "." means no service).
    pub target: String,
}

/// The records of one name and type; an empty set is a negative answer (RFC 2308).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    /// NAPTR records.
    Naptr(Vec<Naptr>),
    /// SRV records.
    Srv(Vec<Srv>),
    /// A or AAAA records.
    Addrs(Vec<IpAddr>),
}

impl Records {
    /// The empty set of `kind` (a negative answer).
    pub fn empty(kind: Kind) -> Records {
        match kind {
            Kind::Naptr => Records::Naptr(Vec::new()),
            Kind::Srv => Records::Srv(Vec::new()),
            Kind::A | Kind::Aaaa => Records::Addrs(Vec::new()),
        }
    }

    /// Whether this is a negative answer.
    pub fn is_empty(&self) -> bool {
        match self {
            Records::Naptr(v) => v.is_empty(),
            Records::Srv(v) => v.is_empty(),
            Records::Addrs(v) => v.is_empty(),
        }
    }
}

/// A domain name as we key and compare it: lower case, without the final dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}
