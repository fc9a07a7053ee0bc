//! Frame header codec (RFC 6455 §5.2) and Close payloads (§5.5.1, §7.4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

use super::error::WsError;
use super::mask::apply_mask;

/// Frame opcode (RFC 6455 §5.2, §11.8). Reserved values are not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: continuation of a fragmented message (§5.4).
    Continuation = 0,
    /// 0x1: text data, UTF-8 (§5.6).
    Text = 1,
    /// 0x2: binary data (§5.6).
    Binary = 2,
    /// 0x8: connection close (§5.5.1).
    Close = 8,
    /// 0x9: ping (§5.5.2).
    Ping = 9,
    /// 0xA: pong (§5.5.3).
    Pong = 10,
}

impl OpCode {
    /// The opcode for a 4-bit value; `None` for the reserved values 0x3-0x7 and 0xB-0xF.
    pub fn from_u8(v: u8) -> Option<OpCode> {
        match v {
            0 => Some(OpCode::Continuation),
            1 => Some(OpCode::Text),
            2 => Some(OpCode::Binary),
            8 => Some(OpCode::Close),
            9 => Some(OpCode::Ping),
            10 => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// Control frames have the high opcode bit set (§5.5).
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// Largest possible frame header: 2 + 8 (64-bit length) + 4 (masking key).
pub const MAX_HEADER_LEN: usize = 14;

/// Largest payload of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// An encoded frame header held inline (no allocation). Dereferences to its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FrameHeaderBuf {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl core::ops::Deref for FrameHeaderBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // `len` is only ever set to 2..=14 by `encode_header`.
        self.bytes
            .get(..usize::from(self.len))
            .unwrap_or(&self.bytes)
    }
}

impl core::fmt::Debug for FrameHeaderBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FrameHeaderBuf({:02x?})", &**self)
    }
}

/// Encode a frame header (§5.2). The payload length always uses the minimal
/// encoding: 7-bit below 126, 16-bit up to 65535 inclusive, 64-bit (network
/// order, top bit clear for any real length) above. With `mask`, the MASK bit is
/// set and the key appended; the caller masks the payload with [`apply_mask`].
pub fn encode_header(
    fin: bool,
    opcode: OpCode,
    payload_len: u64,
    mask: Option<[u8; 4]>,
) -> FrameHeaderBuf {
    let mut b = [0u8; MAX_HEADER_LEN];
    b[0] = (u8::from(fin) << 7) | opcode as u8;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut len = match payload_len {
        0..=125 => {
            b[1] = mask_bit | payload_len as u8;
            2
        }
        126..=0xFFFF => {
            b[1] = mask_bit | 126;
            b[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
            4
        }
        _ => {
            b[1] = mask_bit | 127;
            b[2..10].copy_from_slice(&payload_len.to_be_bytes());
            10
        }
    };
    if let Some(key) = mask {
        b[len..len + 4].copy_from_slice(&key);
        len += 4;
    }
    FrameHeaderBuf {
        bytes: b,
        len: len as u8,
    }
}

/// Append a whole frame (header and payload, masked when `mask` is given) to `out`.
/// A convenience for senders; the payload is copied once.
pub fn write_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let header = encode_header(fin, opcode, payload.len() as u64, mask);
    out.reserve(header.len() + payload.len());
    out.extend_from_slice(&header);
    let start = out.len();
    out.extend_from_slice(payload);
    if let (Some(key), Some(body)) = (mask, out.get_mut(start..)) {
        apply_mask(body, key, 0);
    }
}

/// Whether a status code may appear in a received Close frame (§7.4.1, §7.4.2).
///
/// Valid: 1000-1003, 1007-1011, 1012-1014, 3000-4999. 1012 (Service Restart),
/// 1013 (Try Again Later) and 1014 (Bad Gateway) are accepted because they are
/// registered in the IANA "WebSocket Close Code Number" registry (§11.7) and
/// Autobahn's 7.9.x invalid-code list no longer contains them. Invalid: below
/// 1000, 1004 (reserved), 1005/1006/1015 (must never be sent), 1016-2999
/// (unassigned protocol range) and 5000 and above.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Build a Close frame body (§5.5.1): the 2-byte status code in network order,
/// then `reason` truncated at a UTF-8 char boundary so the body fits a control
/// frame (at most 125 bytes, i.e. 123 bytes of reason).
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = Vec::with_capacity(2 + cut);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes().get(..cut).unwrap_or_default());
    out
}

/// A decoded, structurally valid frame header (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN bit: this is the final fragment of a message.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Declared payload length (top bit always clear).
    pub payload_len: u64,
    /// Header length in bytes (2..=14); the payload starts here.
    pub header_len: usize,
}

impl FrameHeader {
    /// Decode a header from the front of `buf`. `Ok(None)` means more bytes are
    /// needed. Structural errors are reported as soon as the bytes that show them
    /// are present (a bad first byte fails with a 1-byte `buf`):
    /// RSV bits, reserved opcodes, fragmented or over-long control frames,
    /// non-minimal length encodings and a 64-bit length with its top bit set.
    /// Masking rules and message sequencing depend on the connection and are
    /// checked by [`crate::proto::conn::WsConn`].
    pub fn parse(buf: &[u8]) -> Result<Option<FrameHeader>, WsError> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(WsError::ReservedBits);
        }
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(WsError::ReservedOpcode(b0 & 0x0F))?;
        let fin = b0 & 0x80 != 0;
        if opcode.is_control() && !fin {
            return Err(WsError::FragmentedControlFrame);
        }
        let Some(&b1) = buf.get(1) else {
            return Ok(None);
        };
        let len7 = b1 & 0x7F;
        if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(WsError::ControlFrameTooLong);
        }
        let (payload_len, mut header_len) = match len7 {
            126 => {
                let Some(bytes) = buf.get(2..4).and_then(|s| <[u8; 2]>::try_from(s).ok()) else {
                    return Ok(None);
                };
                let len = u16::from_be_bytes(bytes);
                if len < 126 {
                    return Err(WsError::NonMinimalLength);
                }
                (u64::from(len), 4)
            }
            127 => {
                let Some(bytes) = buf.get(2..10).and_then(|s| <[u8; 8]>::try_from(s).ok()) else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(bytes);
                if len >> 63 != 0 {
                    return Err(WsError::LengthOverflow);
                }
                if len <= 0xFFFF {
                    return Err(WsError::NonMinimalLength);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if b1 & 0x80 != 0 {
            let Some(key) = buf
                .get(header_len..header_len + 4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
            else {
                return Ok(None);
            };
            header_len += 4;
            Some(key)
        } else {
            None
        };
        Ok(Some(FrameHeader {
            fin,
            opcode,
            mask,
            payload_len,
            header_len,
        }))
    }
}

#[cfg(test)]
#[path = "tests/frame.rs"]
mod tests;
