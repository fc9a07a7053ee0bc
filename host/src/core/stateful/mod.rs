//! The transaction layer's driver: `t_relay()` as a stateful proxy (RFC 3261 §16 with the
//! transactions of §17), on the pure machines of [`crate::tm`].
//!
//! A relayed request gets a [`Cell`]: its server transaction (100 Trying for an INVITE, the
//! last response resent for a retransmission, the ACK of a non-2xx absorbed), a proxy
//! context (OpenSIPS tm's `fr_timeout` / `fr_inv_timeout`, the choice of the final
//! response, CANCEL of pending branches) and a client transaction per branch (retransmissions
//! over UDP, the ACK of a non-2xx sent hop by hop, 408 when the next hop never answers).
//! Cells live in a sharded [`Table`] by id; two more tables find them by the server key of a
//! request (§17.2.3) and by the client key of a response (§17.1.3). No global lock on the
//! message path: one shard lock per table touched, never two of the same table at once, and
//! a cell's lock is never taken while an index lock is held.
//!
//! The client transactions use the relay's signed branch (its MAC still guards the response
//! path); a response no client transaction knows (a 2xx retransmitted after the transaction
//! ended, RFC 6026) is relayed statelessly as before.
mod cell;
mod timer;

pub(crate) use cell::BranchDst;

use super::send::{peer, Core};
use crate::sip::Message;
use crate::tm::{
    Actions, ClientInvite, ClientKey, ClientNonInvite, Event, ProxyAction, ProxyConfig,
    ProxyContext, ProxyEvent, ServerInvite, ServerKey, ServerNonInvite, Table, TimerValues,
    Transaction,
};
use bytes::Bytes;
use cell::{Branch, Cell, Effects, Slot, Work};
use sipcore_abi::ReceiveInfo;
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
    /// Most transactions held at once (sipcore's): beyond, `t_relay()` answers 503.
    pub max_transactions: u32,
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
            max_transactions: 100_000,
            max_per_source: 1000,
        }
    }
}

struct Store {
    /// Boxed: a cell is ~1.3 KB, and the map keeps spare slots.
    cells: Table<u64, Box<Cell>>,
    by_server: Table<ServerKey, u64>,
    by_client: Table<ClientKey, (u64, usize)>,
    /// Transactions held per source (see [`TmConfig::max_per_source`]).
    per_source: Table<Source, u32>,
    max_per_source: u32,
    /// Branches by the connection they went out on: (cell id, branch).
    by_conn: Table<(u8, u64), HashSet<(u64, usize)>>,
    next_id: AtomicU64,
    /// Cells alive: the receive path skips the server-key lookup while it is 0.
    live: AtomicUsize,
    proxy: ProxyConfig,
    values: TimerValues,
}

static CONFIG: OnceLock<TmConfig> = OnceLock::new();
static STORE: OnceLock<Store> = OnceLock::new();

/// Apply the `tm` modparams (before the first message).
pub(crate) fn configure(cfg: TmConfig) {
    let _ = CONFIG.set(cfg);
}

fn store() -> &'static Store {
    STORE.get_or_init(|| {
        let cfg = CONFIG.get().copied().unwrap_or_default();
        let values = TimerValues::new(
            Duration::from_millis(cfg.t1_ms.into()),
            Duration::from_millis(cfg.t2_ms.max(cfg.t1_ms).into()),
            Duration::from_secs(5),
        )
        .unwrap_or_default();
        let cap = cfg.max_transactions as usize;
        Store {
            cells: Table::new(64, cap),
            by_server: Table::new(64, cap),
            by_client: Table::new(64, cap.saturating_mul(2)),
            by_conn: Table::new(64, cap),
            per_source: Table::new(64, cap),
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
/// branches count once), as a [`crate::stats::Source`].
pub(crate) fn stats(out: &mut Vec<crate::stats::Sample>) {
    let n = STORE.get().map_or(0, |s| s.live.load(Ordering::Relaxed));
    out.push(crate::stats::Sample::new(
        "tm",
        "inuse_transactions",
        n as u64,
        true,
        "transactions held now (t_relay)",
    ));
}

/// The error text of [`relay`] when the table is full.
pub(crate) const TABLE_FULL: &str = "transaction table full";
/// The error text of [`relay`] when the source holds its share.
pub(crate) const SOURCE_FULL: &str = "too many transactions from this source";

/// Whom a transaction is counted against: the connection, or the IP address (UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Source {
    Conn(u8, u64),
    Ip(u8, std::net::IpAddr),
}

impl Source {
    fn of(info: &ReceiveInfo) -> Source {
        match info.src.to_std() {
            Some(a) if !super::addr::connection_oriented(info.proto) => {
                Source::Ip(info.proto.0, a.ip().to_canonical())
            }
            _ => Source::Conn(info.proto.0, info.conn_id),
        }
    }
}

/// Counts one more transaction for `src`; false (nothing counted) at the limit.
fn take_share(s: &Store, src: Source) -> bool {
    loop {
        match s.per_source.with(&src, |n| {
            if *n >= s.max_per_source {
                false
            } else {
                *n += 1;
                true
            }
        }) {
            Some(ok) => return ok,
            None => match s.per_source.insert(src, 1) {
                Ok(()) => return true,
                Err(crate::tm::TableError::Exists) => continue,
                Err(crate::tm::TableError::Full) => return false,
            },
        }
    }
}

fn give_back(s: &Store, src: Source) {
    let left = s.per_source.with(&src, |n| {
        *n = n.saturating_sub(1);
        *n
    });
    if left == Some(0) {
        // A racing take_share between the two locks counts again from 1 on a new entry.
        s.per_source.remove(&src);
    }
}

/// What [`relay`] did.
pub(crate) enum Relayed {
    /// The request went out on a new transaction; the id the transport returned.
    Sent(u64),
    /// It retransmits a request whose transaction exists: absorbed there.
    Absorbed,
}

/// `t_relay()` of `msg` (not ACK or CANCEL), already rewritten as `out` for `dst`: a cell with
/// its server transaction and one client transaction, which sends `out`. `Err` (nothing is
/// kept): the transaction table is full (the text says so) or the first send failed (the
/// transport's error), for the caller to answer as a stateless relay does.
pub(crate) fn relay(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    dst: BranchDst,
    out: Vec<u8>,
) -> Result<Relayed, String> {
    let s = store();
    let now = Instant::now();
    let server_key = ServerKey::of(msg).map_err(|e| e.to_string())?;
    let out = Message::parse(Bytes::from(out)).map_err(|e| e.to_string())?;
    let client_key = ClientKey::of(&out).map_err(|e| e.to_string())?;
    let src = Source::of(info);
    if !take_share(s, src) {
        return Err(SOURCE_FULL.into());
    }
    let id = s.next_id.fetch_add(1, Ordering::Relaxed);
    match s.by_server.insert(server_key.clone(), id) {
        Ok(()) => {}
        Err(e) => {
            give_back(s, src);
            if e == crate::tm::TableError::Exists {
                absorb(core, info, msg);
                return Ok(Relayed::Absorbed);
            }
            return Err(TABLE_FULL.into());
        }
    }
    let undo = |s: &Store| {
        s.by_server.remove(&server_key);
        s.by_client.remove(&client_key);
        give_back(s, src);
    };
    let cell = match new_cell(
        s,
        id,
        info,
        msg,
        dst,
        out,
        src,
        (&server_key, &client_key),
        now,
    ) {
        Ok(c) => c,
        Err(e) => {
            undo(s);
            return Err(e);
        }
    };
    let (cell, server_acts, client_acts, ctx_acts) = cell;
    // Stored before anything is sent, and set going under its lock: a response that comes
    // back at once (another I/O thread) waits for the lock and finds its transaction.
    if s.cells.insert(id, cell).is_err() {
        undo(s);
        return Err(TABLE_FULL.into());
    }
    s.live.fetch_add(1, Ordering::Relaxed);
    let mut fx = Effects::default();
    let started = s.cells.with(&id, |cell| {
        let mut queue = std::collections::VecDeque::new();
        cell.server_actions(core, server_acts, &mut fx);
        cell.client_actions(core, 0, client_acts, &mut fx, &mut queue);
        let sent = match fx.first_send.take() {
            Some(Err(e)) => return Err(e),
            Some(Ok(id)) => id,
            None => 0,
        };
        // Watched: a client's connection (a registered flow). An outbound connection we
        // opened is `pending`'s until it carries something (its failure moves the request
        // to the next target, RFC 3263 §4.3); after that, fr_timeout ends the branch.
        if let Some(c) = cell.branches[0].conn {
            watch_conn(s, c, id, 0);
        }
        cell.proxy_actions(core, ctx_acts, now, &mut fx, &mut queue);
        while let Some(w) = queue.pop_front() {
            cell.run(core, now, w, &mut fx);
        }
        Ok((sent, cell.is_over()))
    });
    match started {
        Some(Ok((sent, over))) => {
            if over {
                if let Some(cell) = s.cells.remove(&id) {
                    finish(s, id, cell, fx);
                }
            } else {
                apply(s, id, fx);
            }
            Ok(Relayed::Sent(sent))
        }
        Some(Err(e)) => {
            // Answered by the caller as the stateless relay answers it (next target or 503).
            if let Some(cell) = s.cells.remove(&id) {
                finish(s, id, cell, Effects::default());
            }
            Err(e)
        }
        None => Err("transaction vanished".into()),
    }
}

/// What [`new_cell`] makes: the cell and the first actions of its server transaction, its
/// branch's client transaction and its proxy context.
type NewCell = (Box<Cell>, Actions, Actions, Vec<ProxyAction>);

/// The machines of a new cell for `msg` relayed as `out` to `dst` (keys already indexed).
#[allow(clippy::too_many_arguments)]
fn new_cell(
    s: &Store,
    id: u64,
    info: &ReceiveInfo,
    msg: &Message,
    dst: BranchDst,
    out: Message,
    src: Source,
    keys: (&ServerKey, &ClientKey),
    now: Instant,
) -> Result<NewCell, String> {
    let invite = msg.method_str() == Some("INVITE");
    let reliable_up = super::addr::connection_oriented(info.proto);
    let reliable_down = super::addr::connection_oriented(dst.proto());
    let (server, server_acts) = if invite {
        ServerInvite::new(msg.clone(), reliable_up, s.values)
            .map(|(t, a)| (Transaction::ServerInvite(t), a))
    } else {
        ServerNonInvite::new(msg.clone(), reliable_up, s.values)
            .map(|t| (Transaction::ServerNonInvite(t), Actions::new()))
    }
    .map_err(|e| e.to_string())?;
    let (client, client_acts) = if invite {
        ClientInvite::new(out, reliable_down, s.values, now)
            .map(|(t, a)| (Transaction::ClientInvite(t), a))
    } else {
        ClientNonInvite::new(out, reliable_down, s.values, now)
            .map(|(t, a)| (Transaction::ClientNonInvite(t), a))
    }
    .map_err(|e| e.to_string())?;
    s.by_client
        .insert(keys.1.clone(), (id, 0))
        .map_err(|_| TABLE_FULL.to_string())?;
    let mut ctx = ProxyContext::new(invite, s.proxy);
    let (_, mut ctx_acts) = ctx.add_branch(now).map_err(|e| e.to_string())?;
    // One branch (forking comes with append_branch()): no more will be added.
    ctx_acts.append(&mut ctx.close());
    let cell = Box::new(Cell {
        server_key: keys.0.clone(),
        server: Some(server),
        upstream: *info,
        source: src,
        ctx,
        branches: vec![Branch {
            conn: match &dst {
                BranchDst::Conn(c) => Some((c.proto.0, c.conn_id)),
                BranchDst::Addr { .. } => None,
            },
            dst,
            key: keys.1.clone(),
            txn: Some(client),
            cancel: None,
        }],
        values: s.values,
    });
    Ok((cell, server_acts, client_acts, ctx_acts))
}

/// A received request that belongs to a transaction held here (a retransmission, or the ACK
/// of a non-2xx response: §17.2.3): fed to it; true when it ends there. An ACK the INVITE
/// server transaction passes up (RFC 6026 §7.1, a 2xx's ACK with the INVITE's branch) is not
/// absorbed: the script relays it.
pub(crate) fn absorb(core: &Core, info: &ReceiveInfo, msg: &Message) -> bool {
    let Some(s) = STORE.get() else {
        return false;
    };
    if s.live.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let Ok(key) = ServerKey::of(msg) else {
        return false;
    };
    let Some(id) = s.by_server.with(&key, |id| *id) else {
        return false;
    };
    let ack = msg.method_str() == Some("ACK");
    if ack {
        // In the Accepted state (a 2xx was sent) the ACK is the 2xx's, end to end (RFC 6026
        // §7.1): the script relays it.
        let matches = s
            .cells
            .with(&id, |c| match c.server.as_ref() {
                Some(Transaction::ServerInvite(t)) => {
                    t.state() != crate::tm::State::Accepted && t.ack_matches(msg)
                }
                _ => false,
            })
            .unwrap_or(false);
        if !matches {
            return false;
        }
    }
    feed(core, s, id, Work::Server(Event::Received(msg.clone())));
    crate::log!(Debug, "tm", "{} absorbed by its transaction", msg.method_str().unwrap_or("request");
        "peer" => peer(info));
    true
}

/// A response for one of our client transactions (§17.1.3): fed to it; true when one took
/// it (else the caller relays it statelessly).
pub(crate) fn on_response(core: &Core, msg: &Message) -> bool {
    let Some(s) = STORE.get() else {
        return false;
    };
    if s.live.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let Ok(key) = ClientKey::of(msg) else {
        return false;
    };
    let Some((id, b)) = s.by_client.with(&key, |v| *v) else {
        return false;
    };
    let work = if key.method() == "CANCEL" {
        Work::Cancel(b, Event::Received(msg.clone()))
    } else {
        Work::Client(b, Event::Received(msg.clone()))
    };
    feed(core, s, id, work)
}

/// `t_relay()` of a CANCEL (§16.10): when the INVITE it cancels has a transaction here, the
/// CANCEL is answered 200 and the INVITE's pending branches are cancelled; true then. Else
/// the caller relays it statelessly.
pub(crate) fn cancel(core: &Core, info: &ReceiveInfo, msg: &Message) -> bool {
    let Some(s) = STORE.get() else {
        return false;
    };
    let Ok(key) = ServerKey::of_cancelled(msg) else {
        return false;
    };
    let Some(id) = s.by_server.with(&key, |id| *id) else {
        return false;
    };
    if let Err(e) = core.reply(info, msg, 200, "OK", &[]) {
        crate::log!(Info, "tm", "200 for CANCEL not sent: {}", e; "peer" => peer(info));
    }
    feed(core, s, id, Work::Ctx(ProxyEvent::Cancel));
    true
}

/// The outbound connection `msg`'s branch went out on failed before carrying anything (see
/// `pending`): the branch ends as if answered 503 (§16.9); true when `msg` has a transaction.
pub(crate) fn unreachable(core: &Core, msg: &Message) -> bool {
    let Some(s) = STORE.get() else {
        return false;
    };
    let Some(id) = ServerKey::of(msg)
        .ok()
        .and_then(|k| s.by_server.with(&k, |id| *id))
    else {
        return false;
    };
    feed(core, s, id, Work::Drop(0, true))
}

/// Remember that branch `b` of cell `id` went out over connection `c`.
fn watch_conn(s: &Store, c: (u8, u64), id: u64, b: usize) {
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

/// A connection closed (`HostApi::conn_closed`): every branch that went out over it ends at
/// once as unreachable (§17.1.4: a transport error; the callee is gone), instead of holding
/// its transaction until `fr_timeout` or forever (an INVITE answered provisionally has no
/// timer of its own).
pub(crate) fn connection_closed(core: &Core, proto: sipcore_abi::Proto, conn_id: u64) {
    let Some(s) = STORE.get() else {
        return;
    };
    let Some(branches) = s.by_conn.remove(&(proto.0, conn_id)) else {
        return;
    };
    for (id, b) in branches {
        feed(core, s, id, Work::Drop(b, true));
    }
}

/// A timer of cell `id` fired.
fn fire(core: &Core, id: u64, slot: Slot) {
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
fn feed(core: &Core, s: &Store, id: u64, work: Work) -> bool {
    let now = Instant::now();
    let mut fx = Effects::default();
    let over = s.cells.with(&id, |c| {
        c.run(core, now, work, &mut fx);
        c.is_over()
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
            apply(s, id, fx);
            true
        }
    }
}

fn apply(s: &Store, id: u64, fx: Effects) {
    for (k, b) in fx.add_client {
        let _ = s.by_client.insert(k, (id, b));
    }
    for k in fx.drop_client {
        s.by_client.remove(&k);
    }
    timer::update(id, &fx.arm, &fx.disarm);
}

/// The cell is over: its keys and timers go.
fn finish(s: &Store, id: u64, cell: Box<Cell>, fx: Effects) {
    s.by_server.remove(&cell.server_key);
    give_back(s, cell.source);
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
        if let Some((k, _)) = &b.cancel {
            s.by_client.remove(k);
        }
    }
    for k in fx.drop_client {
        s.by_client.remove(&k);
    }
    timer::forget(id, cell.branches.len());
    s.live.fetch_sub(1, Ordering::Relaxed);
    timer::ended();
}

/// After a burst (see `timer`): the tables give back their spare capacity.
fn shrink() {
    if let Some(s) = STORE.get() {
        s.cells.shrink();
        s.by_server.shrink();
        s.by_client.shrink();
        s.by_conn.shrink();
        s.per_source.shrink();
    }
}
