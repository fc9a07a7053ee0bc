//! Per-connection receive state machine (RFC 6455 §5, §6.2, §7).
//!
//! [`WsConn::decode`] turns the bytes a driver has read into [`Event`]s. It does
//! no I/O and reads no clock: the driver appends what it reads to a `BytesMut`,
//! calls `decode` until it returns `Ok(None)`, and passes the current time in.
//!
//! Behaviour, beyond the bare framing rules:
//! * A frame's bytes stay in the caller's buffer until the frame is complete; the
//!   payload is unmasked in place and, for text, UTF-8-validated as it arrives, so
//!   an invalid byte fails the connection without waiting for the rest.
//! * A single-frame message (the normal SIP case) is handed out zero-copy
//!   (`split_to` + `freeze`). Fragments of a longer message are gathered into a
//!   per-connection buffer that exists only while that message is in progress.
//! * Size and fragment-count limits are checked from each frame header, before
//!   any of its payload is buffered.
//! * Control frames between fragments are returned at once (§5.4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::error::WsError;
use super::frame::OpCode;
use super::utf8::Utf8Validator;

mod decoder;

use decoder::Decoder;

/// Which side of the connection we are; decides the masking rule (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We accepted the connection: every received frame must be masked.
    Server,
    /// We opened the connection: no received frame may be masked.
    Client,
}

/// Receive limits of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, in payload bytes summed over its fragments (close 1009 above).
    pub max_msg_size: usize,
    /// Largest number of data frames in one message, the first included
    /// (`ws_max_msg_chunks`; 0 = unlimited; close 1008 above).
    pub max_msg_frames: u32,
    /// Time allowed from the first byte of a message to its last
    /// (see [`WsConn::message_deadline`]); `None` = no limit.
    pub max_msg_time: Option<Duration>,
}

impl Default for Limits {
    /// 65535 bytes (OpenSIPS `TCP_BUF_SIZE`), 4 frames (`ws_max_msg_chunks`),
    /// 4 seconds (OpenSIPS `tcp_max_msg_time`).
    fn default() -> Self {
        Limits {
            max_msg_size: 65535,
            max_msg_frames: 4,
            max_msg_time: Some(Duration::from_secs(4)),
        }
    }
}

/// Something received on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete data message (§5.6, §6.2). `text` is true for an opcode-0x1
    /// message, whose payload is then guaranteed valid UTF-8.
    Message {
        /// Text (true) or binary (false) message.
        text: bool,
        /// The whole message payload, unmasked.
        payload: Bytes,
    },
    /// A Ping (§5.5.2); the driver must answer with a Pong carrying the same payload.
    Ping(Bytes),
    /// A Pong (§5.5.3).
    Pong(Bytes),
    /// A Close (§5.5.1). `code` is absent when the frame had no body; a present
    /// code has been checked valid and `reason` is valid UTF-8. The driver must
    /// answer with a Close (§5.5.1) and then close the TCP connection. Later
    /// bytes are discarded.
    Close {
        /// The status code, if any.
        code: Option<u16>,
        /// The reason text (empty when absent).
        reason: String,
    },
}

/// The frame currently being received (header decoded, payload incomplete).
#[derive(Debug, Clone, Copy)]
struct InFrame {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    header_len: u8,
    /// Payload of this frame is part of a text message: validate UTF-8.
    utf8: bool,
    payload_len: usize,
    /// Payload bytes already unmasked (and validated).
    done: usize,
}

/// The data message currently being received.
#[derive(Debug, Clone, Copy)]
struct InMessage {
    text: bool,
    frames: u32,
    size: u64,
}

/// Receive side of one WebSocket connection (RFC 6455 §5–§7).
///
/// Small by design (24 bytes on 64-bit targets; issue 16): an idle connection owns no heap
/// memory. What a partly received frame or message needs ([`Rx`]) is boxed and exists only
/// while one is in progress between two calls of [`Self::decode`]; the limits are shared.
#[derive(Debug)]
pub struct WsConn {
    limits: Arc<Limits>,
    /// Partial frame or message state; `None` when idle.
    rx: Option<Box<Rx>>,
    role: Role,
    closed: bool,
}

/// What survives between two reads while a frame or message is incomplete, and the error
/// once the connection failed.
#[derive(Debug, Default)]
struct Rx {
    failed: Option<WsError>,
    frame: Option<InFrame>,
    msg: Option<InMessage>,
    utf8: Utf8Validator,
    deadline: Option<Instant>,
    /// Payload of the completed fragments of `msg`; empty (unallocated) otherwise.
    partial: BytesMut,
}

impl Rx {
    /// Nothing in progress and no failure: the box can go.
    fn is_idle(&self) -> bool {
        self.failed.is_none()
            && self.frame.is_none()
            && self.msg.is_none()
            && self.deadline.is_none()
            && self.partial.is_empty()
    }
}

impl WsConn {
    /// A connection in the OPEN state (after the opening handshake, §4.1/§4.2.2).
    pub fn new(role: Role, limits: Limits) -> Self {
        WsConn::with_limits(role, Arc::new(limits))
    }

    /// [`Self::new`] with limits shared by many connections (a driver's, one allocation).
    pub fn with_limits(role: Role, limits: Arc<Limits>) -> Self {
        WsConn {
            limits,
            rx: None,
            role,
            closed: false,
        }
    }

    /// Our role on this connection.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// True after a Close frame was received (§7.1.5); `decode` then discards input.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True while a data message, or a lone control frame whose header is
    /// complete, is partly received. (A partial header alone is not counted here,
    /// but does start [`Self::message_deadline`].)
    pub fn in_message(&self) -> bool {
        self.rx
            .as_ref()
            .is_some_and(|rx| rx.msg.is_some() || rx.frame.is_some())
    }

    /// Total length (header + payload) of the frame being received, once its
    /// header is known. Only what the peer announces: a driver should not reserve
    /// buffer space by it (a header can announce 64 KiB and be followed by one
    /// byte); buffers grow with what arrived.
    pub fn pending_frame_len(&self) -> Option<usize> {
        self.rx
            .as_ref()
            .and_then(|rx| rx.frame)
            .map(|f| usize::from(f.header_len).saturating_add(f.payload_len))
    }

    /// Decode the next event from the front of `buf`, consuming exactly the bytes
    /// it used. `Ok(None)`: more bytes are needed (partial frame bytes stay in
    /// `buf`, possibly already unmasked; append to `buf`, never modify it).
    ///
    /// After an `Err` the connection must be failed (§7.1.7) with a Close carrying
    /// [`WsError::close_code`]; later calls return the same error.
    pub fn decode(&mut self, buf: &mut BytesMut, now: Instant) -> Result<Option<Event>, WsError> {
        if let Some(e) = self.rx.as_ref().and_then(|rx| rx.failed) {
            return Err(e);
        }
        if self.closed {
            // §5.5.1: nothing after a Close is processed.
            buf.clear();
            return Ok(None);
        }
        let mut d = Decoder {
            limits: &self.limits,
            role: self.role,
            closed: &mut self.closed,
        };
        // Work in the box when one exists, else on the stack: a complete frame (the usual
        // case) allocates nothing; state left for the next read is boxed.
        let r = match self.rx.as_deref_mut() {
            Some(rx) => d.decode(rx, buf, now),
            None => {
                let mut rx = Rx::default();
                let r = d.decode(&mut rx, buf, now);
                if !rx.is_idle() {
                    self.rx = Some(Box::new(rx));
                }
                r
            }
        };
        if self.rx.as_ref().is_some_and(|rx| rx.is_idle()) {
            self.rx = None;
        }
        r
    }

    /// When the message being received must be complete: the time its first byte
    /// was seen by `decode` plus `Limits::max_msg_time`. `None` when nothing is in
    /// progress or there is no time limit. A lone control frame that is partly
    /// received also has a deadline, so a trickled Ping cannot stall either.
    pub fn message_deadline(&self) -> Option<Instant> {
        self.rx.as_ref().and_then(|rx| rx.deadline)
    }

    /// `Err(WsError::MessageTimeout)` when `now` is at or past [`Self::message_deadline`].
    pub fn check_deadline(&self, now: Instant) -> Result<(), WsError> {
        match self.message_deadline() {
            Some(d) if now >= d => Err(WsError::MessageTimeout),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "tests/conn.rs"]
mod tests;

#[cfg(test)]
#[path = "tests/conn_limits.rs"]
mod tests_limits;
