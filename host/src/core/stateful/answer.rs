//! `t_reply(code, reason)` (OpenSIPS tm): a reply sent through the request's server
//! transaction, made here if there is none yet (OpenSIPS's implicit `t_newtran()`), which then
//! answers the request's retransmissions with it (over UDP until timer J or H) instead of
//! running the script again for each.
use super::cell::{Cell, Effects, Work};
use super::share::{give_back, take_share, Source};
use super::store::{apply, commit, feed, finish, store, SOURCE_FULL, TABLE_FULL};
use crate::core::send::Core;
use crate::sip::Message;
use crate::tm::{
    Actions, Event, Outgoing, ProxyContext, ServerInvite, ServerKey, ServerNonInvite, TableError,
    Transaction,
};
use bytes::Bytes;
use sipcore_abi::ReceiveInfo;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Sends `code reason` for `msg` statefully (RFC 3261 §17.2: the server transaction sends
/// it and absorbs the request's retransmissions). `Err`: an ACK (never answered), a request
/// without the fields of a transaction key, or the table or the source's share is full.
pub(crate) fn reply(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    code: u16,
    reason: &str,
) -> Result<(), String> {
    answer(core, info, msg, Some((code, reason)))
}

/// `t_newtran()` (OpenSIPS tm): the server transaction of `msg` is made now (100 Trying for
/// an INVITE), so retransmissions are absorbed while the script works on it; a later
/// `t_relay()` forwards on it and `t_reply()` answers through it. Ok when it exists already.
pub(crate) fn newtran(core: &Core, info: &ReceiveInfo, msg: &Message) -> Result<(), String> {
    answer(core, info, msg, None)
}

fn answer(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    reply: Option<(u16, &str)>,
) -> Result<(), String> {
    if msg.method_str() == Some("ACK") {
        return Err("an ACK is never answered".into());
    }
    let s = store();
    let key = ServerKey::of(msg).map_err(|e| e.to_string())?;
    let Some((code, reason)) = reply else {
        if s.by_server.contains(&key) {
            return Ok(());
        }
        return make(core, s, info, msg, key, None);
    };
    let tag = (code > 100).then(|| crate::sip::stateless_to_tag(msg));
    let tag = tag.as_deref().unwrap_or("");
    let source = info
        .src
        .to_std()
        .map(|a| (a, crate::core::addr::connection_oriented(info.proto)));
    let bytes = crate::sip::build_reply_from(msg, source, code, reason, tag, &[], None);
    let resp = Message::parse(Bytes::from(bytes)).map_err(|e| e.to_string())?;
    let resp = Outgoing::of(&resp).ok_or("the reply built is not a response")?;
    if let Some(id) = s.by_server.with(&key, |id| *id) {
        // t_reply() after t_relay() (or a second t_reply()): its transaction sends it.
        feed(core, s, id, Work::Server(Event::Respond(resp)));
        return Ok(());
    }
    make(core, s, info, msg, key, Some(resp))
}

/// A cell with only a server transaction, answered `resp` (`t_reply()`; closed: no branch
/// will be added) or not yet (`t_newtran()`: open for `t_relay()`).
fn make(
    core: &Core,
    s: &super::store::Store,
    info: &ReceiveInfo,
    msg: &Message,
    key: ServerKey,
    resp: Option<Outgoing>,
) -> Result<(), String> {
    let src = Source::of(info);
    if !take_share(&s.per_source, s.max_per_source, src) {
        return Err(SOURCE_FULL.into());
    }
    let id = s.next_id.fetch_add(1, Ordering::Relaxed);
    match s.by_server.insert(key.clone(), id) {
        Ok(()) => {}
        Err(TableError::Exists) => {
            give_back(&s.per_source, src);
            if let (Some(id), Some(resp)) = (s.by_server.with(&key, |id| *id), resp) {
                feed(core, s, id, Work::Server(Event::Respond(resp)));
            }
            return Ok(());
        }
        Err(TableError::Full) => {
            give_back(&s.per_source, src);
            return Err(TABLE_FULL.into());
        }
    }
    let invite = msg.method_str() == Some("INVITE");
    let reliable = crate::core::addr::connection_oriented(info.proto);
    let made = if invite {
        ServerInvite::new(msg.clone(), reliable, s.values)
            .map(|(t, a)| (Transaction::ServerInvite(t), a))
    } else {
        ServerNonInvite::new(msg.clone(), reliable, s.values)
            .map(|t| (Transaction::ServerNonInvite(t), Actions::new()))
    };
    let (server, first) = match made {
        Ok(m) => m,
        Err(e) => {
            s.by_server.remove(&key);
            give_back(&s.per_source, src);
            return Err(e.to_string());
        }
    };
    let mut ctx = ProxyContext::new(invite, s.proxy);
    if resp.is_some() {
        // No branch will be added: the reply is the TU's own.
        let _ = ctx.close();
    }
    let cell = Box::new(Cell {
        server_key: key.clone(),
        server: Some(server),
        upstream: *info,
        reply_to: crate::core::send::reply_dest(info, msg),
        source: src,
        counted: true,
        shares: std::sync::Arc::clone(&s.per_source),
        ctx,
        branches: Vec::new(),
        armed: Default::default(),
        opts: Default::default(),
        relay: None,
    });
    if s.cells.insert(id, cell).is_err() {
        s.by_server.remove(&key);
        give_back(&s.per_source, src);
        return Err(TABLE_FULL.into());
    }
    s.live.fetch_add(1, Ordering::Relaxed);
    let mut fx = Effects::default();
    let over = s.cells.with(&id, |c| {
        c.server_actions(core, first, &mut fx);
        if let Some(resp) = resp {
            c.run(
                core,
                Instant::now(),
                Work::Server(Event::Respond(resp)),
                &mut fx,
            );
        }
        commit(s, id, c, &mut fx)
    });
    match over {
        Some(true) => {
            if let Some(cell) = s.cells.remove(&id) {
                finish(s, id, cell, fx);
            }
        }
        Some(false) => apply(s, fx),
        None => {}
    }
    Ok(())
}
