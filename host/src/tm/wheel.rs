//! [`TimerQueue`]: the deadlines a transaction driver polls, as a hashed timing wheel (pure:
//! time is passed in). Arming, disarming and expiring cost the same however many timers are
//! armed: a transaction layer holding 200,000 transactions (two per call for RFC 6026's 32 s
//! after each call at 3,000 calls/s) spent a tenth of its CPU sifting a binary heap of their
//! deadlines.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Slots of the wheel, one per [`TICK`]: a revolution is 8.192 s. A deadline further away
/// waits in its slot through whole revolutions (it is looked at once per revolution).
const SLOTS: usize = 8192;

/// The wheel's resolution. A timer fires at its own deadline, never earlier: the slot only
/// says when to look.
const TICK: Duration = Duration::from_millis(1);

#[derive(Debug)]
struct Entry<K, T> {
    at: Instant,
    /// Which arming this is: a re-armed or disarmed timer leaves a stale entry behind.
    seq: u64,
    /// The tick of its slot (its deadline's, or a later one for a deadline already past).
    tick: u64,
    key: K,
    timer: T,
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
    /// Tick 0: the origin given, else the first deadline armed. Deadlines before it share the
    /// slot of the cursor, so it must not lie ahead of the time the queue runs at (see
    /// [`TimerQueue::with_origin`]).
    base: Option<Instant>,
    slots: Vec<Vec<Entry<K, T>>>,
    /// Every tick before it was expired; no live entry has an earlier tick.
    cursor: u64,
    /// What is armed: foldhash, as the keys are the driver's own ids, not a peer's bytes.
    armed: HashMap<(K, T), (Instant, u64), foldhash::fast::RandomState>,
    /// Entries in the slots, stale ones included.
    entries: usize,
    seq: u64,
}

impl<K, T> Default for TimerQueue<K, T> {
    fn default() -> Self {
        TimerQueue {
            base: None,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            cursor: 0,
            armed: HashMap::default(),
            entries: 0,
            seq: 0,
        }
    }
}

impl<K: Clone + Eq + Hash, T: Copy + Eq + Hash> TimerQueue<K, T> {
    /// An empty queue whose tick 0 is its first deadline: for deadlines armed in time order
    /// (tests). A driver uses [`TimerQueue::with_origin`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty queue whose tick 0 is `origin`, the time it is made at. (With tick 0 at a first
    /// deadline 30 s ahead, every deadline armed before it would share one slot that each
    /// expiry looks through until then.)
    pub fn with_origin(origin: Instant) -> Self {
        TimerQueue {
            base: Some(origin),
            ..Self::default()
        }
    }

    fn tick_of(&mut self, at: Instant) -> u64 {
        // Only `new()`'s queue takes its first deadline as tick 0.
        let base = *self.base.get_or_insert(at);
        (at.saturating_duration_since(base).as_nanos() / TICK.as_nanos()) as u64
    }

    /// Arms (or re-arms) `timer` of `key` for `at`.
    pub fn arm(&mut self, key: K, timer: T, at: Instant) {
        self.seq += 1;
        let tick = self.tick_of(at).max(self.cursor);
        self.armed.insert((key.clone(), timer), (at, self.seq));
        self.slots[(tick % SLOTS as u64) as usize].push(Entry {
            at,
            seq: self.seq,
            tick,
            key,
            timer,
        });
        self.entries += 1;
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

    /// The earliest armed deadline: from the slots ahead of the cursor, or, when none is
    /// due within a revolution of the wheel, from every entry (a queue with nothing due for
    /// 8 s holds few).
    pub fn next_deadline(&mut self) -> Option<Instant> {
        if self.armed.is_empty() {
            return None;
        }
        for i in 0..SLOTS as u64 {
            let tick = self.cursor + i;
            let armed = &self.armed;
            let earliest = self.slots[(tick % SLOTS as u64) as usize]
                .iter()
                .filter(|e| e.tick == tick && live(armed, e))
                .map(|e| e.at)
                .min();
            if earliest.is_some() {
                return earliest;
            }
        }
        let armed = &self.armed;
        self.slots
            .iter()
            .flatten()
            .filter(|e| live(armed, e))
            .map(|e| e.at)
            .min()
    }

    /// Removes and returns every timer due at `now`, earliest first.
    pub fn expire(&mut self, now: Instant) -> Vec<(K, T)> {
        let mut due = Vec::new();
        if self.base.is_none() {
            return Vec::new();
        }
        let now_tick = self.tick_of(now).max(self.cursor);
        // Past a whole revolution every slot is looked at once.
        let first = self.cursor.max(now_tick.saturating_sub(SLOTS as u64 - 1));
        for tick in first..=now_tick {
            let slot = &mut self.slots[(tick % SLOTS as u64) as usize];
            let armed = &mut self.armed;
            let before = slot.len();
            slot.retain(|e| {
                if e.at > now {
                    return true;
                }
                if live(armed, e) {
                    armed.remove(&(e.key.clone(), e.timer));
                    due.push((e.at, e.seq, e.key.clone(), e.timer));
                }
                false
            });
            self.entries -= before - slot.len();
        }
        self.cursor = now_tick;
        due.sort_unstable_by_key(|&(at, seq, ..)| (at, seq));
        due.into_iter().map(|(_, _, k, t)| (k, t)).collect()
    }

    /// Gives back the memory of a queue that held many more timers than it holds now (after
    /// a burst): each slot's capacity beyond four times its entries.
    pub fn shrink(&mut self) {
        self.purge();
        for s in &mut self.slots {
            if s.capacity() > 4 * s.len() + 8 {
                s.shrink_to_fit();
            }
        }
        if self.armed.capacity() > 4 * self.armed.len() + 64 {
            self.armed.shrink_to_fit();
        }
    }

    /// Drops the stale entries when they outnumber the live ones.
    fn compact(&mut self) {
        if self.entries > 2 * self.armed.len() + 64 {
            self.purge();
        }
    }

    fn purge(&mut self) {
        let armed = &self.armed;
        let mut n = 0;
        for s in &mut self.slots {
            s.retain(|e| live(armed, e));
            n += s.len();
        }
        self.entries = n;
    }
}

/// Whether `e` is the arming in force of its timer.
fn live<K: Clone + Eq + Hash, T: Copy + Eq + Hash>(
    armed: &HashMap<(K, T), (Instant, u64), foldhash::fast::RandomState>,
    e: &Entry<K, T>,
) -> bool {
    armed
        .get(&(e.key.clone(), e.timer))
        .is_some_and(|&(at, seq)| at == e.at && seq == e.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tm::Timer;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn queue_orders_rearms_and_disarms() {
        let t0 = Instant::now();
        let mut q: TimerQueue<u32, Timer> = TimerQueue::new();
        assert_eq!(q.next_deadline(), None);
        assert_eq!(q.expire(t0), vec![]);
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

    /// A driver's queue: tick 0 is when it was made, so deadlines armed out of order (a 30 s
    /// one first, then 500 ms ones) each land in their own slot, and expiring looks only at
    /// the slots due.
    #[test]
    fn with_origin_spreads_deadlines_armed_out_of_order() {
        let t0 = Instant::now();
        let mut q: TimerQueue<u32, Timer> = TimerQueue::with_origin(t0);
        q.arm(0, Timer::B, t0 + ms(30_000));
        for i in 1..=400u32 {
            q.arm(i, Timer::A, t0 + ms(500 + u64::from(i)));
        }
        let busiest = q.slots.iter().map(Vec::len).max().unwrap();
        assert_eq!(busiest, 1);
        assert_eq!(q.next_deadline(), Some(t0 + ms(501)));
        assert_eq!(q.expire(t0 + ms(502)), vec![(1, Timer::A), (2, Timer::A)]);
        // The same with new(): tick 0 is the 30 s deadline and all 400 share its slot.
        let mut q: TimerQueue<u32, Timer> = TimerQueue::new();
        q.arm(0, Timer::B, t0 + ms(30_000));
        for i in 1..=400u32 {
            q.arm(i, Timer::A, t0 + ms(500 + u64::from(i)));
        }
        assert_eq!(q.slots.iter().map(Vec::len).max().unwrap(), 401);
        assert_eq!(q.expire(t0 + ms(502)), vec![(1, Timer::A), (2, Timer::A)]);
    }

    #[test]
    fn queue_stays_small_under_rearming() {
        let t0 = Instant::now();
        let mut q: TimerQueue<u32, Timer> = TimerQueue::new();
        for i in 0..10_000u64 {
            q.arm(7, Timer::G, t0 + ms(i));
        }
        assert!(q.entries <= 2 * q.armed.len() + 65);
        assert_eq!(q.expire(t0 + Duration::from_secs(60)), vec![(7, Timer::G)]);
        assert_eq!(q.entries, 0);
    }

    #[test]
    fn never_early_within_a_tick_and_earliest_first() {
        let t0 = Instant::now();
        let us = Duration::from_micros;
        let mut q: TimerQueue<u32, Timer> = TimerQueue::new();
        q.arm(1, Timer::A, t0 + us(700));
        q.arm(2, Timer::A, t0 + us(300));
        q.arm(3, Timer::A, t0 + ms(2) + us(100));
        // The same tick (1 ms) holds 1 and 2: only what is due fires.
        assert_eq!(q.expire(t0 + us(500)), vec![(2, Timer::A)]);
        assert_eq!(q.next_deadline(), Some(t0 + us(700)));
        assert_eq!(q.expire(t0 + us(699)), vec![]);
        // Late: both fire, earliest first.
        assert_eq!(q.expire(t0 + ms(5)), vec![(1, Timer::A), (3, Timer::A)]);
        assert!(q.is_empty());
    }

    #[test]
    fn deadlines_beyond_a_revolution_and_in_the_past() {
        let t0 = Instant::now();
        let mut q: TimerQueue<u32, Timer> = TimerQueue::new();
        // Tick 0 is t0.
        q.arm(9, Timer::A, t0);
        q.disarm(&9, Timer::A);
        q.arm(1, Timer::L, t0 + ms(32_000));
        q.arm(2, Timer::M, t0 + ms(32_000 + 8_192));
        // Nothing within a revolution: found among all the entries.
        assert_eq!(q.next_deadline(), Some(t0 + ms(32_000)));
        // The slot of tick 32,000 is the slot of ticks 32,000 - 8,192 * k: nothing fires early.
        for k in 1..=3u64 {
            assert_eq!(q.expire(t0 + ms(32_000 - 8_192 * k)), vec![]);
        }
        // Within a revolution now.
        assert_eq!(q.next_deadline(), Some(t0 + ms(32_000)));
        assert_eq!(q.expire(t0 + ms(31_999)), vec![]);
        assert_eq!(q.expire(t0 + ms(32_000)), vec![(1, Timer::L)]);
        // Woken late by more than a revolution: everything due fires, nothing else.
        q.arm(3, Timer::A, t0 + ms(90_000));
        assert_eq!(q.expire(t0 + ms(60_000)), vec![(2, Timer::M)]);
        // A deadline already past is due at the next look.
        q.arm(4, Timer::E, t0 + ms(1));
        assert_eq!(q.next_deadline(), Some(t0 + ms(1)));
        assert_eq!(q.expire(t0 + ms(60_000)), vec![(4, Timer::E)]);
        assert_eq!(q.expire(t0 + ms(90_000)), vec![(3, Timer::A)]);
        assert!(q.is_empty());
    }

    /// Against a plain model (every armed deadline in a map) over random arms, disarms and
    /// expiries, with time moving by random steps.
    #[test]
    fn matches_a_model() {
        let t0 = Instant::now();
        let mut q: TimerQueue<u32, Timer> = TimerQueue::new();
        let mut model: HashMap<(u32, Timer), Instant> = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut now = t0;
        let timers = [Timer::A, Timer::B, Timer::L];
        for _ in 0..50_000 {
            let key = rnd(300) as u32;
            let timer = timers[rnd(3) as usize];
            match rnd(10) {
                0..=4 => {
                    // Mostly near, sometimes beyond a revolution, sometimes past.
                    let at = match rnd(10) {
                        0 => now + ms(8_000 + rnd(40_000)),
                        1 => now.checked_sub(ms(rnd(50))).unwrap_or(now),
                        _ => now + Duration::from_micros(rnd(3_000_000)),
                    };
                    q.arm(key, timer, at);
                    model.insert((key, timer), at);
                }
                5 | 6 => assert_eq!(q.disarm(&key, timer), model.remove(&(key, timer)).is_some()),
                _ => {
                    let far = rnd(50) == 0;
                    now += Duration::from_micros(rnd(if far { 20_000_000 } else { 5_000 }));
                    let mut want: Vec<_> = model
                        .iter()
                        .filter(|(_, &at)| at <= now)
                        .map(|(&k, &at)| (at, k))
                        .collect();
                    want.sort();
                    let got = q.expire(now);
                    let want_keys: Vec<_> = want.iter().map(|&(_, k)| k).collect();
                    // Equal deadlines may come in either order.
                    let mut g = got.clone();
                    let mut w = want_keys.clone();
                    g.sort();
                    w.sort();
                    assert_eq!(g, w);
                    for (_, k) in &want {
                        model.remove(k);
                    }
                    let next = q.next_deadline();
                    let earliest = model.values().min().copied();
                    match (next, earliest) {
                        (None, None) => {}
                        (Some(n), Some(e)) => assert_eq!(n, e),
                        other => panic!("{other:?}"),
                    }
                }
            }
            assert_eq!(q.len(), model.len());
        }
    }
}
