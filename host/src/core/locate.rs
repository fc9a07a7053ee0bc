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

/// The first target of a location result (RFC 3263 §4.3: in order).
fn first(t: &[dns::Target], host: &str) -> Result<(Proto, SocketAddr), DnsError> {
    t.first()
        .map(|t| (t.proto, t.addr))
        .ok_or_else(|| DnsError::NotFound(host.to_string()))
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
) -> Result<Option<(Proto, SocketAddr)>, DnsError>
where
    F: FnOnce(Result<(Proto, SocketAddr), DnsError>) + Send + 'static,
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
