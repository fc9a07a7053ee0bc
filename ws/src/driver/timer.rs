//! Per-worker deadlines: a binary heap with lazy invalidation.
//!
//! Each connection keeps, per [`Kind`], the deadline it armed last. An entry popped from the
//! heap whose instant differs from the connection's armed one (or whose connection is gone) is
//! stale and ignored, so re-arming never searches the heap. Deadlines that move later often
//! (idle lifetime) are not re-armed on each message: when they fire, the owner recomputes the
//! real deadline and re-arms if it is still in the future. Cost: O(log n) per arm and fire,
//! nothing per tick.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// Inbound handshake, outbound connect, outbound handshake.
    Handshake = 0,
    /// Completion of the message being received.
    Message = 1,
    /// Idle lifetime and keep-alive ping interval.
    Idle = 2,
    /// Keep-alive pong deadline.
    Pong = 3,
    /// No write progress with data queued.
    Send = 4,
    /// Waiting for the peer's Close / EOF after ours.
    CloseWait = 5,
    /// A listener paused after an accept error (slot = listener index, id = 0).
    Listener = 6,
}

/// Number of [`Kind`]s a connection can arm.
pub(crate) const CONN_KINDS: usize = 6;

/// One heap entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    /// When.
    pub at: Instant,
    /// Connection id (0 for listener timers).
    pub id: u64,
    /// Slab slot or listener index.
    pub slot: usize,
    /// What for.
    pub kind: Kind,
}

/// The heap.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Timers {
    /// Add an entry.
    pub fn push(&mut self, e: Entry) {
        self.heap.push(Reverse(e));
    }

    /// The earliest instant, if any.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Remove and return the earliest entry due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Number of entries (stale ones included).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

/// The deadlines one connection has armed, one per [`Kind`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Armed([Option<Instant>; CONN_KINDS]);

impl Armed {
    /// Arm `kind` at `at` unless an equal or earlier deadline is armed; returns whether a new
    /// heap entry is needed.
    pub fn arm(&mut self, kind: Kind, at: Instant) -> bool {
        match self.0.get_mut(kind as usize) {
            Some(slot) if slot.is_none_or(|cur| at < cur) => {
                *slot = Some(at);
                true
            }
            _ => false,
        }
    }

    /// Forget `kind` (a pending heap entry becomes stale).
    pub fn clear(&mut self, kind: Kind) {
        if let Some(s) = self.0.get_mut(kind as usize) {
            *s = None;
        }
    }

    /// If the popped entry is the live one, disarm it and return true.
    pub fn take_if(&mut self, kind: Kind, at: Instant) -> bool {
        match self.0.get_mut(kind as usize) {
            Some(s) if *s == Some(at) => {
                *s = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        for (i, ms) in [30u64, 10, 20].iter().enumerate() {
            t.push(Entry {
                at: t0 + Duration::from_millis(*ms),
                id: i as u64 + 1,
                slot: i,
                kind: Kind::Idle,
            });
        }
        assert_eq!(t.next(), Some(t0 + Duration::from_millis(10)));
        assert!(t.pop_due(t0).is_none());
        let due: Vec<u64> = std::iter::from_fn(|| t.pop_due(t0 + Duration::from_millis(25)))
            .map(|e| e.id)
            .collect();
        assert_eq!(due, vec![2, 3]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn armed_keeps_earliest_and_detects_stale() {
        let t0 = Instant::now();
        let mut a = Armed::default();
        assert!(a.arm(Kind::Send, t0 + Duration::from_millis(5)));
        assert!(!a.arm(Kind::Send, t0 + Duration::from_millis(9)));
        assert!(a.arm(Kind::Send, t0 + Duration::from_millis(2)));
        // The 5 ms entry is stale now.
        assert!(!a.take_if(Kind::Send, t0 + Duration::from_millis(5)));
        assert!(a.take_if(Kind::Send, t0 + Duration::from_millis(2)));
        assert!(!a.take_if(Kind::Send, t0 + Duration::from_millis(2)));
        a.arm(Kind::Pong, t0);
        a.clear(Kind::Pong);
        assert!(!a.take_if(Kind::Pong, t0));
    }
}
