//! The transaction timers' thread: one [`Wheel`] of every cell's deadlines, polled by a
//! thread that sleeps until the earliest one (or until an earlier one is armed) and feeds what
//! is due to its cell. The queue's lock is never held while a cell is fed. A timer that fires
//! for a cell that is gone (ids are never reused) is dropped. Each cell keeps the
//! [`TimerId`]s of its timers ([`Armed`]), so arming and disarming hash nothing.
use super::cell::Slot;
use crate::tm::{TimerId, Wheel};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Timers {
    queue: Mutex<Queue>,
    wake: Condvar,
}

struct Queue {
    timers: Wheel<(u64, Slot)>,
    /// When the thread is next due to wake up (None: waiting for a first timer).
    sleeping_until: Option<Instant>,
}

static TIMERS: OnceLock<Timers> = OnceLock::new();

/// What the thread calls: a timer of a cell fired; a trim is due (the tables shrink).
type Fire = fn(&crate::core::send::Core, u64, Slot);
static CALLBACKS: OnceLock<(Fire, fn())> = OnceLock::new();

/// Sets what the thread calls (once, before the first timer is armed).
pub(super) fn install(fire: Fire, shrink: fn()) {
    let _ = CALLBACKS.set((fire, shrink));
}

/// Transactions ended since the last trim.
static ENDED: AtomicUsize = AtomicUsize::new(0);

/// Ended transactions that make the thread return free memory to the OS: glibc's malloc
/// keeps the small chunks of ended transactions in its arenas, so after a burst the process
/// would stay at its peak size (the same reason as proto_ws's `reclaim`). About 4 MB of
/// transactions, and only once the burst is over: no transaction ended for [`QUIET`] (under a
/// steady load the memory is used again at once, and a trim would only cost time).
const TRIM_AFTER: usize = 1024;

/// How long no transaction may have ended before a trim.
const QUIET: Duration = Duration::from_millis(500);

/// A transaction ended (see [`TRIM_AFTER`]).
pub(super) fn ended() {
    ENDED.fetch_add(1, Ordering::Relaxed);
}

fn timers() -> &'static Timers {
    TIMERS.get_or_init(|| {
        let t = Timers {
            queue: Mutex::new(Queue {
                timers: Wheel::with_origin(Instant::now()),
                sleeping_until: None,
            }),
            wake: Condvar::new(),
        };
        if let Err(e) = std::thread::Builder::new()
            .name("sipcore-tm-timer".into())
            .spawn(run)
        {
            crate::log!(
                Critical,
                "tm",
                "the transaction timer thread did not start: {}",
                e
            );
        }
        t
    })
}

/// The timers a cell armed, by slot, with their ids in the queue (a fired one may linger:
/// its id no longer disarms anything).
pub(crate) type Armed = smallvec::SmallVec<[(Slot, TimerId); 4]>;

/// Least time between two wake-ups of the thread: it wakes at most 200 times a second however
/// many distinct deadlines there are, and a timer fires up to this much after its deadline
/// (beyond the machine's own delays). OpenSIPS's tm timers tick every 100 ms, Kamailio's every
/// 62.5 ms. A deadline armed earlier than the one the thread sleeps until still wakes it.
const MIN_GAP: Duration = Duration::from_millis(5);

/// Arms and disarms timers of cell `id` (re-arming a slot replaces its deadline), keeping
/// `armed` up to date, and wakes the thread when a deadline comes before the one it sleeps
/// until.
pub(super) fn update(id: u64, armed: &mut Armed, arm: &[(Slot, Instant)], disarm: &[Slot]) {
    if arm.is_empty() && disarm.is_empty() {
        return;
    }
    let t = timers();
    let mut q = t.queue.lock().unwrap_or_else(|e| e.into_inner());
    for s in disarm {
        if let Some(i) = armed.iter().position(|(a, _)| a == s) {
            q.timers.disarm(armed.swap_remove(i).1);
        }
    }
    let mut earlier = false;
    for &(s, at) in arm {
        let tid = q.timers.arm((id, s), at);
        match armed.iter_mut().find(|(a, _)| *a == s) {
            Some(slot) => {
                q.timers.disarm(std::mem::replace(&mut slot.1, tid));
            }
            None => armed.push((s, tid)),
        }
        earlier |= q.sleeping_until.is_none_or(|w| at < w);
    }
    drop(q);
    if earlier {
        t.wake.notify_one();
    }
}

/// Cell `id` is over: the timers it still has armed go (the machines drop theirs without a
/// disarm each), so that they do not linger in the queue until they fire.
pub(super) fn forget(armed: &Armed) {
    if armed.is_empty() {
        return;
    }
    let Some(t) = TIMERS.get() else {
        return;
    };
    let mut q = t.queue.lock().unwrap_or_else(|e| e.into_inner());
    for &(_, tid) in armed {
        q.timers.disarm(tid);
    }
}

/// How many timers are armed now (`tm:armed_timers`).
pub(super) fn armed() -> usize {
    TIMERS.get().map_or(0, |t| {
        t.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .timers
            .len()
    })
}

fn run() {
    // The statics are set before this thread runs anything that needs them.
    let t = timers();
    let mut q = t.queue.lock().unwrap_or_else(|e| e.into_inner());
    let (mut last_ended, mut last_change) = (0, Instant::now());
    loop {
        let now = Instant::now();
        let due = q.timers.expire(now);
        if !due.is_empty() {
            drop(q);
            if let (Some(core), Some((fire, _))) = (crate::core::CORE.get(), CALLBACKS.get()) {
                for (id, slot) in due {
                    fire(core, id, slot);
                }
            }
            q = t.queue.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        // A trim once the ended count stopped moving for QUIET (checked at the wake-ups,
        // at least one a second).
        let ended = ENDED.load(Ordering::Relaxed);
        if ended != last_ended {
            last_ended = ended;
            last_change = now;
        } else if ended >= TRIM_AFTER && now.duration_since(last_change) >= QUIET {
            ENDED.store(0, Ordering::Relaxed);
            last_ended = 0;
            q.timers.shrink();
            drop(q);
            if let Some((_, shrink)) = CALLBACKS.get() {
                shrink();
            }
            trim();
            q = t.queue.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        // At MIN_GAP after this wake-up at the earliest, and at least once a second, for the
        // trim.
        let next = q.timers.next_deadline().map(|at| at.max(now + MIN_GAP));
        q.sleeping_until = next;
        let wait = next.map_or(Duration::from_secs(1), |at| {
            at.saturating_duration_since(now)
                .min(Duration::from_secs(1))
        });
        q = t
            .wake
            .wait_timeout(q, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: glibc's malloc_trim takes no pointer, only releases free memory, and is
    // thread-safe (it locks each arena).
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
