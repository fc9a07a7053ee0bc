//! Stateless relay (`forward()`, `t_relay()`): RFC 3261 §16 as a stateless proxy.
//!
//! A request goes to the URI given to `forward("sip:...")`, else `$du`, else the (possibly
//! rewritten) Request-URI, over the transport its `transport=` parameter names (UDP when it
//! names none, RFC 3261 §18.1.1). The relay adds this server's Via with a stateless branch
//! (§16.11: the same request, its retransmissions and its CANCEL get the same branch) and
//! `received`/`rport` on the previous top Via (§18.2.1, RFC 3581), so that the reply, routed
//! back by that Via (§18.2.2), reaches the connection the request came from: the transport
//! reuses the open connection to that address.
use super::locate;
use super::proxy::{self, ConnDst, ProxyState};
use super::{peer, Core};
use crate::dns::DnsError;
use crate::sip::{forward_request, forward_response, EditError, ForwardRequest, LoopKey, Message};
use sipcore_abi::{Proto, ReceiveInfo, SendTarget, SockAddr, NO_LISTENER};
use std::net::SocketAddr;

/// Where a relayed message goes.
struct Next {
    proto: Proto,
    addr: SocketAddr,
}

impl Core {
    /// The Via sent-by for messages we send over `proto`: the socket's advertised address, or
    /// its own.
    fn via_for(&self, proto: Proto) -> Option<(String, u16)> {
        Some(
            self.sockets
                .iter()
                .find(|s| s.proto == proto)?
                .public_host_port(),
        )
    }

    /// Send over an open connection only (no new connection to its peer: a browser does not
    /// listen).
    fn send_conn(&self, c: &ConnDst, data: &[u8]) -> Result<u64, String> {
        self.send(
            &SendTarget {
                proto: c.proto,
                conn_id: c.conn_id,
                dst: SockAddr::NONE,
                listener: NO_LISTENER,
            },
            data,
        )
    }

    fn send_to(&self, next: &Next, data: &[u8]) -> Result<u64, String> {
        self.send(
            &SendTarget {
                proto: next.proto,
                conn_id: 0,
                dst: next.addr.into(),
                listener: NO_LISTENER,
            },
            data,
        )
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

/// Send a stateless reply to `msg` (never to an ACK); true when sent.
fn reply(core: &Core, info: &ReceiveInfo, msg: &Message, code: u16, reason: &str) -> bool {
    core.reply(info, msg, code, reason, &[]).unwrap_or(false)
}

/// `forward([uri])` / `t_relay()`: returns 1 when sent, -1 otherwise (logged), and whether a
/// reply was sent here: 483 when Max-Forwards is exhausted, 482 on a loop, 430 (flow token)
/// or 480 (location) when the chosen connection is gone. A host name that is not cached is
/// resolved off this thread (RFC 3263): 1 is returned at once and the relay completes later.
pub(crate) fn forward(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    dest: Dest<'_>,
    st: &ProxyState,
    auto_reply: bool,
) -> (i64, bool) {
    forward_to(core, info, msg, dest, st, auto_reply, None)
}

/// [`forward`], with the destination's address already resolved when `resolved` is given.
fn forward_to(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    dest: Dest<'_>,
    st: &ProxyState,
    auto_reply: bool,
    resolved: Option<Next>,
) -> (i64, bool) {
    // t_relay() answers its own failures, as OpenSIPS's t_relay does by default; forward()
    // leaves that to the script (except 483, which it always sent).
    let fail = |code: u16, reason: &str| (-1, auto_reply && reply(core, info, msg, code, reason));
    if auto_reply && st.bad_token {
        return fail(403, "Forbidden (flow token)");
    }
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
                None => resolve_or_defer(core, info, msg, &dest, dest_uri, st),
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
    let proto = match &next {
        Target::Conn(c) => c.proto,
        Target::Addr(n) => n.proto,
    };
    let Some((via_host, via_port)) = core.via_for(proto) else {
        crate::log!(Error, "core", "forward(): no {} socket to send from", proto.name(); "peer" => peer(info));
        return (-1, false);
    };
    let loop_key = LoopKey::of(msg, dest.ru);
    let looped = crate::sip::is_looped(msg, &loop_key, |v| {
        v.host().trim_start_matches('[').trim_end_matches(']') == via_host
            && v.port().unwrap_or(via_port) == via_port
    });
    if looped {
        crate::log!(Info, "core", "forward(): loop detected (our Via with this request's loop hash), 482";
            "peer" => peer(info), "callid" => msg.call_id().unwrap_or(""));
        return fail(482, "Loop Detected");
    }
    let rr = if st.record_route {
        let out = match &next {
            Target::Conn(c) => Some((c.proto, c.conn_id)),
            Target::Addr(_) => None,
        };
        proxy::record_route_value(core, info, out)
    } else {
        None
    };
    let remove: Vec<&str> = st.remove_headers.iter().map(String::as_str).collect();
    let add: Vec<(&str, &str)> = st
        .add_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut fwd = ForwardRequest::new(proto.via_token(), &via_host, via_port);
    fwd.request_uri = dest.ru;
    fwd.source = info.src.to_std();
    fwd.force_rport = proxy::connection_oriented(info.proto);
    fwd.record_route = rr.as_deref();
    fwd.pop_route = st.pop_route;
    fwd.remove_headers = &remove;
    fwd.add_headers = &add;
    fwd.default_max_forwards = st.default_max_forwards;
    fwd.loop_key = Some(loop_key);
    let out = match forward_request(msg, &fwd) {
        Ok(b) => b,
        Err(EditError::TooManyHops) => {
            return (-1, reply(core, info, msg, 483, "Too Many Hops"));
        }
        Err(e) => {
            crate::log!(Warning, "core", "forward(): cannot relay this request: {}", e; "peer" => peer(info));
            return (-1, false);
        }
    };
    let sent = match &next {
        Target::Conn(c) => core.send_conn(c, &out),
        Target::Addr(n) => core.send_to(n, &out),
    };
    match (sent, &next) {
        (Ok(_), _) => (1, false),
        (Err(e), Target::Conn(c)) => {
            crate::log!(Info, "core", "forward() over connection {} failed ({}): {} {}", c.conn_id, e, c.gone.0, c.gone.1;
                "peer" => peer(info));
            fail(c.gone.0, c.gone.1)
        }
        (Err(e), Target::Addr(n)) => {
            crate::log!(Warning, "core", "forward() to {} failed: {}", n.addr, e; "peer" => peer(info));
            fail(503, "Service Unavailable")
        }
    }
}

/// Where a request goes: an open connection, or an address.
enum Target {
    Conn(ConnDst),
    Addr(Next),
}

/// A reply received: if its top Via is ours, remove it and send the reply where the next Via
/// says (RFC 3261 §16.7 step 3 and §18.2.2; stateless, so no transaction is consulted).
pub(crate) fn relay_reply(core: &Core, info: &ReceiveInfo, msg: &Message) {
    let ours = msg.top_via().is_ok_and(|v| {
        let (host, port) = (
            v.host().trim_start_matches('[').trim_end_matches(']'),
            v.port(),
        );
        core.sockets.iter().any(|s| {
            let adv_match = s.advertised.as_deref().is_some_and(|a| a.starts_with(host));
            (s.addr.ip().to_string() == host || adv_match)
                && port.is_none_or(|p| p == s.addr.port() || adv_match)
        })
    });
    if !ours {
        crate::log!(Debug, "core", "reply {} not for us (top Via is not ours), dropped", msg.status().unwrap_or(0);
            "peer" => peer(info));
        return;
    }
    if !super::env::run_reply(core, info, msg) {
        return;
    }
    let fwd = match forward_response(msg) {
        Ok(f) => f,
        Err(e) => {
            crate::log!(Debug, "core", "reply {} not relayed: {}", msg.status().unwrap_or(0), e; "peer" => peer(info));
            return;
        }
    };
    let Some(proto) = Proto::from_name(fwd.dest.transport) else {
        crate::log!(
            Warning,
            "core",
            "reply {}: unknown Via transport {}",
            msg.status().unwrap_or(0),
            fwd.dest.transport
        );
        return;
    };
    let Some(addr) = fwd.dest.socket_addr() else {
        crate::log!(
            Warning,
            "core",
            "reply {}: next Via has no IP address to send to ({})",
            msg.status().unwrap_or(0),
            fwd.dest.host
        );
        return;
    };
    let next = Next { proto, addr };
    if let Err(e) = core.send_to(&next, &fwd.bytes) {
        crate::log!(
            Warning,
            "core",
            "reply {} to {} failed: {}",
            msg.status().unwrap_or(0),
            addr,
            e
        );
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
    st: &ProxyState,
) -> Result<Option<Next>, DnsError> {
    let job = || Deferred {
        info: *info,
        msg: msg.clone(),
        explicit: dest.explicit.map(str::to_owned),
        du: dest.du.map(str::to_owned),
        ru: dest.ru.map(str::to_owned),
        st: st.clone(),
    };
    let found = locate::locate_or_defer(core, info, dest_uri, || {
        let job = job();
        move |r| forward_resolved(job, r)
    })?;
    Ok(found.map(|(proto, addr)| Next { proto, addr }))
}

/// Complete a `forward()`/`t_relay()` whose destination was looked up on the resolver thread
/// (the transport's `send` is thread-safe). The script was already told 1, so failures are
/// answered here as `t_relay()` answers them (478/503).
fn forward_resolved(mut job: Deferred, r: Result<(Proto, SocketAddr), DnsError>) {
    let Some(core) = super::CORE.get() else {
        return;
    };
    match r {
        Ok((proto, addr)) => {
            let dest = Dest {
                explicit: job.explicit.as_deref(),
                du: job.du.as_deref(),
                ru: job.ru.as_deref(),
            };
            // The flow-token check ran before the lookup.
            job.st.bad_token = false;
            let next = Next { proto, addr };
            let _ = forward_to(core, &job.info, &job.msg, dest, &job.st, true, Some(next));
        }
        Err(e) => {
            crate::log!(Info, "core", "forward(): {}", e; "peer" => peer(&job.info));
            let (code, reason) = locate::failure_answer(&e);
            reply(core, &job.info, &job.msg, code, reason);
        }
    }
}
