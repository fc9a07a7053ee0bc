//! Per-worker deadlines: a binary heap with lazy invalidation.
//!
//! Each connection keeps, per [`Kind`], the deadline it armed last. An entry popped from the
//! heap whose instant differs from the connection's armed one (or whose connection is gone) is
//! stale and ignored, so re-arming never searches the heap. Deadlines that move later often
//! (idle lifetime) are not re-armed on each message: when they fire, the owner recomputes the
//! real deadline and re-arms if it is still in the future. Cost: O(log n) per arm and fire,
//! nothing per tick.
//!
//! Times are [`Stamp`]s, whole milliseconds in 8 bytes (an `Instant` takes 16): every idle
//! connection keeps several, and a heap entry for each armed deadline (issue 16).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::num::NonZeroU64;
use std::ops::Add;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The instant [`Stamp`]s count from: the first time one is made in this process.
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// A point in time in whole milliseconds since [`EPOCH`], rounded up: a deadline made from
/// an `Instant` never falls before it. Stored plus one, so that `Option<Stamp>` is 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Stamp(NonZeroU64);

impl Stamp {
    fn from_ms(ms: u64) -> Stamp {
        Stamp(NonZeroU64::MIN.saturating_add(ms))
    }

    fn ms(self) -> u64 {
        self.0.get() - 1
    }

    /// `now` rounded down: a deadline is due once it is at or before this.
    pub fn floor(now: Instant) -> Stamp {
        let d = now.saturating_duration_since(epoch());
        Stamp::from_ms(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// The `Instant` this stamp stands for.
    pub fn instant(self) -> Instant {
        epoch() + Duration::from_millis(self.ms())
    }
}

impl From<Instant> for Stamp {
    /// Rounded up to the next whole millisecond.
    fn from(i: Instant) -> Stamp {
        let d = i.saturating_duration_since(epoch());
        let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
        Stamp::from_ms(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

impl Add<Duration> for Stamp {
    type Output = Stamp;

    /// Later by `d` rounded up to whole milliseconds (saturating).
    fn add(self, d: Duration) -> Stamp {
        let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
        Stamp::from_ms(
            self.ms()
                .saturating_add(u64::try_from(ms).unwrap_or(u64::MAX)),
        )
    }
}

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

/// One heap entry (24 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    /// When.
    pub at: Stamp,
    /// Connection id (0 for listener timers).
    pub id: u64,
    /// Slab slot or listener index.
    pub slot: u32,
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
        self.heap.peek().map(|Reverse(e)| e.at.instant())
    }

    /// Remove and return the earliest entry due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        let now = Stamp::floor(now);
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
pub(crate) struct Armed([Option<Stamp>; CONN_KINDS]);

impl Armed {
    /// Arm `kind` at `at` unless an equal or earlier deadline is armed; returns whether a new
    /// heap entry is needed.
    pub fn arm(&mut self, kind: Kind, at: Stamp) -> bool {
        match self.0.get_mut(kind as usize) {
            Some(slot) if slot.is_none_or(|cur| at < cur) => {
                *slot = Some(at);
                true
            }
            _ => false,
        }
    }

    /// The deadline armed for `kind`, if any.
    pub fn get(&self, kind: Kind) -> Option<Stamp> {
        self.0.get(kind as usize).copied().flatten()
    }

    /// Forget `kind` (a pending heap entry becomes stale).
    pub fn clear(&mut self, kind: Kind) {
        if let Some(s) = self.0.get_mut(kind as usize) {
            *s = None;
        }
    }

    /// If the popped entry is the live one, disarm it and return true.
    pub fn take_if(&mut self, kind: Kind, at: Stamp) -> bool {
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
                at: Stamp::from(t0 + Duration::from_millis(*ms)),
                id: i as u64 + 1,
                slot: i as u32,
                kind: Kind::Idle,
            });
        }
        let first = t.next().unwrap();
        assert!(
            first >= t0 + Duration::from_millis(10),
            "never before the instant"
        );
        assert!(first < t0 + Duration::from_millis(11));
        assert!(t.pop_due(t0).is_none());
        let due: Vec<u64> = std::iter::from_fn(|| t.pop_due(t0 + Duration::from_millis(25)))
            .map(|e| e.id)
            .collect();
        assert_eq!(due, vec![2, 3]);
        assert_eq!(t.len(), 1);
    }

    /// A deadline made from an instant is due only once that instant has passed, so a
    /// deadline re-armed at the same instant cannot fire again in the same turn.
    #[test]
    fn stamps_round_deadlines_up_and_now_down() {
        let t0 = Instant::now();
        let d = t0 + Duration::from_micros(10_500);
        let at = Stamp::from(d);
        assert!(at.instant() >= d);
        assert!(at.instant() < d + Duration::from_millis(1));
        assert!(Stamp::floor(d) < at || at.instant() == d);
        assert!(Stamp::floor(at.instant()) >= at);
        assert_eq!(
            Stamp::from(t0) + Duration::from_micros(1),
            Stamp::from(t0) + Duration::from_millis(1)
        );
        assert_eq!(std::mem::size_of::<Option<Stamp>>(), 8);
        assert_eq!(std::mem::size_of::<Entry>(), 24);
    }

    #[test]
    fn armed_keeps_earliest_and_detects_stale() {
        let t0 = Stamp::from(Instant::now());
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
