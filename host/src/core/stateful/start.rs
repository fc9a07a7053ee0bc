//! `t_relay()` starts a cell: its server transaction, its branch's client transaction and its
//! proxy context, stored before the request goes out.
use super::cell::{Branch, BranchDst, BranchReq, BranchTarget, Cell, Effects, Saved, TmOpts};
use super::share::{give_back, take_share, Source};
use super::store::{commit, finish, settle, store, watch_conn, Store, SOURCE_FULL, TABLE_FULL};
use crate::core::send::Core;
use crate::sip::Message;
use crate::tm::{
    Actions, ClientKey, ProxyAction, ProxyContext, ServerInvite, ServerKey, ServerNonInvite,
    Transaction,
};
use sipcore_abi::ReceiveInfo;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What [`relay`] did.
pub(crate) enum Relayed {
    /// The request went out on a new transaction `cell`; `conn` is the id the transport
    /// returned.
    Sent {
        /// The transport's id for the send (a connection, or 0).
        conn: u64,
        /// The transaction's cell (for more branches: [`super::add_branch`]).
        cell: u64,
    },
    /// It retransmits a request whose transaction exists (it came in while the first copy
    /// was being relayed): the caller feeds it there ([`super::absorb`]).
    Exists,
}

/// `t_relay()` of `msg` (not ACK or CANCEL), already rewritten as `out` for `dst`: a cell with
/// its server transaction and one client transaction (branch 0), which sends `out`. With
/// `close`, no branch will be added; else the caller adds them ([`super::add_branch`]) and
/// then closes the cell ([`super::close`]). `Err` (nothing is kept): the transaction table
/// is full (the text says so) or the first send failed (the transport's error), for the
/// caller to answer as a stateless relay does.
pub(crate) fn relay(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    (dst, out): (BranchDst, BranchReq<'_>),
    (opts, st, serial): (
        &TmOpts,
        &crate::core::proxy::ProxyState,
        &[Vec<BranchTarget>],
    ),
    close: bool,
) -> Result<Relayed, String> {
    let s = store();
    let now = Instant::now();
    let server_key = ServerKey::of(msg).map_err(|e| e.to_string())?;
    let client_key = out.key();
    let src = Source::of(info);
    if !take_share(&s.per_source, s.max_per_source, src) {
        return Err(SOURCE_FULL.into());
    }
    let id = s.next_id.fetch_add(1, Ordering::Relaxed);
    match s.by_server.insert(server_key.clone(), id) {
        Ok(()) => {}
        Err(e) => {
            give_back(&s.per_source, src);
            if e == crate::tm::TableError::Exists {
                return Ok(
                    adopt(core, s, &server_key, (dst, out), (opts, st, serial), close)
                        .unwrap_or(Relayed::Exists),
                );
            }
            return Err(TABLE_FULL.into());
        }
    }
    let undo = |s: &Store| {
        s.by_server.remove(&server_key);
        s.by_client.remove(&client_key);
        give_back(&s.per_source, src);
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
        (opts, st, serial, close),
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
        Ok((sent, commit(s, id, cell, &mut fx)))
    });
    match started {
        Some(Ok((sent, over))) => {
            if over {
                if let Some(cell) = s.cells.remove(&id) {
                    finish(s, id, cell, fx);
                }
            } else {
                settle(core, s, id, fx);
            }
            Ok(Relayed::Sent {
                conn: sent,
                cell: id,
            })
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
    out: BranchReq<'_>,
    src: Source,
    keys: (&ServerKey, &ClientKey),
    (opts, st, serial, close): (
        &TmOpts,
        &crate::core::proxy::ProxyState,
        &[Vec<BranchTarget>],
        bool,
    ),
    now: Instant,
) -> Result<NewCell, String> {
    let invite = msg.method_str() == Some("INVITE");
    let reliable_up = crate::core::addr::connection_oriented(info.proto);
    let reliable_down = crate::core::addr::connection_oriented(dst.proto());
    let (server, server_acts) = if invite {
        ServerInvite::new(msg.clone(), reliable_up, s.values)
            .map(|(t, a)| (Transaction::ServerInvite(t), a))
    } else {
        ServerNonInvite::new(msg.clone(), reliable_up, s.values)
            .map(|t| (Transaction::ServerNonInvite(t), Actions::new()))
    }
    .map_err(|e| e.to_string())?;
    let (client, client_acts) = out.client(reliable_down, s.values, now)?;
    s.by_client
        .insert(keys.1.clone(), (id, 0))
        .map_err(|_| TABLE_FULL.to_string())?;
    let mut ctx = ProxyContext::new(invite, super::fork::config(s, opts));
    ctx.arm_failure(opts.failure.is_some());
    let (_, mut ctx_acts) = ctx.add_branch(now).map_err(|e| e.to_string())?;
    if close {
        ctx_acts.append(&mut ctx.close());
    }
    let cell = Box::new(Cell {
        server_key: keys.0.clone(),
        server: Some(server),
        upstream: *info,
        reply_to: crate::core::send::reply_dest(info, msg),
        source: src,
        counted: true,
        shares: std::sync::Arc::clone(&s.per_source),
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
        armed: Default::default(),
        opts: *opts,
        relay: saved(opts, st, serial),
    });
    Ok((cell, server_acts, client_acts, ctx_acts))
}

/// `t_relay()` after `t_newtran()`: the transaction exists without a branch and open; it takes
/// the script's options and `out` becomes its branch 0 (`None`: the transaction is another
/// one's, `msg` retransmits its request).
fn adopt(
    core: &Core,
    s: &Store,
    key: &ServerKey,
    (dst, out): (BranchDst, BranchReq<'_>),
    (opts, st, serial): (
        &TmOpts,
        &crate::core::proxy::ProxyState,
        &[Vec<BranchTarget>],
    ),
    close: bool,
) -> Option<Relayed> {
    let id = s.by_server.with(key, |id| *id)?;
    let open = s.cells.with(&id, |c| {
        let open = c.branches.is_empty() && !c.ctx.is_closed() && c.server.is_some();
        if open {
            c.opts = *opts;
            c.ctx.set_config(super::fork::config(s, opts));
            c.ctx.arm_failure(opts.failure.is_some());
            c.relay = saved(opts, st, serial);
        }
        open
    })?;
    if !open {
        return None;
    }
    let sent = super::fork::add_branch(core, id, 0, dst, out);
    if close || sent.is_err() {
        // A failed first send is answered by the transaction (the branch counts as 503).
        super::fork::close(core, id);
    }
    Some(Relayed::Sent {
        conn: sent.unwrap_or(0),
        cell: id,
    })
}

/// What a cell keeps for its failure route: only when one is armed.
fn saved(
    opts: &TmOpts,
    st: &crate::core::proxy::ProxyState,
    serial: &[Vec<BranchTarget>],
) -> Option<Box<Saved>> {
    opts.failure.map(|_| {
        Box::new(Saved {
            st: crate::core::proxy::ProxyState {
                dst: None,
                ..st.clone()
            },
            serial: serial.to_vec(),
        })
    })
}
