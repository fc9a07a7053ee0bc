//! The frames of one write queue, written with vectored I/O ([`super::WriteQueue`] holds
//! one only while it has frames to write).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use super::{frame_len, KEEP_CAPACITY, MAX_IOV, SMALL_CHUNK};
use crate::proto::frame::{write_frame, OpCode};

/// The frames of a queue that holds some (see [`super::WriteQueue`]).
#[derive(Debug, Default)]
pub(super) struct Queue {
    /// Encoded frames, whole (small ones queued behind a backlog share a chunk).
    pub(super) chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    pub(super) head_off: usize,
    /// Bytes not yet written.
    pub(super) bytes: usize,
    /// Capacity of the chunks held (what the queue costs in memory).
    pub(super) cost: usize,
}

impl Queue {
    /// Queue an encoded chunk (empty chunks are ignored).
    pub fn push(&mut self, chunk: Vec<u8>) {
        if !chunk.is_empty() {
            self.bytes += chunk.len();
            self.cost += chunk.capacity();
            self.chunks.push_back(chunk);
        }
    }

    /// What queuing a `len`-byte small frame with [`Self::push_frame`] would add to
    /// `cost`: nothing when it fits the last chunk, else a new chunk (exactly `len`
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
        self.write_tail(len, |tail| write_frame(tail, true, opcode, payload, mask));
    }

    /// Copy a few bytes into the queue (in the spare room of the last chunk when they fit),
    /// as [`Self::push_frame`] does for a frame: a SIP stream's keep-alive pong.
    pub fn push_small(&mut self, bytes: &[u8]) {
        self.write_tail(bytes.len(), |tail| tail.extend_from_slice(bytes));
    }

    /// Make room for `len` more bytes (a new chunk unless the last one has it) and let
    /// `write` append exactly them to the last chunk, accounting for both.
    fn write_tail(&mut self, len: usize, write: impl FnOnce(&mut Vec<u8>)) {
        let extra = self.frame_cost(len);
        if extra > 0 {
            let chunk = Vec::with_capacity(extra);
            self.cost += chunk.capacity();
            self.chunks.push_back(chunk);
        }
        if let Some(tail) = self.chunks.back_mut() {
            let cap = tail.capacity();
            write(tail);
            self.cost += tail.capacity() - cap;
            self.bytes += len;
        }
    }

    /// Move every chunk of `other` behind ours.
    pub fn append(&mut self, other: &mut Queue) {
        if other.head_off == 0 {
            self.bytes += other.bytes;
            self.cost += other.cost;
            self.chunks.append(&mut other.chunks);
            other.bytes = 0;
            other.cost = 0;
            other.release();
        }
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
    pub fn release(&mut self) {
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
