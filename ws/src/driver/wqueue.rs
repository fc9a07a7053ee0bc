//! Per-connection write queue of encoded frames, written with vectored I/O, and the masking
//! keys of client frames (RFC 6455 §5.3), drawn from the OS CSPRNG in blocks.
//!
//! The queue accounts for the memory it holds (the capacity of its chunks), not only the bytes
//! still to write, so that `ws_max_write_queue` bounds what a connection can make us hold
//! whatever it makes us queue: data frames, and also Pongs, Closes and keep-alive answers.
//! Small frames queued behind a backlog share chunks, so a Ping flood costs its bytes, not an
//! allocation per Pong. Written chunks are freed at once and an empty queue keeps nothing.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use crate::proto::frame::{write_frame, FrameHeader, OpCode};
use crate::proto::mask::apply_mask;

/// Most slices handed to one `write_vectored` call.
const MAX_IOV: usize = 64;

/// Capacity (in frames) kept by an empty queue; more is released.
const KEEP_CAPACITY: usize = 8;

/// Capacity of a chunk that gathers small frames queued behind a backlog.
pub(crate) const SMALL_CHUNK: usize = 2048;

/// Encoded frames waiting to be written.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    head_off: usize,
    /// Bytes not yet written.
    bytes: usize,
    /// Capacity of the chunks held (what the queue costs in memory).
    cost: usize,
}

/// Length of a complete frame with a `payload_len`-byte payload (RFC 6455 §5.2).
pub(crate) fn frame_len(payload_len: usize, masked: bool) -> usize {
    let len = match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    };
    len + payload_len + if masked { 4 } else { 0 }
}

impl WriteQueue {
    /// Bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Memory held by the chunks (at least [`Self::bytes`]).
    pub fn cost(&self) -> usize {
        self.cost
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Queue an encoded chunk (empty chunks are ignored).
    pub fn push(&mut self, chunk: Vec<u8>) {
        if !chunk.is_empty() {
            self.bytes += chunk.len();
            self.cost += chunk.capacity();
            self.chunks.push_back(chunk);
        }
    }

    /// What queuing a `len`-byte small frame with [`Self::push_frame`] would add to
    /// [`Self::cost`]: nothing when it fits the last chunk, else a new chunk (exactly `len`
    /// on an empty queue, [`SMALL_CHUNK`] behind a backlog, so later ones share it).
    pub fn frame_cost(&self, len: usize) -> usize {
        match self.chunks.back() {
            Some(c) if c.capacity() - c.len() >= len => 0,
            Some(_) => len.max(SMALL_CHUNK),
            None => len,
        }
    }

    /// Encode a complete frame straight into the queue (FIN set; masked when `mask` is given),
    /// in the spare room of the last chunk when it fits. Meant for small frames (control
    /// frames, keep-alive answers).
    pub fn push_frame(&mut self, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) {
        let len = frame_len(payload.len(), mask.is_some());
        let extra = self.frame_cost(len);
        if extra > 0 {
            let chunk = Vec::with_capacity(extra);
            self.cost += chunk.capacity();
            self.chunks.push_back(chunk);
        }
        if let Some(tail) = self.chunks.back_mut() {
            let cap = tail.capacity();
            write_frame(tail, true, opcode, payload, mask);
            self.cost += tail.capacity() - cap;
            self.bytes += len;
        }
    }

    /// Copy a few bytes into the queue (in the spare room of the last chunk when they fit),
    /// as [`Self::push_frame`] does for a frame: a SIP stream's keep-alive pong.
    pub fn push_small(&mut self, bytes: &[u8]) {
        let extra = self.frame_cost(bytes.len());
        if extra > 0 {
            let chunk = Vec::with_capacity(extra);
            self.cost += chunk.capacity();
            self.chunks.push_back(chunk);
        }
        if let Some(tail) = self.chunks.back_mut() {
            let cap = tail.capacity();
            tail.extend_from_slice(bytes);
            self.cost += tail.capacity() - cap;
            self.bytes += bytes.len();
        }
    }

    /// Move every chunk of `other` behind ours.
    pub fn append(&mut self, other: &mut WriteQueue) {
        if other.head_off == 0 {
            self.bytes += other.bytes;
            self.cost += other.cost;
            self.chunks.append(&mut other.chunks);
            other.bytes = 0;
            other.cost = 0;
            other.release();
        }
    }

    /// The first `n` queued chunks (whole frames when nothing was written yet).
    pub fn front_chunks(&self, n: usize) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().take(n).map(Vec::as_slice)
    }

    /// The chunk queued last.
    pub fn last_chunk(&self) -> Option<&[u8]> {
        self.chunks.back().map(Vec::as_slice)
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
        if total > 0 {
            self.release();
        }
        Ok(total)
    }

    /// Drop every chunk but one being written (chunks hold whole frames, so the stream still
    /// ends on a frame boundary). Returns the bytes dropped.
    pub fn truncate_to_front(&mut self) -> usize {
        let keep = usize::from(self.head_off > 0);
        let mut dropped = 0;
        while self.chunks.len() > keep {
            if let Some(c) = self.chunks.pop_back() {
                dropped += c.len();
                self.cost = self.cost.saturating_sub(c.capacity());
            }
        }
        self.bytes = self.bytes.saturating_sub(dropped);
        self.release();
        dropped
    }

    /// Give back the deque's spare capacity (no high-water mark is kept).
    fn release(&mut self) {
        let (len, cap) = (self.chunks.len(), self.chunks.capacity());
        if len == 0 {
            if cap > KEEP_CAPACITY {
                self.chunks = VecDeque::new();
            }
        } else if cap > 4 * len && cap > 4 * KEEP_CAPACITY {
            self.chunks.shrink_to(2 * len);
        }
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
                if let Some(c) = self.chunks.pop_front() {
                    self.cost = self.cost.saturating_sub(c.capacity());
                }
            } else {
                self.head_off += n;
                n = 0;
            }
        }
    }
}

/// Every frame in `chunk`, a run of complete encoded frames, as its unmasked payload (for the
/// trace of frames queued before a connection's trace decision). Stops at anything that does
/// not parse.
pub(crate) fn frame_payloads(mut chunk: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let mut out = Vec::new();
    while let Ok(Some(h)) = FrameHeader::parse(chunk) {
        let Some(end) = usize::try_from(h.payload_len)
            .ok()
            .and_then(|l| l.checked_add(h.header_len))
        else {
            break;
        };
        let Some(body) = chunk.get(h.header_len..end) else {
            break;
        };
        out.push(match h.mask {
            Some(key) => {
                let mut b = body.to_vec();
                apply_mask(&mut b, key, 0);
                Cow::Owned(b)
            }
            None => Cow::Borrowed(body),
        });
        chunk = chunk.get(end..).unwrap_or_default();
    }
    out
}

/// The messages in `chunk` for the trace: its frames' payloads ([`frame_payloads`]), or over
/// a SIP stream, where a chunk is one message as sent, the chunk itself.
pub(crate) fn chunk_payloads(chunk: &[u8], sip_stream: bool) -> Vec<Cow<'_, [u8]>> {
    if sip_stream {
        return vec![Cow::Borrowed(chunk)];
    }
    frame_payloads(chunk)
}

/// What goes on the wire for one message: a frame ([`encode`]), or over a SIP stream the
/// message itself (RFC 3261 §18.3).
pub(crate) fn encode_message(
    text: bool,
    payload: &[u8],
    client: bool,
    sip_stream: bool,
) -> Vec<u8> {
    if sip_stream {
        return payload.to_vec();
    }
    let op = if text { OpCode::Text } else { OpCode::Binary };
    encode(op, payload, client)
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

    /// Shedding keeps only a chunk already being written, so the stream stays on a frame
    /// boundary; an untouched queue is emptied; cost and bytes follow.
    #[test]
    fn truncate_to_front_keeps_only_a_chunk_being_written() {
        let mut q = WriteQueue::default();
        q.push(b"first".to_vec());
        q.push(b"second".to_vec());
        q.push(b"third".to_vec());
        assert_eq!(q.truncate_to_front(), 16);
        assert!(q.is_empty() && q.cost() == 0);
        q.push(b"first".to_vec());
        q.push(b"second".to_vec());
        let mut w = Trickle {
            out: Vec::new(),
            cap: 2,
            budget: 2,
        };
        assert_eq!(q.write_to(&mut w).unwrap(), 2);
        assert_eq!(q.truncate_to_front(), 6);
        assert_eq!((q.bytes(), q.cost()), (3, 5));
        w.budget = 100;
        q.write_to(&mut w).unwrap();
        assert_eq!(w.out, b"first");
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
