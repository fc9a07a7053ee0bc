//! The lookup pool: answers through the completion, refuses at once when its queue is full or
//! the database is down, answers `Failed` at the deadline when the database hangs, and
//! recovers when it comes back. No test sleeps and then asserts: each waits for a condition,
//! with a generous deadline.
use super::pool::{Backend, Connect};
use super::*;
use crate::auth::store::{CredentialStore, Ha1s, Lookup};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(30);

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Queue a lookup; the receiver gets its answer.
fn ask(pool: &Pool, user: &str) -> Result<Receiver<Lookup>, crate::auth::store::Unavailable> {
    let (tx, rx) = channel();
    pool.lookup(
        user,
        "example.com",
        Box::new(move |l| {
            let _ = tx.send(l);
        }),
    )?;
    Ok(rx)
}

fn answer(rx: &Receiver<Lookup>) -> Lookup {
    rx.recv_timeout(PATIENCE).expect("the completion ran")
}

/// Ask until the pool answers `want` (a pool that just came back may still be refusing).
fn ask_until(pool: &Pool, user: &str, want: impl Fn(&Lookup) -> bool) {
    wait_until("the pool answers", || match ask(pool, user) {
        Ok(rx) => want(&answer(&rx)),
        Err(_) => false,
    });
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Lookups hang until the mode changes.
    Hang,
    /// Connecting fails.
    Down,
    /// Lookups answer.
    Up,
}

/// A database whose behaviour the test sets.
struct Db {
    mode: Mutex<Mode>,
    /// Bumped by a restart: connections opened before it are closed.
    epoch: AtomicUsize,
    changed: Condvar,
    started: Mutex<Sender<String>>,
}

impl Db {
    fn new(mode: Mode) -> (Arc<Db>, Receiver<String>) {
        let (tx, rx) = channel();
        let db = Arc::new(Db {
            mode: Mutex::new(mode),
            epoch: AtomicUsize::new(0),
            changed: Condvar::new(),
            started: Mutex::new(tx),
        });
        (db, rx)
    }

    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
        self.changed.notify_all();
    }

    fn connect(self: &Arc<Self>) -> Connect {
        let db = self.clone();
        Box::new(move || {
            if *db.mode.lock().unwrap() == Mode::Down {
                return Err(DbError::Invalid("connection refused".into()));
            }
            let epoch = db.epoch.load(Ordering::SeqCst);
            Ok(Box::new(Conn(db.clone(), epoch)) as Box<dyn Backend>)
        })
    }
}

struct Conn(Arc<Db>, usize);

impl Backend for Conn {
    fn lookup(&mut self, user: &str, _domain: &str) -> Result<Option<Ha1s>, DbError> {
        let _ = self.0.started.lock().unwrap().send(user.to_string());
        if self.1 != self.0.epoch.load(Ordering::SeqCst) {
            return Err(DbError::Invalid("connection closed".into()));
        }
        let mut m = self.0.mode.lock().unwrap();
        while *m == Mode::Hang {
            m = self.0.changed.wait(m).unwrap();
        }
        match *m {
            Mode::Down => Err(DbError::Invalid("connection lost".into())),
            _ => Ok((user == "alice").then(|| Ha1s {
                md5: Some("0".repeat(32)),
                ..Ha1s::default()
            })),
        }
    }
}

fn cfg(workers: usize, max_pending: usize, timeout_ms: u64) -> PoolConfig {
    PoolConfig {
        workers,
        max_pending,
        timeout: Duration::from_millis(timeout_ms),
        retry: Duration::from_millis(20),
    }
}

#[test]
fn sqlite_pool_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = AuthDbConfig {
        db_url: Some(DbUrl::parse("sqlite://users.db", dir.path()).unwrap()),
        ..AuthDbConfig::default()
    };
    a.pool.timeout = PATIENCE;
    let pool = open_pool(&a).unwrap().unwrap();
    let s = UserStore::open_existing(a.db_url.as_ref().unwrap(), &a.columns().unwrap(), PATIENCE)
        .unwrap();
    s.add("alice", "example.com", "pw", false).unwrap();
    match answer(&ask(&pool, "alice").unwrap()) {
        Lookup::Found(h) => assert_eq!(
            h.md5,
            Some(crate::auth::digest::ha1(
                crate::auth::digest::Algorithm::Md5,
                "alice",
                "example.com",
                "pw"
            ))
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(answer(&ask(&pool, "bob").unwrap()), Lookup::NotFound);
    assert!(!pool.is_down());
}

#[test]
fn queue_full_is_refused_at_once() {
    let (db, started) = Db::new(Mode::Hang);
    let pool = Pool::start("test".into(), cfg(1, 1, 600_000), db.connect()).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = channel();
    let counted = |tx: Sender<Lookup>| {
        let calls = calls.clone();
        Box::new(move |l| {
            calls.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(l);
        })
    };
    pool.lookup("alice", "example.com", counted(tx.clone()))
        .unwrap();
    // The only thread holds the first lookup...
    assert_eq!(started.recv_timeout(PATIENCE).unwrap(), "alice");
    // ...the second fills the queue, the third is refused without waiting.
    pool.lookup("bob", "example.com", counted(tx.clone()))
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let refused = pool.lookup(
        "carol",
        "example.com",
        Box::new(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        }),
    );
    assert!(refused.is_err(), "queue full");
    assert!(!pool.is_down(), "a full queue is not a database down");
    db.set(Mode::Up);
    let mut got = vec![answer(&rx), answer(&rx)];
    got.sort_by_key(|l| matches!(l, Lookup::NotFound));
    assert!(
        matches!(got[0], Lookup::Found(_)) && got[1] == Lookup::NotFound,
        "{got:?}"
    );
    // Once answered, the queue takes lookups again; each completion ran once, the refused
    // one's never.
    assert_eq!(answer(&ask(&pool, "alice").unwrap()), got[0]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn deadline_then_fail_fast_then_recovery() {
    let (db, _started) = Db::new(Mode::Hang);
    let pool = Pool::start("test".into(), cfg(1, 16, 100), db.connect()).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = channel();
    let c = calls.clone();
    pool.lookup(
        "alice",
        "example.com",
        Box::new(move |l| {
            c.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(l);
        }),
    )
    .unwrap();
    // The database hangs (or, on a busy machine, the lookup is still queued): the deadline
    // answers.
    match answer(&rx) {
        Lookup::Failed(why) => assert!(why.contains("no answer within 100 ms"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Known down: refused at once, the completion dropped unrun.
    wait_until("the pool is down", || pool.is_down());
    assert!(ask(&pool, "alice").is_err());
    // It comes back: a probe finds it, lookups answer again.
    db.set(Mode::Up);
    wait_until("the pool is up", || !pool.is_down());
    ask_until(&pool, "alice", |l| matches!(l, Lookup::Found(_)));
    // The hung lookup, answered late by its thread, did not run its completion twice.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn connection_refused_then_back() {
    let (db, _started) = Db::new(Mode::Down);
    let pool = Pool::start("test".into(), cfg(2, 16, 600_000), db.connect()).unwrap();
    match answer(&ask(&pool, "alice").unwrap()) {
        Lookup::Failed(why) => assert!(why.contains("connection refused"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(pool.is_down());
    assert!(ask(&pool, "alice").is_err(), "fails fast while down");
    db.set(Mode::Up);
    wait_until("the pool is up", || !pool.is_down());
    assert!(matches!(
        answer(&ask(&pool, "alice").unwrap()),
        Lookup::Found(_)
    ));
    // Lost mid-way: that lookup fails, the next connection attempt finds it back.
    db.set(Mode::Down);
    assert!(matches!(
        answer(&ask(&pool, "alice").unwrap()),
        Lookup::Failed(_)
    ));
    assert!(pool.is_down());
    db.set(Mode::Up);
    ask_until(&pool, "bob", |l| *l == Lookup::NotFound);
}

/// The database restarted while the pool was idle: the connection each thread kept is
/// closed. The next lookup opens a new one and answers; the database is not marked down
/// (before, every thread's stale connection failed one lookup and marked it down once more).
#[test]
fn a_connection_from_before_a_restart_is_replaced_not_reported() {
    let (db, _started) = Db::new(Mode::Up);
    let pool = Pool::start("test".into(), cfg(1, 16, 600_000), db.connect()).unwrap();
    assert!(matches!(
        answer(&ask(&pool, "alice").unwrap()),
        Lookup::Found(_)
    ));
    db.epoch.fetch_add(1, Ordering::SeqCst);
    assert!(matches!(
        answer(&ask(&pool, "alice").unwrap()),
        Lookup::Found(_)
    ));
    assert!(!pool.is_down());
    assert_eq!(answer(&ask(&pool, "bob").unwrap()), Lookup::NotFound);
}

/// A real SQLite file another process holds an exclusive lock on: lookups fail (at the
/// deadline or on SQLite's busy timeout), the pool is down; the lock released, it recovers.
#[test]
fn locked_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = AuthDbConfig {
        db_url: Some(DbUrl::parse("sqlite://users.db", dir.path()).unwrap()),
        ..AuthDbConfig::default()
    };
    a.pool = cfg(1, 16, 100);
    let pool = open_pool(&a).unwrap().unwrap();
    let s = UserStore::open_existing(a.db_url.as_ref().unwrap(), &a.columns().unwrap(), PATIENCE)
        .unwrap();
    s.add("alice", "example.com", "pw", false).unwrap();
    let locker = rusqlite::Connection::open(dir.path().join("users.db")).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    assert!(matches!(
        answer(&ask(&pool, "alice").unwrap()),
        Lookup::Failed(_)
    ));
    wait_until("the pool is down", || pool.is_down());
    locker.execute_batch("COMMIT").unwrap();
    wait_until("the pool is up", || !pool.is_down());
    ask_until(&pool, "alice", |l| matches!(l, Lookup::Found(_)));
}

/// The database file's directory removed before a thread connected: lookups fail and the
/// pool is down; the database made again, it recovers.
#[test]
fn sqlite_file_gone_then_back() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    let mut a = AuthDbConfig {
        db_url: Some(DbUrl::parse("sqlite://db/users.db", top.path()).unwrap()),
        ..AuthDbConfig::default()
    };
    a.pool = cfg(1, 16, 600_000);
    let pool = open_pool(&a).unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    match answer(&ask(&pool, "alice").unwrap()) {
        Lookup::Failed(why) => assert!(why.contains("users.db"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(pool.is_down());
    std::fs::create_dir(&dir).unwrap();
    let s = UserStore::open(a.db_url.as_ref().unwrap(), &a.columns().unwrap(), PATIENCE).unwrap();
    s.add("alice", "example.com", "pw", false).unwrap();
    wait_until("the pool is up", || !pool.is_down());
    ask_until(&pool, "alice", |l| matches!(l, Lookup::Found(_)));
}

/// Dropping the pool answers what is still waiting, once.
#[test]
fn drop_answers_the_waiting() {
    let (db, started) = Db::new(Mode::Hang);
    let pool = Pool::start("test".into(), cfg(1, 4, 600_000), db.connect()).unwrap();
    let first = ask(&pool, "alice").unwrap();
    assert_eq!(started.recv_timeout(PATIENCE).unwrap(), "alice");
    let second = ask(&pool, "bob").unwrap();
    drop(pool);
    assert!(matches!(answer(&first), Lookup::Failed(_)));
    assert!(matches!(answer(&second), Lookup::Failed(_)));
    db.set(Mode::Up);
}
