//! One `WsConn::decode` step (RFC 6455 §5, §6.2, §7): frame headers checked against the
//! message state and the limits, payloads unmasked and UTF-8-validated as they arrive,
//! messages gathered from their fragments, Close bodies parsed. Pure code over bytes.

use std::time::Instant;

use bytes::{Buf, BytesMut};

use super::{Event, InFrame, InMessage, Limits, Role, Rx};
use crate::proto::error::WsError;
use crate::proto::frame::{is_valid_close_code, FrameHeader, OpCode};
use crate::proto::mask::apply_mask;

/// One `decode` call's view of the connection: its fixed parts, and the receive state it
/// works on (boxed or on the stack).
pub(super) struct Decoder<'a> {
    pub(super) limits: &'a Limits,
    pub(super) role: Role,
    pub(super) closed: &'a mut bool,
}

impl Decoder<'_> {
    /// Decode the next event (see [`super::WsConn::decode`]) with `rx` as the receive state; on an
    /// error, record it in `rx` and forget the message in progress.
    pub(super) fn decode(
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
