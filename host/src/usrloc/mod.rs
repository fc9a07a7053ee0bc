//! The registrar's store (OpenSIPS `usrloc` + `registrar`): RFC 3261 §10.3 REGISTER
//! processing, with each contact bound to the flow it was registered over (RFC 5626 §4.2,
//! RFC 7118 §5). Pure code: no I/O, no clock (time comes in as `now`), no locks (the caller
//! wraps a [`Registrar`] in a mutex).
mod contact;
#[cfg(test)]
mod tests;

use crate::sip::{unescape, Message, Scheme, Uri};
use contact::{parse_contacts, Parsed, Requested};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

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
/// `max_contacts`).
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
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            default_expires: 3600,
            min_expires: 60,
            max_expires: 3600,
            max_contacts: 0,
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
    #[error("too many contacts for this AoR (limit {0})")]
    TooManyContacts(usize),
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
            RegError::TooManyContacts(_) => (503, "Service Unavailable"),
        }
    }

    /// A header the answer must carry (`Min-Expires` with 423, §20.23).
    pub fn extra_header(&self) -> Option<(&'static str, String)> {
        match self {
            RegError::IntervalTooBrief { min, .. } => Some(("Min-Expires", min.to_string())),
            _ => None,
        }
    }
}

/// One contact of an AoR.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The contact URI.
    pub uri: String,
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
    /// When it was last refreshed.
    pub updated: Instant,
}

impl Binding {
    /// Seconds left at `now` (rounded up).
    pub fn remaining(&self, now: Instant) -> u64 {
        let d = self.expires_at.saturating_duration_since(now);
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }

    /// `<uri>;params;expires=N` for the 200 OK (§10.3 step 8).
    pub fn contact_value(&self, now: Instant) -> String {
        format!(
            "<{}>{};expires={}",
            self.uri,
            self.params,
            self.remaining(now)
        )
    }
}

/// What a successful `save` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveReply {
    /// Contact header values for the 200 OK: every live binding of the AoR.
    pub contacts: Vec<String>,
}

/// The canonical AoR of a To URI (§10.3 step 5): `user@host`, the user unescaped and the
/// host lower-cased; no port, no parameters.
pub fn aor_of(uri: &Uri<'_>) -> Result<String, RegError> {
    if !matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) {
        return Err(RegError::UnsupportedScheme(uri.scheme_str().to_string()));
    }
    let host = uri.host().to_ascii_lowercase();
    Ok(match uri.user() {
        Some(u) => format!("{}@{host}", String::from_utf8_lossy(&unescape(u))),
        None => host,
    })
}

/// The in-memory location table.
#[derive(Debug)]
pub struct Registrar {
    cfg: RegistrarConfig,
    aors: HashMap<String, Vec<Binding>>,
    /// conn_id → AoRs with a binding over that connection.
    by_conn: HashMap<u64, HashSet<String>>,
}

impl Registrar {
    /// An empty table.
    pub fn new(cfg: RegistrarConfig) -> Self {
        Registrar {
            cfg,
            aors: HashMap::new(),
            by_conn: HashMap::new(),
        }
    }

    /// Number of AoRs with at least one binding.
    pub fn len(&self) -> usize {
        self.aors.len()
    }

    /// No binding at all.
    pub fn is_empty(&self) -> bool {
        self.aors.is_empty()
    }

    /// Number of bindings.
    pub fn contact_count(&self) -> usize {
        self.aors.values().map(Vec::len).sum()
    }

    /// Process a REGISTER (RFC 3261 §10.3 steps 5-8) received over `flow`. All contacts are
    /// checked before any is applied: a refused request changes nothing.
    pub fn save(&mut self, req: &Message, flow: Flow, now: Instant) -> Result<SaveReply, RegError> {
        let to = req.to().map_err(|_| RegError::Malformed("To"))?;
        let uri = to.uri().map_err(|_| RegError::Malformed("To URI"))?;
        let aor = aor_of(&uri)?;
        let call_id = req.call_id().ok_or(RegError::Malformed("Call-ID"))?;
        let cseq = req.cseq().map_err(|_| RegError::Malformed("CSeq"))?.seq;
        let hdr_expires = req.expires().map_err(|_| RegError::Malformed("Expires"))?;
        let parsed = parse_contacts(req, hdr_expires, &self.cfg)?;
        let existing = self.aors.get(&aor).map(Vec::as_slice).unwrap_or(&[]);
        match parsed {
            Parsed::Query => {}
            Parsed::Wildcard => {
                for b in existing.iter().filter(|b| b.call_id == call_id) {
                    if cseq <= b.cseq {
                        return Err(RegError::OutOfOrder {
                            got: cseq,
                            stored: b.cseq,
                        });
                    }
                }
                let gone: Vec<Binding> = self.aors.remove(&aor).unwrap_or_default();
                for b in gone {
                    self.unindex(b.flow.conn_id, &aor);
                }
            }
            Parsed::Contacts(list) => {
                let mut next: Vec<Binding> = existing.to_vec();
                for c in &list {
                    let pos = next.iter().position(|b| c.same_binding(b));
                    if let Some(i) = pos {
                        let b = &next[i];
                        if b.call_id == call_id && cseq <= b.cseq {
                            return Err(RegError::OutOfOrder {
                                got: cseq,
                                stored: b.cseq,
                            });
                        }
                    }
                    match (pos, c.expires) {
                        (Some(i), 0) => {
                            next.remove(i);
                        }
                        (None, 0) => {}
                        (pos, secs) => {
                            let b = c.binding(secs, call_id, cseq, flow, req, now);
                            match pos {
                                Some(i) => next[i] = b,
                                None => next.push(b),
                            }
                        }
                    }
                }
                next.retain(|b| b.expires_at > now);
                if self.cfg.max_contacts > 0 && next.len() > self.cfg.max_contacts {
                    return Err(RegError::TooManyContacts(self.cfg.max_contacts));
                }
                let old: Vec<u64> = existing.iter().map(|b| b.flow.conn_id).collect();
                for id in old {
                    self.unindex(id, &aor);
                }
                for b in &next {
                    self.index(b.flow.conn_id, &aor);
                }
                if next.is_empty() {
                    self.aors.remove(&aor);
                } else {
                    self.aors.insert(aor.clone(), next);
                }
            }
        }
        let contacts = self
            .lookup(&aor, now)
            .iter()
            .map(|b| b.contact_value(now))
            .collect();
        Ok(SaveReply { contacts })
    }

    fn index(&mut self, conn_id: u64, aor: &str) {
        if conn_id != 0 {
            self.by_conn
                .entry(conn_id)
                .or_default()
                .insert(aor.to_string());
        }
    }

    /// Forget that `aor` has bindings over `conn_id` (re-added by `index` if some remain).
    fn unindex(&mut self, conn_id: u64, aor: &str) {
        if let Some(set) = self.by_conn.get_mut(&conn_id) {
            set.remove(aor);
            if set.is_empty() {
                self.by_conn.remove(&conn_id);
            }
        }
    }

    /// Live bindings of `aor` (canonical form, see [`aor_of`]): highest q first, then the most
    /// recently refreshed. Expired bindings are never returned, swept or not.
    pub fn lookup(&self, aor: &str, now: Instant) -> Vec<&Binding> {
        let mut v: Vec<&Binding> = self.live(aor, now).collect();
        v.sort_by(|a, b| preference(b, a));
        v
    }

    /// The first of [`lookup`](Registrar::lookup), without building the list (a stateless
    /// proxy sends to one contact).
    pub fn best(&self, aor: &str, now: Instant) -> Option<&Binding> {
        // min_by keeps the first of equals, as the stable sort of `lookup` does.
        self.live(aor, now).min_by(|a, b| preference(b, a))
    }

    fn live(&self, aor: &str, now: Instant) -> impl Iterator<Item = &Binding> {
        self.aors
            .get(aor)
            .into_iter()
            .flatten()
            .filter(move |b| b.expires_at > now)
    }

    /// Drop every binding registered over connection `conn_id` (it closed). Costs the
    /// bindings of the AoRs that used it, not the whole table.
    pub fn remove_flow(&mut self, conn_id: u64) -> usize {
        let Some(aors) = self.by_conn.remove(&conn_id) else {
            return 0;
        };
        let mut n = 0;
        for aor in aors {
            if let Some(list) = self.aors.get_mut(&aor) {
                let before = list.len();
                list.retain(|b| b.flow.conn_id != conn_id);
                n += before - list.len();
                if list.is_empty() {
                    self.aors.remove(&aor);
                }
            }
        }
        n
    }

    /// Remove expired bindings; returns how many. A full scan (run once a second).
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        let mut dead_conns: Vec<(u64, String)> = Vec::new();
        self.aors.retain(|aor, list| {
            list.retain(|b| {
                let live = b.expires_at > now;
                if !live {
                    n += 1;
                    dead_conns.push((b.flow.conn_id, aor.clone()));
                }
                live
            });
            !list.is_empty()
        });
        for (id, aor) in dead_conns {
            let still = self
                .aors
                .get(&aor)
                .is_some_and(|l| l.iter().any(|b| b.flow.conn_id == id));
            if !still {
                self.unindex(id, &aor);
            }
        }
        n
    }

    /// The table's AoRs as a JSON list, OpenSIPS `ul_dump` style.
    pub fn dump(&self, now: Instant) -> serde_json::Value {
        let mut aors: Vec<&String> = self.aors.keys().collect();
        aors.sort();
        let list: Vec<serde_json::Value> = aors
            .into_iter()
            .map(|aor| {
                let contacts: Vec<serde_json::Value> = self
                    .lookup(aor, now)
                    .into_iter()
                    .map(|b| {
                        serde_json::json!({
                            "Contact": b.uri,
                            "Params": b.params,
                            "Expires": b.remaining(now),
                            "Q": b.q_given.then(|| format!("{}.{:03}", b.q / 1000, b.q % 1000)),
                            "Callid": b.call_id,
                            "Cseq": b.cseq,
                            "User-agent": b.user_agent,
                            "Conn": b.flow.conn_id,
                            "Received": format!("{}:{}", b.flow.proto, b.flow.peer),
                            "Socket": format!("{}:{}", b.flow.proto, b.flow.local),
                            "Instance": b.instance,
                            "Reg-id": b.reg_id,
                            "Last-modified-ago": now.saturating_duration_since(b.updated).as_secs(),
                        })
                    })
                    .collect();
                serde_json::json!({ "AOR": aor, "Contacts": contacts })
            })
            .collect();
        serde_json::Value::Array(list)
    }
}

/// How `a` ranks against `b` for lookup: higher q first, then more recently refreshed.
fn preference(a: &Binding, b: &Binding) -> std::cmp::Ordering {
    a.q.cmp(&b.q).then(a.updated.cmp(&b.updated))
}

/// `secs` from now.
fn after(now: Instant, secs: u32) -> Instant {
    now + Duration::from_secs(u64::from(secs))
}

/// Is `r` asking for the binding `b`?
impl Requested {
    fn same_binding(&self, b: &Binding) -> bool {
        match (&self.instance, self.reg_id, &b.instance, b.reg_id) {
            // RFC 5626 §6: same instance and reg-id = same flow slot, whatever the URI.
            (Some(i), Some(r), Some(bi), Some(br)) => i == bi && r == br,
            _ => contact::uri_equal(&self.uri, &b.uri),
        }
    }

    fn binding(
        &self,
        secs: u32,
        call_id: &str,
        cseq: u32,
        flow: Flow,
        req: &Message,
        now: Instant,
    ) -> Binding {
        Binding {
            uri: self.uri.clone(),
            params: self.params.clone(),
            expires_at: after(now, secs),
            q: self.q.unwrap_or(1000),
            q_given: self.q.is_some(),
            call_id: call_id.to_string(),
            cseq,
            flow,
            instance: self.instance.clone(),
            reg_id: self.reg_id,
            user_agent: req.header("User-Agent").map(str::to_string),
            updated: now,
        }
    }
}
