//! A transaction with more than one branch (RFC 3261 §16.6 forking, §16.7 step 6): branches
//! added to a cell after its first (`lookup()` found several contacts, `append_branch()`, or
//! `t_relay()` in a failure route), closing it once the script is done, and resuming it after
//! its failure route (OpenSIPS tm's `t_on_failure`).
use super::cell::{Branch, BranchDst, BranchReq, Effects, Saved, TmOpts, Work};
use super::store::{commit, feed, finish, settle, store, watch_conn, Store};
use crate::core::send::Core;
use crate::tm::ProxyConfig;
use std::time::Instant;

/// The proxy settings of a cell: the `tm` modparams with the script's `$T_fr_timeout` /
/// `$T_fr_inv_timeout` for this transaction.
pub(super) fn config(s: &Store, opts: &TmOpts) -> ProxyConfig {
    let mut c = s.proxy;
    if let Some(t) = opts.fr_timeout {
        c.fr_timeout = t;
    }
    if let Some(t) = opts.fr_inv_timeout {
        c.fr_inv_timeout = t;
    }
    c
}

/// How many branches cell `id` has (the index of the next one); `None` when it is gone.
pub(crate) fn branch_count(id: u64) -> Option<usize> {
    let s = super::store::STORE.get()?;
    s.cells.with(&id, |c| c.branches.len())
}

/// Adds branch `index` (which must be [`branch_count`]) to cell `id`: `out` (the request as
/// relayed, its Via branch made for `index`) goes to `dst` on a new client transaction.
/// `Ok` with the transport's id for the send; `Err` when the cell is gone, takes no more
/// branches (closed, cancelled, a final response sent, §16.7 step 5) or the send failed (the
/// branch then ends as if answered 503, §16.9).
pub(crate) fn add_branch(
    core: &Core,
    id: u64,
    index: usize,
    dst: BranchDst,
    out: BranchReq<'_>,
) -> Result<u64, String> {
    let s = store();
    let now = Instant::now();
    let key = out.key();
    // Indexed before the send: a response that comes back at once finds its branch.
    s.by_client
        .insert(key.clone(), (id, index))
        .map_err(|_| super::TABLE_FULL.to_string())?;
    let mut fx = Effects::default();
    let added = s.cells.with(&id, |cell| {
        if cell.branches.len() != index {
            return Err(format!(
                "branch {index} is not the next of {}",
                cell.branches.len()
            ));
        }
        let reliable = crate::core::addr::connection_oriented(dst.proto());
        let (txn, acts) = out.client(reliable, s.values, now)?;
        let (b, ctx_acts) = cell.ctx.add_branch(now).map_err(|e| e.to_string())?;
        cell.branches.push(Branch {
            conn: match &dst {
                BranchDst::Conn(c) => Some((c.proto.0, c.conn_id)),
                BranchDst::Addr { .. } => None,
            },
            dst,
            key: key.clone(),
            txn: Some(txn),
            cancel: None,
        });
        let mut queue = std::collections::VecDeque::new();
        cell.client_actions(core, b, acts, &mut fx, &mut queue);
        let sent = fx.first_send.take().unwrap_or(Ok(0));
        // Watched: a client's flow, or an outbound connection this branch opened or reused
        // (its failure ends the branch, §17.1.4).
        let proto = cell.branches[b].dst.proto();
        let conn = match (&cell.branches[b].conn, &sent) {
            (Some(c), _) => Some(*c),
            (None, Ok(conn)) if *conn != 0 && crate::core::addr::connection_oriented(proto) => {
                Some((proto.0, *conn))
            }
            _ => None,
        };
        cell.branches[b].conn = conn;
        cell.proxy_actions(core, ctx_acts, now, &mut fx, &mut queue);
        while let Some(w) = queue.pop_front() {
            cell.run(core, now, w, &mut fx);
        }
        // Watched under the cell's lock, as the keys and timers are (see `commit`).
        if let Some(c) = conn {
            watch_conn(s, c, id, index);
        }
        Ok((sent, commit(s, id, cell, &mut fx)))
    });
    match added {
        Some(Ok((sent, over))) => {
            if over {
                if let Some(cell) = s.cells.remove(&id) {
                    finish(s, id, cell, fx);
                }
            } else {
                settle(core, s, id, fx);
            }
            sent
        }
        Some(Err(e)) => {
            s.by_client.remove(&key);
            Err(e)
        }
        None => {
            s.by_client.remove(&key);
            Err("transaction gone".into())
        }
    }
}

/// The script added every branch of cell `id`: the final response is chosen once they all
/// end (§16.7 step 6).
pub(crate) fn close(core: &Core, id: u64) {
    if let Some(s) = super::store::STORE.get() {
        feed(core, s, id, Work::Close);
    }
}

/// The failure route of cell `id` is over: its held response goes upstream unless the route
/// added branches or replied ([`crate::tm::ProxyContext::resume`]).
pub(crate) fn resume(core: &Core, id: u64) {
    if let Some(s) = super::store::STORE.get() {
        feed(core, s, id, Work::Resume);
    }
}

/// `t_on_failure()` called again in cell `id`'s failure route: the cell runs `failure` the next
/// time its branches all fail, with what is left of `saved` (OpenSIPS re-arms likewise).
pub(crate) fn rearm(id: u64, failure: crate::script::RouteRef, saved: Saved) {
    let Some(s) = super::store::STORE.get() else {
        return;
    };
    s.cells.with(&id, |c| {
        c.opts.failure = Some(failure);
        c.ctx.arm_failure(true);
        c.relay = Some(Box::new(saved));
    });
}
