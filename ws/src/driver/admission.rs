//! Admission of inbound connections: the global limit (`ws_max_connections`) and the limit per
//! peer address (`ws_max_connections_per_ip`), with the refusal state each keeps so that a
//! refusal is logged once per state change, not once per connection; and the state of accept
//! failures (descriptor exhaustion), logged the same way. Pure bookkeeping, no I/O.
//!
//! A refused client is answered `503 Service Unavailable` with `Retry-After` (RFC 6455 §4.2.2
//! lets the server answer the opening handshake with any HTTP status; RFC 9110 §15.6.4 and
//! §10.2.3) by the driver; this module only decides.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Seconds a refused client is asked to wait (`Retry-After`, RFC 9110 §10.2.3): long enough
/// that a fleet of reconnecting clients does not hammer a full server, short enough that a
/// slot freed by a leaving client is used soon.
pub(crate) const RETRY_AFTER_SECS: u32 = 10;

/// Why a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `ws_max_connections` connections are open.
    Full,
    /// `ws_max_connections_per_ip` connections from this address are open.
    PerIp,
    /// The worker's write queues hold 3/4 of `ws_max_worker_queue` (see `overload.rs`).
    Overloaded,
}

impl Refusal {
    /// The HTTP answer to the opening handshake (RFC 6455 §4.2.2 item 1 allows any status;
    /// `Connection: close` because we close once it is written).
    pub fn response(self) -> Vec<u8> {
        let body: &str = match self {
            Refusal::Full => "too many connections\n",
            Refusal::PerIp => "too many connections from your address\n",
            Refusal::Overloaded => "server overloaded\n",
        };
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {RETRY_AFTER_SECS}\r\n\
             Connection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// A change of refusal state worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// Refusals of this kind start (the first one; `ip` is the peer's address, for
    /// [`Refusal::PerIp`] the address it is counted under, see [`peer_key`]).
    Refusing(Refusal, IpAddr),
    /// A connection of this kind is admitted again after `refused` refusals.
    Admitting(Refusal, IpAddr, u64),
}

#[derive(Debug, Default)]
struct PerIp {
    /// Inbound connections open from this address.
    open: usize,
    /// Refusals since this address reached its limit (0 = not refusing).
    refused: u64,
}

/// The address a peer is counted under: an IPv4 address as is, an IPv6 address by its /64
/// prefix (one subscriber's network, RFC 6177; a single host has a whole /64 to pick from),
/// an IPv4-mapped IPv6 address as the IPv4 address.
pub(crate) fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

/// Inbound connections per peer address and the refusal states.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    per_ip: HashMap<IpAddr, PerIp>,
    /// Refusals since the global limit was reached (0 = not refusing).
    full_refused: u64,
}

impl Admission {
    /// Decide on an inbound connection from `ip`: `full` says whether the global limit is
    /// reached, `max_per_ip` is the limit per address (0 = none; IPv6 counted per /64, see
    /// [`peer_key`]). An admitted connection is counted until [`Self::release`]. Returns the
    /// refusal, if any, and the state changes to log.
    pub fn admit(
        &mut self,
        ip: IpAddr,
        full: bool,
        max_per_ip: usize,
    ) -> (Option<Refusal>, Vec<Note>) {
        let key = peer_key(ip);
        let mut notes = Vec::new();
        if full {
            if self.full_refused == 0 {
                notes.push(Note::Refusing(Refusal::Full, ip));
            }
            self.full_refused = self.full_refused.saturating_add(1);
            return (Some(Refusal::Full), notes);
        }
        if self.full_refused > 0 {
            notes.push(Note::Admitting(Refusal::Full, ip, self.full_refused));
            self.full_refused = 0;
        }
        let e = self.per_ip.entry(key).or_default();
        if max_per_ip != 0 && e.open >= max_per_ip {
            if e.refused == 0 {
                notes.push(Note::Refusing(Refusal::PerIp, key));
            }
            e.refused = e.refused.saturating_add(1);
            return (Some(Refusal::PerIp), notes);
        }
        if e.refused > 0 {
            notes.push(Note::Admitting(Refusal::PerIp, key, e.refused));
            e.refused = 0;
        }
        e.open += 1;
        (None, notes)
    }

    /// An admitted connection from `ip` is gone. The entry of an address is dropped with its
    /// last connection unless it is in refusal state (then it waits for the next admission,
    /// which logs the end of the refusals).
    pub fn release(&mut self, ip: IpAddr) {
        let ip = peer_key(ip);
        if let Some(e) = self.per_ip.get_mut(&ip) {
            e.open = e.open.saturating_sub(1);
            if e.open == 0 && e.refused == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Inbound connections open from `ip`.
    #[cfg(test)]
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&peer_key(ip)).map_or(0, |e| e.open)
    }

    /// Addresses tracked (tests: entries do not leak).
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.per_ip.len()
    }
}

/// Accepting failing for lack of a resource (EMFILE, ENFILE, ENOBUFS, ENOMEM): one log line
/// when it starts, one when an accept succeeds again, with the count in between.
#[derive(Debug, Default)]
pub(crate) struct AcceptFail {
    /// Failed accepts since the failures started; 0 = accepting works.
    failures: u64,
    since: Option<Instant>,
}

/// What [`AcceptFail`] says to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptNote {
    /// Accepting just started failing.
    Failing,
    /// An accept succeeded after `failures` failed ones over `for_ms` milliseconds.
    Recovered {
        /// Failed accepts (listener pauses) in between.
        failures: u64,
        /// How long accepting failed.
        for_ms: u64,
    },
}

impl AcceptFail {
    /// An accept failed for lack of a resource.
    pub fn failed(&mut self, now: Instant) -> Option<AcceptNote> {
        self.failures = self.failures.saturating_add(1);
        if self.failures == 1 {
            self.since = Some(now);
            return Some(AcceptNote::Failing);
        }
        None
    }

    /// An accept succeeded.
    pub fn succeeded(&mut self, now: Instant) -> Option<AcceptNote> {
        if self.failures == 0 {
            return None;
        }
        let failures = std::mem::take(&mut self.failures);
        let for_ms = self
            .since
            .take()
            .map_or(0, |t| now.saturating_duration_since(t).as_millis() as u64);
        Some(AcceptNote::Recovered { failures, for_ms })
    }

    /// True while accepting fails.
    pub fn failing(&self) -> bool {
        self.failures != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_limit_refuses_that_address_only_and_logs_state_changes() {
        let mut a = Admission::default();
        let (x, y) = (ip("10.0.0.1"), ip("10.0.0.2"));
        for _ in 0..3 {
            assert_eq!(a.admit(x, false, 3), (None, vec![]));
        }
        assert_eq!(
            a.admit(x, false, 3),
            (
                Some(Refusal::PerIp),
                vec![Note::Refusing(Refusal::PerIp, x)]
            )
        );
        // Further refusals are silent.
        assert_eq!(a.admit(x, false, 3), (Some(Refusal::PerIp), vec![]));
        // Another address is unaffected.
        assert_eq!(a.admit(y, false, 3), (None, vec![]));
        a.release(x);
        assert_eq!(
            a.admit(x, false, 3),
            (None, vec![Note::Admitting(Refusal::PerIp, x, 2)])
        );
        assert_eq!(a.open_from(x), 3);
    }

    #[test]
    fn global_limit_refuses_everyone_once_logged() {
        let mut a = Admission::default();
        let (x, y) = (ip("10.0.0.1"), ip("::1"));
        assert_eq!(
            a.admit(x, true, 0),
            (Some(Refusal::Full), vec![Note::Refusing(Refusal::Full, x)])
        );
        assert_eq!(a.admit(y, true, 0), (Some(Refusal::Full), vec![]));
        assert_eq!(
            a.admit(y, false, 0),
            (None, vec![Note::Admitting(Refusal::Full, y, 2)])
        );
        // A refusal for the global limit does not count against the address.
        assert_eq!(a.open_from(x), 0);
    }

    #[test]
    fn ipv6_peers_are_counted_per_64() {
        let mut a = Admission::default();
        let (h1, h2) = (ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        let other = ip("2001:db8:1:3::1");
        assert_eq!(a.admit(h1, false, 2).0, None);
        assert_eq!(a.admit(h2, false, 2).0, None);
        assert_eq!(a.admit(h1, false, 2).0, Some(Refusal::PerIp));
        assert_eq!(a.admit(other, false, 2).0, None);
        assert_eq!(peer_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        a.release(h2);
        a.release(h1);
        a.release(other);
        assert_eq!(
            a.tracked(),
            1,
            "the /64 in refusal state waits for its next admission"
        );
    }

    #[test]
    fn zero_means_no_limit_per_ip_and_entries_are_freed() {
        let mut a = Admission::default();
        let x = ip("10.0.0.1");
        for _ in 0..1000 {
            assert_eq!(a.admit(x, false, 0).0, None);
        }
        for _ in 0..1000 {
            a.release(x);
        }
        assert_eq!(a.tracked(), 0);
        // Releasing an unknown address is harmless.
        a.release(x);
        assert_eq!(a.tracked(), 0);
    }

    #[test]
    fn accept_failures_are_noted_once_per_state_change() {
        let t0 = Instant::now();
        let mut f = AcceptFail::default();
        assert_eq!(f.succeeded(t0), None);
        assert_eq!(f.failed(t0), Some(AcceptNote::Failing));
        assert!(f.failing());
        for _ in 0..9 {
            assert_eq!(f.failed(t0), None);
        }
        let later = t0 + std::time::Duration::from_millis(900);
        assert_eq!(
            f.succeeded(later),
            Some(AcceptNote::Recovered {
                failures: 10,
                for_ms: 900
            })
        );
        assert!(!f.failing());
        assert_eq!(f.succeeded(later), None);
        assert_eq!(f.failed(later), Some(AcceptNote::Failing));
    }

    #[test]
    fn refusal_answer_is_503_with_retry_after() {
        for r in [Refusal::Full, Refusal::PerIp] {
            let resp = String::from_utf8(r.response()).unwrap();
            assert!(
                resp.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
                "{resp}"
            );
            assert!(resp.contains("\r\nRetry-After: 10\r\n"), "{resp}");
            let (head, body) = resp.split_once("\r\n\r\n").unwrap();
            assert!(head.contains(&format!("Content-Length: {}", body.len())));
        }
    }
}
