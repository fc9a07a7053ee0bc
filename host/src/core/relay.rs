//! Stateless relay (`forward()`, `t_relay()`): RFC 3261 §16 as a stateless proxy.
//!
//! A request goes over the connection `lookup()` or a flow token chose, else to the URI given
//! to `forward("sip:...")`, else `$du`, else the (possibly rewritten) Request-URI, over the
//! transport its `transport=` parameter names (UDP when it names none, RFC 3261 §18.1.1). The
//! relay adds this server's Via with a signed stateless branch ([`crate::sip::signed_branch`]:
//! §16.11, the same request, its retransmissions and its CANCEL get the same branch) naming
//! the hop the request came from, and `received`/`rport` on the previous top Via (§18.2.1,
//! RFC 3581).
//!
//! A response is routed by that branch alone: if its MAC verifies, the response goes over the
//! connection it names (never to an address: a closed connection drops the response), or for
//! a connectionless hop to the address the next Via gives, which must be the hop's. A
//! response whose branch does not verify reaches nobody.
use super::addr::{connection_oriented, hop_of, ConnDst};
use super::locate;
use super::proxy::{self, ProxyState};
use super::secret::key;
use super::send::{peer, Core};
use super::stateful::TmOpts;
use crate::dns::DnsError;
use crate::sip::{
    forward_request, forward_response, BranchText, EditError, ForwardRequest, Hop, LoopKey, Message,
};
use sipcore_abi::{Proto, ReceiveInfo};
use std::net::SocketAddr;

/// Where a relayed message goes.
struct Next {
    proto: Proto,
    addr: SocketAddr,
    /// Further targets of the location result over `proto`, tried in order when a connection
    /// to the one before fails before carrying anything (RFC 3263 §4.3; see `pending`).
    alternates: Vec<SocketAddr>,
    /// The host they were located from (TLS: the name the certificate must carry).
    host: String,
}

impl From<locate::Located> for Next {
    fn from(l: locate::Located) -> Self {
        Next {
            proto: l.proto,
            addr: l.addr,
            alternates: l.alternates,
            host: l.host,
        }
    }
}

/// Where `forward()` may send a request, in order of precedence after a connection chosen by
/// `lookup()` or a flow token: the function's argument, `$du`, the rewritten Request-URI, the
/// received Request-URI.
pub(crate) struct Dest<'a> {
    /// `forward("sip:...")`.
    pub explicit: Option<&'a str>,
    /// `$du`.
    pub du: Option<&'a str>,
    /// `$ru`, if the script rewrote it.
    pub ru: Option<&'a str>,
}

/// Send a stateless reply to `msg` (never to an ACK) for a relay failure; true when sent
/// (counted as `sl:sent_err_replies`).
fn reply(core: &Core, info: &ReceiveInfo, msg: &Message, code: u16, reason: &str) -> bool {
    let sent = core.reply(info, msg, code, reason, &[]).unwrap_or(false);
    if sent {
        crate::stats::counters::SL_SENT_ERR.inc();
    }
    sent
}

/// Where a request goes: an open connection, or an address.
enum Target {
    Conn(ConnDst),
    Addr(Next),
}

/// `forward([uri])` / `t_relay()`: returns 1 when sent, -1 otherwise (logged), and whether a
/// reply was sent here: 483 when Max-Forwards is exhausted, 482 on a loop, 513 when the
/// relayed request would exceed the parser's limits, 430 (flow token) or 480 (location) when
/// the chosen connection is gone, 403 for a bad flow token, 503 when the next hop's address
/// cannot be sent to, now or (see `pending`) when its connection fails before carrying
/// anything, and no further target of its location result is left (RFC 3263 §4.3). A host name that is not cached is resolved off this thread (RFC 3263): 1 is
/// returned at once and the relay completes later.
pub(crate) fn forward(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    dest: Dest<'_>,
    st: &ProxyState,
    auto_reply: bool,
    opts: &TmOpts,
) -> (i64, bool) {
    forward_to(core, info, msg, dest, st, (auto_reply, opts), None)
}

/// [`forward`], with the destination's address already resolved when `resolved` is given.
fn forward_to(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    dest: Dest<'_>,
    st: &ProxyState,
    (auto_reply, opts): (bool, &TmOpts),
    resolved: Option<Next>,
) -> (i64, bool) {
    // t_relay() answers its own failures, as OpenSIPS's t_relay does by default; forward()
    // leaves that to the script (except 483, 513 and 503 for an unreachable next hop, which it
    // always sends).
    let fail = |code: u16, reason: &str| (-1, auto_reply && reply(core, info, msg, code, reason));
    if auto_reply && st.bad_token {
        return fail(403, "Forbidden (flow token)");
    }
    let method = msg.method_str();
    if auto_reply && method == Some("CANCEL") && super::stateful::cancel(core, info, msg) {
        // §16.10: answered here, and the INVITE's pending branches get their CANCEL.
        return (1, true);
    }
    // t_relay() is stateful (RFC 3261 §16 with §17 transactions); an ACK never has a
    // transaction of its own and a CANCEL of an INVITE not held here is relayed as is.
    let stateful = auto_reply && !matches!(method, Some("ACK" | "CANCEL"));
    let conn = if dest.explicit.is_none() {
        st.dst
    } else {
        None
    };
    let next = match conn {
        Some(c) => Target::Conn(c),
        None => {
            let Some(dest_uri) = dest.explicit.or(dest.du).or(dest.ru).or(msg.ruri()) else {
                crate::log!(Error, "core", "forward(): no destination"; "peer" => peer(info));
                return (-1, false);
            };
            let lookup = match resolved {
                Some(n) => Ok(Some(n)),
                None => resolve_or_defer(core, info, msg, &dest, dest_uri, (st, opts)),
            };
            match lookup {
                Ok(Some(n)) => Target::Addr(n),
                Ok(None) => return (1, false),
                Err(e) => {
                    crate::log!(Info, "core", "forward(): {}", e; "peer" => peer(info));
                    let (code, reason) = locate::failure_answer(&e);
                    return fail(code, reason);
                }
            }
        }
    };
    let out = match &next {
        Target::Conn(c) => proxy::Outbound::Conn(c.proto, c.conn_id),
        Target::Addr(n) => proxy::Outbound::Addr(n.proto, n.addr),
    };
    #[allow(unused_mut)]
    let (mut out, branch) = match build_out(core, info, msg, dest.ru, out, st, 0, auto_reply) {
        Ok(o) => o,
        Err(r) => return r,
    };
    if stateful {
        match relay_stateful(core, info, msg, &next, (out, &branch), (opts, st)) {
            Ok(r) => return r,
            Err(back) => out = back,
        }
    }
    match next {
        Target::Conn(c) => match core.send_conn(&c, &out) {
            Ok(_) => {
                crate::stats::counters::CORE_FWD_REQUESTS.inc();
                (1, false)
            }
            Err(e) => {
                crate::stats::counters::CORE_DROP_REQUESTS.inc();
                crate::log!(Info, "core", "forward() over connection {} failed ({}): {} {}", c.conn_id, e, c.gone.0, c.gone.1;
                    "peer" => peer(info));
                fail(c.gone.0, c.gone.1)
            }
        },
        Target::Addr(n) => {
            let sent = core.send_to(n.proto, n.addr, Some(&n.host), &out);
            match &sent {
                Ok(_) => crate::stats::counters::CORE_FWD_REQUESTS.inc(),
                Err(e) => {
                    crate::stats::counters::CORE_DROP_REQUESTS.inc();
                    crate::log!(Warning, "core", "forward() to {} failed: {}", n.addr, e; "peer" => peer(info));
                }
            }
            let retry = super::pending::Retry {
                proto: n.proto,
                out: bytes::Bytes::from(out),
                rest: n.alternates,
                host: n.host,
            };
            match sent {
                Ok(id) if connection_oriented(n.proto) && id != 0 => {
                    super::pending::watch(core, n.proto, id, info, msg, Some(retry));
                    (1, false)
                }
                Ok(_) => (1, false),
                // As when its connection fails later (`pending`): the next target, or 503
                // from forward() too, so the client hears the same whichever thread saw the
                // failure first.
                Err(_) if super::pending::next_target(core, info, msg, retry) => (1, false),
                Err(_) => (-1, reply(core, info, msg, 503, "Service Unavailable")),
            }
        }
    }
}

/// The request as it leaves for `out` (a connection, or an address) as branch `index` of
/// its transaction: our Via with the signed branch, Record-Route, the script's
/// header edits, Max-Forwards decremented (RFC 3261 §16.6). `Err` is what the relay
/// returns: -1 after 482 (loop), 483 or 513, or -1 without a reply.
#[allow(clippy::too_many_arguments)]
pub(super) fn build_out(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    ru: Option<&str>,
    out: proxy::Outbound,
    st: &ProxyState,
    index: u8,
    auto_reply: bool,
) -> Result<(Vec<u8>, BranchText), (i64, bool)> {
    let fail = |code: u16, reason: &str| (-1, auto_reply && reply(core, info, msg, code, reason));
    let (proto, out_conn, to) = match out {
        proxy::Outbound::Conn(p, id) => (p, id, None),
        proxy::Outbound::Addr(p, a) => (p, 0, Some(a)),
    };
    let Some((via_host, via_port)) = core.via_for(proto, to) else {
        crate::log!(Error, "core", "forward(): no {} socket to send from", proto.name(); "peer" => peer(info));
        return Err((-1, false));
    };
    let Some(hop) = hop_of(info) else {
        crate::log!(Error, "core", "forward(): the request has no source to answer to"; "peer" => peer(info));
        return Err((-1, false));
    };
    let loop_key = LoopKey::of(msg, ru);
    let looped = crate::sip::is_looped(msg, &loop_key, key(), |v| {
        v.host().trim_start_matches('[').trim_end_matches(']') == via_host
            && v.port().unwrap_or(via_port) == via_port
    });
    if looped {
        crate::log!(Info, "core", "forward(): loop detected (our Via with this request's loop hash), 482";
            "peer" => peer(info), "callid" => msg.call_id().unwrap_or(""));
        return Err(fail(482, "Loop Detected"));
    }
    let rr = if st.record_route {
        proxy::record_route_value(core, info, out)
    } else {
        None
    };
    let path = match st.path {
        Some(received) if msg.method_str() == Some("REGISTER") => {
            proxy::path_value(core, info, (proto, out_conn), received)
        }
        _ => None,
    };
    let remove: Vec<&str> = st.remove_headers.iter().map(String::as_str).collect();
    let add: Vec<(&str, &str)> = st
        .add_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let branch = crate::sip::signed_branch_n(msg, &loop_key, &hop, index, key());
    let mut fwd = ForwardRequest::new(proto.via_token(), via_host, via_port);
    fwd.request_uri = ru;
    fwd.source = info.src.to_std();
    fwd.force_rport = connection_oriented(info.proto);
    fwd.record_route = rr.as_deref();
    fwd.path = path.as_deref();
    fwd.pop_routes = st.pop_routes;
    fwd.remove_headers = &remove;
    fwd.add_headers = &add;
    fwd.default_max_forwards = st.default_max_forwards;
    fwd.loop_key = Some(loop_key);
    fwd.branch = Some(branch.as_str());
    match forward_request(msg, &fwd) {
        Ok(b) => Ok((b, branch)),
        Err(EditError::TooManyHops) => Err((-1, reply(core, info, msg, 483, "Too Many Hops"))),
        Err(EditError::TooLarge(what)) => {
            crate::log!(Info, "core", "forward(): relayed, the request would exceed the parser's limits ({}): 513", what;
                "peer" => peer(info));
            Err((-1, reply(core, info, msg, 513, "Message Too Large")))
        }
        Err(e) => {
            crate::log!(Warning, "core", "forward(): cannot relay this request: {}", e; "peer" => peer(info));
            Err((-1, false))
        }
    }
}

/// `t_relay()`: `out` goes out on a new transaction ([`super::stateful::relay`]). `Err` gives
/// `out` back when its first send failed, for the stateless path to answer (the next target
/// of a location result, or 503); a full transaction table is answered 503 here.
fn relay_stateful(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    next: &Target,
    (out, branch): (Vec<u8>, &BranchText),
    tm: (&TmOpts, &ProxyState),
) -> Result<(i64, bool), Vec<u8>> {
    use super::stateful::{BranchDst, BranchReq, Relayed};
    let dst = match next {
        Target::Conn(c) => BranchDst::Conn(*c),
        Target::Addr(n) => BranchDst::Addr {
            proto: n.proto,
            addr: n.addr,
            host: n.host.clone(),
        },
    };
    // Shared, not copied: the pending watch and the failure path keep the same bytes.
    let out = bytes::Bytes::from(out);
    let keep = out.clone();
    let out = BranchReq {
        bytes: out,
        branch: branch.as_str(),
        method: msg.method_str().unwrap_or_default(),
    };
    match super::stateful::relay(core, info, msg, (dst, out), (tm.0, tm.1, &[]), true) {
        Ok(Relayed::Exists) => {
            super::stateful::absorb(core, info, msg);
            Ok((0, false))
        }
        Ok(Relayed::Sent { conn: id, .. }) => {
            crate::stats::counters::CORE_FWD_REQUESTS.inc();
            if let Target::Addr(n) = next {
                if connection_oriented(n.proto) && id != 0 {
                    let retry = super::pending::Retry {
                        proto: n.proto,
                        out: keep,
                        rest: n.alternates.clone(),
                        host: n.host.clone(),
                    };
                    super::pending::watch(core, n.proto, id, info, msg, Some(retry));
                }
            }
            Ok((1, false))
        }
        Err(e) if e == super::stateful::TABLE_FULL || e == super::stateful::SOURCE_FULL => {
            Ok((-1, answer_full(core, info, msg, &e)))
        }
        Err(e) => {
            crate::log!(Debug, "tm", "t_relay(): first send failed: {}", e; "peer" => peer(info));
            Err(keep.to_vec())
        }
    }
}

/// `t_relay()` when the transaction table or the source's share is full: 503 with
/// `Retry-After`; whether it was sent.
pub(super) fn answer_full(core: &Core, info: &ReceiveInfo, msg: &Message, why: &str) -> bool {
    crate::log!(Warning, "tm", "t_relay(): {}: 503", why; "peer" => peer(info));
    let sent = core
        .reply(
            info,
            msg,
            503,
            "Service Unavailable",
            &[("Retry-After", "5")],
        )
        .unwrap_or(false);
    if sent {
        crate::stats::counters::SL_SENT_ERR.inc();
    }
    sent
}

/// The hop a response goes back to (RFC 3261 §16.7 steps 3 and 9, stateless): `None` when it
/// is not for us (top Via not ours: dropped, debug) or is forged (our Via with a branch whose
/// MAC does not verify, or a next Via of another transaction: dropped, one info line with the
/// peer).
pub(crate) fn reply_hop(core: &Core, info: &ReceiveInfo, msg: &Message) -> Option<Hop> {
    let code = msg.status().unwrap_or(0);
    let top = msg.top_via().ok();
    let ours = top.as_ref().is_some_and(|v| {
        let (host, port) = (
            v.host().trim_start_matches('[').trim_end_matches(']'),
            v.port(),
        );
        let ip = host.parse::<std::net::IpAddr>().ok();
        core.sockets.iter().any(|s| {
            let adv_match = s.advertised.as_deref().is_some_and(|a| a.starts_with(host));
            (ip == Some(s.addr.ip()) || adv_match)
                && port.is_none_or(|p| p == s.addr.port() || adv_match)
        })
    });
    let Some(top) = top.filter(|_| ours) else {
        crate::log!(Debug, "core", "reply {} not for us (top Via is not ours), dropped", code;
            "peer" => peer(info));
        return None;
    };
    let branch = top.branch().unwrap_or("");
    let signed = match crate::sip::verify_branch(branch, key()) {
        Ok(s) => s,
        Err(e) => {
            crate::log!(Info, "core", "reply {} dropped: our Via's branch {:?}: {} (forged, or from before a restart)", code, branch, e;
                "peer" => peer(info));
            return None;
        }
    };
    // The next Via must be the one of the transaction the branch was made for.
    let next_branch = msg
        .next_via()
        .and_then(Result::ok)
        .and_then(|v| v.branch().and_then(crate::sip::txn_digits_of_branch));
    if next_branch.is_some_and(|t| t != signed.txn) {
        crate::log!(Info, "core", "reply {} dropped: its next Via is not the one our branch was made for", code;
            "peer" => peer(info));
        return None;
    }
    Some(signed.hop)
}

/// Relay a response whose hop [`reply_hop`] found: our Via removed, sent over the hop's
/// connection only (a client whose connection closed loses the response: it is never sent by
/// opening a connection), or to the address the next Via names when that is the hop's.
pub(crate) fn relay_reply(core: &Core, info: &ReceiveInfo, msg: &Message, hop: Hop) {
    let code = msg.status().unwrap_or(0);
    let fwd = match forward_response(msg) {
        Ok(f) => f,
        Err(e) => {
            crate::stats::counters::CORE_ERR_REPLIES.inc();
            crate::log!(Debug, "core", "reply {} not relayed: {}", code, e; "peer" => peer(info));
            return;
        }
    };
    let sent = match hop {
        Hop::Conn { proto, conn_id } => {
            let c = ConnDst {
                proto: Proto(proto),
                conn_id,
                gone: (0, ""),
            };
            core.send_conn(&c, &fwd.bytes).map_err(|e| {
                format!("the connection {conn_id} the request came from is gone ({e})")
            })
        }
        Hop::Addr { proto, addr } => match fwd.dest.socket_addr() {
            Some(to) if to.ip().to_canonical() == addr.ip().to_canonical() => {
                core.send_to(Proto(proto), to, None, &fwd.bytes)
            }
            _ => Err(format!(
                "the next Via ({}) is not where the request came from ({})",
                fwd.dest.host, addr
            )),
        },
    };
    match sent {
        Ok(_) => crate::stats::counters::CORE_FWD_REPLIES.inc(),
        Err(e) => {
            crate::stats::counters::CORE_DROP_REPLIES.inc();
            crate::log!(Info, "core", "reply {} dropped: {}", code, e; "peer" => peer(info));
        }
    }
}

/// A request waiting for its destination's lookup: everything [`forward_to`] needs, owned.
struct Deferred {
    info: ReceiveInfo,
    msg: Message,
    explicit: Option<String>,
    du: Option<String>,
    ru: Option<String>,
    st: ProxyState,
    opts: TmOpts,
}

/// Where `dest_uri` goes: located now (IP literal, `/etc/hosts` or the DNS cache), or
/// `Ok(None)` when the lookup was handed to the resolver with an owned copy of the request;
/// the relay then completes in [`forward_resolved`].
fn resolve_or_defer(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    dest: &Dest<'_>,
    dest_uri: &str,
    (st, opts): (&ProxyState, &TmOpts),
) -> Result<Option<Next>, DnsError> {
    let job = || Deferred {
        info: *info,
        msg: msg.clone(),
        explicit: dest.explicit.map(str::to_owned),
        du: dest.du.map(str::to_owned),
        ru: dest.ru.map(str::to_owned),
        st: st.clone(),
        opts: *opts,
    };
    let found = locate::locate_or_defer(core, info, dest_uri, || {
        let job = job();
        move |r| forward_resolved(job, r)
    })?;
    Ok(found.map(Next::from))
}

/// Complete a `forward()`/`t_relay()` whose destination was looked up on the resolver thread
/// (the transport's `send` is thread-safe). The script was already told 1, so failures are
/// answered here as `t_relay()` answers them (478/503).
fn forward_resolved(mut job: Deferred, r: Result<locate::Located, DnsError>) {
    let Some(core) = super::CORE.get() else {
        return;
    };
    match r {
        Ok(located) => {
            let dest = Dest {
                explicit: job.explicit.as_deref(),
                du: job.du.as_deref(),
                ru: job.ru.as_deref(),
            };
            // The flow-token check ran before the lookup.
            job.st.bad_token = false;
            let next = Next::from(located);
            let _ = forward_to(
                core,
                &job.info,
                &job.msg,
                dest,
                &job.st,
                (true, &job.opts),
                Some(next),
            );
        }
        Err(e) => {
            crate::log!(Info, "core", "forward(): {}", e; "peer" => peer(&job.info));
            let (code, reason) = locate::failure_answer(&e);
            reply(core, &job.info, &job.msg, code, reason);
        }
    }
}
