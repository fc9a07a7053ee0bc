//! SIP over a byte stream (RFC 3261 §18.3: `proto_tcp`, and `proto_tls` over the TLS stream),
//! the driver's second framing beside WebSocket: the connection is open as soon as TCP (and
//! TLS) is, each message is delimited by its Content-Length (`sipcore_sip::stream`, pure),
//! a CRLF CRLF ping is answered with a CRLF pong (RFC 5626 §4.4.1), and any framing error
//! closes only that connection, with one log line naming the peer. No frames, no Close
//! handshake: closing flushes what is queued and shuts the connection down.

use std::time::Instant;

use bytes::Buf;
use sipcore_abi::{LogLevel, Proto, ReceiveInfo, SockAddr};
use sipcore_sip::stream::{next_frame, Frame, FrameError, StreamLimits, PING, PONG};

use super::api::TraceEvent;
use super::conn::Phase;
use super::read::{Progress, Step};
use super::timer::{Kind, Stamp};
use super::worker::State;

impl State {
    /// The limits of one message: `max_msg_size` for the header section and the whole.
    fn stream_limits(&self) -> StreamLimits {
        let max = self.shared.cfg.max_msg_size;
        StreamLimits {
            max_headers: max,
            max_message: max,
        }
    }

    /// A connection of a SIP stream flavor is open (accepted, connected, or its TLS
    /// handshake done): no WebSocket handshake follows. Held messages are queued, the idle
    /// deadline armed.
    pub(crate) fn stream_open(&mut self, slot: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.phase = Phase::Open;
        c.clear_client_hs();
        c.last_data = Stamp::from(now);
        if c.wq.is_empty() {
            c.last_write = Stamp::from(now);
        }
        if let Some(mut held) = c.take_held() {
            c.wq.append(&mut held);
        }
        let (id, peer, out) = (c.meta.id, c.peer_str(), c.meta.outbound);
        self.shared.dir().set_state(id, Phase::Open);
        if out {
            // (An inbound one was logged when accepted.)
            let i = id.to_string();
            self.shared.log(
                LogLevel::DBG,
                "websocket connected",
                &[("peer", &peer), ("id", &i)],
            );
        }
        self.mark_dirty(slot);
        self.opened_deadlines(slot);
    }

    /// An outbound connection is connected (and, over TLS, secured): the messages queued
    /// while connecting, before it was known that it is traced, are traced now (in the order
    /// sent), then it opens.
    pub(crate) fn stream_connected(&mut self, slot: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.traced {
            let untraced = c.held_untraced() as usize;
            for chunk in c.held().into_iter().flat_map(|h| h.front_chunks(untraced)) {
                let ev = TraceEvent::Message {
                    inbound: false,
                    payload: chunk,
                    at: now,
                };
                self.shared.sink.trace(&c.meta, ev);
            }
        }
        let (id, traced) = (c.meta.id, c.traced);
        self.shared.dir().set_traced(id, traced);
        self.stream_open(slot, now);
    }

    /// Take what is at the front of the receive buffer (RFC 3261 §18.3, RFC 5626 §4.4.1):
    /// a message to deliver, a ping to answer, CRLFs to skip, or nothing complete yet.
    pub(crate) fn decode_sip(&mut self, slot: usize, now: Instant) -> Result<Progress, Step> {
        let limits = self.stream_limits();
        let (max_reads, max_time) = (self.shared.cfg.max_msg_chunks, self.shared.cfg.max_msg_time);
        let pingpong = self.shared.cfg.crlf_pingpong;
        let Some(c) = self.conns.get_mut(slot) else {
            return Err(Step::Done);
        };
        if c.phase != Phase::Open {
            c.rbuf.clear();
            return Ok(Progress::NeedMore);
        }
        let frame = match next_frame(&c.rbuf, c.scanned as usize, &limits) {
            Ok(f) => f,
            Err(e) => {
                self.stream_fail(slot, &e.to_string(), limit_error(&e));
                return Ok(Progress::Continue);
            }
        };
        match frame {
            Frame::NeedMore { scanned } => {
                c.scanned = u32::try_from(scanned).unwrap_or(u32::MAX);
                // A message started (not a CRLF that may become a ping): bound its reads and
                // the time it takes to arrive.
                let started = c.rbuf.first().is_some_and(|&b| b != b'\r' && b != b'\n');
                if !started {
                    c.hs_reads = 0;
                }
                if started && max_reads != 0 && c.hs_reads > max_reads {
                    let reason = format!("message incomplete after {max_reads} reads");
                    self.stream_fail(slot, &reason, true);
                    return Ok(Progress::Continue);
                }
                c.trim_rbuf();
                if started && !max_time.is_zero() {
                    // One heap entry per connection at a time: it stays armed across messages
                    // (see `stream_deadline`), so a message split over reads costs none.
                    let began = *c.msg_started.get_or_insert(Stamp::from(now));
                    self.arm(slot, Kind::Message, began + max_time);
                }
                Ok(Progress::NeedMore)
            }
            Frame::Skip { len } => {
                c.rbuf.advance(len.min(c.rbuf.len()));
                c.scanned = 0;
                Ok(Progress::Continue)
            }
            Frame::Ping => {
                c.rbuf.advance(PING.len().min(c.rbuf.len()));
                c.scanned = 0;
                c.hs_reads = 0;
                if pingpong {
                    let max = self.shared.cfg.max_write_queue;
                    if c.queue_small(PONG, max, now) {
                        self.mark_dirty(slot);
                    } else {
                        self.stream_fail(slot, "write queue full answering keep-alives", true);
                    }
                }
                Ok(Progress::Continue)
            }
            Frame::Message { len } => {
                let payload = c.rbuf.split_to(len.min(c.rbuf.len())).freeze();
                c.scanned = 0;
                c.hs_reads = 0;
                // The deadline's entry stays: the next message started, it re-arms from there.
                c.msg_started = None;
                c.last_data = Stamp::from(now);
                if c.traced {
                    let ev = TraceEvent::Message {
                        inbound: true,
                        payload: &payload,
                        at: now,
                    };
                    self.shared.sink.trace(&c.meta, ev);
                }
                let proto = if c.sock.is_tls() {
                    Proto::TLS
                } else {
                    Proto::TCP
                };
                let info = ReceiveInfo {
                    proto,
                    src: SockAddr::from(c.meta.peer),
                    dst: SockAddr::from(c.meta.local),
                    conn_id: c.meta.id,
                    listener: c.meta.listener,
                };
                Err(Step::Deliver(info, payload, true))
            }
        }
    }

    /// The message deadline fired: a message still incomplete `ws_max_msg_time` after it
    /// began closes the connection; one that began later gets its own deadline; none in
    /// progress, nothing. (The entry is not withdrawn when a message completes: a client
    /// sending each message in two reads would otherwise leave one entry per message in the
    /// heap for `ws_max_msg_time`.)
    pub(crate) fn stream_deadline(&mut self, slot: usize, now: Instant) {
        let max = self.shared.cfg.max_msg_time;
        let Some(c) = self.conns.get(slot) else {
            return;
        };
        let Some(began) = c.msg_started.filter(|_| c.phase == Phase::Open) else {
            return;
        };
        let at = began + max;
        if Stamp::from(now) >= at {
            let reason = format!("message incomplete after {} ms", max.as_millis());
            self.stream_fail(slot, &reason, true);
        } else {
            self.arm(slot, Kind::Message, at);
        }
    }

    /// A framing error (RFC 3261 §18.3): the stream cannot be resynchronised, so the
    /// connection is closed, after what is queued for it (replies already produced) is
    /// written. One warning with the peer; `limit`: a size, read or time limit was hit.
    pub(crate) fn stream_fail(&mut self, slot: usize, reason: &str, limit: bool) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let peer = c.peer_str();
        // "tcp protocol error, closing" (or tls).
        let msg = format!("{} protocol error, closing", crate::flavor::get().name);
        self.shared
            .log(LogLevel::WARN, &msg, &[("peer", &peer), ("reason", reason)]);
        if c.traced {
            let ev = TraceEvent::ProtocolError {
                close_code: 0,
                reason,
            };
            self.shared.sink.trace(&c.meta, ev);
        }
        if limit {
            crate::stats::LIMIT_VIOLATIONS.inc();
        }
        c.extra().end_reason = Some(format!("protocol error: {reason}"));
        self.enter_flushing(slot, Instant::now());
    }

    /// Close a SIP stream connection of ours (idle lifetime, MI, shutdown): no Close frame,
    /// only what is queued is written before the shutdown.
    pub(crate) fn stream_close(&mut self, slot: usize, reason: &str, now: Instant) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.extra().end_reason = Some(format!("closed by us: {reason}"));
        let (id, peer) = (c.meta.id, c.peer_str());
        self.shared.log(
            LogLevel::DBG,
            "closing",
            &[("peer", &peer), ("id", &id.to_string()), ("reason", reason)],
        );
        self.enter_flushing(slot, now);
    }
}

/// Whether a framing error is a limit (counted in `limit_violations`) rather than malformed
/// framing.
fn limit_error(e: &FrameError) -> bool {
    matches!(
        e,
        FrameError::HeadersTooLong { .. } | FrameError::TooLarge { .. }
    )
}
