//! The bounded queue between the threads producing packets (SIP workers) and one sender thread.
//!
//! Each producer thread appends packets, back to back, to its own [`Batch`] (one per thread
//! and queue, found through a thread-local), under a mutex that only the sender thread also
//! takes, once per sweep. The sender thread [`sweep`](Queue::sweep)s every batch at once,
//! swapping in an empty one it recycled, so in steady state:
//!
//! * a packet costs the producer one uncontended lock and one append (no allocation, no atomic
//!   shared with other threads, no wake-up of the sender);
//! * the sender takes hundreds of packets per sweep and writes them with one `sendmmsg` /
//!   `writev`; buffers are reused, never freed on another thread.
//!
//! The bound: a packet needs a credit; `capacity` credits exist. A producer takes credits in
//! steps of [`CREDIT_STEP`] (one atomic operation per step, not per packet); a sweep gives the
//! swept batches' credits back. Without a credit, [`Queue::push`] refuses the packet at once:
//! the caller never blocks and at most `capacity` packets wait in the queue. The sender holds
//! one sweep (at most `capacity` packets) more while it writes them, and sweeps again only when
//! done, as it took a whole channel's worth before.
//!
//! Wake-up: the sender sleeps ([`Queue::park`]) only after a sweep found nothing; a producer
//! that appends to an empty batch (the first packet since the last sweep) checks the `parked`
//! flag and unparks the sender, so an idle destination still sends its first packet at once.

use std::cell::RefCell;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, Thread};
use std::time::Duration;

/// Credits a producer takes at a time.
pub const CREDIT_STEP: usize = 64;

/// A sweep-time buffer larger than this is not kept for reuse (a burst does not pin memory).
const KEEP_CAPACITY: usize = 1 << 20;

/// Packets stored back to back, with the end offset of each.
#[derive(Debug, Default)]
pub struct Batch {
    /// The packets' bytes.
    data: Vec<u8>,
    /// End offset in `data` of each packet, increasing.
    ends: Vec<usize>,
    /// Credits held by this batch (>= `ends.len()`), returned by [`Queue::sweep`].
    credits: usize,
    /// The slot (producer thread) whose batch this was last: a sweep gives a slot back its
    /// own buffers, likely still in its core's cache. Handed round in turn, every append
    /// wrote lines that the other core held.
    home: usize,
}

impl Batch {
    /// Number of packets.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No packets.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// All packets' bytes, back to back.
    pub fn data(&self) -> &[u8] {
        let end = self.ends.last().copied().unwrap_or(0);
        self.data.get(..end).unwrap_or_default()
    }

    /// Packet `i`, if there is one.
    pub fn packet(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { *self.ends.get(i - 1)? };
        self.data.get(start..end)
    }

    /// End offset of packet `i` in [`data`](Batch::data).
    pub fn end(&self, i: usize) -> Option<usize> {
        self.ends.get(i).copied()
    }

    /// A batch holding `packets` (tests).
    #[cfg(test)]
    pub(crate) fn from_packets(packets: &[&[u8]]) -> Batch {
        let mut b = Batch::default();
        for p in packets {
            b.data.extend_from_slice(p);
            b.ends.push(b.data.len());
        }
        b.credits = packets.len();
        b
    }

    /// Empties the batch for reuse, keeping its buffers unless they grew very large.
    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
        self.credits = 0;
        if self.data.capacity() > KEEP_CAPACITY {
            self.data = Vec::new();
        }
        if self.ends.capacity() > KEEP_CAPACITY / 64 {
            self.ends = Vec::new();
        }
    }
}

/// A producer thread's batch, aligned so that two producers' slots never share a cache line.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Slot {
    batch: Mutex<Batch>,
}

impl Slot {
    /// Locks the batch. A panic while it was held cannot leave it inconsistent (bytes past the
    /// last packet end are discarded by the next push), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Batch> {
        self.batch.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The credit counter, alone on its cache line.
#[repr(align(128))]
#[derive(Debug)]
struct Credits(AtomicUsize);

/// What became of a packet offered to [`Queue::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Queued.
    Queued,
    /// Refused: the queue holds `capacity` packets.
    Full,
    /// The encoder failed; nothing was queued.
    Rejected,
}

/// Source of the ids that tell queues apart in the thread-locals.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's slot in each queue it has pushed to, by queue id.
    static SLOTS: RefCell<Vec<(u64, Arc<Slot>)>> = const { RefCell::new(Vec::new()) };
}

/// See the module documentation.
#[derive(Debug)]
pub struct Queue {
    id: u64,
    credits: Credits,
    /// Every producer's slot.
    slots: Mutex<Vec<Arc<Slot>>>,
    /// The sender thread is parked (or about to be) until a producer wakes it.
    parked: AtomicBool,
    /// The sender thread, set by [`Queue::attach`].
    thread: OnceLock<Thread>,
}

impl Queue {
    /// A queue holding at most `capacity` packets (at least 1).
    pub fn new(capacity: usize) -> Queue {
        Queue {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            credits: Credits(AtomicUsize::new(capacity.max(1))),
            slots: Mutex::new(Vec::new()),
            parked: AtomicBool::new(false),
            thread: OnceLock::new(),
        }
    }

    /// Records the calling thread as the one [`park`](Queue::park) puts to sleep and producers
    /// wake. Call it on the sender thread before its first `park`.
    pub fn attach(&self) {
        let _ = self.thread.set(thread::current());
    }

    /// Appends one packet written by `encode` (which appends exactly one packet to the vector
    /// and returns true, or returns false on failure) to this thread's batch. Never blocks on
    /// the sender: the only lock is this thread's own slot, which the sender holds only to
    /// swap it.
    pub fn push(&self, encode: impl FnOnce(&mut Vec<u8>) -> bool) -> Push {
        let pushed = SLOTS.try_with(|slots| {
            let mut slots = slots.borrow_mut();
            let i = match slots.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    // Forget the slots of queues that no longer exist.
                    slots.retain(|(_, s)| Arc::strong_count(s) > 1);
                    let slot = Arc::new(Slot::default());
                    lock(&self.slots).push(Arc::clone(&slot));
                    slots.push((self.id, slot));
                    slots.len() - 1
                }
            };
            let Some((_, slot)) = slots.get(i) else {
                return (Push::Full, false);
            };
            let mut batch = slot.lock();
            if batch.ends.len() >= batch.credits {
                let got = self.take_credits();
                if got == 0 {
                    return (Push::Full, false);
                }
                batch.credits += got;
            }
            // Drops anything a panicking encoder left behind the last packet.
            let start = batch.ends.last().copied().unwrap_or(0);
            batch.data.truncate(start);
            if !encode(&mut batch.data) || batch.data.len() == start {
                batch.data.truncate(start);
                return (Push::Rejected, false);
            }
            let end = batch.data.len();
            batch.ends.push(end);
            (Push::Queued, batch.ends.len() == 1)
        });
        match pushed {
            Ok((Push::Queued, first)) => {
                if first {
                    self.wake();
                }
                Push::Queued
            }
            Ok((other, _)) => other,
            // The thread is exiting (thread-locals destroyed): nowhere to stage the packet.
            Err(_) => Push::Full,
        }
    }

    /// Takes up to [`CREDIT_STEP`] credits; 0 if none are left.
    fn take_credits(&self) -> usize {
        self.credits
            .0
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |c| {
                (c > 0).then(|| c - c.min(CREDIT_STEP))
            })
            .map_or(0, |c| c.min(CREDIT_STEP))
    }

    /// After the first packet of a batch: wakes the sender if it is parked.
    fn wake(&self) {
        // Pairs with the fence in `park`: either the sender's re-check sees our packet, or we
        // see its flag.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::AcqRel) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }

    /// Moves every producer's non-empty batch to `out`, putting an empty one from `spares` in
    /// its place, and gives back the credits of the batches taken (and the unused credits of
    /// the others). Returns the number of packets taken.
    pub fn sweep(&self, spares: &mut Vec<Batch>, out: &mut Vec<Batch>) -> usize {
        let mut slots = lock(&self.slots);
        // Slots of exited threads (only we hold them) go once empty.
        slots.retain(|s| Arc::strong_count(s) > 1 || s.lock().credits > 0);
        let mut n = 0;
        for slot in slots.iter() {
            let mut batch = slot.lock();
            // Given back while the slot is still locked: a producer that finds its fresh batch
            // without credits must find them in the counter already, or it would refuse a
            // packet with the queue nearly empty.
            let credits = std::mem::take(&mut batch.credits);
            if credits > 0 {
                self.credits.0.fetch_add(credits, Ordering::Release);
            }
            if batch.is_empty() {
                continue;
            }
            n += batch.len();
            let home = Arc::as_ptr(slot) as usize;
            let mut fresh = match spares.iter().rposition(|b| b.home == home) {
                Some(i) => spares.swap_remove(i),
                None => spares.pop().unwrap_or_default(),
            };
            fresh.home = home;
            batch.home = home;
            out.push(std::mem::replace(&mut *batch, fresh));
        }
        drop(slots);
        n
    }

    /// Done with a swept batch: keeps its buffers in `spares` for reuse.
    pub fn release(&self, mut batch: Batch, spares: &mut Vec<Batch>) {
        batch.clear();
        spares.push(batch);
    }

    /// Sleeps until a producer queues a packet, `stopping()` holds, or `timeout` passes (may
    /// also return early, spuriously). Call it on the attached thread after a sweep that found
    /// nothing.
    pub fn park(&self, timeout: Duration, stopping: impl Fn() -> bool) {
        self.parked.store(true, Ordering::Relaxed);
        // Pairs with the fence in `wake`: a packet queued before a producer could see the flag
        // is seen by the re-check below.
        fence(Ordering::SeqCst);
        if !self.has_packets() && !stopping() && self.parked.load(Ordering::Acquire) {
            thread::park_timeout(timeout);
        }
        self.parked.store(false, Ordering::Relaxed);
    }

    /// Whether any producer has a packet staged (takes each slot's lock).
    pub fn has_packets(&self) -> bool {
        lock(&self.slots).iter().any(|s| !s.lock().is_empty())
    }

    /// Credits not held by any batch (for tests and statistics).
    pub fn free_credits(&self) -> usize {
        self.credits.0.load(Ordering::Relaxed)
    }
}

/// Locks the slot list, ignoring poisoning (every critical section leaves it consistent).
fn lock(m: &Mutex<Vec<Arc<Slot>>>) -> MutexGuard<'_, Vec<Arc<Slot>>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
