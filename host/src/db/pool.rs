//! The lookup pool: [`CredentialStore`] over a database. A few threads, each with its own
//! connection, take lookups from a bounded queue; a timer thread answers
//! [`Lookup::Failed`] at each lookup's deadline if its thread has not, and, while the database
//! is down, queues a probe every `retry`. The caller (an I/O worker) only queues: a full
//! queue or a database known to be down is refused at once ([`Unavailable`]). The database
//! going down and coming back are logged once each.
use super::config::PoolConfig;
use super::error::DbError;
use crate::auth::store::{CredentialStore, Done, Ha1s, Lookup, Unavailable};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Instant;

/// One connection, as the pool's threads use it.
pub trait Backend: Send {
    /// The credentials of `user` in `domain`; `Ok(None)` when there is no such user.
    fn lookup(&mut self, user: &str, domain: &str) -> Result<Option<Ha1s>, DbError>;
}

impl Backend for super::store::UserStore {
    fn lookup(&mut self, user: &str, domain: &str) -> Result<Option<Ha1s>, DbError> {
        super::store::UserStore::lookup(self, user, domain)
    }
}

/// Opens a connection (called on a pool thread, again after a failure).
pub type Connect = Box<dyn Fn() -> Result<Box<dyn Backend>, DbError> + Send + Sync>;

/// A lookup's completion, run at most once by whoever answers first.
struct Slot(Mutex<Option<Done>>);

impl Slot {
    fn pending(&self) -> bool {
        lock(&self.0).is_some()
    }

    /// Run the completion with `answer` unless it already ran; whether it ran now.
    fn complete(&self, answer: Lookup) -> bool {
        let done = lock(&self.0).take();
        match done {
            Some(d) => {
                run_done(d, answer);
                true
            }
            None => false,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Never reached in normal operation (a thread or the timer answers first); kept so
        // that `done` runs exactly once whatever happens.
        if let Some(d) = self.0.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            run_done(d, Lookup::Failed("lookup abandoned".into()));
        }
    }
}

fn run_done(done: Done, answer: Lookup) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| done(answer))) {
        let what = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        crate::log!(
            Critical,
            "auth_db",
            "panic in a lookup's completion: {}",
            what
        );
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Job {
    Lookup {
        user: String,
        domain: String,
        slot: Arc<Slot>,
    },
    /// Is the database back? (queued by the timer while it is down)
    Probe,
}

struct Timers {
    /// Deadlines in queueing order (so in time order).
    deadlines: VecDeque<(Instant, Weak<Slot>)>,
    next_probe: Option<Instant>,
    stop: bool,
}

struct Shared {
    name: String,
    cfg: PoolConfig,
    down: AtomicBool,
    full: AtomicBool,
    probe_queued: AtomicBool,
    timers: Mutex<Timers>,
    wake: Condvar,
}

impl Shared {
    fn set_down(&self, reason: &str) {
        if !self.down.swap(true, Ordering::SeqCst) {
            crate::log!(
                Warning,
                "auth_db",
                "user database {} is down ({}): authentication fails at once until it answers again",
                self.name,
                reason
            );
            // Taking the lock orders this with the timer's check of `down` before it waits.
            drop(lock(&self.timers));
            self.wake.notify_all();
        }
    }

    fn set_up(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            crate::log!(Info, "auth_db", "user database {} answers again", self.name);
        }
    }
}

/// The pool; dropping it stops its threads once they finish what they are doing (lookups
/// still queued are answered [`Lookup::Failed`]).
pub struct Pool {
    shared: Arc<Shared>,
    queue: SyncSender<Job>,
}

impl Pool {
    /// Start `cfg.workers` threads that open their connections with `connect`; `name` (the
    /// URL without its password) is for the log.
    pub fn start(name: String, cfg: PoolConfig, connect: Connect) -> Result<Pool, DbError> {
        let (tx, rx) = sync_channel::<Job>(cfg.max_pending.max(1));
        let shared = Arc::new(Shared {
            name,
            cfg,
            down: AtomicBool::new(false),
            full: AtomicBool::new(false),
            probe_queued: AtomicBool::new(false),
            timers: Mutex::new(Timers {
                deadlines: VecDeque::new(),
                next_probe: None,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let rx = Arc::new(Mutex::new(rx));
        let connect = Arc::new(connect);
        let spawn_err = |e: std::io::Error| {
            DbError::Invalid(format!("cannot start a user database thread: {e}"))
        };
        for i in 0..cfg.workers.max(1) {
            let (rx, shared, connect) = (rx.clone(), shared.clone(), connect.clone());
            std::thread::Builder::new()
                .name(format!("authdb-{i}"))
                .spawn(move || worker(&shared, &rx, &connect))
                .map_err(spawn_err)?;
        }
        let (s, q) = (shared.clone(), tx.clone());
        std::thread::Builder::new()
            .name("authdb-timer".into())
            .spawn(move || timer(&s, &q))
            .map_err(spawn_err)?;
        Ok(Pool { shared, queue: tx })
    }

    /// Whether the database is known to be down (lookups are refused at once).
    pub fn is_down(&self) -> bool {
        self.shared.down.load(Ordering::SeqCst)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        lock(&self.shared.timers).stop = true;
        self.shared.wake.notify_all();
    }
}

impl CredentialStore for Pool {
    fn lookup(&self, user: &str, domain: &str, done: Done) -> Result<(), Unavailable> {
        let s = &self.shared;
        if s.down.load(Ordering::SeqCst) {
            return Err(Unavailable(format!("user database {} is down", s.name)));
        }
        let slot = Arc::new(Slot(Mutex::new(Some(done))));
        let job = Job::Lookup {
            user: user.to_string(),
            domain: domain.to_string(),
            slot: slot.clone(),
        };
        // Under the timers' lock, so that deadlines are queued in time order.
        let mut t = lock(&s.timers);
        let deadline = Instant::now() + s.cfg.timeout;
        match self.queue.try_send(job) {
            Ok(()) => {
                let was_empty = t.deadlines.is_empty();
                t.deadlines.push_back((deadline, Arc::downgrade(&slot)));
                drop(t);
                if was_empty {
                    s.wake.notify_all();
                }
                if s.full.swap(false, Ordering::Relaxed) {
                    crate::log!(Info, "auth_db", "user database queue accepts lookups again");
                }
                Ok(())
            }
            Err(e) => {
                drop(t);
                // Dropped unrun, as the trait says.
                drop(lock(&slot.0).take());
                let full = matches!(e, TrySendError::Full(_));
                if full && !s.full.swap(true, Ordering::Relaxed) {
                    crate::log!(
                        Warning,
                        "auth_db",
                        "user database queue full ({} lookups waiting): new ones fail at once until it drains",
                        s.cfg.max_pending
                    );
                }
                Err(Unavailable(if full {
                    format!("user database {}: too many lookups waiting", s.name)
                } else {
                    format!("user database {}: stopped", s.name)
                }))
            }
        }
    }
}

fn worker(shared: &Shared, rx: &Mutex<Receiver<Job>>, connect: &Connect) {
    let mut conn: Option<Box<dyn Backend>> = None;
    loop {
        let job = match lock(rx).recv() {
            Ok(j) => j,
            Err(_) => return,
        };
        match job {
            Job::Probe => {
                shared.probe_queued.store(false, Ordering::SeqCst);
                if run(&mut conn, connect, "", "").is_ok() {
                    shared.set_up();
                }
            }
            Job::Lookup { user, domain, slot } => {
                if !slot.pending() {
                    continue; // answered at its deadline while it waited
                }
                match run(&mut conn, connect, &user, &domain) {
                    Ok(found) => {
                        shared.set_up();
                        slot.complete(found.map_or(Lookup::NotFound, Lookup::Found));
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        shared.set_down(&msg);
                        slot.complete(Lookup::Failed(msg));
                    }
                }
            }
        }
    }
}

/// A lookup on this thread's connection, (re)opened first if needed; a failed connection is
/// dropped, so the next job opens a new one. A kept connection that fails is tried once
/// more on a new one before the failure counts: it may date from before the database
/// restarted (each thread keeps its own, and only one of them saw the outage).
fn run(
    conn: &mut Option<Box<dyn Backend>>,
    connect: &Connect,
    user: &str,
    domain: &str,
) -> Result<Option<Ha1s>, DbError> {
    if let Some(c) = conn {
        match c.lookup(user, domain) {
            Ok(found) => return Ok(found),
            Err(_) => *conn = None,
        }
    }
    let r = conn.insert(connect()?).lookup(user, domain);
    if r.is_err() {
        *conn = None;
    }
    r
}

fn timer(shared: &Shared, queue: &SyncSender<Job>) {
    let mut t = lock(&shared.timers);
    loop {
        let now = Instant::now();
        if t.stop {
            let left: Vec<_> = t
                .deadlines
                .drain(..)
                .filter_map(|(_, w)| w.upgrade())
                .collect();
            drop(t);
            for s in left {
                s.complete(Lookup::Failed("user database stopped".into()));
            }
            return;
        }
        let mut expired = Vec::new();
        while t.deadlines.front().is_some_and(|(d, _)| *d <= now) {
            if let Some(s) = t.deadlines.pop_front().and_then(|(_, w)| w.upgrade()) {
                expired.push(s);
            }
        }
        let down = shared.down.load(Ordering::SeqCst);
        let mut probe = false;
        match t.next_probe {
            _ if !down => t.next_probe = None,
            None => t.next_probe = Some(now + shared.cfg.retry),
            Some(p) if p <= now => {
                t.next_probe = Some(now + shared.cfg.retry);
                probe = true;
            }
            Some(_) => {}
        }
        if expired.is_empty() && !probe {
            let next = [t.deadlines.front().map(|(d, _)| *d), t.next_probe]
                .into_iter()
                .flatten()
                .min();
            t = match next {
                Some(at) => {
                    shared
                        .wake
                        .wait_timeout(t, at.saturating_duration_since(now))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => shared.wake.wait(t).unwrap_or_else(|e| e.into_inner()),
            };
            continue;
        }
        drop(t);
        let ms = shared.cfg.timeout.as_millis();
        let mut late = false;
        for s in expired {
            late |= s.complete(Lookup::Failed(format!("no answer within {ms} ms")));
        }
        if late {
            shared.set_down(&format!("no answer within {ms} ms"));
        }
        if probe
            && !shared.probe_queued.swap(true, Ordering::SeqCst)
            && queue.try_send(Job::Probe).is_err()
        {
            shared.probe_queued.store(false, Ordering::SeqCst);
        }
        t = lock(&shared.timers);
    }
}
