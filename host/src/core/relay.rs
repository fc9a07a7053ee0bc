//! Stateless relay (`forward()`, `t_relay()`): RFC 3261 §16 as a stateless proxy.
//!
//! A request goes to the URI given to `forward("sip:...")`, else `$du`, else the (possibly
//! rewritten) Request-URI, over the transport its `transport=` parameter names (UDP when it
//! names none, RFC 3261 §18.1.1). The relay adds this server's Via with a stateless branch
//! (§16.11: the same request, its retransmissions and its CANCEL get the same branch) and
//! `received`/`rport` on the previous top Via (§18.2.1, RFC 3581), so that the reply, routed
//! back by that Via (§18.2.2), reaches the connection the request came from: the transport
//! reuses the open connection to that address.
use super::{peer, Core};
use crate::script::Value;
use crate::sip::{forward_request, forward_response, EditError, ForwardRequest, Message, Uri};
use abi_stable::std_types::{RResult, RSlice};
use sipcore_abi::{Proto, ReceiveInfo, SendTarget, NO_LISTENER};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Where a relayed message goes.
struct Next {
    proto: Proto,
    addr: SocketAddr,
}

/// Resolve a SIP URI to a transport and an address (RFC 3263 reduced to A/AAAA lookups:
/// no NAPTR/SRV).
fn resolve(uri: &str, default_port: impl Fn(Proto) -> u16) -> Result<Next, String> {
    let u = Uri::parse(uri).map_err(|e| format!("bad destination URI {uri:?}: {e}"))?;
    let transport = u.param("transport").flatten().unwrap_or("udp");
    let proto = Proto::from_name(transport)
        .ok_or_else(|| format!("unknown transport {transport:?} in {uri}"))?;
    let host = u.host().trim_start_matches('[').trim_end_matches(']');
    let port = u.port().unwrap_or_else(|| default_port(proto));
    let addr = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?,
    };
    Ok(Next { proto, addr })
}

impl Core {
    /// The Via sent-by for messages we send over `proto`: the socket's advertised address, or
    /// its own.
    fn via_for(&self, proto: Proto) -> Option<(String, u16)> {
        let s = self.sockets.iter().find(|s| s.proto == proto)?;
        if let Some(adv) = &s.advertised {
            let (host, port) = match adv.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || adv.starts_with('[') => match p.parse() {
                    Ok(p) => (h.to_string(), p),
                    Err(_) => (adv.clone(), s.addr.port()),
                },
                _ => (adv.clone(), s.addr.port()),
            };
            return Some((host, port));
        }
        Some((s.addr.ip().to_string(), s.addr.port()))
    }

    fn send_to(&self, next: &Next, data: &[u8]) -> Result<u64, String> {
        let t = self
            .transport(next.proto)
            .ok_or_else(|| format!("no loaded module serves {}", next.proto.name()))?;
        let target = SendTarget {
            proto: next.proto,
            conn_id: 0,
            dst: next.addr.into(),
            listener: NO_LISTENER,
        };
        match (t.send())(&target, RSlice::from_slice(data)) {
            RResult::ROk(id) => Ok(id),
            RResult::RErr(e) => Err(e.as_str().to_string()),
        }
    }
}

/// `forward([uri])` / `t_relay()`: 1 when sent, -1 otherwise (logged).
pub(crate) fn forward(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    du: Option<&str>,
    ru: Option<&str>,
    args: &[Value<'_>],
) -> i64 {
    let explicit = args
        .first()
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let Some(dest_uri) = explicit.or(du).or(ru).or(msg.ruri()) else {
        crate::log!(Error, "core", "forward(): no destination"; "peer" => peer(info));
        return -1;
    };
    let default_port = |p: Proto| core.transport(p).map_or(5060, |t| (t.default_port())(p));
    let next = match resolve(dest_uri, default_port) {
        Ok(n) => n,
        Err(e) => {
            crate::log!(Error, "core", "forward(): {}", e; "peer" => peer(info));
            return -1;
        }
    };
    let Some((via_host, via_port)) = core.via_for(next.proto) else {
        crate::log!(Error, "core", "forward(): no {} socket to send from", next.proto.name(); "peer" => peer(info));
        return -1;
    };
    let mut fwd = ForwardRequest::new(next.proto.via_token(), &via_host, via_port);
    fwd.request_uri = ru;
    fwd.source = info.src.to_std();
    fwd.force_rport = info.proto != Proto::UDP;
    let out = match forward_request(msg, &fwd) {
        Ok(b) => b,
        Err(EditError::TooManyHops) => {
            let tag = crate::sip::stateless_to_tag(msg);
            let reply = crate::sip::build_reply(msg, 483, "Too Many Hops", &tag, &[], None);
            let _ = core.send_back(info, &reply);
            return -1;
        }
        Err(e) => {
            crate::log!(Warning, "core", "forward(): cannot relay this request: {}", e; "peer" => peer(info));
            return -1;
        }
    };
    match core.send_to(&next, &out) {
        Ok(_) => 1,
        Err(e) => {
            crate::log!(Warning, "core", "forward() to {} failed: {}", next.addr, e; "peer" => peer(info));
            -1
        }
    }
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
