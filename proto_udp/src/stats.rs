//! The plugin's statistics (group `udp`): relaxed atomics bumped where the events happen (no
//! lock, no allocation), reported to the host through ABI 1.5 `Module::stats`. OpenSIPS's
//! proto_udp has no statistics; the names are ours (README "Statistics and metrics").
use crate::classify::Datagram;
use sipcore_abi::StatSink;
use std::sync::atomic::{AtomicU64, Ordering};

/// A counter on its own cache line, so that workers bumping different counters do not
/// contend.
#[repr(align(64))]
pub struct Stat(AtomicU64);

impl Stat {
    const fn new() -> Self {
        Stat(AtomicU64::new(0))
    }

    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Add one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Datagrams read from the sockets, whatever became of them.
pub static RECEIVED: Stat = Stat::new();
/// Their bytes.
pub static RECEIVED_BYTES: Stat = Stat::new();
/// Datagrams handed to the core as SIP messages.
pub static DELIVERED: Stat = Stat::new();
/// CRLF keep-alives, dropped.
pub static KEEPALIVES: Stat = Stat::new();
/// Empty datagrams, dropped.
pub static DROPPED_EMPTY: Stat = Stat::new();
/// Datagrams over `udp_max_msg_size`, dropped.
pub static DROPPED_TOO_LARGE: Stat = Stat::new();
/// Datagrams that are not SIP (STUN, DTLS, RTP, probes), dropped.
pub static DROPPED_NOT_SIP: Stat = Stat::new();
/// Datagrams from source port 0, dropped.
pub static DROPPED_PORT_ZERO: Stat = Stat::new();
/// SIP datagrams that waited for the thread handling another datagram of their call
/// (`udp_spread "call"`).
pub static HELD: Stat = Stat::new();
/// SIP datagrams dropped because `sequence::MAX_HELD` datagrams of their call already waited.
pub static DROPPED_HELD: Stat = Stat::new();
/// Receive errors other than the read timeout.
pub static RECEIVE_ERRORS: Stat = Stat::new();
/// Datagrams sent.
pub static SENT: Stat = Stat::new();
/// Their bytes.
pub static SENT_BYTES: Stat = Stat::new();
/// Sends dropped because the socket's send buffer was full (EAGAIN, ENOBUFS).
pub static SEND_QUEUE_FULL: Stat = Stat::new();
/// Sends that failed otherwise (too large for UDP, no route, no socket of the family...).
pub static SEND_ERRORS: Stat = Stat::new();

/// Count one dropped datagram under its reason (`Datagram::Sip` counts nothing here).
pub fn dropped(d: Datagram) {
    let s = match d {
        Datagram::Sip => return,
        Datagram::Empty => &DROPPED_EMPTY,
        Datagram::KeepAlive => &KEEPALIVES,
        Datagram::TooLarge => &DROPPED_TOO_LARGE,
        Datagram::NotSip => &DROPPED_NOT_SIP,
        Datagram::PortZero => &DROPPED_PORT_ZERO,
    };
    s.inc();
}

/// Every statistic: name, value, help. All are counters.
fn all() -> [(&'static str, &'static Stat, &'static str); 15] {
    [
        ("received", &RECEIVED, "UDP datagrams received"),
        (
            "received_bytes",
            &RECEIVED_BYTES,
            "bytes of UDP datagrams received",
        ),
        (
            "delivered",
            &DELIVERED,
            "UDP datagrams handed to the core as SIP",
        ),
        (
            "keepalives",
            &KEEPALIVES,
            "CRLF keep-alive datagrams received (dropped)",
        ),
        ("dropped_empty", &DROPPED_EMPTY, "empty datagrams dropped"),
        (
            "dropped_too_large",
            &DROPPED_TOO_LARGE,
            "datagrams over udp_max_msg_size dropped",
        ),
        (
            "dropped_not_sip",
            &DROPPED_NOT_SIP,
            "datagrams that are not SIP (STUN, DTLS, RTP, probes) dropped",
        ),
        (
            "dropped_port_zero",
            &DROPPED_PORT_ZERO,
            "datagrams from source port 0 dropped",
        ),
        (
            "held",
            &HELD,
            "SIP datagrams that waited for the thread handling their call (udp_spread call)",
        ),
        (
            "dropped_held",
            &DROPPED_HELD,
            "SIP datagrams dropped because 64 of their call already waited (udp_spread call)",
        ),
        ("receive_errors", &RECEIVE_ERRORS, "UDP receive errors"),
        ("sent", &SENT, "UDP datagrams sent"),
        ("sent_bytes", &SENT_BYTES, "bytes of UDP datagrams sent"),
        (
            "send_queue_full",
            &SEND_QUEUE_FULL,
            "datagrams not sent because the socket's send buffer was full",
        ),
        (
            "send_errors",
            &SEND_ERRORS,
            "datagrams not sent for another error",
        ),
    ]
}

/// Report every statistic under the group `udp`.
pub fn report(sink: &StatSink) {
    for (name, s, help) in all() {
        sink.report("udp", name, s.get(), false, help);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_drop_reason_has_its_own_counter() {
        let reasons = [
            (Datagram::Empty, &DROPPED_EMPTY),
            (Datagram::KeepAlive, &KEEPALIVES),
            (Datagram::TooLarge, &DROPPED_TOO_LARGE),
            (Datagram::NotSip, &DROPPED_NOT_SIP),
            (Datagram::PortZero, &DROPPED_PORT_ZERO),
        ];
        for (d, s) in reasons {
            let before: Vec<u64> = reasons.iter().map(|(_, s)| s.get()).collect();
            dropped(d);
            for (i, (other, t)) in reasons.iter().enumerate() {
                let want = before[i] + u64::from(*other == d);
                assert_eq!(t.get(), want, "{d:?} moved {other:?}");
            }
            assert!(s.get() >= 1);
        }
        let names: Vec<&str> = all().iter().map(|(n, _, _)| *n).collect();
        let mut uniq = names.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert_eq!(names.len(), uniq.len());
    }
}
