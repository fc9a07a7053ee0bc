//! Stateless proxy state and script functions: `record_route()` with RFC 5626 §5.3 flow
//! tokens, `loose_route()` (RFC 3261 §16.4), `has_totag()`, `mf_process_maxfwd_header()`,
//! `append_hf()`, `remove_hf()`, `is_present_hf()`.
//!
//! Browser contacts end in `.invalid` (RFC 7118 §5), so a request inside a dialog cannot be
//! routed by its Request-URI: the proxy must remember the WebSocket connections. A stateless
//! proxy keeps no dialog state, so the connections travel in the Record-Route it inserts: the
//! user part of the URI is a flow token naming the connection the initial request came from
//! and the one it was sent on, with a MAC under a key drawn at startup (RFC 5626 §5.2: a UA
//! cannot forge a token to reach someone else's connection). An in-dialog request that comes
//! back on one of the two connections goes out on the other.
//!
//! `loose_route()` is true only when the top Route names this proxy: then the token picks the
//! flow and the next Route, if any, becomes `$du`. A Route naming anything else is not
//! followed (`-1`, `$du` untouched): a client's Route set cannot make the proxy send to an
//! address of its choosing, and the script decides what to do with such a request (the
//! default config refuses it).
use super::addr::{connection_oriented, public_addr, split_host_port, ConnDst, SocketInfo};
use super::secret::key;
use super::send::{peer, Core};
use crate::sip::{Message, Uri};
use sha1::{Digest, Sha1};
use sipcore_abi::{Proto, ReceiveInfo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the script asked for, applied when the request is forwarded.
#[derive(Debug, Clone)]
pub(crate) struct ProxyState {
    /// Send over this connection (set by `lookup()` or by a flow token in `loose_route()`).
    pub dst: Option<ConnDst>,
    /// `record_route()` was called.
    pub record_route: bool,
    /// `loose_route()` found our own Route on top: remove it (2: and the one below it, our
    /// other half of a double Record-Route).
    pub pop_routes: u8,
    /// `append_hf()`.
    pub add_headers: Vec<(String, String)>,
    /// `remove_hf()`.
    pub remove_headers: Vec<String>,
    /// Max-Forwards to add when the request has none.
    pub default_max_forwards: u8,
    /// Our Route carried a flow token whose MAC is wrong (RFC 5626 §5.3: answer 403).
    pub bad_token: bool,
    /// `add_path()` (`Some(false)`) or `add_path_received()` (`Some(true)`): a REGISTER gets
    /// our Path (RFC 3327 §4.2).
    pub path: Option<bool>,
}

impl Default for ProxyState {
    fn default() -> Self {
        ProxyState {
            dst: None,
            record_route: false,
            pop_routes: 0,
            add_headers: Vec::new(),
            remove_headers: Vec::new(),
            default_max_forwards: 70,
            bad_token: false,
            path: None,
        }
    }
}

/// The MAC of a token's fields: the first 8 bytes of SHA-1 over the key and the fields, as
/// 16 lower-case hex digits.
fn mac(fields: &[u64; 4]) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(key());
    for f in fields {
        h.update(f.to_be_bytes());
    }
    let mut out = [0u8; 16];
    crate::sip::write_hex(&mut out, &h.finalize());
    out
}

/// The flow token for a dialog between connection `a` (where the initial request came from)
/// and `b` (where it went; `None` when it went to an address): `pa.a.pb.b.mac`, hex.
pub(crate) fn encode_token(a: (Proto, u64), b: Option<(Proto, u64)>) -> String {
    let (pb, b) = b.map_or((0, 0), |(p, id)| (u64::from(p.0), id));
    let f = [u64::from(a.0 .0), a.1, pb, b];
    let m = mac(&f);
    let m = std::str::from_utf8(&m).unwrap_or_default();
    format!("{:x}.{:x}.{:x}.{:x}.{m}", f[0], f[1], f[2], f[3])
}

/// The two connections of a token made by [`encode_token`]; `None` if it is not one of ours
/// or its MAC is wrong.
pub(crate) fn decode_token(user: &str) -> Option<[(Proto, u64); 2]> {
    let mut it = user.split('.');
    let mut f = [0u64; 4];
    for slot in &mut f {
        *slot = u64::from_str_radix(it.next()?, 16).ok()?;
    }
    let m = it.next()?;
    if it.next().is_some() || m.as_bytes() != mac(&f) {
        return None;
    }
    let proto = |v: u64| u8::try_from(v).ok().map(Proto);
    Some([(proto(f[0])?, f[1]), (proto(f[2])?, f[3])])
}

/// The socket a message arrived on.
pub(crate) fn socket_of<'c>(core: &'c Core, info: &ReceiveInfo) -> Option<&'c SocketInfo> {
    core.sockets
        .iter()
        .find(|s| s.id == info.listener)
        .or_else(|| core.sockets.iter().find(|s| s.proto == info.proto))
}

/// One side of a dialog as a token names it: a connection, or `(proto, 0)` for a peer reached
/// by address over `proto` (connectionless, or a connection not open yet).
fn side_of(proto: Proto, conn_id: u64) -> (Proto, u64) {
    (
        proto,
        if connection_oriented(proto) {
            conn_id
        } else {
            0
        },
    )
}

/// OpenSIPS rr's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrConfig {
    /// `enable_double_rr` (default 1): two Record-Route values when a request leaves on
    /// another socket than it came in on (RFC 5658 §3); 0: one, the inbound socket's (as
    /// OpenSIPS).
    pub double_rr: bool,
}

impl Default for RrConfig {
    fn default() -> Self {
        RrConfig { double_rr: true }
    }
}

static DOUBLE_RR: AtomicBool = AtomicBool::new(true);

/// Apply `modparam("rr", ...)` (before the first message).
pub(crate) fn configure(cfg: RrConfig) {
    DOUBLE_RR.store(cfg.double_rr, Ordering::Relaxed);
}

/// Where a relayed request leaves from: over an open connection (its socket is not known
/// here: the first socket of its transport, and the same socket as the inbound one when the
/// transport is the same), or to an address (the first socket of the
/// transport in the address's family, the one the transport sends from).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outbound {
    /// Over connection `id` of a transport (0: a connection to be opened).
    Conn(Proto, u64),
    /// To this address over a connectionless transport, or over a connection the transport
    /// opens (or reuses) to it.
    Addr(Proto, SocketAddr),
}

impl Outbound {
    fn side(&self) -> (Proto, u64) {
        match *self {
            Outbound::Conn(p, id) => side_of(p, id),
            Outbound::Addr(p, _) => (p, 0),
        }
    }

    /// The socket the request leaves from, as far as the core can tell.
    fn socket<'c>(&self, core: &'c Core) -> Option<&'c SocketInfo> {
        let of = |p: Proto| core.sockets.iter().filter(move |s| s.proto == p);
        match *self {
            Outbound::Conn(p, _) => of(p).next(),
            Outbound::Addr(p, a) => of(p)
                .find(|s| s.addr.is_ipv4() == a.is_ipv4())
                .or_else(|| of(p).next()),
        }
    }
}

/// The Record-Route value for a request that came in as `info` and leaves as `out` (decided
/// when the destination is known, as OpenSIPS fills its Record-Route lumps with the send
/// socket at send time).
///
/// When it leaves from another socket than it came in on (ws to udp, udp over IPv4 to udp
/// over IPv6...) and `enable_double_rr` is on (the default), two values (RFC 5658 §3, RFC
/// 7118 §5; OpenSIPS `enable_double_rr`): first, topmost, the socket facing the callee, then
/// the one facing the caller, each with its `transport=` and `lr`, both with the same flow
/// token, so each side's route set starts with the address it reaches us at over its own
/// transport. `loose_route()` removes both. With `enable_double_rr` 0, one value: the
/// inbound socket's (as OpenSIPS).
pub(crate) fn record_route_value(core: &Core, info: &ReceiveInfo, out: Outbound) -> Option<String> {
    let sock = socket_of(core, info)?;
    let a = side_of(info.proto, info.conn_id);
    let token = encode_token(a, Some(out.side()));
    let inbound = format!(
        "<sip:{token}@{};transport={};lr>",
        public_addr(sock),
        info.proto.name()
    );
    if !DOUBLE_RR.load(Ordering::Relaxed) {
        return Some(inbound);
    }
    // A connection's own socket is not known here: over the inbound transport it counts as
    // the same socket.
    let differs = |o: &SocketInfo| match out {
        Outbound::Conn(..) => o.proto != info.proto,
        Outbound::Addr(..) => o.proto != info.proto || o.id != sock.id,
    };
    match out.socket(core) {
        Some(o) if differs(o) => Some(format!(
            "<sip:{token}@{};transport={};lr>, {inbound}",
            public_addr(o),
            o.proto.name()
        )),
        _ => Some(inbound),
    }
}

/// Our Path value (RFC 3327 §4.2) for a REGISTER that came in as `info` and leaves on `out`:
/// the address the registrar reaches us at over `out`, with `lr`, the flow token of the
/// client's connection (so a request the registrar sends back through the Path lands on that
/// connection, or gets 430 if it is gone) and `ob` (RFC 5626 §5.2: we keep the flow alive).
/// With `received` (OpenSIPS's `add_path_received()`), the client's source address too.
pub(crate) fn path_value(
    core: &Core,
    info: &ReceiveInfo,
    out: (Proto, u64),
    received: bool,
) -> Option<String> {
    let a = side_of(info.proto, info.conn_id);
    let token = encode_token(a, Some(side_of(out.0, out.1)));
    let sock = core
        .sockets
        .iter()
        .find(|s| s.proto == out.0)
        .or_else(|| socket_of(core, info))?;
    // A URI parameter value cannot hold ':' ';' '=' or brackets as they are (RFC 3261 §25.1
    // `paramchar`): escaped, as OpenSIPS's path module writes it.
    let recv = match (received, info.src.to_std()) {
        (true, Some(src)) => {
            let uri = format!("sip:{src};transport={}", info.proto.name());
            let mut v = String::with_capacity(uri.len() + 16);
            for c in uri.chars() {
                match c {
                    ':' => v.push_str("%3A"),
                    ';' => v.push_str("%3B"),
                    '=' => v.push_str("%3D"),
                    '[' => v.push_str("%5B"),
                    ']' => v.push_str("%5D"),
                    c => v.push(c),
                }
            }
            format!(";received={v}")
        }
        _ => String::new(),
    };
    Some(format!(
        "<sip:{token}@{};transport={};lr;ob{recv}>",
        public_addr(sock),
        out.0.name()
    ))
}

/// Whether a Route URI names this proxy: one of our addresses (or advertised names), with no
/// port or one of our ports.
pub(crate) fn uri_is_ours(core: &Core, uri: &Uri<'_>) -> bool {
    let host = uri.host().trim_start_matches('[').trim_end_matches(']');
    let ip = host.parse::<std::net::IpAddr>().ok();
    core.sockets.iter().any(|s| {
        let adv = s.advertised.as_deref().map(|a| {
            let (h, p) = split_host_port(a);
            (h.trim_start_matches('[').trim_end_matches(']'), p)
        });
        let ip_match = ip == Some(s.addr.ip());
        let adv_match = adv.is_some_and(|(h, _)| h.eq_ignore_ascii_case(host));
        let port_match = uri
            .port()
            .is_none_or(|p| p == s.addr.port() || adv.is_some_and(|(_, ap)| ap == Some(p)));
        (ip_match || adv_match) && port_match
    })
}

/// What `loose_route()` decided.
#[derive(Debug, Default)]
pub(crate) struct LooseRoute {
    /// The script's return value: 1 if the top Route names this proxy, -1 otherwise (no
    /// Route, a malformed one, or one naming someone else).
    pub ret: i64,
    /// The next hop to put in `$du`: the Route after ours.
    pub du: Option<String>,
}

/// `loose_route()` (RFC 3261 §16.4, §16.12; RFC 5626 §5.3): if the top Route names this proxy
/// it is removed (on forward) and 1 is returned; a flow token in it picks the connection on
/// the other side of the dialog, and the Route after it becomes `$du`. A Route that names us
/// with a token that is altered, or presented from a connection that is not one of its
/// dialog's, or (in a dialog) with no token at all (every Record-Route we write has one)
/// marks the request so that the relay answers 403. A top Route naming anyone else gives -1
/// and changes nothing.
pub(crate) fn loose_route(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    st: &mut ProxyState,
) -> LooseRoute {
    let not_ours = LooseRoute { ret: -1, du: None };
    let mut routes = msg.routes();
    let Some(top) = routes.next() else {
        return not_ours;
    };
    let Ok(top) = top else {
        crate::log!(Warning, "core", "loose_route(): malformed Route header"; "peer" => peer(info));
        return not_ours;
    };
    let Ok(uri) = top.uri() else {
        return not_ours;
    };
    if !uri_is_ours(core, &uri) {
        crate::log!(Debug, "core", "loose_route(): top Route {} is not ours", uri.as_str(); "peer" => peer(info));
        return not_ours;
    }
    st.pop_routes = 1;
    let refuse = |st: &mut ProxyState, why: &str| {
        crate::log!(Info, "core", "loose_route(): Route {} {}", uri.as_str(), why; "peer" => peer(info));
        st.bad_token = true;
    };
    match uri.user().map(decode_token) {
        Some(Some([a, b])) => match other_side(info, a, b) {
            Side::Conn(c) => st.dst = Some(c),
            Side::Address => {}
            Side::Stranger => refuse(st, "carries a flow token of another connection's dialog"),
        },
        Some(None) => refuse(st, "carries a flow token that is not ours or was altered"),
        None if has_totag(msg) > 0 => refuse(st, "names us without a flow token in a dialog"),
        None => {}
    }
    let mut next = routes.next();
    // Double record-routing (RFC 5658 §3, `record_route_value`): the Route below ours with
    // the same flow token is our other socket's; it goes too.
    if let Some(Ok(n)) = &next {
        let twin = n
            .uri()
            .is_ok_and(|u| u.user() == uri.user() && uri_is_ours(core, &u));
        if twin {
            st.pop_routes = 2;
            next = routes.next();
        }
    }
    let du = match next {
        Some(Ok(next)) => Some(next.uri_str().to_string()),
        _ => None,
    };
    LooseRoute { ret: 1, du }
}

/// Where a token sends a request that came in as `info`.
#[derive(Debug, PartialEq, Eq)]
enum Side {
    /// Over this connection.
    Conn(ConnDst),
    /// The other side is reached by address: the next Route or the Request-URI says where.
    Address,
    /// The request came from neither side of the token's dialog.
    Stranger,
}

/// The other side of a dialog from the one the request came in on. A side `(proto, 0)` stands
/// for any peer reached by address over `proto`.
fn other_side(info: &ReceiveInfo, a: (Proto, u64), b: (Proto, u64)) -> Side {
    let here = side_of(info.proto, info.conn_id);
    let is = |s: (Proto, u64)| s == here || (s.1 == 0 && s.0 == here.0);
    let there = if is(a) {
        b
    } else if is(b) {
        a
    } else {
        return Side::Stranger;
    };
    if there.1 == 0 {
        return Side::Address;
    }
    Side::Conn(ConnDst {
        proto: there.0,
        conn_id: there.1,
        gone: (430, "Flow Failed"),
    })
}

/// `append_hf("Name: value\r\n...")`: the header fields in `text`.
pub(crate) fn parse_header_lines(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for line in text.split("\r\n").flat_map(|l| l.split('\n')) {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("'{line}' is not 'Name: value'"));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!%*+`'~".contains(&b))
        {
            return Err(format!("'{name}' is not a header name"));
        }
        out.push((name.to_string(), value.trim().to_string()));
    }
    Ok(out)
}

/// `has_totag()`: 1 if the To header has a tag (the request is inside a dialog).
pub(crate) fn has_totag(msg: &Message) -> i64 {
    if msg.to_tag_param().ok().flatten().flatten().is_some() {
        1
    } else {
        -1
    }
}

/// `is_present_hf(name)`: 1 if the request has that header (compact forms match).
pub(crate) fn is_present_hf(msg: &Message, name: &str) -> i64 {
    if msg.headers(name).next().is_some() {
        1
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let t = encode_token((Proto::WS, 0x1_0000_0005), Some((Proto::WSS, 42)));
        assert_eq!(
            decode_token(&t),
            Some([(Proto::WS, 0x1_0000_0005), (Proto::WSS, 42)])
        );
        let no_b = encode_token((Proto::WS, 7), None);
        assert_eq!(decode_token(&no_b), Some([(Proto::WS, 7), (Proto(0), 0)]));
        // Another connection id with the old MAC.
        let forged = t.replacen("100000005", "100000006", 1);
        assert_ne!(forged, t);
        assert_eq!(decode_token(&forged), None);
        for bad in ["", "alice", "1.2.3", "1.2.3.4", "1.2.3.4.5.6", "x.2.3.4.00"] {
            assert_eq!(decode_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_lines() {
        assert_eq!(
            parse_header_lines("X-A: 1\r\nX-B:two words \r\n").unwrap(),
            vec![
                ("X-A".into(), "1".into()),
                ("X-B".into(), "two words".into())
            ]
        );
        assert!(parse_header_lines("no colon").is_err());
        assert!(parse_header_lines("Bad Name: x").is_err());
        assert_eq!(parse_header_lines("").unwrap(), vec![]);
    }

    #[test]
    fn other_side_of_a_dialog() {
        let mut info = ReceiveInfo {
            proto: Proto::WS,
            src: sipcore_abi::SockAddr::NONE,
            dst: sipcore_abi::SockAddr::NONE,
            conn_id: 5,
            listener: 0,
        };
        let a = (Proto::WS, 5);
        let b = (Proto::WS, 9);
        let conn = |id| {
            Side::Conn(ConnDst {
                proto: Proto::WS,
                conn_id: id,
                gone: (430, "Flow Failed"),
            })
        };
        assert_eq!(other_side(&info, a, b), conn(9));
        assert_eq!(other_side(&info, b, a), conn(9));
        // The dialog went to an address over UDP: the next hop is by address.
        assert_eq!(other_side(&info, a, (Proto::UDP, 0)), Side::Address);
        // A third connection cannot use the token.
        info.conn_id = 6;
        assert_eq!(other_side(&info, a, b), Side::Stranger);
        // An old-style token with no second side.
        assert_eq!(other_side(&info, a, (Proto(0), 0)), Side::Stranger);
        // From the UDP side (any UDP peer holding the token) back to the flow.
        info.proto = Proto::UDP;
        info.conn_id = 77;
        assert_eq!(other_side(&info, a, (Proto::UDP, 0)), conn(5));
    }
}
