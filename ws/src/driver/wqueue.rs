//! Per-connection write queue of encoded frames, written with vectored I/O, and the masking
//! keys of client frames (RFC 6455 §5.3), drawn from the OS CSPRNG in blocks.
//!
//! The queue accounts for the memory it holds (the capacity of its chunks), not only the bytes
//! still to write, so that `ws_max_write_queue` bounds what a connection can make us hold
//! whatever it makes us queue: data frames, and also Pongs, Closes and keep-alive answers.
//! Small frames queued behind a backlog share chunks, so a Ping flood costs its bytes, not an
//! allocation per Pong. Written chunks are freed at once and an empty queue keeps nothing: its
//! frames' box goes to a small per-thread pool that the next queue filled on this thread
//! takes, so an idle connection holds no allocation and a busy one does not make one per
//! burst (issue 16).

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::{self, Write};

use crate::proto::frame::{write_frame, FrameHeader, OpCode};
use crate::proto::mask::apply_mask;

/// Most slices handed to one `write_vectored` call.
const MAX_IOV: usize = 64;

/// Capacity (in frames) an emptied queue's deque keeps in the spare pool; more is released.
const KEEP_CAPACITY: usize = 8;

/// Most emptied queues a thread keeps for reuse.
const SPARE_MAX: usize = 64;

mod queue;

use queue::Queue;

/// Capacity of a chunk that gathers small frames queued behind a backlog.
pub(crate) const SMALL_CHUNK: usize = 2048;

/// Length of a complete frame with a `payload_len`-byte payload (RFC 6455 §5.2).
pub(crate) fn frame_len(payload_len: usize, masked: bool) -> usize {
    let len = match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    };
    len + payload_len + if masked { 4 } else { 0 }
}

/// Encoded frames waiting to be written. Empty, it holds nothing (8 bytes, no allocation:
/// every idle connection has one); its frames live in a boxed [`Queue`] taken from a small
/// per-thread pool when the first frame is queued and given back once all are written, so
/// a busy connection does not allocate one per burst (issue 16).
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    q: Option<Box<Queue>>,
}

thread_local! {
    /// Emptied queues (their deques' capacity kept, at most [`KEEP_CAPACITY`] frames), for
    /// the next queue filled on this thread.
    // Boxed on purpose: the boxes themselves are what the queues reuse.
    #[allow(clippy::vec_box)]
    static SPARE: RefCell<Vec<Box<Queue>>> = const { RefCell::new(Vec::new()) };
}

impl WriteQueue {
    /// Bytes waiting.
    pub fn bytes(&self) -> usize {
        self.q.as_ref().map_or(0, |q| q.bytes)
    }

    /// Memory held by the chunks (at least [`Self::bytes`]).
    pub fn cost(&self) -> usize {
        self.q.as_ref().map_or(0, |q| q.cost)
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.bytes() == 0
    }

    /// The frames, taken from the pool if the queue holds none.
    fn q(&mut self) -> &mut Queue {
        self.q.get_or_insert_with(|| {
            SPARE
                .with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()))
                .unwrap_or_default()
        })
    }

    /// Once nothing is left to write, give the frames' box back to the pool (or free it).
    fn settle(&mut self) {
        if self.q.as_ref().is_none_or(|q| q.bytes > 0) {
            return;
        }
        let Some(mut q) = self.q.take() else {
            return;
        };
        q.chunks.clear();
        q.release();
        q.head_off = 0;
        q.cost = 0;
        SPARE.with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if s.len() < SPARE_MAX {
                    s.push(q);
                }
            }
        });
    }

    /// Queue an encoded chunk (empty chunks are ignored).
    pub fn push(&mut self, chunk: Vec<u8>) {
        if !chunk.is_empty() {
            self.q().push(chunk);
        }
    }

    /// What queuing a `len`-byte small frame with [`Self::push_frame`] would add to
    /// [`Self::cost`]: nothing when it fits the last chunk, else a new chunk (exactly `len`
    /// on an empty queue, [`SMALL_CHUNK`] behind a backlog, so later ones share it).
    pub fn frame_cost(&self, len: usize) -> usize {
        self.q.as_ref().map_or(len, |q| q.frame_cost(len))
    }

    /// Encode a complete frame straight into the queue (FIN set; masked when `mask` is given),
    /// in the spare room of the last chunk when it fits. Meant for small frames (control
    /// frames, keep-alive answers).
    pub fn push_frame(&mut self, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) {
        self.q().push_frame(opcode, payload, mask);
    }

    /// Copy a few bytes into the queue (in the spare room of the last chunk when they fit),
    /// as [`Self::push_frame`] does for a frame: a SIP stream's keep-alive pong.
    pub fn push_small(&mut self, bytes: &[u8]) {
        self.q().push_small(bytes);
    }

    /// Move every chunk of `other` behind ours (nothing if `other` was partly written).
    pub fn append(&mut self, other: &mut WriteQueue) {
        if let Some(o) = other.q.as_deref_mut().filter(|o| o.bytes > 0) {
            self.q().append(o);
        }
        other.settle();
        self.settle();
    }

    /// The first `n` queued chunks (whole frames when nothing was written yet).
    pub fn front_chunks(&self, n: usize) -> impl Iterator<Item = &[u8]> {
        self.q
            .iter()
            .flat_map(move |q| q.chunks.iter().take(n))
            .map(Vec::as_slice)
    }

    /// The chunk queued last.
    pub fn last_chunk(&self) -> Option<&[u8]> {
        self.q.as_ref()?.chunks.back().map(Vec::as_slice)
    }

    /// Write as much as the socket takes. Returns the number of bytes written; stops at
    /// `WouldBlock` (not an error) or when empty. Other errors are returned.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let r = match self.q.as_deref_mut() {
            Some(q) => q.write_to(w),
            None => Ok(0),
        };
        self.settle();
        r
    }

    /// Drop every chunk but one being written (chunks hold whole frames, so the stream still
    /// ends on a frame boundary). Returns the bytes dropped.
    pub fn truncate_to_front(&mut self) -> usize {
        let n = self.q.as_deref_mut().map_or(0, Queue::truncate_to_front);
        self.settle();
        n
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

    /// An emptied queue holds no allocation (an idle connection owns nothing); its frames'
    /// box is reused by the next queue filled on the thread.
    #[test]
    fn an_emptied_queue_holds_nothing_and_its_box_is_reused() {
        let mut q = WriteQueue::default();
        q.push(b"reply".to_vec());
        let mut w = Trickle {
            out: Vec::new(),
            cap: 64,
            budget: 64,
        };
        q.write_to(&mut w).unwrap();
        assert!(q.is_empty());
        assert!(q.q.is_none(), "an empty queue holds nothing");
        assert_eq!(std::mem::size_of::<WriteQueue>(), 8);
        let spares = SPARE.with(|s| s.borrow().len());
        assert!(spares >= 1);
        let mut other = WriteQueue::default();
        other.push_frame(OpCode::Pong, b"", None);
        assert!(other.q.as_ref().is_some_and(|q| q.chunks.capacity() > 0));
        assert_eq!(
            SPARE.with(|s| s.borrow().len()),
            spares - 1,
            "the spare was taken"
        );
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
