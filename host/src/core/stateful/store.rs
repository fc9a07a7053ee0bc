//! The transaction store: cells by id and the indexes that find them (server key, client key,
//! a client connection), each a sharded [`Table`]; feeding a cell under its shard lock and
//! carrying out what that leaves to do (indexes, timers); the `tm` settings.
use super::cell::{Cell, Effects, Slot, Work};
use super::share::{give_back, Source};
use super::timer;
use crate::core::send::Core;
use crate::tm::{ClientKey, Event, ProxyConfig, ProxyEvent, ServerKey, Table, TimerValues};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// OpenSIPS tm's settings (`modparam("tm", ...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmConfig {
    /// `fr_timeout`, seconds: no final response (nor, for an INVITE, a provisional one).
    pub fr_timeout: u32,
    /// `fr_inv_timeout`, seconds: an INVITE answered provisionally but not finally.
    pub fr_inv_timeout: u32,
    /// `T1_timer`, milliseconds (RFC 3261 T1).
    pub t1_ms: u32,
    /// `T2_timer`, milliseconds (RFC 3261 T2).
    pub t2_ms: u32,
    /// `T4_timer`, milliseconds (RFC 3261 T4: timers I and K over UDP).
    pub t4_ms: u32,
    /// Most transactions held at once (sipcore's): beyond, `t_relay()` answers 503.
    pub max_transactions: u32,
    /// `wt_timer`, seconds: the longest a finished transaction stays to absorb
    /// retransmissions (0: the RFC's timers, 32 s for a non-INVITE over UDP).
    pub wt_timer: u32,
    /// Most transactions one source holds at once (sipcore's: a connection, or an IP address
    /// over UDP): beyond, its `t_relay()`s are answered 503 with `Retry-After`, so that one
    /// client cannot take the table (and the memory) from the others.
    pub max_per_source: u32,
}

impl Default for TmConfig {
    fn default() -> Self {
        TmConfig {
            fr_timeout: 30,
            fr_inv_timeout: 120,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            max_transactions: 100_000,
            wt_timer: 0,
            max_per_source: 1000,
        }
    }
}

pub(super) struct Store {
    /// Boxed: a cell is 848 bytes, and the map keeps spare slots.
    pub(super) cells: Table<u64, Box<Cell>>,
    pub(super) by_server: Table<ServerKey, u64>,
    pub(super) by_client: Table<ClientKey, (u64, usize)>,
    /// Transactions held per source (see [`TmConfig::max_per_source`]).
    pub(super) per_source: std::sync::Arc<Table<Source, u32>>,
    pub(super) max_per_source: u32,
    /// Branches by the connection they went out on: (cell id, branch).
    pub(super) by_conn: Table<(u8, u64), HashSet<(u64, usize)>>,
    pub(super) next_id: AtomicU64,
    /// Cells alive: the receive path skips the server-key lookup while it is 0.
    pub(super) live: AtomicUsize,
    pub(super) proxy: ProxyConfig,
    pub(super) values: TimerValues,
}

static CONFIG: OnceLock<TmConfig> = OnceLock::new();
pub(super) static STORE: OnceLock<Store> = OnceLock::new();

/// Apply the `tm` modparams (before the first message).
pub(crate) fn configure(cfg: TmConfig) {
    let _ = CONFIG.set(cfg);
}

pub(super) fn store() -> &'static Store {
    STORE.get_or_init(|| {
        timer::install(fire, shrink);
        let cfg = CONFIG.get().copied().unwrap_or_default();
        let values = TimerValues::new(
            Duration::from_millis(cfg.t1_ms.into()),
            Duration::from_millis(cfg.t2_ms.max(cfg.t1_ms).into()),
            Duration::from_millis(cfg.t4_ms.into()),
        )
        .unwrap_or_default();
        let values = match cfg.wt_timer {
            0 => values,
            w => values.with_wait(Duration::from_secs(w.into())),
        };
        let cap = cfg.max_transactions as usize;
        Store {
            cells: Table::new(64, cap),
            by_server: Table::new(64, cap),
            by_client: Table::new(64, cap.saturating_mul(2)),
            by_conn: Table::new(64, cap),
            per_source: std::sync::Arc::new(Table::new(64, cap)),
            max_per_source: cfg.max_per_source,
            next_id: AtomicU64::new(1),
            live: AtomicUsize::new(0),
            proxy: ProxyConfig {
                fr_timeout: Duration::from_secs(cfg.fr_timeout.into()),
                fr_inv_timeout: Duration::from_secs(cfg.fr_inv_timeout.into()),
                fr_inv_code: 408,
            },
            values,
        }
    })
}

/// OpenSIPS tm's `inuse_transactions`: relays held now (a server transaction and its
/// branches count once); and `armed_timers` (sipcore's): the timers they hold, as a
/// [`crate::stats::Source`].
pub(crate) fn stats(out: &mut Vec<crate::stats::Sample>) {
    let n = STORE.get().map_or(0, |s| s.live.load(Ordering::Relaxed));
    out.push(crate::stats::Sample::new(
        "tm",
        "inuse_transactions",
        n as u64,
        true,
        "transactions held now (t_relay)",
    ));
    out.push(crate::stats::Sample::new(
        "tm",
        "armed_timers",
        timer::armed() as u64,
        true,
        "transaction timers armed now (RFC 3261 timers, fr_timeout, fr_inv_timeout)",
    ));
}

/// The error text of [`super::relay`] when the table is full.
pub(crate) const TABLE_FULL: &str = "transaction table full";
/// The error text of [`super::relay`] when the source holds its share.
pub(crate) const SOURCE_FULL: &str = "too many transactions from this source";

/// Remember that branch `b` of cell `id` went out over connection `c`.
pub(super) fn watch_conn(s: &Store, c: (u8, u64), id: u64, b: usize) {
    loop {
        if s.by_conn.with(&c, |set| set.insert((id, b))).is_some() {
            return;
        }
        match s.by_conn.insert(c, HashSet::from([(id, b)])) {
            Err(crate::tm::TableError::Exists) => continue,
            _ => return,
        }
    }
}

/// A timer of cell `id` fired.
pub(super) fn fire(core: &Core, id: u64, slot: Slot) {
    let Some(s) = STORE.get() else {
        return;
    };
    let work = match slot {
        Slot::Server(t) => Work::Server(Event::Timer(t)),
        Slot::Client(b, t) => Work::Client(b.into(), Event::Timer(t)),
        Slot::Cancel(b, t) => Work::Cancel(b.into(), Event::Timer(t)),
        Slot::Ctx(t) => Work::Ctx(ProxyEvent::Timer(t)),
        Slot::GiveUp(b) => Work::Drop(b.into(), false),
    };
    feed(core, s, id, work);
}

/// Feeds `work` to cell `id` under its lock, then applies the effects; false when there is
/// no such cell.
pub(super) fn feed(core: &Core, s: &Store, id: u64, work: Work) -> bool {
    let now = Instant::now();
    let mut fx = Effects::default();
    let over = s.cells.with(&id, |c| {
        c.run(core, now, work, &mut fx);
        c.compact();
        commit(s, id, c, &mut fx)
    });
    match over {
        None => false,
        Some(true) => {
            if let Some(cell) = s.cells.remove(&id) {
                finish(s, id, cell, fx);
            }
            true
        }
        Some(false) => {
            settle(core, s, id, fx);
            true
        }
    }
}

/// [`apply`], then the failure route the work asked for, if any (no lock held: the route
/// may add branches to the cell).
pub(super) fn settle(core: &Core, s: &Store, id: u64, mut fx: Effects) {
    let failure = fx.failure.take();
    apply(s, fx);
    if let Some(run) = failure {
        if !super::hooks::failure(core, id, *run) {
            feed(core, s, id, Work::Resume);
        }
    }
}

/// What is left of a cell's work once its lock is released: the source's share goes back
/// (the index and timer changes were made under the lock, by [`commit`]).
pub(super) fn apply(s: &Store, fx: Effects) {
    if let Some(src) = fx.release {
        give_back(&s.per_source, src);
    }
}

/// Carries out, while the caller still holds cell `id`'s lock, what the cell's work asks of
/// the client-key index and of the timer queue, and returns whether the cell is over (for
/// [`finish`], which then forgets its keys and timers). Under the lock, because a response
/// handled by another thread as soon as the lock is released may finish the cell: had the
/// keys and timers been added after that, they would stay behind, a key for good and a
/// timer until it fired (every relayed transaction left its `fr_timeout` and timer F armed
/// for 30 s that way).
pub(super) fn commit(s: &Store, id: u64, cell: &mut Cell, fx: &mut Effects) -> bool {
    cell.note_release(fx);
    if cell.is_over() {
        // Nothing new is armed or indexed; what is left armed goes with the cell (`finish`),
        // whoever finishes it.
        fx.arm.clear();
        fx.disarm.clear();
        fx.add_client.clear();
        return true;
    }
    for (k, b) in fx.add_client.drain(..) {
        let _ = s.by_client.insert(k, (id, b));
    }
    for k in fx.drop_client.drain(..) {
        s.by_client.remove(&k);
    }
    timer::update(id, &mut cell.armed, &fx.arm, &fx.disarm);
    fx.arm.clear();
    fx.disarm.clear();
    false
}

/// The cell is over: its keys and timers go.
pub(super) fn finish(s: &Store, id: u64, cell: Box<Cell>, fx: Effects) {
    s.by_server.remove(&cell.server_key);
    if cell.counted || fx.release.is_some() {
        give_back(&s.per_source, cell.source);
    }
    for (i, b) in cell.branches.iter().enumerate() {
        if let Some(c) = b.conn {
            let empty = s.by_conn.with(&c, |set| {
                set.remove(&(id, i));
                set.is_empty()
            });
            if empty == Some(true) {
                s.by_conn.remove(&c);
            }
        }
        s.by_client.remove(&b.key);
        if let Some(c) = &b.cancel {
            s.by_client.remove(&c.0);
        }
    }
    for k in fx.drop_client {
        s.by_client.remove(&k);
    }
    timer::forget(&cell.armed);
    s.live.fetch_sub(1, Ordering::Relaxed);
    timer::ended();
}

/// After a burst (see `timer`): the tables give back their spare capacity.
pub(super) fn shrink() {
    if let Some(s) = STORE.get() {
        s.cells.shrink();
        s.by_server.shrink();
        s.by_client.shrink();
        s.by_conn.shrink();
        s.per_source.shrink();
    }
}
