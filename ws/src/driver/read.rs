//! Read path: reading into the per-connection buffer, the inbound opening handshake
//! (RFC 6455 §4.2) and the data phase (§5, §6), one event per step so that `deliver` runs
//! without the worker state borrowed.

use std::cell::RefCell;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use sipcore_abi::{LogLevel, Proto, ReceiveInfo, SockAddr};

use super::api::TraceEvent;
use super::conn::Phase;
use super::timer::{Kind, Stamp};
use super::worker::State;
use crate::proto::frame::{close_payload, OpCode};
use crate::proto::handshake::server_handshake;
use crate::proto::{Event, Role, WsConn};

/// Most bytes read from one connection per wakeup (fairness); the rest waits a turn.
pub(crate) const READ_BUDGET: usize = 64 * 1024;

thread_local! {
    /// Where a worker reads; only what arrived is copied to the connection's buffer.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; READ_BUDGET].into_boxed_slice());
}
/// Reply to a handshake still incomplete after `max_msg_chunks` reads.
const TOO_MANY_READS: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// What one read step produced.
pub(crate) enum Step {
    /// A data message to hand to the sink (no borrow held).
    Deliver(ReceiveInfo, Bytes, bool),
    /// The read budget is spent; continue next turn.
    Again,
    /// Nothing more now.
    Done,
}

/// Outcome of processing buffered bytes.
pub(crate) enum Progress {
    /// State changed or an event was handled: look again.
    Continue,
    /// More bytes are needed.
    NeedMore,
}

enum Got {
    Bytes,
    /// Bytes, fewer than asked for: the kernel's receive queue was empty after them.
    Short,
    Blocked,
    Budget,
    Gone,
}

/// One wakeup's reading of one connection.
///
/// Readiness is edge-triggered: a read that returns fewer bytes than it asked for emptied the
/// socket's receive queue, and bytes arriving after it raise a new edge. The read that would
/// only answer `WouldBlock` (a third of the system calls of a request-reply exchange) is then
/// skipped, unless the event also reported the peer's close or an error (they came with the
/// bytes and raise no new edge: the socket is read until it says so) or the connection is TLS
/// (the TLS layer holds records the socket no longer shows).
pub(crate) struct Turn {
    /// Bytes that may still be read in this turn (fairness between connections).
    pub budget: usize,
    /// Read until `WouldBlock`, end of stream or an error, whatever a read returned.
    pub greedy: bool,
    /// A short read emptied the socket in this turn.
    drained: bool,
}

impl Turn {
    /// A turn of [`READ_BUDGET`] bytes; `greedy` as in [`Turn::greedy`].
    pub fn new(greedy: bool) -> Self {
        Turn {
            budget: READ_BUDGET,
            greedy,
            drained: false,
        }
    }
}

impl State {
    /// Process buffered bytes, reading more when needed, until one message is ready for
    /// delivery, the socket would block, or the budget is spent.
    pub fn read_step(&mut self, slot: usize, now: Instant, turn: &mut Turn) -> Step {
        loop {
            let Some(phase) = self.conns.get(slot).map(|c| c.phase) else {
                return Step::Done;
            };
            let progress = match phase {
                Phase::Connecting => return Step::Done,
                // The session reads what the TLS handshake needs itself: no plaintext yet.
                Phase::TlsAccept | Phase::TlsConnect => {
                    if self.tls_step(slot, now) {
                        continue;
                    }
                    return Step::Done;
                }
                Phase::ServerHandshake => self.server_hs(slot, now),
                Phase::ClientHandshake => self.client_hs(slot, now),
                Phase::Open | Phase::Closing if self.shared.cfg.sip_stream => {
                    match self.decode_sip(slot, now) {
                        Ok(p) => p,
                        Err(step) => return step,
                    }
                }
                Phase::Open | Phase::Closing => match self.decode_one(slot, now) {
                    Ok(p) => p,
                    Err(step) => return step,
                },
                Phase::Flushing | Phase::Draining => {
                    if let Some(c) = self.conns.get_mut(slot) {
                        c.rbuf.clear();
                    }
                    Progress::NeedMore
                }
            };
            if let Progress::Continue = progress {
                continue;
            }
            if turn.drained {
                if let Some(c) = self.conns.get_mut(slot) {
                    c.trim_rbuf();
                }
                return Step::Done;
            }
            match self.read_more(slot, now, turn) {
                Got::Bytes => continue,
                Got::Short => {
                    turn.drained = true;
                    continue;
                }
                Got::Blocked | Got::Gone => return Step::Done,
                Got::Budget => return Step::Again,
            }
        }
    }

    fn read_more(&mut self, slot: usize, now: Instant, turn: &mut Turn) -> Got {
        let Some(c) = self.conns.get_mut(slot) else {
            return Got::Gone;
        };
        let budget = &mut turn.budget;
        if *budget == 0 {
            return Got::Budget;
        }
        // Read into the worker's scratch buffer and keep only what arrived: a partial frame
        // costs its bytes, not what its header announces nor a whole read buffer.
        let want = (*budget).min(READ_BUDGET);
        let r = SCRATCH.with(|b| {
            let mut b = b.borrow_mut();
            let dst = b.get_mut(..want).unwrap_or_default();
            let r = c.sock.read(dst);
            if let Ok(n) = r {
                c.push_read(dst.get(..n).unwrap_or_default());
            }
            r
        });
        match r {
            Ok(0) => {
                c.trim_rbuf();
                // The peer may only have shut down its sending side: give what is queued
                // (e.g. a reply just produced) one chance to leave.
                let _ = c.wq.write_to(&mut c.sock);
                let reason = match c.phase {
                    Phase::Open => "peer closed the TCP connection without a Close frame",
                    Phase::ServerHandshake | Phase::ClientHandshake => {
                        "peer closed during the handshake"
                    }
                    _ => "closed",
                };
                self.kill(slot, reason);
                Got::Gone
            }
            Ok(n) => {
                *budget = budget.saturating_sub(n);
                c.last_rx = Stamp::from(now);
                let stream = self.shared.cfg.sip_stream && c.phase == Phase::Open;
                if stream || matches!(c.phase, Phase::ServerHandshake | Phase::ClientHandshake) {
                    c.hs_reads = c.hs_reads.saturating_add(1);
                }
                if n < want && !turn.greedy && !c.sock.is_tls() {
                    Got::Short
                } else {
                    Got::Bytes
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                c.trim_rbuf();
                Got::Blocked
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Got::Bytes,
            Err(e) => {
                let reason = format!("read error: {e}");
                self.kill(slot, &reason);
                Got::Gone
            }
        }
    }

    /// Inbound opening handshake (RFC 6455 §4.2.1, §4.2.2; RFC 7118 §4.1).
    fn server_hs(&mut self, slot: usize, now: Instant) -> Progress {
        let Some(c) = self.conns.get_mut(slot) else {
            return Progress::NeedMore;
        };
        match server_handshake(&c.rbuf, &self.shared.server) {
            Ok(None) => {
                let max = self.shared.cfg.max_msg_chunks;
                if max != 0 && c.hs_reads >= max {
                    let reason = format!("handshake incomplete after {max} reads");
                    self.reject(slot, 400, TOO_MANY_READS.to_vec(), &reason, now);
                    return Progress::Continue;
                }
                Progress::NeedMore
            }
            Err(rej) => {
                let reason = rej.error.to_string();
                self.reject(slot, rej.status, rej.response, &reason, now);
                Progress::Continue
            }
            Ok(Some(acc)) => {
                crate::stats::HANDSHAKES_ACCEPTED.inc();
                if c.traced {
                    let req = c.rbuf.get(..acc.consumed).unwrap_or_default();
                    self.shared
                        .sink
                        .trace(&c.meta, TraceEvent::HandshakeRequest(req));
                    self.shared
                        .sink
                        .trace(&c.meta, TraceEvent::HandshakeReply(&acc.response));
                }
                c.rbuf.advance(acc.consumed.min(c.rbuf.len()));
                c.queue_raw(acc.response, now);
                c.phase = Phase::Open;
                c.ws = Some(WsConn::with_limits(
                    Role::Server,
                    Arc::clone(&self.shared.limits),
                ));
                c.last_data = Stamp::from(now);
                let (id, peer) = (c.meta.id, c.meta.peer);
                // Not reusable by address: only outbound connections are (runtime.rs, Directory).
                self.shared.dir().set_state(id, Phase::Open);
                let (p, i) = (peer.to_string(), id.to_string());
                self.shared.log(
                    LogLevel::DBG,
                    "websocket connection open",
                    &[("peer", &p), ("id", &i)],
                );
                self.mark_dirty(slot);
                self.opened_deadlines(slot);
                Progress::Continue
            }
        }
    }

    /// Refuse the handshake: send `response`, then close once it is flushed.
    pub fn reject(
        &mut self,
        slot: usize,
        status: u16,
        response: Vec<u8>,
        reason: &str,
        now: Instant,
    ) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        crate::stats::handshake_refused(status);
        let peer = c.peer_str();
        let st = status.to_string();
        self.shared.log(
            LogLevel::WARN,
            "websocket handshake failed",
            &[("peer", &peer), ("status", &st), ("reason", reason)],
        );
        if c.traced {
            self.shared
                .sink
                .trace(&c.meta, TraceEvent::HandshakeRequest(&c.rbuf));
            self.shared
                .sink
                .trace(&c.meta, TraceEvent::HandshakeReply(&response));
            self.shared
                .sink
                .trace(&c.meta, TraceEvent::HandshakeFailed { status, reason });
        }
        c.rbuf.clear();
        c.queue_raw(response, now);
        c.extra().end_reason = Some(format!("handshake refused ({status}): {reason}"));
        self.enter_flushing(slot, now);
    }

    /// Decode one frame event from the buffer and act on it (RFC 6455 §5.5, §6.2).
    fn decode_one(&mut self, slot: usize, now: Instant) -> Result<Progress, Step> {
        let Some(c) = self.conns.get_mut(slot) else {
            return Err(Step::Done);
        };
        let closing = c.phase == Phase::Closing;
        let Some(ws) = c.ws.as_mut() else {
            c.rbuf.clear();
            return Ok(Progress::NeedMore);
        };
        let ev = match ws.decode(&mut c.rbuf, now) {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                let deadline = ws.message_deadline();
                c.trim_rbuf();
                if let Some(d) = deadline {
                    self.arm(slot, Kind::Message, d);
                }
                return Ok(Progress::NeedMore);
            }
            Err(e) => {
                if closing {
                    c.rbuf.clear();
                    c.ws = None;
                    return Ok(Progress::NeedMore);
                }
                self.fail(slot, e, now);
                return Ok(Progress::Continue);
            }
        };
        match ev {
            Event::Message { text, payload } => {
                if closing {
                    return Ok(Progress::Continue);
                }
                // RFC 5626 §4.4.1 keep-alives (CRLF, whitespace only) are not activity: the
                // idle lifetime still closes a connection that sends nothing else.
                if !is_keepalive(&payload) {
                    c.last_data = Stamp::from(now);
                }
                if payload.as_ref() == b"\r\n\r\n" {
                    // RFC 5626 §4.4.1 keep-alive: answer with a single CRLF, deliver nothing.
                    self.control(slot, OpCode::Text, b"\r\n", now);
                    return Ok(Progress::Continue);
                }
                if c.traced {
                    let ev = TraceEvent::Message {
                        inbound: true,
                        payload: &payload,
                        at: now,
                    };
                    self.shared.sink.trace(&c.meta, ev);
                }
                // RFC 7118 §7: `WSS` in Via for WebSocket over TLS.
                let proto = if c.sock.is_tls() {
                    Proto::WSS
                } else {
                    Proto::WS
                };
                let info = ReceiveInfo {
                    proto,
                    src: SockAddr::from(c.meta.peer),
                    dst: SockAddr::from(c.meta.local),
                    conn_id: c.meta.id,
                    listener: c.meta.listener,
                };
                Err(Step::Deliver(info, payload, text))
            }
            Event::Ping(p) => {
                if !closing {
                    // Pongs count against the write queue bound like everything we queue.
                    self.control(slot, OpCode::Pong, &p, now);
                }
                Ok(Progress::Continue)
            }
            Event::Pong(_) => {
                if c.ping_out {
                    c.ping_out = false;
                    c.armed.clear(Kind::Pong);
                    self.arm_idle(slot);
                }
                Ok(Progress::Continue)
            }
            Event::Close { code, reason } => {
                crate::stats::close_received(code);
                if c.close_code().is_none() && code.is_some() {
                    c.extra().close_code = code;
                }
                let (peer, cd) = (
                    c.peer_str(),
                    code.map_or_else(|| "none".to_string(), |v| v.to_string()),
                );
                self.shared.log(
                    LogLevel::DBG,
                    "websocket close received",
                    &[("peer", &peer), ("code", &cd), ("reason", &reason)],
                );
                if !closing {
                    // (When the peer answers our Close, the reason stays the one we closed for.)
                    c.extra().end_reason = Some("closed by peer".to_string());
                    // §5.5.1: echo the status code; an empty Close gets an empty Close.
                    let body = code.map(|v| close_payload(v, "")).unwrap_or_default();
                    let max = self.shared.cfg.max_write_queue;
                    if !c.queue_control(OpCode::Close, &body, max, now) {
                        let reason = c.end_reason().unwrap_or_default().to_string();
                        self.kill(slot, &reason);
                        return Ok(Progress::Continue);
                    }
                    crate::stats::close_sent(code);
                }
                c.rbuf.clear();
                self.enter_flushing(slot, now);
                Ok(Progress::Continue)
            }
        }
    }
}

/// A data message made only of CR, LF, space and tab: a keep-alive (RFC 5626 §4.4.1), which
/// the host answers nothing.
fn is_keepalive(payload: &[u8]) -> bool {
    payload
        .iter()
        .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
}
