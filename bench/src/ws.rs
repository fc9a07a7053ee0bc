//! Minimal RFC 6455 client pieces: the opening handshake (section 4.1), masked text frames
//! (section 5.2/5.3) and parsing of the server's unmasked frames. No I/O beyond the handshake.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The GUID of RFC 6455 section 1.3, appended to the key to compute `Sec-WebSocket-Accept`.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A WebSocket frame opcode the client cares about (RFC 6455 section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// 0x0: continuation of a fragmented message.
    Continuation,
    /// 0x1: text frame (SIP messages, RFC 7118 section 5).
    Text,
    /// 0x2: binary frame.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
    /// Any reserved opcode.
    Other(u8),
}

/// One frame found at the start of a buffer: header and payload positions.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// FIN bit.
    pub fin: bool,
    /// Opcode.
    pub opcode: Opcode,
    /// Offset of the payload in the buffer.
    pub start: usize,
    /// Offset one past the payload (total bytes consumed by the frame).
    pub end: usize,
}

/// Parse the frame at the start of `buf`; `None` if it is not complete yet.
/// Server frames are unmasked (RFC 6455 section 5.1); a masked one is still skipped correctly.
pub fn parse_frame(buf: &[u8]) -> Option<Frame> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    let masked = b1 & 0x80 != 0;
    let (len, mut hdr) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as u64, 4),
        127 => {
            let b = buf.get(2..10)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            (u64::from_be_bytes(a), 10)
        }
        n => (n as u64, 2),
    };
    if masked {
        hdr += 4;
    }
    let end = hdr + usize::try_from(len).ok()?;
    if buf.len() < end {
        return None;
    }
    let opcode = match b0 & 0x0f {
        0 => Opcode::Continuation,
        1 => Opcode::Text,
        2 => Opcode::Binary,
        8 => Opcode::Close,
        9 => Opcode::Ping,
        10 => Opcode::Pong,
        o => Opcode::Other(o),
    };
    Some(Frame {
        fin: b0 & 0x80 != 0,
        opcode,
        start: hdr,
        end,
    })
}

/// Cheap per-connection mask generator (xorshift32); masking keys only need to differ per frame
/// for a load test (RFC 6455 section 10.3 asks for unpredictability against proxies, moot here).
pub struct Masker(u32);

impl Masker {
    /// A masker seeded from the OS random source.
    pub fn new() -> Self {
        let mut b = [0u8; 4];
        let _ = getrandom::fill(&mut b);
        Masker(u32::from_ne_bytes(b) | 1)
    }

    fn next(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x.to_ne_bytes()
    }

    /// Append a masked FIN frame with `opcode` carrying `payload` to `out` (RFC 6455 5.2, 5.3).
    pub fn push_frame(&mut self, out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
        out.push(0x80 | opcode);
        let n = payload.len();
        if n < 126 {
            out.push(0x80 | n as u8);
        } else if n <= 0xffff {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        let key = self.next();
        out.extend_from_slice(&key);
        let base = out.len();
        out.extend_from_slice(payload);
        for (i, b) in out[base..].iter_mut().enumerate() {
            *b ^= key[i & 3];
        }
    }
}

/// Perform the client opening handshake (RFC 6455 section 4.1) with subprotocol `sip`
/// (RFC 7118 section 4) on `s`. Returns bytes read past the end of the 101 response (frames the
/// server may already have sent), normally empty.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    host: &str,
    path: &str,
) -> io::Result<Vec<u8>> {
    let mut key_raw = [0u8; 16];
    getrandom::fill(&mut key_raw).map_err(|e| io::Error::other(e.to_string()))?;
    let key = base64::engine::general_purpose::STANDARD.encode(key_raw);
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: sip\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(512);
    let mut tmp = [0u8; 1024];
    loop {
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "closed during handshake after {:?}",
                    String::from_utf8_lossy(&buf)
                ),
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 24];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(used)) => {
                if resp.code != Some(101) {
                    return Err(io::Error::other(format!(
                        "handshake refused: {:?}",
                        String::from_utf8_lossy(&buf[..used])
                    )));
                }
                let accept = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
                    .map(|h| h.value)
                    .unwrap_or_default();
                let mut sha = Sha1::new();
                sha.update(key.as_bytes());
                sha.update(GUID.as_bytes());
                let want = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
                if accept != want.as_bytes() {
                    return Err(io::Error::other("bad Sec-WebSocket-Accept"));
                }
                return Ok(buf.split_off(used));
            }
            Ok(httparse::Status::Partial) if buf.len() < 8192 => {}
            Ok(httparse::Status::Partial) => return Err(io::Error::other("huge handshake")),
            Err(e) => return Err(io::Error::other(format!("bad HTTP response: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_frame_roundtrip() {
        let mut m = Masker(7);
        let mut out = Vec::new();
        m.push_frame(&mut out, 1, b"hello");
        let f = parse_frame(&out).unwrap();
        assert_eq!(
            (f.fin, f.opcode, f.start, f.end),
            (true, Opcode::Text, 6, 11)
        );
        let key = [out[2], out[3], out[4], out[5]];
        let p: Vec<u8> = out[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i & 3])
            .collect();
        assert_eq!(p, b"hello");
    }

    #[test]
    fn unmasked_16bit_len() {
        let mut b = vec![0x81, 126, 0x01, 0x00];
        b.extend(std::iter::repeat_n(b'a', 256));
        let f = parse_frame(&b).unwrap();
        assert_eq!((f.start, f.end), (4, 260));
        assert!(parse_frame(&b[..259]).is_none());
    }
}
