//! Why a destination could not be located.
use thiserror::Error;

/// A failure of server location (RFC 3263 §4) or of a DNS query.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DnsError {
    /// The destination is not a SIP/SIPS URI we can locate.
    #[error("bad destination URI {0:?}: {1}")]
    BadUri(String, String),
    /// `transport=` names a transport we do not know.
    #[error("unknown transport {0:?} in {1}")]
    UnknownTransport(String, String),
    /// The name has no usable records (NXDOMAIN, or no NAPTR/SRV/A/AAAA leading to an address).
    #[error("{0} has no usable DNS records")]
    NotFound(String),
    /// No answer before the lookup's deadline (`dns_timeout`).
    #[error("DNS lookup of {0} timed out")]
    Timeout(String),
    /// The server answered with an error (SERVFAIL, REFUSED...) or garbage.
    #[error("DNS server failure for {0}: {1}")]
    Server(String, String),
    /// Too many lookups pending (`dns_max_pending`).
    #[error("too many DNS lookups pending")]
    Busy,
    /// The records are not in the cache (the lookup must go to the resolver thread).
    #[error("not cached")]
    Miss,
}
