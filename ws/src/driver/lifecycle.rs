//! Writing, closing (RFC 6455 §7), removing a connection, and what the deadlines do:
//! handshake, message completion, idle lifetime, keep-alive ping / pong, send timeout, close
//! wait.

use std::time::{Duration, Instant};

use sipcore_abi::LogLevel;

use super::api::TraceEvent;
use super::conn::Phase;
use super::timer::{Entry, Kind, Stamp};
use super::worker::State;
use crate::proto::frame::{close_payload, OpCode};
use crate::proto::WsError;

/// How long we wait for the peer's Close or EOF once closing.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(2);

impl State {
    /// Write what the socket takes. Arms the send timeout while data stays queued; finishes a
    /// `Flushing` connection (shut down our side, drain) once its queue is empty.
    pub fn flush(&mut self, slot: usize, now: Instant) {
        let send_timeout = self.shared.cfg.send_timeout;
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.dirty = false;
        if matches!(
            c.phase,
            Phase::Connecting | Phase::TlsConnect | Phase::TlsAccept
        ) {
            return;
        }
        match c.wq.write_to(&mut c.sock) {
            Ok(n) if n > 0 => c.last_write = Stamp::from(now),
            Ok(_) => {}
            Err(e) => {
                let reason = format!("write error: {e}");
                self.kill(slot, &reason);
                return;
            }
        }
        if c.accounted > 0 {
            self.account(slot, now);
        }
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if !c.wq.is_empty() {
            let at = c.last_write + send_timeout;
            self.arm(slot, Kind::Send, at);
            return;
        }
        if c.held_is_empty() {
            super::reclaim::released(c.take_backlog());
        }
        // The send deadline stays armed: when it fires with an empty queue it is dropped,
        // so a connection alternating between empty and busy keeps one heap entry.
        if c.phase == Phase::Flushing {
            c.sock.shutdown_write();
            c.phase = Phase::Draining;
        }
    }

    /// Stop exchanging data: write what is queued, then shut down and drain (bounded).
    pub fn enter_flushing(&mut self, slot: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.phase = Phase::Flushing;
        c.ws = None;
        c.rbuf.clear();
        c.trim_rbuf();
        c.clear_held();
        let id = c.meta.id;
        self.shared.dir().set_state(id, Phase::Closing);
        self.arm(slot, Kind::CloseWait, now + CLOSE_WAIT);
        self.mark_dirty(slot);
    }

    /// Fail the connection (RFC 6455 §7.1.7): Close with the error's code, then drop.
    pub fn fail(&mut self, slot: usize, err: WsError, now: Instant) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let code = err.close_code();
        let reason = err.to_string();
        let (peer, cd) = (c.peer_str(), code.to_string());
        self.shared.log(
            LogLevel::WARN,
            "websocket protocol error",
            &[("peer", &peer), ("code", &cd), ("reason", &reason)],
        );
        if c.traced {
            let ev = TraceEvent::ProtocolError {
                close_code: code,
                reason: &reason,
            };
            self.shared.sink.trace(&c.meta, ev);
        }
        c.extra().close_code = Some(code);
        if matches!(code, 1008 | 1009) {
            crate::stats::LIMIT_VIOLATIONS.inc();
        }
        let end = format!("protocol error: {reason}");
        let max = self.shared.cfg.max_write_queue;
        if !c.queue_control(OpCode::Close, &close_payload(code, &reason), max, now) {
            // No room for our Close: drop the connection at once (the error is logged).
            self.kill(slot, &end);
            return;
        }
        crate::stats::close_sent(Some(code));
        c.extra().end_reason = Some(end);
        self.enter_flushing(slot, now);
    }

    /// Start our closing handshake (RFC 6455 §7.1.2): send Close, wait for the peer's Close or
    /// EOF (bounded). A connection not yet open is dropped.
    pub fn begin_close(&mut self, slot: usize, code: u16, reason: &str, now: Instant) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        match c.phase {
            Phase::Open => {}
            Phase::Closing | Phase::Flushing | Phase::Draining => return,
            Phase::Connecting
            | Phase::TlsConnect
            | Phase::TlsAccept
            | Phase::ClientHandshake
            | Phase::ServerHandshake => {
                self.kill(slot, reason);
                return;
            }
        }
        if self.shared.cfg.sip_stream {
            self.stream_close(slot, reason, now);
            return;
        }
        c.extra().end_reason = Some(format!("closed by us: {reason}"));
        c.extra().close_code = Some(code);
        c.phase = Phase::Closing;
        c.clear_held();
        if !self.control(slot, OpCode::Close, &close_payload(code, reason), now) {
            return;
        }
        crate::stats::close_sent(Some(code));
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let (id, peer) = (c.meta.id, c.peer_str());
        let cd = code.to_string();
        self.shared.log(
            LogLevel::DBG,
            "websocket closing",
            &[("peer", &peer), ("code", &cd), ("reason", reason)],
        );
        self.shared.dir().set_state(id, Phase::Closing);
        self.arm(slot, Kind::CloseWait, now + CLOSE_WAIT);
        self.mark_dirty(slot);
    }

    /// Keep connection `id` open for idleness until at least `until` (an earlier keep is
    /// extended, never shortened); `None`: the normal idle lifetime again, re-arming its idle
    /// deadline (it may move earlier). False when this worker has no such connection still
    /// exchanging data.
    pub fn keep(&mut self, id: u64, until: Option<Instant>) -> bool {
        let Some(&slot) = self.ids.get(&id) else {
            return false;
        };
        let Some(c) = self.conns.get_mut(slot) else {
            return false;
        };
        if !c.phase.accepts_data() {
            return false;
        }
        let until = until.map(Stamp::from);
        c.kept_until = match (c.kept_until, until) {
            (Some(cur), Some(new)) => Some(cur.max(new)),
            (_, new) => new,
        };
        if c.phase == Phase::Open {
            // A longer keep only moves the idle deadline later: the entry armed fires first
            // and `idle_due` re-arms from the new one, as for every message received. Only
            // an earlier deadline (the keep given back) needs an entry now, which `arm`
            // pushes. (Clearing first pushed an entry for every REGISTER refresh, each left
            // in the heap until its time: a keep-alive interval's worth of refreshes.)
            self.arm_idle(slot);
        }
        true
    }

    /// A deadline fired.
    pub fn on_timer(&mut self, e: Entry, now: Instant) {
        let slot = e.slot as usize;
        if e.kind == Kind::Listener {
            self.resume_listener(slot);
            return;
        }
        let cfg = &self.shared.cfg;
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.meta.id != e.id || !c.armed.take_if(e.kind, e.at) {
            return;
        }
        let peer = c.peer_str();
        let warn = |st: &State, msg: &str| st.shared.log(LogLevel::WARN, msg, &[("peer", &peer)]);
        match e.kind {
            Kind::Handshake => {
                let msg = match c.phase {
                    Phase::Connecting => "websocket connect timeout",
                    Phase::TlsConnect | Phase::TlsAccept => "tls handshake timeout",
                    Phase::ClientHandshake | Phase::ServerHandshake => {
                        "websocket handshake timeout"
                    }
                    // The handshake completed and left this deadline to carry the idle one
                    // (`opened_deadlines`).
                    Phase::Open => {
                        self.arm_idle(slot);
                        return;
                    }
                    _ => return,
                };
                if c.phase != Phase::Connecting {
                    crate::stats::HANDSHAKE_TIMEOUTS.inc();
                }
                if c.traced {
                    let ev = TraceEvent::HandshakeFailed {
                        status: 0,
                        reason: msg,
                    };
                    self.shared.sink.trace(&c.meta, ev);
                }
                warn(self, msg);
                self.kill(slot, msg);
            }
            Kind::Message if cfg.sip_stream => self.stream_deadline(slot, now),
            Kind::Message => {
                let Some(ws) = c.ws.as_ref() else {
                    return;
                };
                match ws.check_deadline(now) {
                    Err(err) => self.fail(slot, err, now),
                    Ok(()) => {
                        if let Some(d) = ws.message_deadline() {
                            self.arm(slot, Kind::Message, d);
                        }
                    }
                }
            }
            Kind::Idle => self.idle_due(slot, now),
            Kind::Pong => {
                if c.ping_out && c.phase == Phase::Open {
                    warn(self, "websocket keepalive timeout");
                    self.kill(slot, "keepalive timeout");
                }
            }
            Kind::Send => {
                if c.wq.is_empty() {
                    return;
                }
                let at = c.last_write + cfg.send_timeout;
                if Stamp::from(now) >= at {
                    warn(self, "send timeout");
                    self.kill(slot, "send timeout");
                } else {
                    self.arm(slot, Kind::Send, at);
                }
            }
            Kind::CloseWait => self.kill(slot, "close timeout"),
            Kind::Listener => {}
        }
    }

    fn idle_due(&mut self, slot: usize, now: Instant) {
        let cfg = &self.shared.cfg;
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.phase != Phase::Open {
            return;
        }
        // Rounded up like the deadlines: due here means the fired entry is not re-armed.
        let stamp = Stamp::from(now);
        if c.idle_close_at(cfg.lifetime).is_some_and(|at| stamp >= at) {
            self.begin_close(slot, 1001, "idle timeout", now);
            return;
        }
        if let (Some(iv), false) = (cfg.keepalive_interval, c.ping_out) {
            if !iv.is_zero() && stamp >= c.last_rx + iv {
                c.ping_out = true;
                let at = now + cfg.keepalive_timeout;
                if !self.control(slot, OpCode::Ping, b"", now) {
                    return;
                }
                self.arm(slot, Kind::Pong, at);
            }
        }
        self.arm_idle(slot);
    }

    /// Remove the connection now: deregister, close the socket, forget it everywhere, trace,
    /// and queue the `closed` callback.
    pub fn kill(&mut self, slot: usize, reason: &str) {
        if !self.conns.contains(slot) {
            return;
        }
        let mut c = self.conns.remove(slot);
        self.unaccount(c.accounted);
        // No EPOLL_CTL_DEL: closing the socket (when `c` drops, below) removes it from the
        // poll set, as no other descriptor refers to it.
        #[cfg(not(target_os = "linux"))]
        let _ = self.registry.deregister(c.sock.tcp_mut());
        // Whatever ends the TCP connection once closing started, the reason is why it started.
        let end = c.extra.as_mut().and_then(|x| x.end_reason.take());
        let reason = end.as_deref().unwrap_or(reason);
        let large_rbuf = if c.rbuf_large { c.rbuf.capacity() } else { 0 };
        super::reclaim::released(c.take_backlog() + large_rbuf);
        if c.refused {
            // Never admitted: not in the directory, not known to the host.
            self.shared
                .refusing
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        self.ids.remove(&c.meta.id);
        crate::stats::CONNECTIONS.dec();
        self.shared.dir().remove(c.meta.id, c.meta.peer);
        self.shared
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if c.traced {
            let ev = TraceEvent::Closed {
                code: c.close_code(),
                reason,
            };
            self.shared.sink.trace(&c.meta, ev);
        }
        let peer = c.peer_str();
        let id = c.meta.id.to_string();
        let code = c
            .close_code()
            .map_or_else(|| "none".to_string(), |v| v.to_string());
        self.shared.log(
            LogLevel::DBG,
            "websocket connection closed",
            &[
                ("peer", &peer),
                ("id", &id),
                ("reason", reason),
                ("code", &code),
            ],
        );
        self.closed_out.push((c.meta, reason.to_string()));
    }

    /// The socket of the connection in `slot` is writable: finish a connect, step a TLS
    /// handshake, write what is queued.
    pub fn on_writable(&mut self, slot: usize, now: Instant) {
        let connecting = self
            .conns
            .get(slot)
            .is_some_and(|c| c.phase == Phase::Connecting);
        if connecting {
            self.on_connected(slot, now);
        }
        // A TLS handshake step, or a read that waited for the socket to take a write: read
        // again after this batch (edge-triggered: no new readable event may come).
        let (wanted, tls_hs) = self.conns.get_mut(slot).map_or((false, false), |c| {
            let hs = matches!(c.phase, Phase::TlsAccept | Phase::TlsConnect);
            (c.sock.take_read_wants_write(), hs)
        });
        if wanted || (tls_hs && self.tls_step(slot, now)) {
            self.again.push(slot);
        }
        self.flush(slot, now);
    }

    /// Write every connection queued in the dirty list.
    pub fn flush_dirty(&mut self, now: Instant) {
        let dirty = std::mem::take(&mut self.dirty);
        for &slot in &dirty {
            if self.conns.get(slot).is_some_and(|c| c.dirty) {
                self.flush(slot, now);
            }
        }
        // Keep the allocation (taken list is empty now, the new one may have entries).
        if self.dirty.is_empty() {
            let mut dirty = dirty;
            dirty.clear();
            self.dirty = dirty;
        }
    }
}
