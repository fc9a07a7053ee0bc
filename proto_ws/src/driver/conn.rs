//! One connection as a worker holds it: socket, phase, receive buffer, write queue, deadlines.

use std::time::Instant;

use bytes::BytesMut;
use sipcore_abi::SendError;

use super::api::ConnMeta;
use super::timer::Armed;
use super::wqueue::WriteQueue;
use crate::proto::WsConn;

/// Where a connection is in its life (RFC 6455 §4 opening, §5-6 data, §7 closing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Outbound: TCP connect in progress.
    Connecting,
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
            Phase::ClientHandshake | Phase::ServerHandshake => "handshake",
            Phase::Open => "open",
            Phase::Closing | Phase::Flushing | Phase::Draining => "closing",
        }
    }

    /// Still exchanging data (or about to, for an outbound connection).
    pub fn accepts_data(self) -> bool {
        matches!(
            self,
            Phase::Connecting | Phase::ClientHandshake | Phase::Open
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

/// One connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub meta: ConnMeta,
    pub traced: bool,
    pub sock: mio::net::TcpStream,
    pub phase: Phase,
    /// Receive state, present from the data phase on.
    pub ws: Option<WsConn>,
    /// Bytes read and not yet decoded; unallocated when empty.
    pub rbuf: BytesMut,
    /// Frames to write.
    pub wq: WriteQueue,
    /// Outbound frames queued before the handshake completed.
    pub held: WriteQueue,
    pub armed: Armed,
    /// Last data message either way (idle lifetime).
    pub last_data: Instant,
    /// Last bytes received (keep-alive interval).
    pub last_rx: Instant,
    /// Last write progress, or when the queue became non-empty (send timeout).
    pub last_write: Instant,
    /// A keep-alive Ping is outstanding.
    pub ping_out: bool,
    /// Reads of an incomplete opening handshake.
    pub hs_reads: u32,
    /// Queued in the worker's dirty list.
    pub dirty: bool,
    /// The Close code involved in closing, for the trace.
    pub close_code: Option<u16>,
    pub client: Option<Box<ClientHs>>,
    /// Refused at admission: only its 503 is written (counted in `Shared::refusing`, not in
    /// the directory).
    pub refused: bool,
}

impl Conn {
    /// A new connection in `phase`.
    pub fn new(meta: ConnMeta, sock: mio::net::TcpStream, phase: Phase, now: Instant) -> Conn {
        Conn {
            meta,
            traced: false,
            sock,
            phase,
            ws: None,
            rbuf: BytesMut::new(),
            wq: WriteQueue::default(),
            held: WriteQueue::default(),
            armed: Armed::default(),
            last_data: now,
            last_rx: now,
            last_write: now,
            ping_out: false,
            hs_reads: 0,
            dirty: false,
            close_code: None,
            client: None,
            refused: false,
        }
    }

    /// Queue an encoded frame, subject to `max` queued bytes (held frames included). On
    /// overflow nothing is queued and `QUEUE_FULL` returned; the caller closes the connection.
    pub fn queue(&mut self, frame: Vec<u8>, max: usize, now: Instant) -> Result<(), SendError> {
        if !self.phase.accepts_data() {
            return Err(SendError::CLOSED);
        }
        let total = self.wq.bytes() + self.held.bytes() + frame.len();
        if total > max {
            return Err(SendError::QUEUE_FULL);
        }
        self.last_data = now;
        if self.phase == Phase::Open {
            self.queue_raw(frame, now);
        } else {
            self.held.push(frame);
        }
        Ok(())
    }

    /// Queue bytes for writing with no checks (control frames, handshake replies).
    pub fn queue_raw(&mut self, bytes: Vec<u8>, now: Instant) {
        if self.wq.is_empty() {
            self.last_write = now;
        }
        self.wq.push(bytes);
    }

    /// Drop the receive buffer if it holds nothing, so idle connections own no buffer.
    pub fn trim_rbuf(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
    }

    /// `ip:port` of the peer, for logs.
    pub fn peer_str(&self) -> String {
        self.meta.peer.to_string()
    }
}
