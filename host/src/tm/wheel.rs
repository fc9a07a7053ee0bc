//! [`Wheel`]: the deadlines a transaction driver polls, as a hashed timing wheel (pure: time
//! is passed in). Arming, disarming and expiring cost the same however many timers are armed:
//! a transaction layer holding 200,000 transactions (two per call for RFC 6026's 32 s after
//! each call at 3,000 calls/s) spent a tenth of its CPU sifting a binary heap of their
//! deadlines. A timer is named by the [`TimerId`] arming returns, so that neither arming nor
//! disarming hashes anything: the driver keeps the id where it keeps the transaction
//! ([`super::TimerQueue`] is the same queue keyed by value, for drivers that do not).

use std::time::Instant;

/// Slots of the wheel, one per tick of a millisecond (the wheel's resolution: a timer fires at
/// its own deadline, never earlier; the slot only says when to look): a revolution is 8.192 s.
/// A deadline further away waits in its slot through whole revolutions (it is looked at once
/// per revolution).
const SLOTS: usize = 8192;

/// One arming of a timer, as [`Wheel::arm`] returns it (8 bytes, kept in each transaction).
/// Disarming it after it fired, or after it was disarmed, does nothing: the node it names
/// has moved to another generation. (A node would have to be armed and released 2^32 times
/// while a transaction still holds an id of it for that id to name a new arming: a billion
/// armings a second for four seconds.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    /// Its node in the wheel's slab.
    idx: u32,
    /// The node's generation when it was armed.
    gen: u32,
}

#[derive(Debug)]
struct Node<V> {
    at: Instant,
    /// The tick of its slot (its deadline's, or a later one for a deadline already past).
    tick: u64,
    /// The wheel's arming count when it was armed: equal deadlines fire in arming order.
    seq: u64,
    /// Moves on each time the node is released (see [`TimerId`]).
    gen: u32,
    /// None: free (disarmed or fired), its index in the free list.
    value: Option<V>,
}

/// Deadlines a driver polls (pure: time is passed in): [`arm`] returns the timer's id,
/// [`disarm`] takes it, [`next_deadline`] tells how long to sleep, [`expire`] collects what
/// is due. The armed timers live in a slab whose free nodes are reused; a slot holds the ids
/// of the nodes due in its tick, and a disarmed timer's id is dropped from its slot lazily
/// (when the slot is looked at, or when the stale ids outnumber the live ones), so memory
/// stays proportional to what is armed.
///
/// [`arm`]: Wheel::arm
/// [`disarm`]: Wheel::disarm
/// [`next_deadline`]: Wheel::next_deadline
/// [`expire`]: Wheel::expire
#[derive(Debug)]
pub struct Wheel<V> {
    /// Tick 0: the origin given, else the first deadline armed. Deadlines before it share the
    /// slot of the cursor, so it must not lie ahead of the time the wheel runs at (see
    /// [`Wheel::with_origin`]).
    base: Option<Instant>,
    pub(super) slots: Vec<Vec<TimerId>>,
    nodes: Vec<Node<V>>,
    free: Vec<u32>,
    /// Every tick before it was expired; no live node has an earlier tick.
    cursor: u64,
    /// Armed timers.
    live: usize,
    /// Ids in the slots, stale ones included.
    pub(super) entries: usize,
    seq: u64,
    /// The generation a node added to the slab starts at: above every generation of a node
    /// that [`Wheel::shrink`] took off its end, whose old ids a transaction may still hold.
    fresh_gen: u32,
}

impl<V> Default for Wheel<V> {
    fn default() -> Self {
        Wheel {
            base: None,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            nodes: Vec::new(),
            free: Vec::new(),
            cursor: 0,
            live: 0,
            entries: 0,
            seq: 0,
            fresh_gen: 0,
        }
    }
}

impl<V> Wheel<V> {
    /// An empty wheel whose tick 0 is its first deadline: for deadlines armed in time order
    /// (tests). A driver uses [`Wheel::with_origin`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty wheel whose tick 0 is `origin`, the time it is made at. (With tick 0 at a first
    /// deadline 30 s ahead, every deadline armed before it would share one slot that each
    /// expiry looks through until then.)
    pub fn with_origin(origin: Instant) -> Self {
        Wheel {
            base: Some(origin),
            ..Self::default()
        }
    }

    fn tick_of(&mut self, at: Instant) -> u64 {
        // Only `new()`'s wheel takes its first deadline as tick 0.
        let base = *self.base.get_or_insert(at);
        // Whole milliseconds, in u64: `as_nanos()` would divide a u128.
        let d = at.saturating_duration_since(base);
        d.as_secs() * 1000 + u64::from(d.subsec_millis())
    }

    /// Arms a timer carrying `value` for `at`.
    pub fn arm(&mut self, value: V, at: Instant) -> TimerId {
        self.seq += 1;
        let seq = self.seq;
        let tick = self.tick_of(at).max(self.cursor);
        let (idx, gen) = match self.free.pop() {
            Some(i) => {
                let n = &mut self.nodes[i as usize];
                (n.at, n.tick, n.seq, n.value) = (at, tick, seq, Some(value));
                (i, n.gen)
            }
            None => {
                let gen = self.fresh_gen;
                self.nodes.push(Node {
                    at,
                    tick,
                    seq,
                    gen,
                    value: Some(value),
                });
                // More than 4 billion armed timers would exhaust memory first.
                ((self.nodes.len() - 1) as u32, gen)
            }
        };
        let id = TimerId { idx, gen };
        self.slots[(tick % SLOTS as u64) as usize].push(id);
        self.entries += 1;
        self.live += 1;
        self.compact();
        id
    }

    /// Disarms timer `id`; whether it was armed (not yet fired nor disarmed).
    pub fn disarm(&mut self, id: TimerId) -> bool {
        if self.get(id).is_none() {
            return false;
        }
        self.release(id.idx);
        self.compact();
        true
    }

    /// The value of timer `id`, while it is armed.
    pub fn get(&self, id: TimerId) -> Option<&V> {
        self.node(id).and_then(|n| n.value.as_ref())
    }

    fn release(&mut self, idx: u32) {
        let n = &mut self.nodes[idx as usize];
        n.value = None;
        n.gen = n.gen.wrapping_add(1);
        self.free.push(idx);
        self.live -= 1;
    }

    /// How many timers are armed.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The node of `id` while it is armed.
    fn node(&self, id: TimerId) -> Option<&Node<V>> {
        armed(&self.nodes, id)
    }

    /// The earliest armed deadline: from the slots ahead of the cursor, or, when none is
    /// due within a revolution of the wheel, from every entry (a wheel with nothing due for
    /// 8 s holds few).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.live == 0 {
            return None;
        }
        for i in 0..SLOTS as u64 {
            let tick = self.cursor + i;
            let earliest = self.slots[(tick % SLOTS as u64) as usize]
                .iter()
                .filter_map(|&id| self.node(id))
                .filter(|n| n.tick == tick)
                .map(|n| n.at)
                .min();
            if earliest.is_some() {
                return earliest;
            }
        }
        self.slots
            .iter()
            .flatten()
            .filter_map(|&id| self.node(id))
            .map(|n| n.at)
            .min()
    }

    /// Removes and returns every timer due at `now`, earliest first (in arming order for
    /// equal deadlines).
    pub fn expire(&mut self, now: Instant) -> Vec<V> {
        let mut due = Vec::new();
        if self.base.is_none() {
            return Vec::new();
        }
        let now_tick = self.tick_of(now).max(self.cursor);
        // Past a whole revolution every slot is looked at once.
        let first = self.cursor.max(now_tick.saturating_sub(SLOTS as u64 - 1));
        for tick in first..=now_tick {
            let nodes = &self.nodes;
            let slot = &mut self.slots[(tick % SLOTS as u64) as usize];
            let before = slot.len();
            slot.retain(|&id| {
                let Some(n) = armed(nodes, id) else {
                    return false;
                };
                if n.at > now {
                    return true;
                }
                due.push((n.at, n.seq, id));
                false
            });
            self.entries -= before - slot.len();
        }
        self.cursor = now_tick;
        due.sort_unstable_by_key(|&(at, seq, _)| (at, seq));
        due.into_iter()
            .filter_map(|(_, _, id)| {
                let v = self.nodes[id.idx as usize].value.take();
                self.release(id.idx);
                v
            })
            .collect()
    }

    /// Gives back the memory of a wheel that held many more timers than it holds now (after
    /// a burst): each slot's capacity beyond four times its entries, and the free nodes at
    /// the end of the slab.
    pub fn shrink(&mut self) {
        self.purge();
        for s in &mut self.slots {
            if s.capacity() > 4 * s.len() + 8 {
                s.shrink_to_fit();
            }
        }
        while let Some(n) = self.nodes.pop_if(|n| n.value.is_none()) {
            // A released node's generation was never given out: a node added at its index
            // later starts there, so the ids of its old armings name nothing.
            self.fresh_gen = self.fresh_gen.max(n.gen);
        }
        let n = self.nodes.len();
        self.free.retain(|&i| (i as usize) < n);
        if self.nodes.capacity() > 2 * n + 64 {
            self.nodes.shrink_to_fit();
            self.free.shrink_to_fit();
        }
    }

    /// Drops the stale ids when they outnumber twice the live ones and the slots: a purge
    /// looks at every slot, so it waits for at least as many stale ids as there are slots
    /// (64 KB of ids). With 100 timers live, as in a relay with 50 transactions in flight, a
    /// purge every 264 disarms swept the 8,192 slots 400 times a second.
    fn compact(&mut self) {
        if self.entries > 2 * self.live + SLOTS {
            self.purge();
        }
    }

    fn purge(&mut self) {
        let mut n = 0;
        for s in &mut self.slots {
            s.retain(|&id| armed(&self.nodes, id).is_some());
            n += s.len();
        }
        self.entries = n;
    }
}

/// The node of `id` in `nodes` while it is armed (a borrow of the slab alone, so the slots
/// can be edited beside it).
fn armed<V>(nodes: &[Node<V>], id: TimerId) -> Option<&Node<V>> {
    nodes
        .get(id.idx as usize)
        .filter(|n| n.gen == id.gen && n.value.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tm::tests_util::ms;

    #[test]
    fn ids_are_never_reused_and_disarm_only_their_own_arming() {
        let t0 = Instant::now();
        let mut w: Wheel<u32> = Wheel::with_origin(t0);
        let a = w.arm(1, t0 + ms(10));
        assert!(w.disarm(a));
        assert!(!w.disarm(a));
        // The node is reused, under another id: the old one does not reach it.
        let b = w.arm(2, t0 + ms(10));
        assert_eq!(a.idx, b.idx);
        assert_ne!(a, b);
        assert!(!w.disarm(a));
        assert_eq!(w.get(b), Some(&2));
        assert_eq!(w.expire(t0 + ms(10)), vec![2]);
        // Fired: its id is spent.
        assert!(!w.disarm(b));
        assert_eq!(w.get(b), None);
        assert!(w.is_empty());
    }

    #[test]
    fn stale_ids_are_compacted_away_and_shrink_gives_back_the_slab() {
        let t0 = Instant::now();
        let mut w: Wheel<u32> = Wheel::with_origin(t0);
        let keep = w.arm(0, t0 + ms(40_000));
        for i in 0..30_000u32 {
            let id = w.arm(i, t0 + ms(30_000 + u64::from(i)));
            w.disarm(id);
        }
        assert!(w.entries <= 2 * w.live + SLOTS + 1, "{} entries", w.entries);
        // A burst of 5,000 armed at once, then fired.
        for i in 0..5_000u32 {
            w.arm(i, t0 + ms(5));
        }
        assert_eq!(w.expire(t0 + ms(5)).len(), 5_000);
        w.shrink();
        assert_eq!(w.len(), 1);
        assert!(w.nodes.len() <= keep.idx as usize + 1);
        assert_eq!(w.expire(t0 + ms(40_000)), vec![0]);
        assert_eq!(w.entries, 0);
    }

    /// A transaction may hold the id of a timer that fired until it ends; a shrink in between
    /// must not let that id name a timer armed later at the same index.
    #[test]
    fn ids_of_nodes_taken_off_by_a_shrink_name_nothing_after() {
        let t0 = Instant::now();
        let mut w: Wheel<u32> = Wheel::with_origin(t0);
        let old: Vec<TimerId> = (0..4u32).map(|i| w.arm(i, t0 + ms(1))).collect();
        assert_eq!(w.expire(t0 + ms(1)).len(), 4);
        w.shrink();
        assert!(w.nodes.is_empty());
        let new: Vec<TimerId> = (10..14u32).map(|i| w.arm(i, t0 + ms(5))).collect();
        for (o, n) in old.iter().zip(&new) {
            assert_eq!(o.idx, n.idx);
            assert_ne!(o, n);
            assert!(!w.disarm(*o));
        }
        assert_eq!(w.len(), 4);
        assert_eq!(w.expire(t0 + ms(5)), vec![10, 11, 12, 13]);
    }
}
