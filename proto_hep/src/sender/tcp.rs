//! TCP sender loop: HEP3 packets back to back on one connection (HEP3 spec §"Transport").
//!
//! * Connects eagerly, to each resolved address in turn, with `tcp_connect_timeout`.
//! * After a failed attempt it sleeps `backoff` (100 ms → 5 s by default, doubling) without
//!   reading the queue, so packets arriving during an outage fill the queue and are then dropped
//!   by `send`. A connection lost before it lasted `backoff_max` counts as a failed attempt
//!   too: a collector that accepts and then stalls is retried less and less often, not every
//!   write timeout. The first reconnect after losing a connection that lasted is immediate.
//! * A connection given up on is reset (`SO_LINGER` 0), not closed gracefully: the kernel
//!   frees its unsent data (megabytes for a stalled collector) at once instead of keeping it
//!   while the replacement fills its own buffers.
//! * Each sweep of the queue takes every staged packet (whole batches of packets stored back
//!   to back) and writes them with one `writev` of one slice per batch, then waits
//!   [`BATCH_WINDOW`](super::BATCH_WINDOW) unless the sweep was large; a write
//!   making no progress for `tcp_write_timeout` (collector stalled) or failing closes the
//!   connection. A packet cut in the middle is dropped (the new connection must start on a
//!   packet boundary); the untouched ones are kept for the next connection.
//! * Before writing on a connection idle for [`PROBE_IDLE`], a non-blocking read checks that
//!   the collector has not closed it meanwhile (a collector never sends anything), so a
//!   restarted collector does not silently swallow the first packet.
//!
//! `writev` does not pass `MSG_NOSIGNAL`: like every Rust program, the host ignores SIGPIPE.

use super::queue::Batch;
use super::reconnect::{abort, Backoff};
use super::stats::Counters;
use super::Worker;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most batches per `writev` call (IOV_MAX is 1024 on Linux).
pub const MAX_SLICES: usize = 64;
/// A connection idle this long is probed before the next write.
pub const PROBE_IDLE: Duration = Duration::from_millis(500);

/// Swept batches being written: `offset` bytes of the front one are written, and its packets
/// before `next` are complete.
#[derive(Default)]
struct Pending {
    batches: VecDeque<Batch>,
    offset: usize,
    next: usize,
    /// Batches fully written (or empty), to give back to the queue.
    finished: Vec<Batch>,
}

impl Pending {
    /// Adds a swept batch (an empty one goes straight to `finished`).
    fn push(&mut self, batch: Batch) {
        if batch.is_empty() {
            self.finished.push(batch);
        } else {
            self.batches.push_back(batch);
        }
    }

    /// Packets not completely written.
    fn packets(&self) -> usize {
        self.batches.iter().map(Batch::len).sum::<usize>() - self.next
    }

    /// Writes everything, counting each completed packet as sent.
    fn write_all(&mut self, w: &mut impl Write, counters: &Counters) -> io::Result<()> {
        while let Some(front) = self.batches.front() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut n_slices = 0;
            let rest = std::iter::once(front.data().get(self.offset..).unwrap_or_default())
                .chain(self.batches.iter().skip(1).map(Batch::data));
            for (slot, data) in slices.iter_mut().zip(rest) {
                *slot = IoSlice::new(data);
                n_slices += 1;
            }
            let written = match w.write_vectored(&slices[..n_slices]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            counters.sent(self.advance(written));
        }
        Ok(())
    }

    /// Consumes `n` written bytes; returns the number of packets completed.
    fn advance(&mut self, mut n: usize) -> u64 {
        let mut done = 0;
        while let Some(front) = self.batches.front() {
            let len = front.data().len();
            let take = n.min(len - self.offset.min(len));
            self.offset += take;
            n -= take;
            while front.end(self.next).is_some_and(|end| end <= self.offset) {
                self.next += 1;
                done += 1;
            }
            if self.offset < len {
                break;
            }
            if let Some(b) = self.batches.pop_front() {
                self.finished.push(b);
            }
            self.offset = 0;
            self.next = 0;
        }
        done
    }

    /// After a failed write: drops the partially written packet, if any (returns 1 then).
    fn cut(&mut self) -> u64 {
        let Some(front) = self.batches.front() else {
            return 0;
        };
        let start = match self.next {
            0 => 0,
            i => front.end(i - 1).unwrap_or(0),
        };
        if self.offset <= start {
            return 0;
        }
        let end = front.end(self.next).unwrap_or(self.offset);
        self.advance(end - self.offset);
        1
    }
}

/// Connects to the first reachable resolved address.
fn connect(w: &Worker) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for host");
    for addr in w.resolve()? {
        match TcpStream::connect_timeout(&addr, w.cfg.tcp_connect_timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(w.cfg.tcp_write_timeout))?;
                return Ok(s);
            }
            Err(e) => last = io::Error::new(e.kind(), format!("{addr}: {e}")),
        }
    }
    Err(last)
}

/// True if the peer has not closed the connection (non-blocking read finds nothing).
fn alive(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut buf = [0u8; 256];
    let open = loop {
        match (&*s).read(&mut buf) {
            Ok(0) => break false,
            Ok(_) => continue, // unexpected data from the collector: discard
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break false,
        }
    };
    s.set_nonblocking(false).is_ok() && open
}

/// Runs until the handle is dropped (and the queue flushed, or the flush time is up).
pub(crate) fn run(mut w: Worker) {
    let shared = Arc::clone(&w.shared);
    let counters = &shared.counters;
    let mut conn: Option<(TcpStream, Instant)> = None;
    let mut connected_at = Instant::now();
    let mut pending = Pending::default();
    let mut swept = Vec::new();
    let mut backoff = Backoff {
        next: w.cfg.backoff_min,
        min: w.cfg.backoff_min,
        max: w.cfg.backoff_max,
    };
    let mut pause = Duration::ZERO;
    let mut flush_deadline: Option<Instant> = None;
    loop {
        for b in pending.finished.drain(..) {
            w.release(b);
        }
        w.check_health();
        let stopping = shared.stopping();
        if stopping {
            let deadline =
                *flush_deadline.get_or_insert_with(|| Instant::now() + w.cfg.tcp_write_timeout);
            if conn.is_none() || Instant::now() >= deadline {
                break;
            }
        }
        let Some((stream, last_io)) = &mut conn else {
            // While disconnected the queue is not swept: it fills up and `send` drops.
            if !pause.is_zero() {
                if !w.shared.sleep(std::mem::take(&mut pause)) {
                    break;
                }
                continue;
            }
            match connect(&w) {
                Ok(s) => {
                    conn = Some((s, Instant::now()));
                    connected_at = Instant::now();
                    counters.up(true);
                }
                Err(e) => {
                    counters.error();
                    w.failed(format_args!("connect to {e}"));
                    pause = backoff.failed();
                }
            }
            continue;
        };
        if pending.batches.is_empty() {
            w.sweep(&mut swept);
            for b in swept.drain(..) {
                pending.push(b);
            }
            if pending.batches.is_empty() {
                if stopping {
                    break;
                }
                for b in pending.finished.drain(..) {
                    w.release(b);
                }
                w.park();
                continue;
            }
        }
        if last_io.elapsed() >= PROBE_IDLE && !alive(stream) {
            counters.error();
            counters.down();
            w.failed("connection closed by the collector");
            if let Some((s, _)) = conn.take() {
                abort(s);
            }
            pause = backoff.lost(connected_at.elapsed());
            continue;
        }
        let full = pending.packets() >= super::FULL_SWEEP;
        match pending.write_all(stream, counters) {
            Ok(()) => {
                *last_io = Instant::now();
                // Let the next batch gather (see BATCH_WINDOW) unless the queue is backed up.
                if !full && !stopping {
                    w.shared.sleep(super::BATCH_WINDOW);
                }
            }
            Err(e) => {
                counters.error();
                counters.dropped(pending.cut());
                counters.down();
                w.failed(format_args!("write: {e}"));
                if let Some((s, _)) = conn.take() {
                    abort(s);
                }
                pause = backoff.lost(connected_at.elapsed());
            }
        }
    }
    counters.down();
    counters.dropped(pending.packets() as u64);
    for b in pending.batches.drain(..).chain(pending.finished.drain(..)) {
        w.release(b);
    }
    w.drop_queued();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(batches: &[&[&[u8]]]) -> Pending {
        let mut p = Pending::default();
        for b in batches {
            p.push(Batch::from_packets(b));
        }
        p
    }

    #[test]
    fn advance_and_cut() {
        let mut b = pending(&[&[b"abc", b"de", b"f"]]);
        assert_eq!(b.advance(4), 1); // "abc" done, 1 byte of "de"
        assert_eq!((b.offset, b.next), (4, 1));
        assert_eq!(b.cut(), 1); // "de" dropped
        assert_eq!(b.cut(), 0);
        assert_eq!(b.packets(), 1);
        assert_eq!(b.advance(1), 1); // "f"
        assert!(b.batches.is_empty());
        assert_eq!(b.finished.len(), 1);
    }

    #[test]
    fn advance_across_batches_and_empty_ones() {
        let mut b = pending(&[&[b"ab", b"c"], &[], &[b"de"], &[b"fgh"]]);
        assert_eq!(b.finished.len(), 1); // the empty batch
        assert_eq!(b.packets(), 4);
        assert_eq!(b.advance(4), 2); // "ab", "c" (first batch done), "d"
        assert_eq!((b.batches.len(), b.offset, b.next), (2, 1, 0));
        assert_eq!(b.cut(), 1); // "de" cut: its batch is done
        assert_eq!((b.batches.len(), b.offset, b.finished.len()), (1, 0, 3));
        assert_eq!(b.cut(), 0); // on a boundary
        assert_eq!(b.advance(3), 1);
        assert_eq!((b.batches.len(), b.packets()), (0, 0));
    }

    /// Accepts at most `cap` bytes per call (across slices), then fails.
    struct Trickle {
        out: Vec<u8>,
        cap: usize,
        budget: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.cap - n).min(self.budget - n);
                self.out.extend_from_slice(&b[..take]);
                n += take;
            }
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_all_partial_writes_then_failure() {
        let counters = Counters::default();
        let mut b = pending(&[&[b"hello", b"world", b"!"]]);
        let mut w = Trickle {
            out: Vec::new(),
            cap: 3,
            budget: 7,
        };
        assert!(b.write_all(&mut w, &counters).is_err());
        assert_eq!(w.out, b"hellowo");
        assert_eq!(counters.snapshot().sent, 1);
        assert_eq!(b.cut(), 1);
        assert_eq!(b.packets(), 1);
        w.budget = 100;
        assert!(b.write_all(&mut w, &counters).is_ok());
        assert_eq!(w.out, b"hellowo!");
        assert_eq!(counters.snapshot().sent, 2);
        assert!(b.batches.is_empty());
    }

    #[test]
    fn write_all_spans_batches_in_one_writev() {
        let counters = Counters::default();
        let mut b = pending(&[&[b"one", b"two"], &[b"three"], &[b"four"]]);
        let mut w = Trickle {
            out: Vec::new(),
            cap: 1000,
            budget: 1000,
        };
        assert!(b.write_all(&mut w, &counters).is_ok());
        assert_eq!(w.out, b"onetwothreefour");
        assert_eq!(counters.snapshot().sent, 4);
        assert_eq!(b.finished.len(), 3);
    }
}
