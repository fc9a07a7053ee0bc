//! RFC 3263 §4 server location, as pure code: given a SIP URI and a source of DNS records
//! (the cache, or the resolver thread's queries), the ordered transports and addresses to try.
//! No I/O and no clock: the records come from the `fetch` closure and the random draw for SRV
//! weights (RFC 2782) is passed in.
use super::error::DnsError;
use super::records::{Kind, Naptr, Records, Srv};
use crate::sip::{Scheme, Uri};
use sipcore_abi::Proto;
use std::net::{IpAddr, SocketAddr};

/// One place to send a request to: a transport and an address (RFC 3263 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The transport.
    pub proto: Proto,
    /// The address and port.
    pub addr: SocketAddr,
}

/// What a URI asks of the location procedure (RFC 3263 §4: the TARGET, its port and transport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `maddr` if present, else the host part; lower case, without brackets or a final dot.
    pub host: String,
    /// The URI's explicit port.
    pub port: Option<u16>,
    /// The URI's `transport=` (TCP/WS upgraded to TLS/WSS for a SIPS URI).
    pub transport: Option<Proto>,
    /// A SIPS URI (RFC 3263 §4.1: only TLS-based transports are acceptable).
    pub secure: bool,
}

impl Request {
    /// The location request of a SIP or SIPS URI (RFC 3263 §4: TARGET is `maddr` when present,
    /// else the host).
    pub fn from_uri(uri: &str) -> Result<Request, DnsError> {
        let bad = |why: String| DnsError::BadUri(uri.to_string(), why);
        let u = Uri::parse(uri).map_err(|e| bad(e.to_string()))?;
        let secure = match u.scheme() {
            Scheme::Sip => false,
            Scheme::Sips => true,
            _ => return Err(bad("not a sip: or sips: URI".into())),
        };
        let transport = match u.param("transport").flatten() {
            None => None,
            Some(t) => {
                let p = Proto::from_name(&t.to_ascii_lowercase())
                    .ok_or_else(|| DnsError::UnknownTransport(t.to_string(), uri.to_string()))?;
                Some(match (secure, p) {
                    (true, Proto::TCP) => Proto::TLS,
                    (true, Proto::WS) => Proto::WSS,
                    (_, p) => p,
                })
            }
        };
        let host = u.param("maddr").flatten().unwrap_or(u.host());
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(bad("no host".into()));
        }
        Ok(Request {
            host,
            port: u.port(),
            transport,
            secure,
        })
    }

    /// The host as an IP address, when it is one (no lookup needed, RFC 3263 §4.2).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// What the server can send over: transports with a socket, each with its default port
/// (RFC 3263 §4.2: the port when neither the URI nor SRV gives one).
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    /// Transports with a socket, with their default ports, in our order of preference.
    pub usable: Vec<(Proto, u16)>,
    /// Default ports of the transports without a socket (for an explicit `transport=`).
    pub other_ports: Vec<(Proto, u16)>,
    /// `dns_try_naptr`: query NAPTR when the URI names neither transport nor port.
    pub try_naptr: bool,
}

impl Ctx {
    fn default_port(&self, p: Proto) -> u16 {
        self.usable
            .iter()
            .chain(&self.other_ports)
            .find(|(q, _)| *q == p)
            .map_or(if is_tls(p) { 5061 } else { 5060 }, |(_, port)| *port)
    }

    fn usable(&self, p: Proto) -> bool {
        self.usable.iter().any(|(q, _)| *q == p)
    }
}

fn is_tls(p: Proto) -> bool {
    p == Proto::TLS || p == Proto::WSS
}

/// The NAPTR service of a transport (RFC 3263 §4.1, RFC 7118 §7 for `SIP+D2W`/`SIPS+D2W`).
pub fn naptr_service(p: Proto) -> Option<&'static str> {
    Some(match p {
        Proto::UDP => "SIP+D2U",
        Proto::TCP => "SIP+D2T",
        Proto::TLS => "SIPS+D2T",
        Proto::SCTP => "SIP+D2S",
        Proto::WS => "SIP+D2W",
        Proto::WSS => "SIPS+D2W",
        _ => return None,
    })
}

/// The SRV prefix of a transport (RFC 3263 §4.1, RFC 7118 §7 for `_sip._ws`/`_sips._ws`).
pub fn srv_prefix(p: Proto) -> Option<&'static str> {
    Some(match p {
        Proto::UDP => "_sip._udp",
        Proto::TCP => "_sip._tcp",
        Proto::TLS => "_sips._tcp",
        Proto::SCTP => "_sip._sctp",
        Proto::WS => "_sip._ws",
        Proto::WSS => "_sips._ws",
        _ => return None,
    })
}

/// A record source: the records of `name` of `kind` (an empty set when there are none).
pub type Fetch<'f> = dyn FnMut(&str, Kind) -> Result<Records, DnsError> + 'f;

/// RFC 3263 §4.1-§4.2: where to send a request for `req`. The first target of the first
/// usable SRV (or NAPTR→SRV) record that has addresses, or the host's own addresses.
/// `draw(n)` returns a uniform integer in `0..=n` (RFC 2782 weighted selection).
pub fn locate(
    req: &Request,
    ctx: &Ctx,
    fetch: &mut Fetch<'_>,
    draw: &mut dyn FnMut(u32) -> u32,
) -> Result<Vec<Target>, DnsError> {
    let not_found = || DnsError::NotFound(req.host.clone());
    // §4.1: a numeric address or an explicit port: UDP (TLS for SIPS) unless transport= says.
    let plain = if req.secure { Proto::TLS } else { Proto::UDP };
    if let Some(ip) = req.ip() {
        let proto = req.transport.unwrap_or(plain);
        let port = req.port.unwrap_or_else(|| ctx.default_port(proto));
        return Ok(vec![Target {
            proto,
            addr: SocketAddr::new(ip, port),
        }]);
    }
    if let Some(port) = req.port {
        let proto = req.transport.unwrap_or(plain);
        return host_targets(&req.host, proto, port, fetch)?.ok_or_else(not_found);
    }
    if let Some(proto) = req.transport {
        // §4.2: SRV for the named transport, else the host's A/AAAA on the default port.
        if let Some(prefix) = srv_prefix(proto) {
            if let Some(t) = srv_targets(&format!("{prefix}.{}", req.host), proto, fetch, draw)? {
                return t.ok_or_else(not_found);
            }
        }
        return host_targets(&req.host, proto, ctx.default_port(proto), fetch)?
            .ok_or_else(not_found);
    }
    // §4.1: NAPTR, then SRV per supported transport, then A/AAAA.
    let wanted: Vec<Proto> = ctx
        .usable
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !req.secure || is_tls(*p))
        .collect();
    if ctx.try_naptr {
        let naptrs = match fetch(&req.host, Kind::Naptr)? {
            Records::Naptr(n) => n,
            _ => Vec::new(),
        };
        for (proto, replacement) in order_naptr(&naptrs, &wanted) {
            if let Some(t) = srv_targets(&replacement, proto, fetch, draw)? {
                // An SRV set that exists but leads nowhere: try the next NAPTR.
                if let Ok(t) = t.ok_or_else(not_found) {
                    return Ok(t);
                }
            }
        }
    }
    for &proto in &wanted {
        let Some(prefix) = srv_prefix(proto) else {
            continue;
        };
        if let Some(t) = srv_targets(&format!("{prefix}.{}", req.host), proto, fetch, draw)? {
            return t.ok_or_else(not_found);
        }
    }
    // §4.1: no NAPTR, no SRV: UDP for sip:, TLS for sips: (or the first transport we have when
    // we have no socket for that one).
    let proto = if ctx.usable(plain) {
        plain
    } else {
        wanted.first().copied().unwrap_or(plain)
    };
    host_targets(&req.host, proto, ctx.default_port(proto), fetch)?.ok_or_else(not_found)
}

/// RFC 3263 §4.1: the NAPTR records whose service is one of `wanted` (in our transports'
/// order) with the `S` flag, sorted by order then preference: (transport, SRV name).
pub fn order_naptr(naptrs: &[Naptr], wanted: &[Proto]) -> Vec<(Proto, String)> {
    let mut usable: Vec<(&Naptr, Proto)> = naptrs
        .iter()
        .filter(|n| n.flags.eq_ignore_ascii_case("s"))
        .filter_map(|n| {
            let p = wanted
                .iter()
                .copied()
                .find(|p| naptr_service(*p).is_some_and(|s| s.eq_ignore_ascii_case(&n.services)))?;
            Some((n, p))
        })
        .collect();
    usable.sort_by_key(|(n, _)| (n.order, n.preference));
    usable
        .into_iter()
        .map(|(n, p)| (p, n.replacement.clone()))
        .collect()
}

/// RFC 2782: SRV records by priority, and within a priority by a weighted random draw
/// (records of weight 0 first in the running sum, so they are picked rarely).
pub fn order_srv(records: &[Srv], draw: &mut dyn FnMut(u32) -> u32) -> Vec<Srv> {
    let mut rest: Vec<Srv> = records.to_vec();
    rest.sort_by_key(|s| (s.priority, s.weight != 0));
    let mut out = Vec::with_capacity(rest.len());
    while let Some(first) = rest.first() {
        let prio = first.priority;
        let n = rest.iter().take_while(|s| s.priority == prio).count();
        let mut group: Vec<Srv> = rest.drain(..n).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|s| u32::from(s.weight)).sum();
            let pick = draw(total).min(total);
            let mut sum = 0u32;
            let idx = group
                .iter()
                .position(|s| {
                    sum += u32::from(s.weight);
                    sum >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(idx));
        }
    }
    out
}

/// SRV targets whose addresses one lookup fetches (in RFC 2782 order): the first that has
/// addresses and up to this many more, for failing over (RFC 3263 §4.3) at a bounded cost.
pub const MAX_SRV_TARGETS: usize = 4;

/// The SRV records at `name`, as the addresses of their targets in order: `None` when there are
/// none, `Some(None)` when they say the service is not there (RFC 2782: target ".") or no
/// target has an address. A lookup error after the first target with addresses ends the list
/// there instead of failing it.
fn srv_targets(
    name: &str,
    proto: Proto,
    fetch: &mut Fetch<'_>,
    draw: &mut dyn FnMut(u32) -> u32,
) -> Result<Option<Option<Vec<Target>>>, DnsError> {
    let srvs = match fetch(name, Kind::Srv)? {
        Records::Srv(s) if !s.is_empty() => s,
        _ => return Ok(None),
    };
    let mut out: Vec<Target> = Vec::new();
    let mut fetched = 0;
    for srv in order_srv(&srvs, draw) {
        if srv.target.is_empty() || srv.target == "." {
            continue;
        }
        if !out.is_empty() && fetched > MAX_SRV_TARGETS {
            break;
        }
        match host_targets(&srv.target, proto, srv.port, fetch) {
            Ok(Some(t)) => {
                out.extend(t);
                fetched += 1;
            }
            Ok(None) => {}
            Err(e) if out.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(Some((!out.is_empty()).then_some(out)))
}

/// The addresses of `host` (A, else AAAA, RFC 3263 §4.2), as targets on `port`.
fn host_targets(
    host: &str,
    proto: Proto,
    port: u16,
    fetch: &mut Fetch<'_>,
) -> Result<Option<Vec<Target>>, DnsError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Some(vec![Target {
            proto,
            addr: SocketAddr::new(ip, port),
        }]));
    }
    for kind in [Kind::A, Kind::Aaaa] {
        if let Records::Addrs(ips) = fetch(host, kind)? {
            if !ips.is_empty() {
                return Ok(Some(
                    ips.into_iter()
                        .map(|ip| Target {
                            proto,
                            addr: SocketAddr::new(ip, port),
                        })
                        .collect(),
                ));
            }
        }
    }
    Ok(None)
}
