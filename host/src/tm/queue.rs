//! [`TimerQueue`]: the timer [`Wheel`] keyed by what a timer is for (a transaction's key and
//! which of its timers), for a driver that does not keep the [`TimerId`]s itself: arming a
//! timer again replaces its deadline. (sipcore's driver keeps the ids in its cells and uses
//! the wheel directly; the tests and the `tm` fuzz target drive the machines through this.)

use super::wheel::{TimerId, Wheel};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

/// Deadlines by key and timer (pure: time is passed in): `arm`, `disarm`, `disarm_all`,
/// [`next_deadline`] to know how long to sleep, [`expire`] to collect what is due.
///
/// [`next_deadline`]: TimerQueue::next_deadline
/// [`expire`]: TimerQueue::expire
#[derive(Debug)]
pub struct TimerQueue<K, T> {
    wheel: Wheel<(K, T)>,
    armed: HashMap<(K, T), TimerId>,
}

impl<K, T> Default for TimerQueue<K, T> {
    fn default() -> Self {
        TimerQueue {
            wheel: Wheel::default(),
            armed: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash, T: Copy + Eq + Hash> TimerQueue<K, T> {
    /// An empty queue whose tick 0 is its first deadline (see [`Wheel::new`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty queue whose tick 0 is `origin` (see [`Wheel::with_origin`]).
    pub fn with_origin(origin: Instant) -> Self {
        TimerQueue {
            wheel: Wheel::with_origin(origin),
            armed: HashMap::new(),
        }
    }

    /// Arms (or re-arms) `timer` of `key` for `at`.
    pub fn arm(&mut self, key: K, timer: T, at: Instant) {
        let id = self.wheel.arm((key.clone(), timer), at);
        if let Some(old) = self.armed.insert((key, timer), id) {
            self.wheel.disarm(old);
        }
    }

    /// Disarms `timer` of `key`; whether it was armed.
    pub fn disarm(&mut self, key: &K, timer: T) -> bool {
        self.armed
            .remove(&(key.clone(), timer))
            .is_some_and(|id| self.wheel.disarm(id))
    }

    /// Disarms every timer of `key` (the transaction terminated).
    pub fn disarm_all(&mut self, key: &K) {
        let wheel = &mut self.wheel;
        self.armed.retain(|(k, _), id| {
            if k == key {
                wheel.disarm(*id);
            }
            k != key
        });
    }

    /// How many timers are armed.
    pub fn len(&self) -> usize {
        self.wheel.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.wheel.is_empty()
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.wheel.next_deadline()
    }

    /// Removes and returns every timer due at `now`, earliest first.
    pub fn expire(&mut self, now: Instant) -> Vec<(K, T)> {
        let due = self.wheel.expire(now);
        for kt in &due {
            self.armed.remove(kt);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tm::tests_util::ms;
    use crate::tm::Timer;
    use std::time::Duration;

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
        let busiest = q.wheel.slots.iter().map(Vec::len).max().unwrap();
        assert_eq!(busiest, 1);
        assert_eq!(q.next_deadline(), Some(t0 + ms(501)));
        assert_eq!(q.expire(t0 + ms(502)), vec![(1, Timer::A), (2, Timer::A)]);
        // The same with new(): tick 0 is the 30 s deadline and all 400 share its slot.
        let mut q: TimerQueue<u32, Timer> = TimerQueue::new();
        q.arm(0, Timer::B, t0 + ms(30_000));
        for i in 1..=400u32 {
            q.arm(i, Timer::A, t0 + ms(500 + u64::from(i)));
        }
        assert_eq!(q.wheel.slots.iter().map(Vec::len).max().unwrap(), 401);
        assert_eq!(q.expire(t0 + ms(502)), vec![(1, Timer::A), (2, Timer::A)]);
    }

    #[test]
    fn queue_stays_small_under_rearming() {
        let t0 = Instant::now();
        let mut q: TimerQueue<u32, Timer> = TimerQueue::new();
        for i in 0..30_000u64 {
            q.arm(7, Timer::G, t0 + ms(i));
        }
        assert!(q.wheel.entries <= 2 * q.armed.len() + 8193);
        assert_eq!(q.expire(t0 + Duration::from_secs(60)), vec![(7, Timer::G)]);
        assert_eq!(q.wheel.entries, 0);
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
                    // Now and then the trim after a burst: what is armed stays armed.
                    if rnd(20) == 0 {
                        q.wheel.shrink();
                    }
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
