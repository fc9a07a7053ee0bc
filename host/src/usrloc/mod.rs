//! The registrar's store (OpenSIPS `usrloc` + `registrar`): RFC 3261 §10.3 REGISTER
//! processing, with each contact bound to the flow it was registered over (RFC 5626 §4.2,
//! RFC 7118 §5). No I/O and no clock (time comes in as `now`).
//!
//! The table is split into `2^hash_size` slots (OpenSIPS usrloc's hash table), each behind its
//! own lock; an operation locks the one slot of its AoR, so saving or looking up costs the
//! contacts of that AoR, never the table. The index connection → AoRs (to drop a closed
//! connection's bindings) is sharded the same way. No lock is held across slots: a dump or a
//! sweep takes them one at a time. Limits: `max_contacts` per AoR, `max_request_contacts` per
//! REGISTER, `max_registrations` bindings in all (shared by every table).
mod aor;
mod contact;
mod dump;
mod single;
mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_keep;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_remote;
#[cfg(test)]
mod tests_single;

use crate::sip::{unescape, Scheme, Uri};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use contact::uri_key;
pub use table::{Counter, Registrar};

/// The connection (or, for UDP, the source address) a contact was registered over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// The transport's connection id; 0 for connectionless transports.
    pub conn_id: u64,
    /// `ws`, `wss`, `tcp`, `tls` or `udp`.
    pub proto: &'static str,
    /// The peer address (`received`).
    pub peer: SocketAddr,
    /// Our socket.
    pub local: SocketAddr,
}

/// Registrar settings (OpenSIPS registrar's `default_expires`, `min_expires`, `max_expires`,
/// `max_contacts`; `max_request_contacts` is ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Expiry when neither the contact nor the request gives one.
    pub default_expires: u32,
    /// Shortest non-zero expiry accepted; below it the answer is 423 (0 disables the check).
    pub min_expires: u32,
    /// Longer expiries are shortened to this.
    pub max_expires: u32,
    /// Most bindings per AoR (0: no limit); beyond it the answer is 503, as OpenSIPS.
    pub max_contacts: usize,
    /// Most Contact values in one REGISTER (0: no limit); beyond it the answer is 403 and the
    /// request is not processed further.
    pub max_request_contacts: usize,
    /// Keep a connection a REGISTER came over open, even if idle, as long as the bindings
    /// registered over it last (RFC 5626 §4.4; OpenSIPS registrar's `tcp_persistent_flag`,
    /// here on for every REGISTER). Applied by the host, not by this table.
    pub tcp_persistent: bool,
    /// `Flow-Timer` seconds in the 200 to an Outbound REGISTER (RFC 5626 §6: how often the
    /// client should send keep-alives on its flow); 0: none sent (Kamailio outbound's
    /// `flow_timer`).
    pub flow_timer: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            default_expires: 3600,
            min_expires: 60,
            max_expires: 3600,
            max_contacts: 10,
            max_request_contacts: 32,
            tcp_persistent: true,
            flow_timer: 120,
        }
    }
}

/// Table settings (OpenSIPS usrloc's `hash_size`; `max_registrations` is ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsrlocConfig {
    /// The table has `2^hash_size` slots, each with its own lock (1..=16).
    pub hash_size: u32,
    /// Most bindings in all tables together (0: no limit); beyond it a REGISTER that would
    /// add one is answered 503.
    pub max_registrations: usize,
}

impl Default for UsrlocConfig {
    fn default() -> Self {
        UsrlocConfig {
            hash_size: 9,
            max_registrations: 100_000,
        }
    }
}

/// Why a REGISTER was refused; [`RegError::status`] gives the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegError {
    /// The To URI is not sip/sips (§10.3 step 3... 416).
    #[error("AoR scheme not supported: {0}")]
    UnsupportedScheme(String),
    /// To or Contact could not be parsed.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// `Contact: *` with other contacts or with a non-zero Expires (§10.3 step 6).
    #[error("'Contact: *' needs Expires: 0 and no other contact")]
    BadWildcard,
    /// A q-value outside 0..1 (§20.10).
    #[error("bad q-value {0}")]
    BadQ(String),
    /// An expiry below the minimum (§10.3 step 7).
    #[error("expiry {got} s is below the minimum {min} s")]
    IntervalTooBrief {
        /// The requested expiry.
        got: u32,
        /// The minimum.
        min: u32,
    },
    /// Same Call-ID, CSeq not higher than the stored one (§10.3 step 7).
    #[error("CSeq {got} is not above {stored} for this Call-ID")]
    OutOfOrder {
        /// The request's CSeq.
        got: u32,
        /// The binding's CSeq.
        stored: u32,
    },
    /// More bindings than `max_contacts`.
    #[error("too many registered contacts for this AoR (max_contacts {0})")]
    TooManyContacts(usize),
    /// More Contact values in the request than `max_request_contacts`.
    #[error("too many contacts in one REGISTER (max_request_contacts {0})")]
    TooManyInRequest(usize),
    /// The tables hold `max_registrations` bindings already.
    #[error("registrar full (max_registrations {0})")]
    Full(usize),
}

impl RegError {
    /// Status code and reason phrase of the answer.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            RegError::UnsupportedScheme(_) => (416, "Unsupported URI Scheme"),
            RegError::Malformed(_) | RegError::BadWildcard | RegError::BadQ(_) => {
                (400, "Bad Request")
            }
            RegError::IntervalTooBrief { .. } => (423, "Interval Too Brief"),
            RegError::OutOfOrder { .. } => (500, "Server Internal Error"),
            RegError::TooManyContacts(_) | RegError::Full(_) => (503, "Service Unavailable"),
            RegError::TooManyInRequest(_) => (403, "Forbidden"),
        }
    }

    /// Headers the answer must carry: `Min-Expires` with 423 (§20.23); for a refusal by a
    /// limit, `P-Registrar-Error` with the reason (as SER-family registrars), and
    /// `Retry-After` (§20.33) when the whole registrar is full.
    pub fn extra_headers(&self) -> Vec<(&'static str, String)> {
        match self {
            RegError::IntervalTooBrief { min, .. } => vec![("Min-Expires", min.to_string())],
            RegError::TooManyContacts(_) | RegError::TooManyInRequest(_) => {
                vec![("P-Registrar-Error", self.to_string())]
            }
            RegError::Full(_) => vec![
                ("P-Registrar-Error", self.to_string()),
                ("Retry-After", "60".to_string()),
            ],
            _ => Vec::new(),
        }
    }
}
/// One contact of an AoR.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The contact URI.
    pub uri: String,
    /// Its comparison key (RFC 3261 §19.1.4, simplified: scheme, host and parameters ignore
    /// case), kept so that a REGISTER finds its bindings without parsing them again.
    pub key: String,
    /// Its contact-params other than `expires`, as received (`;+sip.instance=...;reg-id=1`).
    pub params: String,
    /// When it expires.
    pub expires_at: Instant,
    /// q-value in thousandths (1000 when absent).
    pub q: u16,
    /// Whether the contact gave a q-value.
    pub q_given: bool,
    /// Call-ID of the REGISTER that made it.
    pub call_id: String,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// Where it was registered from.
    pub flow: Flow,
    /// `+sip.instance` (RFC 5626 §4.1).
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626 §4.2).
    pub reg_id: Option<u32>,
    /// The User-Agent of the REGISTER.
    pub user_agent: Option<String>,
    /// The REGISTER's Path values, comma-separated, topmost first (RFC 3327 §5.3): the route
    /// set towards the contact, through the edge proxies it registered through.
    pub path: Option<String>,
    /// When it was last refreshed.
    pub updated: Instant,
    /// The node that holds its flow, for a binding learnt from the cluster's Redis (its
    /// `path` leads there); `None` for a binding registered here.
    pub node: Option<std::sync::Arc<str>>,
}

impl Binding {
    /// Seconds left at `now` (rounded up).
    pub fn remaining(&self, now: Instant) -> u64 {
        let d = self.expires_at.saturating_duration_since(now);
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }

    /// `<uri>;params;expires=N` for the 200 OK (§10.3 step 8).
    pub fn contact_value(&self, now: Instant) -> String {
        let mut n = itoa::Buffer::new();
        let secs = n.format(self.remaining(now));
        let mut v = String::with_capacity(self.uri.len() + self.params.len() + 11 + secs.len());
        v.push('<');
        v.push_str(&self.uri);
        v.push('>');
        v.push_str(&self.params);
        v.push_str(";expires=");
        v.push_str(secs);
        v
    }
}

/// What a successful `save` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveReply {
    /// Contact header values for the 200 OK: every live binding of the AoR.
    pub contacts: Vec<String>,
    /// Seconds left (rounded up) of the longest-lived binding of the AoR registered over the
    /// request's connection; `None` when it holds none there (or the transport is
    /// connectionless). What the connection is kept open for (RFC 5626 §4.4).
    pub flow_expires: Option<u64>,
}

/// The canonical AoR of a To URI (§10.3 step 5): `user@host`, the user unescaped and the
/// host lower-cased; no port, no parameters.
pub fn aor_of(uri: &Uri<'_>) -> Result<String, RegError> {
    if !matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) {
        return Err(RegError::UnsupportedScheme(uri.scheme_str().to_string()));
    }
    let host = uri.host();
    let mut aor = String::with_capacity(host.len() + uri.user().map_or(0, |u| u.len() + 1));
    if let Some(u) = uri.user() {
        aor.push_str(&String::from_utf8_lossy(&unescape(u)));
        aor.push('@');
    }
    let at = aor.len();
    aor.push_str(host);
    aor[at..].make_ascii_lowercase();
    Ok(aor)
}

/// How `a` ranks against `b` for lookup: higher q first, then more recently refreshed.
fn preference(a: &Binding, b: &Binding) -> std::cmp::Ordering {
    a.q.cmp(&b.q).then(a.updated.cmp(&b.updated))
}

/// `secs` from now.
fn after(now: Instant, secs: u32) -> Instant {
    now + Duration::from_secs(u64::from(secs))
}
