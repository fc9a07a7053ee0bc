//! Timer names and values (RFC 3261 §17 and Table 4 of Appendix A, RFC 6026 §8.11), the
//! per-transaction record of armed timers, and [`TimerQueue`], the deadlines a driver polls.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

use thiserror::Error;

/// The transaction timers of RFC 3261 §17 (Table 4) and RFC 6026 §8.11 (L, M).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE request retransmit interval, unreliable transports only (§17.1.1.2).
    A,
    /// INVITE client transaction timeout (§17.1.1.2).
    B,
    /// Wait time for response retransmissions in Completed (§17.1.1.2).
    D,
    /// Non-INVITE request retransmit interval, unreliable only (§17.1.2.2).
    E,
    /// Non-INVITE client transaction timeout (§17.1.2.2).
    F,
    /// INVITE response retransmit interval (§17.2.1).
    G,
    /// Wait time for ACK receipt (§17.2.1).
    H,
    /// Wait time for ACK retransmissions in Confirmed (§17.2.1).
    I,
    /// Wait time for non-INVITE request retransmissions (§17.2.2).
    J,
    /// Wait time for response retransmissions, non-INVITE client (§17.1.2.2).
    K,
    /// Wait time in the INVITE server Accepted state (RFC 6026 §7.1).
    L,
    /// Wait time in the INVITE client Accepted state (RFC 6026 §7.2).
    M,
}

impl Timer {
    /// Every timer, in the order of [`Timer::index`].
    pub const ALL: [Timer; 12] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
    ];

    /// Position in [`Timer::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a [`TimerValues`] refuses (RFC 3261 §17.1.1.1: T1 is an estimate of the round-trip
/// time; T2 caps the doubling of non-INVITE retransmit intervals, so it is at least T1).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimerError {
    /// T1 is zero.
    #[error("T1 must be greater than zero")]
    ZeroT1,
    /// T2 is below T1.
    #[error("T2 ({t2:?}) must not be below T1 ({t1:?})")]
    T2BelowT1 {
        /// The T1 given.
        t1: Duration,
        /// The T2 given.
        t2: Duration,
    },
    /// T1 is so large that 64*T1 does not fit.
    #[error("T1 ({0:?}) is too large")]
    T1TooLarge(Duration),
}

/// T1, T2 and T4 (RFC 3261 §17.1.1.1, §17.1.2.2, Table 4) and the timers derived from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerValues {
    t1: Duration,
    t2: Duration,
    t4: Duration,
    /// `wt_timer`: the longest a finished transaction stays (caps D, I, J, K, L, M).
    wait: Option<Duration>,
}

impl Default for TimerValues {
    /// The RFC 3261 values: T1 = 500 ms, T2 = 4 s, T4 = 5 s.
    fn default() -> Self {
        TimerValues {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            wait: None,
        }
    }
}

impl TimerValues {
    /// Settable T1, T2, T4; T1 > 0, T2 >= T1 and 64*T1 must fit (§17.1.1.1: T1 may be
    /// changed, e.g. on a network known to have larger round-trip times).
    pub fn new(t1: Duration, t2: Duration, t4: Duration) -> Result<Self, TimerError> {
        if t1.is_zero() {
            return Err(TimerError::ZeroT1);
        }
        if t2 < t1 {
            return Err(TimerError::T2BelowT1 { t1, t2 });
        }
        // 64*T1 plus a retransmit interval must still be addable to an Instant in practice:
        // a day is far beyond any sensible T1.
        if t1 > Duration::from_secs(86_400 / 64) || t2 > Duration::from_secs(86_400) {
            return Err(TimerError::T1TooLarge(t1));
        }
        Ok(TimerValues {
            t1,
            t2,
            t4,
            wait: None,
        })
    }

    /// The same values with the time a finished transaction stays to absorb retransmissions
    /// capped at `wait` (OpenSIPS tm's `wt_timer`): timers D, I, J, K (RFC 3261 §17.1.1.2,
    /// §17.1.2.2, §17.2.1, §17.2.2) and L, M (RFC 6026 §7.1, §7.2) last at most `wait`. A
    /// retransmission later than that is taken as a new request (the RFC's values avoid it;
    /// OpenSIPS and Kamailio use 5 s).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    fn capped(&self, d: Duration) -> Duration {
        self.wait.map_or(d, |w| d.min(w))
    }

    /// Timers L and M: 64*T1 (RFC 6026 §7.1, §7.2), at most `wt_timer`.
    pub fn accepted(&self) -> Duration {
        self.capped(self.t1x64())
    }

    /// T1: the round-trip time estimate, first retransmit interval (A, E, G).
    pub fn t1(&self) -> Duration {
        self.t1
    }

    /// T2: the largest retransmit interval for non-INVITE requests and INVITE responses.
    pub fn t2(&self) -> Duration {
        self.t2
    }

    /// T4: how long a message may stay in the network.
    pub fn t4(&self) -> Duration {
        self.t4
    }

    /// 64*T1: timers B, F, H, J (unreliable), L, M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: at least 32 s over an unreliable transport, 0 over a reliable one (§17.1.1.2).
    pub fn d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.capped(Duration::from_secs(32).max(self.t1x64()))
        }
    }

    /// Timers I and K: T4 over an unreliable transport, 0 over a reliable one (§17.1.2.2,
    /// §17.2.1).
    pub fn t4_or_zero(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.capped(self.t4)
        }
    }

    /// Timer J: 64*T1 over an unreliable transport, 0 over a reliable one (§17.2.2).
    pub fn j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.capped(self.t1x64())
        }
    }
}

/// The timers one transaction has armed and not yet seen fire or disarmed, with their
/// deadlines; a fire the machine did not ask for (stale, early, or disarmed) is ignored.
#[derive(Debug, Clone, Default)]
pub(crate) struct Armed([Option<Instant>; 12]);

impl Armed {
    /// Records `timer` as armed for `at`.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer.index()] = Some(at);
    }

    /// Forgets `timer`; whether it was armed.
    pub(crate) fn clear(&mut self, timer: Timer) -> bool {
        self.0[timer.index()].take().is_some()
    }

    /// Whether `timer` is armed and its deadline is not after `now`.
    pub(crate) fn due(&self, timer: Timer, now: Instant) -> bool {
        self.0[timer.index()].is_some_and(|at| at <= now)
    }

    /// The armed timers.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        Timer::ALL
            .iter()
            .zip(self.0.iter())
            .filter_map(|(&t, at)| at.map(|at| (t, at)))
    }

    /// Forgets every timer; the ones that were armed.
    pub(crate) fn take_all(&mut self) -> Vec<Timer> {
        let armed = self.iter().map(|(t, _)| t).collect();
        self.0 = [None; 12];
        armed
    }
}

/// Deadlines a driver polls (pure: time is passed in): `arm`, `disarm`, [`next_deadline`]
/// to know how long to sleep, [`expire`] to collect what is due. Re-arming replaces the
/// deadline; disarmed and replaced entries are dropped lazily and compacted away, so memory
/// stays proportional to what is armed.
///
/// [`next_deadline`]: TimerQueue::next_deadline
/// [`expire`]: TimerQueue::expire
#[derive(Debug)]
pub struct TimerQueue<K, T> {
    heap: BinaryHeap<Reverse<(Instant, u64, K, T)>>,
    /// foldhash: the keys are the driver's own ids, not a peer's bytes, and SipHash was a
    /// visible share of every arm and disarm.
    armed: HashMap<(K, T), (Instant, u64), foldhash::fast::RandomState>,
    seq: u64,
}

impl<K, T> Default for TimerQueue<K, T> {
    fn default() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            armed: HashMap::default(),
            seq: 0,
        }
    }
}

impl<K: Clone + Eq + Hash + Ord, T: Copy + Eq + Hash + Ord> TimerQueue<K, T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms (or re-arms) `timer` of `key` for `at`.
    pub fn arm(&mut self, key: K, timer: T, at: Instant) {
        self.seq += 1;
        self.armed.insert((key.clone(), timer), (at, self.seq));
        self.heap.push(Reverse((at, self.seq, key, timer)));
        self.compact();
    }

    /// Disarms `timer` of `key`; whether it was armed.
    pub fn disarm(&mut self, key: &K, timer: T) -> bool {
        let hit = self.armed.remove(&(key.clone(), timer)).is_some();
        self.compact();
        hit
    }

    /// Disarms every timer of `key` (the transaction terminated).
    pub fn disarm_all(&mut self, key: &K) {
        self.armed.retain(|(k, _), _| k != key);
        self.compact();
    }

    /// How many timers are armed.
    pub fn len(&self) -> usize {
        self.armed.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, ..))| *at)
    }

    /// Removes and returns every timer due at `now`, earliest first.
    pub fn expire(&mut self, now: Instant) -> Vec<(K, T)> {
        let mut due = Vec::new();
        loop {
            self.drop_stale();
            match self.heap.peek() {
                Some(Reverse((at, ..))) if *at <= now => {}
                _ => break,
            }
            if let Some(Reverse((_, _, key, timer))) = self.heap.pop() {
                self.armed.remove(&(key.clone(), timer));
                due.push((key, timer));
            }
        }
        due
    }

    /// Pops heap entries that were disarmed or re-armed since.
    fn drop_stale(&mut self) {
        while let Some(Reverse((at, seq, key, timer))) = self.heap.peek() {
            let live = self
                .armed
                .get(&(key.clone(), *timer))
                .is_some_and(|&(a, s)| a == *at && s == *seq);
            if live {
                break;
            }
            self.heap.pop();
        }
    }

    /// Gives back the memory of a queue that held many more timers than it holds now (after
    /// a burst): capacity beyond four times what is armed.
    pub fn shrink(&mut self) {
        self.compact();
        if self.armed.capacity() > 4 * self.armed.len() + 64 {
            self.armed.shrink_to_fit();
        }
        if self.heap.capacity() > 4 * self.heap.len() + 64 {
            self.heap.shrink_to_fit();
        }
    }

    /// Rebuilds the heap when stale entries outnumber live ones.
    fn compact(&mut self) {
        if self.heap.len() > 2 * self.armed.len() + 64 {
            let armed = &self.armed;
            self.heap.retain(|Reverse((at, seq, key, timer))| {
                armed
                    .get(&(key.clone(), *timer))
                    .is_some_and(|&(a, s)| a == *at && s == *seq)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_values() {
        let v = TimerValues::default();
        assert_eq!(v.t1(), Duration::from_millis(500));
        assert_eq!(v.t2(), Duration::from_secs(4));
        assert_eq!(v.t4(), Duration::from_secs(5));
        assert_eq!(v.t1x64(), Duration::from_secs(32));
        assert!(v.d(false) >= Duration::from_secs(32));
        assert_eq!(v.d(true), Duration::ZERO);
        assert_eq!(v.t4_or_zero(false), Duration::from_secs(5));
        assert_eq!(v.t4_or_zero(true), Duration::ZERO);
        assert_eq!(v.j(false), Duration::from_secs(32));
        assert_eq!(v.j(true), Duration::ZERO);
        let slow = TimerValues::new(
            Duration::from_secs(1),
            Duration::from_secs(8),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(slow.t1x64(), Duration::from_secs(64));
        assert_eq!(slow.d(false), Duration::from_secs(64));
        // wt_timer caps the waits after completion only.
        let w = TimerValues::default().with_wait(Duration::from_secs(5));
        assert_eq!(w.j(false), Duration::from_secs(5));
        assert_eq!(w.d(false), Duration::from_secs(5));
        assert_eq!(w.accepted(), Duration::from_secs(5));
        assert_eq!(w.t4_or_zero(false), Duration::from_secs(5));
        assert_eq!(w.j(true), Duration::ZERO);
        assert_eq!(w.t1x64(), Duration::from_secs(32));
        let short = TimerValues::default().with_wait(Duration::from_secs(2));
        assert_eq!(short.t4_or_zero(false), Duration::from_secs(2));
    }

    #[test]
    fn bad_values_are_refused() {
        let s = Duration::from_secs;
        assert_eq!(
            TimerValues::new(Duration::ZERO, s(4), s(5)),
            Err(TimerError::ZeroT1)
        );
        assert!(matches!(
            TimerValues::new(s(2), s(1), s(5)),
            Err(TimerError::T2BelowT1 { .. })
        ));
        assert!(TimerValues::new(s(100_000), s(100_000), s(5)).is_err());
    }

    #[test]
    fn queue_orders_rearms_and_disarms() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut q: TimerQueue<u32, Timer> = TimerQueue::new();
        assert_eq!(q.next_deadline(), None);
        q.arm(1, Timer::A, t0 + ms(500));
        q.arm(1, Timer::B, t0 + ms(32_000));
        q.arm(2, Timer::E, t0 + ms(100));
        assert_eq!(q.next_deadline(), Some(t0 + ms(100)));
        // Re-arming replaces; disarming removes.
        q.arm(2, Timer::E, t0 + ms(1_000));
        assert!(q.disarm(&1, Timer::A));
        assert!(!q.disarm(&1, Timer::A));
        assert_eq!(q.next_deadline(), Some(t0 + ms(1_000)));
        assert_eq!(q.expire(t0 + ms(999)), vec![]);
        assert_eq!(q.expire(t0 + ms(1_000)), vec![(2, Timer::E)]);
        assert_eq!(q.len(), 1);
        q.disarm_all(&1);
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn queue_stays_small_under_rearming() {
        let t0 = Instant::now();
        let mut q: TimerQueue<u32, Timer> = TimerQueue::new();
        for i in 0..10_000u64 {
            q.arm(7, Timer::G, t0 + Duration::from_millis(i));
        }
        assert!(q.heap.len() <= 2 * q.armed.len() + 65);
        assert_eq!(q.expire(t0 + Duration::from_secs(60)), vec![(7, Timer::G)]);
    }
}
