//! Per-connection write queue of encoded frames, written with vectored I/O, and the masking
//! keys of client frames (RFC 6455 §5.3), drawn from the OS CSPRNG in blocks.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use crate::proto::frame::{write_frame, OpCode};

/// Most slices handed to one `write_vectored` call.
const MAX_IOV: usize = 64;

/// Capacity (in frames) kept by an empty queue; more is released.
const KEEP_CAPACITY: usize = 8;

/// Encoded frames waiting to be written.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    head_off: usize,
    /// Bytes not yet written.
    bytes: usize,
}

impl WriteQueue {
    /// Bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Queue an encoded chunk (empty chunks are ignored).
    pub fn push(&mut self, chunk: Vec<u8>) {
        if !chunk.is_empty() {
            self.bytes += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Move every chunk of `other` behind ours.
    pub fn append(&mut self, other: &mut WriteQueue) {
        if other.head_off == 0 {
            self.bytes += other.bytes;
            self.chunks.append(&mut other.chunks);
            other.bytes = 0;
        }
    }

    /// Forget everything (the connection is being dropped).
    pub fn clear(&mut self) {
        *self = WriteQueue::default();
    }

    /// Write as much as the socket takes. Returns the number of bytes written; stops at
    /// `WouldBlock` (not an error) or when empty. Other errors are returned.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut total = 0;
        while self.bytes > 0 {
            let n = {
                let mut iov: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
                let mut cnt = 0;
                for (i, c) in self.chunks.iter().take(MAX_IOV).enumerate() {
                    let s = if i == 0 {
                        c.get(self.head_off..).unwrap_or_default()
                    } else {
                        c.as_slice()
                    };
                    if let Some(slot) = iov.get_mut(cnt) {
                        *slot = IoSlice::new(s);
                        cnt += 1;
                    }
                }
                match w.write_vectored(iov.get(..cnt).unwrap_or_default()) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            total += n;
            self.consume(n);
        }
        if self.bytes == 0 && self.chunks.capacity() > KEEP_CAPACITY {
            self.chunks = VecDeque::new();
        }
        Ok(total)
    }

    fn consume(&mut self, mut n: usize) {
        self.bytes = self.bytes.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.len().saturating_sub(self.head_off);
            if n >= left {
                n -= left;
                self.head_off = 0;
                self.chunks.pop_front();
            } else {
                self.head_off += n;
                n = 0;
            }
        }
    }
}

/// Encode one complete frame (FIN set): unmasked for a server, masked with a fresh random key
/// for a client (RFC 6455 §5.1, §5.3).
pub(crate) fn encode(opcode: OpCode, payload: &[u8], client: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mask = client.then(mask_key);
    write_frame(&mut out, true, opcode, payload, mask);
    out
}

/// Random bytes drawn from the OS in blocks (one syscall per 64 masks).
struct Pool {
    buf: [u8; 256],
    pos: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { buf: [0; 256], pos: 256 }) };
}

/// Fill `out` with random bytes from the thread's pool (RFC 6455 §10.3: unpredictable keys).
pub(crate) fn random_bytes(out: &mut [u8]) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        for b in out.iter_mut() {
            if p.pos >= p.buf.len() {
                if getrandom::fill(&mut p.buf).is_err() {
                    // No OS randomness: fall back to a time-seeded xorshift rather than fail.
                    let mut x = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
                        | 1;
                    for c in p.buf.iter_mut() {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        *c = x as u8;
                    }
                }
                p.pos = 0;
            }
            let pos = p.pos;
            *b = p.buf.get(pos).copied().unwrap_or_default();
            p.pos += 1;
        }
    });
}

/// A fresh masking key.
pub(crate) fn mask_key() -> [u8; 4] {
    let mut k = [0u8; 4];
    random_bytes(&mut k);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `cap` bytes per call, then `WouldBlock` after `budget`.
    struct Trickle {
        out: Vec<u8>,
        cap: usize,
        budget: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.cap).min(self.budget);
            self.out.extend_from_slice(&buf[..n]);
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut q = WriteQueue::default();
        q.push(b"hello ".to_vec());
        q.push(Vec::new());
        q.push(b"world".to_vec());
        assert_eq!(q.bytes(), 11);
        let mut w = Trickle {
            out: Vec::new(),
            cap: 4,
            budget: 7,
        };
        assert_eq!(q.write_to(&mut w).unwrap(), 7);
        assert_eq!(q.bytes(), 4);
        w.budget = 100;
        assert_eq!(q.write_to(&mut w).unwrap(), 4);
        assert!(q.is_empty());
        assert_eq!(w.out, b"hello world");
    }

    #[test]
    fn server_frames_unmasked_client_frames_masked() {
        assert_eq!(encode(OpCode::Text, b"\r\n", false), b"\x81\x02\r\n");
        let f = encode(OpCode::Text, b"abc", true);
        assert_eq!(&f[..2], b"\x81\x83");
        let key = [f[2], f[3], f[4], f[5]];
        let body: Vec<u8> = f[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(body, b"abc");
        // Keys differ between frames (2^-32 chance of a false failure).
        assert_ne!(mask_key(), mask_key());
    }
}
