//! One connection as a worker holds it: socket, phase, receive buffer, write queue, deadlines.

use std::time::Instant;

use bytes::BytesMut;
use sipcore_abi::SendError;

use super::api::ConnMeta;
use super::stream::Stream;
use super::timer::{Armed, Stamp};
use super::wqueue::{frame_len, mask_key, WriteQueue};
use crate::proto::frame::OpCode;
use crate::proto::WsConn;

/// A receive buffer above this capacity is "large": once the large message is consumed, what
/// is left is moved to a buffer of its own size, so the large allocation goes back.
pub(crate) const RBUF_LARGE: usize = 16 * 1024;

/// A write backlog at least this large, once freed, counts towards giving memory back to the
/// OS (see `State::released`).
pub(crate) const LARGE_BACKLOG: usize = 64 * 1024;

/// Where a connection is in its life (RFC 6455 §4 opening, §5-6 data, §7 closing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Outbound: TCP connect in progress.
    Connecting,
    /// Outbound over TLS: client TLS handshake in progress (RFC 8446 §4), before the
    /// WebSocket request.
    TlsConnect,
    /// Inbound over TLS: server TLS handshake in progress, before the WebSocket request.
    TlsAccept,
    /// Outbound: request sent, waiting for the 101 (§4.1).
    ClientHandshake,
    /// Inbound: waiting for the complete request (§4.2.1).
    ServerHandshake,
    /// Data phase (§6).
    Open,
    /// We sent a Close (§7.1.2) and wait for the peer's Close or EOF.
    Closing,
    /// Write what is queued, then shut down our side and drain.
    Flushing,
    /// Our side is shut down; reading and discarding until EOF (bounded).
    Draining,
}

impl Phase {
    /// Name for `ws_list`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::TlsConnect | Phase::TlsAccept => "tls handshake",
            Phase::ClientHandshake | Phase::ServerHandshake => "handshake",
            Phase::Open => "open",
            Phase::Closing | Phase::Flushing | Phase::Draining => "closing",
        }
    }

    /// Still exchanging data (or about to, for an outbound connection).
    pub fn accepts_data(self) -> bool {
        matches!(
            self,
            Phase::Connecting | Phase::TlsConnect | Phase::ClientHandshake | Phase::Open
        )
    }
}

/// Outbound handshake parameters, kept until the 101 arrives.
#[derive(Debug)]
pub(crate) struct ClientHs {
    pub host: String,
    pub resource: String,
    pub subprotocol: Option<String>,
    pub expected_accept: String,
}

/// The rarely used part of a connection, boxed so that an idle inbound connection does not
/// pay for it (issue 16): frames held for an outbound handshake, the handshake's parameters,
/// and why and how the connection is closing. Allocated on first use, freed once empty.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    /// Outbound frames queued before the handshake completed.
    pub held: Option<WriteQueue>,
    /// The first `held_untraced` frames of `held` were queued before the trace decision
    /// (`Sink::opened`, made once connected): traced then if the connection is.
    pub held_untraced: u32,
    /// The Close code involved in closing, for the trace.
    pub close_code: Option<u16>,
    /// Why the connection is closing, once its closing started (peer's Close, ours, or a
    /// protocol error): the reason reported when it is gone, whatever ends the TCP
    /// connection afterwards (EOF, reset, close timeout).
    pub end_reason: Option<String>,
    /// Outbound: the opening handshake's parameters, until the 101 arrives.
    pub client: Option<ClientHs>,
}

impl Extra {
    fn is_empty(&self) -> bool {
        self.held.is_none()
            && self.held_untraced == 0
            && self.close_code.is_none()
            && self.end_reason.is_none()
            && self.client.is_none()
    }
}

/// One connection. Every idle connection pays for one in its worker's slab, so it is kept
/// small: no buffer while idle (`rbuf` and `wq` own nothing when empty), the rarely used
/// parts boxed in [`Extra`], times in 8-byte [`Stamp`]s.
#[derive(Debug)]
pub(crate) struct Conn {
    pub meta: ConnMeta,
    /// The TCP socket, or the TLS session over it.
    pub sock: Stream,
    /// Receive state, present from the data phase on.
    pub ws: Option<WsConn>,
    /// Bytes read and not yet decoded; unallocated when empty, sized by what arrived.
    pub rbuf: BytesMut,
    /// Frames to write.
    pub wq: WriteQueue,
    /// Rarely used state (see [`Extra`]); `None` for an idle inbound connection.
    pub extra: Option<Box<Extra>>,
    pub armed: Armed,
    /// When it was accepted or connect started (`ws_list` age).
    pub since: Stamp,
    /// Last data message either way (idle lifetime).
    pub last_data: Stamp,
    /// Last bytes received (keep-alive interval).
    pub last_rx: Stamp,
    /// Last write progress, or when the queue became non-empty (send timeout).
    pub last_write: Stamp,
    /// Not closed for idleness before this instant: the registrar keeps a registered flow
    /// open (RFC 5626 §4.4; `Runtime::keep_until`). `None`: the normal idle lifetime.
    pub kept_until: Option<Stamp>,
    /// SIP stream: when the message being received began to arrive (`ws_max_msg_time` counts
    /// from there); `None` between messages.
    pub msg_started: Option<Stamp>,
    /// Largest write backlog (wq + held) since the queue was last empty.
    pub backlog_peak: u32,
    /// What this connection's queues count for in its worker's total (`State::queued`), as
    /// of the last `State::account` (bytes, saturating).
    pub accounted: u32,
    /// Reads of an incomplete opening handshake (SIP stream: reads since the last message).
    pub hs_reads: u32,
    /// SIP stream: bytes at the front of `rbuf` known to hold no end of header section
    /// (`sipcore_sip::stream::next_frame`).
    pub scanned: u32,
    pub phase: Phase,
    pub traced: bool,
    /// `rbuf` grew past [`RBUF_LARGE`] since it was last trimmed.
    pub rbuf_large: bool,
    /// A keep-alive Ping is outstanding.
    pub ping_out: bool,
    /// Inbound TLS: the client sent its first bytes (until then, an end of stream is a
    /// connection closed before any handshake, e.g. a TCP health check, not a failure).
    pub peer_spoke: bool,
    /// Queued in the worker's dirty list.
    pub dirty: bool,
    /// Refused at admission: only its 503 is written (counted in `Shared::refusing`, not in
    /// the directory).
    pub refused: bool,
}

impl Conn {
    /// A new connection in `phase`.
    pub fn new(meta: ConnMeta, sock: Stream, phase: Phase, now: Instant) -> Conn {
        let now = Stamp::from(now);
        Conn {
            meta,
            sock,
            ws: None,
            rbuf: BytesMut::new(),
            wq: WriteQueue::default(),
            extra: None,
            armed: Armed::default(),
            since: now,
            last_data: now,
            last_rx: now,
            last_write: now,
            kept_until: None,
            msg_started: None,
            backlog_peak: 0,
            accounted: 0,
            hs_reads: 0,
            scanned: 0,
            phase,
            traced: false,
            rbuf_large: false,
            ping_out: false,
            peer_spoke: false,
            dirty: false,
            refused: false,
        }
    }

    /// The rarely used state, allocated on first use.
    pub fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Free the rarely used state once nothing is left in it.
    pub fn tidy_extra(&mut self) {
        if self.extra.as_ref().is_some_and(|x| x.is_empty()) {
            self.extra = None;
        }
    }

    /// Frames held for the handshake to complete, if any.
    pub fn held(&self) -> Option<&WriteQueue> {
        self.extra.as_ref().and_then(|x| x.held.as_ref())
    }

    /// How many of the held frames were queued before the trace decision.
    pub fn held_untraced(&self) -> u32 {
        self.extra.as_ref().map_or(0, |x| x.held_untraced)
    }

    /// Take the held frames (the handshake completed), clearing their untraced count.
    pub fn take_held(&mut self) -> Option<WriteQueue> {
        let x = self.extra.as_mut()?;
        x.held_untraced = 0;
        let held = x.held.take();
        self.tidy_extra();
        held
    }

    /// The Close code involved in closing, if any.
    pub fn close_code(&self) -> Option<u16> {
        self.extra.as_ref().and_then(|x| x.close_code)
    }

    /// Why the connection is closing, if its closing started.
    pub fn end_reason(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|x| x.end_reason.as_deref())
    }

    /// The outbound handshake's parameters, until the 101 arrives.
    pub fn client_hs(&mut self) -> Option<&mut ClientHs> {
        self.extra.as_mut().and_then(|x| x.client.as_mut())
    }

    /// Forget the outbound handshake's parameters (it completed).
    pub fn clear_client_hs(&mut self) {
        if let Some(x) = self.extra.as_mut() {
            x.client = None;
        }
        self.tidy_extra();
    }

    /// Queue an encoded frame, subject to `max` bytes held by the write queues (held frames
    /// and control frames included). On overflow nothing is queued and `QUEUE_FULL` returned;
    /// the caller closes the connection.
    pub fn queue(&mut self, frame: Vec<u8>, max: usize, now: Instant) -> Result<(), SendError> {
        if !self.phase.accepts_data() {
            return Err(SendError::CLOSED);
        }
        if self.queued_cost() + frame.capacity() > max {
            return Err(SendError::QUEUE_FULL);
        }
        self.last_data = Stamp::from(now);
        if self.phase == Phase::Open {
            self.queue_raw(frame, now);
        } else {
            self.extra()
                .held
                .get_or_insert_with(WriteQueue::default)
                .push(frame);
            self.note_backlog();
        }
        Ok(())
    }

    /// No frame is held for the handshake to complete.
    pub fn held_is_empty(&self) -> bool {
        self.held().is_none_or(|h| h.is_empty())
    }

    /// Bytes held for the handshake to complete.
    pub fn held_bytes(&self) -> usize {
        self.held().map_or(0, |h| h.bytes())
    }

    /// Memory held by both write queues.
    pub fn queued_cost(&self) -> usize {
        self.wq.cost() + self.held().map_or(0, |h| h.cost())
    }

    /// Queue a control frame (Ping, Pong, Close) or a keep-alive answer, encoded in place,
    /// counted against `max` like data (`ws_max_write_queue` bounds everything we queue).
    /// False when it does not fit: nothing is queued and the caller closes the connection.
    pub fn queue_control(&mut self, op: OpCode, payload: &[u8], max: usize, now: Instant) -> bool {
        let client = self.meta.outbound;
        let len = frame_len(payload.len(), client);
        if self.queued_cost() + self.wq.frame_cost(len) > max {
            return false;
        }
        if self.wq.is_empty() {
            self.last_write = Stamp::from(now);
        }
        self.wq.push_frame(op, payload, client.then(mask_key));
        self.note_backlog();
        true
    }

    /// Queue a few bytes (a SIP stream keep-alive pong) counted against `max` like a control
    /// frame. False when it does not fit: nothing is queued and the caller closes.
    pub fn queue_small(&mut self, bytes: &[u8], max: usize, now: Instant) -> bool {
        if self.queued_cost() + self.wq.frame_cost(bytes.len()) > max {
            return false;
        }
        if self.wq.is_empty() {
            self.last_write = Stamp::from(now);
        }
        self.wq.push_small(bytes);
        self.note_backlog();
        true
    }

    /// Queue bytes for writing with no checks (handshake request and replies, written on an
    /// empty queue).
    pub fn queue_raw(&mut self, bytes: Vec<u8>, now: Instant) {
        if self.wq.is_empty() {
            self.last_write = Stamp::from(now);
        }
        self.wq.push(bytes);
        self.note_backlog();
    }

    fn note_backlog(&mut self) {
        let cost = u32::try_from(self.queued_cost()).unwrap_or(u32::MAX);
        self.backlog_peak = self.backlog_peak.max(cost);
    }

    /// Drop the held frames (the connection will not open).
    pub fn clear_held(&mut self) {
        if let Some(x) = self.extra.as_mut() {
            x.held = None;
            x.held_untraced = 0;
        }
        self.tidy_extra();
    }

    /// The write queue is empty (or the connection gone): the large backlog it had, if any,
    /// for [`super::worker::State::released`]. Resets the peak.
    pub fn take_backlog(&mut self) -> usize {
        let peak = std::mem::take(&mut self.backlog_peak) as usize;
        if peak >= LARGE_BACKLOG {
            peak
        } else {
            0
        }
    }

    /// Append bytes just read. The buffer grows with the data (at most doubling), never by
    /// what a frame header announces.
    pub fn push_read(&mut self, data: &[u8]) {
        self.rbuf.extend_from_slice(data);
        if self.rbuf.capacity() > RBUF_LARGE {
            self.rbuf_large = true;
        }
    }

    /// Between reads: drop the receive buffer if it holds nothing, so idle connections own no
    /// buffer; after a large message, move the rest of a partial frame to a buffer of its own
    /// size so the large one is freed (what is left of a frame costs what arrived).
    pub fn trim_rbuf(&mut self) {
        if self.rbuf.is_empty() {
            // Not `capacity() > 0`: once everything read was consumed (`advance`), an empty
            // buffer can report no spare capacity and still hold its allocation.
            self.rbuf = BytesMut::new();
            self.rbuf_large = false;
        } else if self.rbuf_large && self.rbuf.len() <= RBUF_LARGE {
            self.rbuf = BytesMut::from(&self.rbuf[..]);
            self.rbuf_large = false;
        }
    }

    /// When the idle lifetime closes this connection: `lifetime` after the last data message,
    /// or later if the registrar keeps it until then (RFC 5626 §4.4); `None` for a zero
    /// lifetime (never).
    pub fn idle_close_at(&self, lifetime: std::time::Duration) -> Option<Stamp> {
        if lifetime.is_zero() {
            return None;
        }
        let life = self.last_data + lifetime;
        Some(self.kept_until.map_or(life, |k| k.max(life)))
    }

    /// `ip:port` of the peer, for logs.
    pub fn peer_str(&self) -> String {
        self.meta.peer.to_string()
    }
}

#[cfg(test)]
mod size {
    /// Every idle connection pays for a `Conn` in its worker's slab: keep an eye on it
    /// (issue 16: at most 512 bytes of user-space memory per idle connection, everything
    /// included; it was 576 bytes before the rarely used parts were boxed and times made
    /// 8-byte stamps; 280 until the SIP stream's message start, 8 bytes, was added: 413 bytes
    /// per idle connection measured at 19,000).
    #[test]
    fn a_connection_stays_small() {
        let n = std::mem::size_of::<super::Conn>();
        assert!(n <= 288, "Conn grew to {n} bytes");
    }
}
