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
//!
//! Files, imports flowing one way: `share` (each source's share) and `timer` (the timer
//! thread, which calls back through the functions `store` installs) are leaves; `cell` (one
//! cell's machines) uses `share`; `store` (tables, feeding a cell) uses those; `start`
//! (`t_relay()` starting a cell) and `answer` (`t_reply()`) use `store`; this file is the
//! receive path's entry points.
mod answer;
mod cell;
mod fork;
mod hooks;
mod share;
mod start;
mod store;
mod timer;

pub(crate) use answer::{newtran, reply};
pub(crate) use cell::{BranchDst, BranchReq, BranchTarget, FailureRun, Saved, TmOpts};
pub(crate) use fork::{add_branch, branch_count, close, rearm, resume};
pub(crate) use hooks::{install as install_hooks, Hooks};
pub(crate) use start::{relay, Relayed};
pub use store::TmConfig;
pub(crate) use store::{configure, stats, SOURCE_FULL, TABLE_FULL};

use super::send::{peer, Core};
use crate::sip::Message;
use crate::tm::{ClientKey, Event, ProxyEvent, ServerKey, Transaction};
use cell::Work;
use sipcore_abi::ReceiveInfo;
use std::sync::atomic::Ordering;
use store::{feed, STORE};

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
    feed(core, s, id, Work::Server(Event::received(msg.clone())));
    crate::log!(Debug, "tm", "{} absorbed by its transaction", msg.method_str().unwrap_or("request");
        "peer" => peer(info));
    true
}

/// A response for one of our client transactions (§17.1.3): fed to it, after the
/// `onreply_route[...]` that `t_on_reply()` armed for its transaction (which may drop a
/// provisional response); true when a transaction took it (else the caller relays it
/// statelessly).
pub(crate) fn on_response(core: &Core, info: &ReceiveInfo, msg: &Message) -> bool {
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
    let route = s.cells.with(&id, |c| c.opts.on_reply).flatten();
    let mut rewritten = None;
    if let Some(route) = route {
        let provisional = msg.status().is_some_and(|c| c < 200);
        match hooks::reply(core, info, msg, route) {
            None if provisional => {
                crate::log!(Debug, "tm", "reply {} dropped by its onreply_route", msg.status().unwrap_or(0);
                    "peer" => peer(info));
                return true;
            }
            None => {}
            // fix_nated_contact() in the route: the branch gets the rewritten response.
            Some(m) => rewritten = m,
        }
    }
    let msg = rewritten.as_ref().unwrap_or(msg);
    let work = if key.method() == "CANCEL" {
        Work::Cancel(b, Event::received(msg.clone()))
    } else {
        Work::Client(b, Event::received(msg.clone()))
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
    let Some(id) = cancelled_cell(s, info, msg) else {
        return false;
    };
    if let Err(e) = core.reply(info, msg, 200, "OK", &[]) {
        crate::log!(Info, "tm", "200 for CANCEL not sent: {}", e; "peer" => peer(info));
    }
    feed(core, s, id, Work::Ctx(ProxyEvent::Cancel));
    true
}

/// The cell of the INVITE the CANCEL `msg` cancels (§9.2), if it came from the same hop.
/// Only the hop the INVITE came from may cancel it: the key is made of the client's own Via,
/// which another client could copy (a callee sees the caller's Via). A CANCEL from elsewhere
/// matches nothing here; relayed statelessly, its branch (signed with its own hop) matches
/// nothing downstream either.
fn cancelled_cell(s: &store::Store, info: &ReceiveInfo, msg: &Message) -> Option<u64> {
    let key = ServerKey::of_cancelled(msg).ok()?;
    let id = s.by_server.with(&key, |id| *id)?;
    let same_hop = s
        .cells
        .with(&id, |c| {
            super::addr::hop_of(&c.upstream) == super::addr::hop_of(info)
        })
        .unwrap_or(false);
    if !same_hop {
        crate::log!(Info, "tm", "CANCEL from another hop than its INVITE's: not matched"; "peer" => peer(info));
        return None;
    }
    Some(id)
}

/// `t_check_trans()`: for a CANCEL, whether the INVITE it cancels has a transaction here
/// (§9.2) that this CANCEL may cancel (it came from the INVITE's hop, as [`cancel`] requires);
/// for another request, whether it belongs to one (§17.2.3: a retransmission, or an ACK the
/// receive path let through to the script, RFC 6026 §7.1). Retransmissions and the ACKs of
/// non-2xx responses are absorbed before the script runs, so a script sees `false` for those,
/// and OpenSIPS's `if (t_check_trans()) t_relay(); exit;` does what it does there. (A CANCEL
/// that matched by key from another hop made that `t_relay()` relay it statelessly to the
/// Request-URI the client wrote: a callee could make the server connect where it chose.)
pub(crate) fn check_trans(info: &ReceiveInfo, msg: &Message) -> bool {
    let Some(s) = STORE.get() else {
        return false;
    };
    if msg.method_str() == Some("CANCEL") {
        return cancelled_cell(s, info, msg).is_some();
    }
    ServerKey::of(msg).is_ok_and(|k| s.by_server.contains(&k))
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
