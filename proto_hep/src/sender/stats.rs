//! Sender counters: atomics written by the sender thread (and by `send` for queue drops), read
//! by anyone through [`SenderStats`] snapshots.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A snapshot of a sender's counters.
///
/// Every packet accepted by `Sender::send` ends up counted exactly once in `sent` or `dropped`
/// (unless still queued); every rejected one is counted in `dropped` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderStats {
    /// Packets handed completely to the kernel (`sendto`, or written to the TCP stream).
    pub sent: u64,
    /// Packets discarded: queue full, lost to a send/write error (including a TCP packet cut
    /// in the middle by a failed write), or still queued when the sender stopped.
    pub dropped: u64,
    /// I/O failures: failed resolution, connect or send, write timeouts, connections found
    /// closed by the collector. One failure may cost zero or more packets.
    pub errors: u64,
    /// Successful TCP connections (the first one included).
    pub connects: u64,
    /// TCP: a connection is established. UDP: a socket is open and the destination resolved.
    pub connected: bool,
}

/// The live counters behind [`SenderStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
    connects: AtomicU64,
    connected: AtomicBool,
}

impl Counters {
    /// Counts `n` packets sent.
    pub(crate) fn sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` packets dropped.
    pub(crate) fn dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one I/O failure.
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a new connection (TCP) or an opened socket (UDP, `count` = false).
    pub(crate) fn up(&self, count: bool) {
        if count {
            self.connects.fetch_add(1, Ordering::Relaxed);
        }
        self.connected.store(true, Ordering::Relaxed);
    }

    /// Records the loss of the connection / socket.
    pub(crate) fn down(&self) {
        self.connected.store(false, Ordering::Relaxed);
    }

    /// A snapshot (each field read atomically, not the set as a whole).
    pub(crate) fn snapshot(&self) -> SenderStats {
        SenderStats {
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            connects: self.connects.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let c = Counters::default();
        c.sent(3);
        c.dropped(2);
        c.error();
        c.up(true);
        assert_eq!(
            c.snapshot(),
            SenderStats {
                sent: 3,
                dropped: 2,
                errors: 1,
                connects: 1,
                connected: true
            }
        );
        c.down();
        c.up(false);
        assert_eq!(c.snapshot().connects, 1);
        c.down();
        assert!(!c.snapshot().connected);
    }
}
