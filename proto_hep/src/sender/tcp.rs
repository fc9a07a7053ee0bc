//! TCP sender loop: HEP3 packets back to back on one connection (HEP3 spec §"Transport").
//!
//! * Connects eagerly, to each resolved address in turn, with `tcp_connect_timeout`.
//! * After a failed attempt it sleeps `backoff` (100 ms → 5 s by default, doubling) without
//!   reading the queue, so packets arriving during an outage fill the queue and are then dropped
//!   by `send`. The first reconnect after losing an established connection is immediate.
//! * Takes up to [`MAX_BATCH`] queued packets at a time and writes them with `writev`, then
//!   waits [`BATCH_WINDOW`](super::BATCH_WINDOW) unless the batch was full; a write
//!   making no progress for `tcp_write_timeout` (collector stalled) or failing closes the
//!   connection. A packet cut in the middle is dropped (the new connection must start on a
//!   packet boundary); the untouched ones are kept for the next connection.
//! * Before writing on a connection idle for [`PROBE_IDLE`], a non-blocking read checks that
//!   the collector has not closed it meanwhile (a collector never sends anything), so a
//!   restarted collector does not silently swallow the first packet.
//!
//! `writev` does not pass `MSG_NOSIGNAL`: like every Rust program, the host ignores SIGPIPE.

use super::stats::Counters;
use super::Worker;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Most packets taken from the queue per write (IOV_MAX is 1024 on Linux).
pub const MAX_BATCH: usize = 512;
/// A connection idle this long is probed before the next write.
pub const PROBE_IDLE: Duration = Duration::from_millis(500);

/// Queued packets being written; `offset` bytes of the front one are already written.
#[derive(Default)]
struct Batch {
    packets: VecDeque<Bytes>,
    offset: usize,
}

impl Batch {
    /// Writes the whole batch, counting each completed packet as sent.
    fn write_all(&mut self, w: &mut impl Write, counters: &Counters) -> io::Result<()> {
        while !self.packets.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_BATCH];
            let mut n_slices = 0;
            for (i, (slot, p)) in slices.iter_mut().zip(&self.packets).enumerate() {
                let skip = if i == 0 { self.offset } else { 0 };
                *slot = IoSlice::new(p.get(skip..).unwrap_or(&[]));
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
        while let Some(front) = self.packets.front() {
            let left = front.len() - self.offset.min(front.len());
            if n < left {
                self.offset += n;
                break;
            }
            n -= left;
            self.packets.pop_front();
            self.offset = 0;
            done += 1;
        }
        done
    }

    /// After a failed write: drops the partially written packet, if any (returns 1 then).
    fn cut(&mut self) -> u64 {
        if self.offset > 0 {
            self.packets.pop_front();
            self.offset = 0;
            1
        } else {
            0
        }
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
            Err(e) => last = e,
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
pub(crate) fn run(w: Worker) {
    let counters = &w.shared.counters;
    let mut conn: Option<(TcpStream, Instant)> = None;
    let mut batch = Batch::default();
    let mut backoff = w.cfg.backoff_min;
    let mut flush_deadline: Option<Instant> = None;
    loop {
        if w.shared.stopping() {
            let deadline =
                *flush_deadline.get_or_insert_with(|| Instant::now() + w.cfg.tcp_write_timeout);
            if conn.is_none() || Instant::now() >= deadline {
                break;
            }
        }
        let Some((stream, last_io)) = &mut conn else {
            match connect(&w) {
                Ok(s) => {
                    conn = Some((s, Instant::now()));
                    backoff = w.cfg.backoff_min;
                    counters.up(true);
                }
                Err(_) => {
                    counters.error();
                    if !w.shared.sleep(backoff) {
                        break;
                    }
                    backoff = (backoff * 2).min(w.cfg.backoff_max);
                }
            }
            continue;
        };
        if batch.packets.is_empty() {
            // Dropping the handle disconnects the queue, which ends this wait.
            match w.rx.recv() {
                Ok(p) => batch.packets.push_back(p),
                Err(_) => break,
            }
        }
        while batch.packets.len() < MAX_BATCH {
            match w.rx.try_recv() {
                Ok(p) => batch.packets.push_back(p),
                Err(_) => break,
            }
        }
        if last_io.elapsed() >= PROBE_IDLE && !alive(stream) {
            counters.error();
            counters.down();
            conn = None;
            continue;
        }
        let full = batch.packets.len() >= MAX_BATCH;
        match batch.write_all(stream, counters) {
            Ok(()) => {
                *last_io = Instant::now();
                // Let the next batch gather (see BATCH_WINDOW) unless the queue is backed up.
                if !full {
                    w.shared.sleep(super::BATCH_WINDOW);
                }
            }
            Err(_) => {
                counters.error();
                counters.dropped(batch.cut());
                counters.down();
                conn = None;
            }
        }
    }
    counters.down();
    counters.dropped(batch.packets.len() as u64);
    w.drop_queued();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(packets: &[&'static [u8]]) -> Batch {
        Batch {
            packets: packets.iter().map(|p| Bytes::from_static(p)).collect(),
            offset: 0,
        }
    }

    #[test]
    fn advance_and_cut() {
        let mut b = batch(&[b"abc", b"de", b"f"]);
        assert_eq!(b.advance(4), 1); // "abc" done, 1 byte of "de"
        assert_eq!(b.offset, 1);
        assert_eq!(b.cut(), 1); // "de" dropped
        assert_eq!(b.cut(), 0);
        assert_eq!(b.advance(1), 1); // "f"
        assert!(b.packets.is_empty());
    }

    /// Accepts at most `cap` bytes per call, then fails.
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
    fn write_all_partial_writes_then_failure() {
        let counters = Counters::default();
        let mut b = batch(&[b"hello", b"world", b"!"]);
        let mut w = Trickle {
            out: Vec::new(),
            cap: 3,
            budget: 7,
        };
        assert!(b.write_all(&mut w, &counters).is_err());
        assert_eq!(w.out, b"hellowo");
        assert_eq!(counters.snapshot().sent, 1);
        assert_eq!(b.cut(), 1);
        assert_eq!(b.packets, vec![Bytes::from_static(b"!")]);
        w.budget = 100;
        assert!(b.write_all(&mut w, &counters).is_ok());
        assert_eq!(w.out, b"hellowo!");
        assert_eq!(counters.snapshot().sent, 2);
    }
}
