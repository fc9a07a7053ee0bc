//! The plugin's statistics (group `ws` or `wss`, the flavor's name): relaxed atomics, bumped
//! on the I/O workers where the events happen (no lock, no allocation), reported to the host
//! through ABI 1.5 `Module::stats`. OpenSIPS's proto_ws has no statistics; the names are ours
//! (README "Statistics and metrics" lists them).
use sipcore_abi::StatSink;
use std::sync::atomic::{AtomicU64, Ordering};

/// A counter (or, for [`CONNECTIONS`], a level) on its own cache line, so that workers
/// bumping different counters do not contend.
#[repr(align(64))]
pub(crate) struct Stat(AtomicU64);

impl Stat {
    const fn new() -> Self {
        Stat(AtomicU64::new(0))
    }

    /// Add one.
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Take one away (a level), never below zero.
    pub(crate) fn dec(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }

    /// The value now.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Connections open now (accepted after admission, and outbound), a gauge.
pub(crate) static CONNECTIONS: Stat = Stat::new();
/// Connections ever opened (as [`CONNECTIONS`]).
pub(crate) static CONNECTIONS_TOTAL: Stat = Stat::new();
/// Opening handshakes completed (inbound 101 sent, outbound 101 received).
pub(crate) static HANDSHAKES_ACCEPTED: Stat = Stat::new();
/// Handshakes that did not finish in time (inbound or outbound).
pub(crate) static HANDSHAKE_TIMEOUTS: Stat = Stat::new();
/// TLS handshakes that failed (proto_wss).
pub(crate) static TLS_HANDSHAKES_FAILED: Stat = Stat::new();
/// Messages over `ws_max_msg_size`, `ws_max_msg_chunks` or `ws_max_msg_time` (close 1009 or
/// 1008), and connections refused by `ws_max_connections(_per_ip)`.
pub(crate) static LIMIT_VIOLATIONS: Stat = Stat::new();
/// Connections closed because their write queue exceeded `ws_max_write_queue`.
pub(crate) static WRITE_QUEUE_DROPS: Stat = Stat::new();
/// Handshakes refused with 503 because their worker's write queues neared
/// `ws_max_worker_queue` (also in `handshakes_refused_503`).
pub(crate) static OVERLOAD_REFUSED: Stat = Stat::new();
/// Connections shed with Close 1013 because their worker was over `ws_max_worker_queue`.
pub(crate) static OVERLOAD_SHED: Stat = Stat::new();

/// The refusal statuses counted one by one (`handshakes_refused_<status>`); any other is
/// counted under `other`.
const REFUSED: [u16; 6] = [400, 403, 405, 426, 431, 503];
static REFUSED_BY: [Stat; 7] = [const { Stat::new() }; 7];

/// The Close codes counted one by one (`close_sent_<code>`, `close_received_<code>`, RFC 6455
/// §7.4.1); `none` is a Close without a code, `other` any other code.
const CODES: [u16; 10] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1013];
static CLOSE_SENT: [Stat; 12] = [const { Stat::new() }; 12];
static CLOSE_RECEIVED: [Stat; 12] = [const { Stat::new() }; 12];

/// A handshake refused with HTTP `status`.
pub(crate) fn handshake_refused(status: u16) {
    let i = REFUSED
        .iter()
        .position(|s| *s == status)
        .unwrap_or(REFUSED.len());
    if let Some(s) = REFUSED_BY.get(i) {
        s.inc();
    }
    if status == 503 {
        LIMIT_VIOLATIONS.inc();
    }
}

fn code_index(code: Option<u16>) -> usize {
    match code {
        None => CODES.len(),
        Some(c) => CODES
            .iter()
            .position(|k| *k == c)
            .unwrap_or(CODES.len() + 1),
    }
}

/// We sent a Close with `code` (`None`: without a code).
pub(crate) fn close_sent(code: Option<u16>) {
    if let Some(s) = CLOSE_SENT.get(code_index(code)) {
        s.inc();
    }
}

/// We received a Close with `code`.
pub(crate) fn close_received(code: Option<u16>) {
    if let Some(s) = CLOSE_RECEIVED.get(code_index(code)) {
        s.inc();
    }
}

fn code_name(i: usize) -> String {
    match CODES.get(i) {
        Some(c) => c.to_string(),
        None if i == CODES.len() => "none".into(),
        None => "other".into(),
    }
}

/// Report every statistic under `group` (the flavor's name, `ws` or `wss`).
pub(crate) fn report(sink: &StatSink, group: &str) {
    let fixed: [(&str, &Stat, bool, &str); 9] = [
        (
            "connections",
            &CONNECTIONS,
            true,
            "WebSocket connections open now",
        ),
        (
            "connections_total",
            &CONNECTIONS_TOTAL,
            false,
            "WebSocket connections opened (inbound admitted and outbound)",
        ),
        (
            "handshakes_accepted",
            &HANDSHAKES_ACCEPTED,
            false,
            "WebSocket opening handshakes completed",
        ),
        (
            "handshake_timeouts",
            &HANDSHAKE_TIMEOUTS,
            false,
            "WebSocket or TLS handshakes not completed in time",
        ),
        (
            "tls_handshakes_failed",
            &TLS_HANDSHAKES_FAILED,
            false,
            "TLS handshakes that failed",
        ),
        (
            "limit_violations",
            &LIMIT_VIOLATIONS,
            false,
            "messages over a size, chunk or time limit, and connections over a connection limit",
        ),
        (
            "write_queue_drops",
            &WRITE_QUEUE_DROPS,
            false,
            "connections closed because their write queue was full",
        ),
        (
            "overload_refused",
            &OVERLOAD_REFUSED,
            false,
            "handshakes refused with 503 because their worker's write queues neared ws_max_worker_queue",
        ),
        (
            "overload_shed",
            &OVERLOAD_SHED,
            false,
            "connections shed with Close 1013 because their worker was over ws_max_worker_queue",
        ),
    ];
    // proto_tcp / proto_tls have no WebSocket handshakes nor Close frames: those are not
    // reported (nor, over plain TCP, the TLS handshakes).
    let f = crate::flavor::get();
    let skip = |name: &str| {
        f.stream && (name == "handshakes_accepted" || (!f.tls && name.contains("handshake")))
    };
    for (name, s, gauge, help) in fixed {
        if !skip(name) {
            sink.report(group, name, s.get(), gauge, help);
        }
    }
    if f.stream {
        return;
    }
    for (i, s) in REFUSED_BY.iter().enumerate() {
        let st = REFUSED.get(i).map_or("other".to_string(), u16::to_string);
        let name = format!("handshakes_refused_{st}");
        sink.report(
            group,
            &name,
            s.get(),
            false,
            "WebSocket handshakes refused with this HTTP status",
        );
    }
    for (i, s) in CLOSE_SENT.iter().enumerate() {
        let name = format!("close_sent_{}", code_name(i));
        sink.report(
            group,
            &name,
            s.get(),
            false,
            "Close frames sent with this status code",
        );
    }
    for (i, s) in CLOSE_RECEIVED.iter().enumerate() {
        let name = format!("close_received_{}", code_name(i));
        sink.report(
            group,
            &name,
            s.get(),
            false,
            "Close frames received with this status code",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_map_to_their_slots() {
        assert_eq!(code_index(Some(1000)), 0);
        assert_eq!(code_index(None), CODES.len());
        assert_eq!(code_index(Some(4000)), CODES.len() + 1);
        assert_eq!(code_name(CODES.len()), "none");
        assert_eq!(code_name(CODES.len() + 1), "other");
        let before = REFUSED_BY[REFUSED.len()].get();
        handshake_refused(418);
        assert_eq!(REFUSED_BY[REFUSED.len()].get(), before + 1);
    }
}
