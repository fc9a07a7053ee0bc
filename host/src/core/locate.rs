//! The core's side of server location (RFC 3263 §4, [`crate::dns`]): which transports this
//! server can send over, the synchronous attempt on the I/O worker (IP literal, `/etc/hosts`,
//! cache), the hand-over to the resolver threads, and the answer when location fails.
use super::{peer, Core};
use crate::dns::{self, DnsError};
use sipcore_abi::{Proto, ReceiveInfo};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// The transports this server can send over, with their default ports (built once: the
/// sockets do not change).
fn ctx(core: &Core) -> Arc<dns::Ctx> {
    static CTX: OnceLock<Arc<dns::Ctx>> = OnceLock::new();
    CTX.get_or_init(|| {
        let mut ctx = dns::Ctx {
            try_naptr: dns::get().try_naptr(),
            ..dns::Ctx::default()
        };
        for p in [
            Proto::UDP,
            Proto::TCP,
            Proto::TLS,
            Proto::SCTP,
            Proto::WS,
            Proto::WSS,
        ] {
            let fallback = if p == Proto::TLS { 5061 } else { 5060 };
            let port = core
                .transport(p)
                .map_or(fallback, |t| (t.default_port())(p));
            if core.sockets.iter().any(|s| s.proto == p) {
                ctx.usable.push((p, port));
            } else {
                ctx.other_ports.push((p, port));
            }
        }
        Arc::new(ctx)
    })
    .clone()
}

/// Most further targets kept for failing over (RFC 3263 §4.3).
pub(crate) const MAX_ALTERNATES: usize = 8;

/// Where a request goes: the first target of a location result, and the next ones over the
/// same transport, in order, for when its connection fails (RFC 3263 §4.3: "the client SHOULD
/// try the next element"). Only the same transport: the forwarded request's Via names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    /// The transport.
    pub proto: Proto,
    /// The first address.
    pub addr: SocketAddr,
    /// The next addresses over `proto`, without repeats, at most [`MAX_ALTERNATES`].
    pub alternates: Vec<SocketAddr>,
    /// The host they were located from (the URI's; an IP literal for an address): what a
    /// TLS transport checks the server certificate against (RFC 5922 §7.2).
    pub host: String,
}

/// The first target of a location result and its alternates (RFC 3263 §4.3: in order).
fn first(t: &[dns::Target], host: &str) -> Result<Located, DnsError> {
    let first = t
        .first()
        .ok_or_else(|| DnsError::NotFound(host.to_string()))?;
    let mut alternates: Vec<SocketAddr> = Vec::new();
    for n in t.iter().skip(1).filter(|n| n.proto == first.proto) {
        if n.addr != first.addr && !alternates.contains(&n.addr) {
            alternates.push(n.addr);
        }
        if alternates.len() == MAX_ALTERNATES {
            break;
        }
    }
    Ok(Located {
        proto: first.proto,
        addr: first.addr,
        alternates,
        host: host.to_string(),
    })
}

/// Locate `dest_uri` now when no query is needed (IP literal, `/etc/hosts`, cached answers),
/// else hand the lookup to the resolver threads with the completion `make_done()` builds (only
/// then: it owns a copy of the request) and return `Ok(None)`; the completion runs on a
/// resolver thread within `dns_timeout`. [`DnsError::Busy`] when `dns_max_pending` requests
/// already wait.
pub(crate) fn locate_or_defer<F>(
    core: &Core,
    info: &ReceiveInfo,
    dest_uri: &str,
    make_done: impl FnOnce() -> F,
) -> Result<Option<Located>, DnsError>
where
    F: FnOnce(Result<Located, DnsError>) + Send + 'static,
{
    let req = dns::Request::from_uri(dest_uri)?;
    let ctx = ctx(core);
    let resolver = dns::get();
    match resolver.resolve_now(&req, &ctx) {
        Ok(t) => first(&t, &req.host).map(Some),
        Err(DnsError::Miss) => {
            crate::log!(Debug, "core", "forward(): resolving {} off the I/O thread", req.host;
                "peer" => peer(info));
            let host = req.host.clone();
            let done = make_done();
            resolver.submit(
                req,
                ctx,
                Box::new(move |r| done(r.and_then(|t| first(&t, &host)))),
            )?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Locate `dest_uri` only if no query is needed (IP literal, `/etc/hosts`, cached answers):
/// [`DnsError::Miss`] otherwise (the branches of a forked request are located at once).
pub(crate) fn locate_now(core: &Core, dest_uri: &str) -> Result<Located, DnsError> {
    let req = dns::Request::from_uri(dest_uri)?;
    let t = dns::get().resolve_now(&req, &ctx(core))?;
    first(&t, &req.host)
}

/// The answer to a request whose destination could not be located: 478 for a name that does
/// not resolve, 503 when the resolver is overloaded or the DNS does not answer in time.
pub(crate) fn failure_answer(e: &DnsError) -> (u16, &'static str) {
    match e {
        DnsError::BadUri(..) | DnsError::UnknownTransport(..) | DnsError::NotFound(_) => {
            (478, "Unresolvable destination")
        }
        DnsError::Timeout(_) | DnsError::Server(..) | DnsError::Busy | DnsError::Miss => {
            (503, "Service Unavailable")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(proto: Proto, a: &str) -> dns::Target {
        dns::Target {
            proto,
            addr: a.parse().unwrap(),
        }
    }

    #[test]
    fn alternates_keep_order_and_transport_without_repeats() {
        let list = [
            t(Proto::WS, "192.0.2.1:80"),
            t(Proto::UDP, "192.0.2.9:5060"),
            t(Proto::WS, "192.0.2.2:80"),
            t(Proto::WS, "192.0.2.1:80"),
            t(Proto::WS, "192.0.2.3:8080"),
            t(Proto::WS, "192.0.2.2:80"),
        ];
        let l = first(&list, "x.test").unwrap();
        assert_eq!(
            (l.proto, l.addr),
            (Proto::WS, "192.0.2.1:80".parse().unwrap())
        );
        assert_eq!(
            l.alternates,
            [
                "192.0.2.2:80".parse().unwrap(),
                "192.0.2.3:8080".parse().unwrap()
            ]
        );
        let many: Vec<_> = (0..20)
            .map(|i| t(Proto::WS, &format!("192.0.2.{i}:80")))
            .collect();
        assert_eq!(
            first(&many, "x.test").unwrap().alternates.len(),
            MAX_ALTERNATES
        );
        assert!(matches!(first(&[], "x.test"), Err(DnsError::NotFound(h)) if h == "x.test"));
    }
}
