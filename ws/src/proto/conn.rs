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

use bytes::{Buf, Bytes, BytesMut};

use super::error::WsError;
use super::frame::{is_valid_close_code, FrameHeader, OpCode};
use super::mask::apply_mask;
use super::utf8::Utf8Validator;

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

/// One `decode` call's view of the connection: its fixed parts, and the receive state it
/// works on (boxed or on the stack).
struct Decoder<'a> {
    limits: &'a Limits,
    role: Role,
    closed: &'a mut bool,
}

impl Decoder<'_> {
    fn decode(
        &mut self,
        rx: &mut Rx,
        buf: &mut BytesMut,
        now: Instant,
    ) -> Result<Option<Event>, WsError> {
        let r = self.decode_inner(rx, buf, now);
        if let Err(e) = r {
            rx.failed = Some(e);
            rx.frame = None;
            end_message(rx);
        }
        r
    }

    fn decode_inner(
        &mut self,
        rx: &mut Rx,
        buf: &mut BytesMut,
        now: Instant,
    ) -> Result<Option<Event>, WsError> {
        loop {
            let mut cur = match rx.frame {
                Some(f) => f,
                None => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    if rx.deadline.is_none() {
                        rx.deadline = self.limits.max_msg_time.and_then(|d| now.checked_add(d));
                    }
                    let header = FrameHeader::parse(buf)?;
                    self.precheck(rx, buf)?;
                    let Some(h) = header else {
                        return Ok(None);
                    };
                    self.start_frame(rx, h)?
                }
            };

            // Unmask (and validate) whatever part of the payload has arrived.
            let hl = usize::from(cur.header_len);
            let avail = buf.len().saturating_sub(hl).min(cur.payload_len);
            if avail > cur.done {
                if let Some(seg) = buf.get_mut(hl + cur.done..hl + avail) {
                    if let Some(key) = cur.mask {
                        apply_mask(seg, key, cur.done);
                    }
                    if cur.utf8 {
                        rx.utf8.feed(seg).map_err(|_| WsError::InvalidUtf8)?;
                    }
                }
                cur.done = avail;
            }
            // (The length test only matters if the caller broke the contract and
            // removed bytes; it keeps `advance`/`split_to` below in bounds.)
            if cur.done < cur.payload_len || buf.len() < hl.saturating_add(cur.payload_len) {
                rx.frame = Some(cur);
                return Ok(None);
            }

            // The frame is complete.
            rx.frame = None;
            buf.advance(hl);
            let payload = buf.split_to(cur.payload_len);
            match cur.opcode {
                OpCode::Ping | OpCode::Pong => {
                    if rx.msg.is_none() {
                        rx.deadline = None;
                    }
                    let p = payload.freeze();
                    return Ok(Some(if cur.opcode == OpCode::Ping {
                        Event::Ping(p)
                    } else {
                        Event::Pong(p)
                    }));
                }
                OpCode::Close => {
                    let ev = parse_close(&payload)?;
                    *self.closed = true;
                    end_message(rx);
                    return Ok(Some(ev));
                }
                OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                    if !cur.fin {
                        rx.partial.unsplit(payload);
                        continue;
                    }
                    let text = rx.msg.is_some_and(|m| m.text);
                    if text {
                        rx.utf8.finish().map_err(|_| WsError::InvalidUtf8)?;
                    }
                    let whole = if rx.partial.is_empty() {
                        payload
                    } else {
                        rx.partial.unsplit(payload);
                        core::mem::take(&mut rx.partial)
                    };
                    end_message(rx);
                    return Ok(Some(Event::Message {
                        text,
                        payload: whole.freeze(),
                    }));
                }
            }
        }
    }

    /// Rules visible in the first two bytes that depend on connection state:
    /// message sequencing (§5.4) and masking direction (§5.1). Run on partial
    /// headers so such frames fail without waiting for the rest.
    fn precheck(&self, rx: &Rx, buf: &[u8]) -> Result<(), WsError> {
        if let Some(&b0) = buf.first() {
            match OpCode::from_u8(b0 & 0x0F) {
                Some(OpCode::Continuation) if rx.msg.is_none() => {
                    return Err(WsError::UnexpectedContinuation)
                }
                Some(OpCode::Text | OpCode::Binary) if rx.msg.is_some() => {
                    return Err(WsError::ExpectedContinuation)
                }
                _ => {}
            }
        }
        if let Some(&b1) = buf.get(1) {
            let masked = b1 & 0x80 != 0;
            match (self.role, masked) {
                (Role::Server, false) => return Err(WsError::UnmaskedFrame),
                (Role::Client, true) => return Err(WsError::MaskedFrame),
                _ => {}
            }
        }
        Ok(())
    }

    /// Account a new frame against the message state and the limits (§5.4, §7.4.1).
    fn start_frame(&self, rx: &mut Rx, h: FrameHeader) -> Result<InFrame, WsError> {
        let utf8 = match h.opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => false,
            OpCode::Continuation => {
                let msg = rx.msg.as_mut().ok_or(WsError::UnexpectedContinuation)?;
                msg.text
            }
            OpCode::Text | OpCode::Binary => {
                if rx.msg.is_some() {
                    return Err(WsError::ExpectedContinuation);
                }
                let text = h.opcode == OpCode::Text;
                rx.msg = Some(InMessage {
                    text,
                    frames: 0,
                    size: 0,
                });
                rx.utf8.reset();
                text
            }
        };
        if let (false, Some(msg)) = (h.opcode.is_control(), rx.msg.as_mut()) {
            msg.frames = msg.frames.saturating_add(1);
            let max_frames = self.limits.max_msg_frames;
            if max_frames != 0 && msg.frames > max_frames {
                return Err(WsError::TooManyFrames { max: max_frames });
            }
            let size = msg.size.saturating_add(h.payload_len);
            let max = self.limits.max_msg_size;
            if size > max as u64 {
                return Err(WsError::MessageTooBig { size, max });
            }
            msg.size = size;
        }
        // Control payloads are <= 125 (checked by the parser); data payloads are
        // <= max_msg_size (a usize), so this conversion cannot fail.
        let payload_len = usize::try_from(h.payload_len).map_err(|_| WsError::MessageTooBig {
            size: h.payload_len,
            max: self.limits.max_msg_size,
        })?;
        let frame = InFrame {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            header_len: h.header_len as u8,
            utf8,
            payload_len,
            done: 0,
        };
        rx.frame = Some(frame);
        Ok(frame)
    }
}

/// Forget the message in progress and release its buffer.
fn end_message(rx: &mut Rx) {
    rx.msg = None;
    rx.utf8.reset();
    rx.deadline = None;
    rx.partial = BytesMut::new();
}

/// Decode a Close body (§5.5.1): empty, or a valid code then UTF-8 text.
fn parse_close(p: &[u8]) -> Result<Event, WsError> {
    match p {
        [] => Ok(Event::Close {
            code: None,
            reason: String::new(),
        }),
        [_] => Err(WsError::CloseTooShort),
        [a, b, rest @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !is_valid_close_code(code) {
                return Err(WsError::InvalidCloseCode(code));
            }
            let reason = core::str::from_utf8(rest).map_err(|_| WsError::InvalidCloseReason)?;
            Ok(Event::Close {
                code: Some(code),
                reason: reason.to_owned(),
            })
        }
    }
}

#[cfg(test)]
#[path = "tests/conn.rs"]
mod tests;

#[cfg(test)]
#[path = "tests/conn_limits.rs"]
mod tests_limits;
