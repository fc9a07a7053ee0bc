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
use super::{Core, SocketInfo};
use crate::sip::{Message, Uri};
use sha1::{Digest, Sha1};
use sipcore_abi::{Proto, ReceiveInfo};
use std::net::SocketAddr;
use std::sync::OnceLock;

/// A destination that is an open connection rather than an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnDst {
    /// Its transport.
    pub proto: Proto,
    /// The transport's connection id.
    pub conn_id: u64,
    /// The answer when the connection is gone: 430 Flow Failed for a flow token (RFC 5626
    /// §5.3), 480 for a location lookup.
    pub gone: (u16, &'static str),
}

/// What the script asked for, applied when the request is forwarded.
#[derive(Debug, Clone)]
pub(crate) struct ProxyState {
    /// Send over this connection (set by `lookup()` or by a flow token in `loose_route()`).
    pub dst: Option<ConnDst>,
    /// `record_route()` was called.
    pub record_route: bool,
    /// `loose_route()` found our own Route on top: remove it.
    pub pop_route: bool,
    /// `append_hf()`.
    pub add_headers: Vec<(String, String)>,
    /// `remove_hf()`.
    pub remove_headers: Vec<String>,
    /// Max-Forwards to add when the request has none.
    pub default_max_forwards: u8,
    /// Our Route carried a flow token whose MAC is wrong (RFC 5626 §5.3: answer 403).
    pub bad_token: bool,
}

impl Default for ProxyState {
    fn default() -> Self {
        ProxyState {
            dst: None,
            record_route: false,
            pop_route: false,
            add_headers: Vec::new(),
            remove_headers: Vec::new(),
            default_max_forwards: 70,
            bad_token: false,
        }
    }
}

/// Whether a transport keeps connections that replies and in-dialog requests must reuse.
pub(crate) fn connection_oriented(p: Proto) -> bool {
    p != Proto::UDP && p != Proto::NONE
}

fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        if getrandom::fill(&mut k).is_err() {
            // No OS randomness (cannot happen on Linux): derive from time and pid, and say so.
            crate::log!(
                Warning,
                "core",
                "no OS randomness: flow-token key derived from the clock"
            );
            let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
            let d = Sha1::digest(seed.as_bytes());
            k[..20].copy_from_slice(&d);
        }
        k
    })
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

/// `host:port` as others should address `s` (its advertised address if it has one).
pub(crate) fn public_addr(s: &SocketInfo) -> String {
    let (host, port) = s.public_host_port();
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The Record-Route value for a request that came in as `info` and leaves on `out`.
pub(crate) fn record_route_value(
    core: &Core,
    info: &ReceiveInfo,
    out: Option<(Proto, u64)>,
) -> Option<String> {
    let sock = socket_of(core, info)?;
    let a = if connection_oriented(info.proto) {
        info.conn_id
    } else {
        0
    };
    let out = out.filter(|(p, id)| connection_oriented(*p) && *id != 0);
    Some(format!(
        "<sip:{}@{};transport={};lr>",
        encode_token((info.proto, a), out),
        public_addr(sock),
        info.proto.name()
    ))
}

/// Whether a Route URI names this proxy: one of our addresses (or advertised names), with no
/// port or one of our ports.
pub(crate) fn uri_is_ours(core: &Core, uri: &Uri<'_>) -> bool {
    let host = uri.host().trim_start_matches('[').trim_end_matches(']');
    let ip = host.parse::<std::net::IpAddr>().ok();
    core.sockets.iter().any(|s| {
        let adv = s.advertised.as_deref().map(|a| {
            let (h, p) = super::env::split_host_port(a);
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
    /// The script's return value: 1 if the request had a Route header, -1 if not.
    pub ret: i64,
    /// The next hop to put in `$du`: the Route after ours, or the top Route if it is not ours.
    pub du: Option<String>,
}

/// `loose_route()` (RFC 3261 §16.4, §16.12): if the top Route is ours it is removed (on
/// forward), and a flow token in it picks the connection on the other side of the dialog.
pub(crate) fn loose_route(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    st: &mut ProxyState,
) -> LooseRoute {
    let mut routes = msg.routes();
    let Some(top) = routes.next() else {
        return LooseRoute { ret: -1, du: None };
    };
    let Ok(top) = top else {
        crate::log!(Warning, "core", "loose_route(): malformed Route header"; "peer" => super::peer(info));
        return LooseRoute { ret: -1, du: None };
    };
    let Ok(uri) = top.uri() else {
        return LooseRoute { ret: -1, du: None };
    };
    if !uri_is_ours(core, &uri) {
        return LooseRoute {
            ret: 1,
            du: Some(uri.as_str().to_string()),
        };
    }
    st.pop_route = true;
    if let Some(user) = uri.user() {
        match decode_token(user) {
            Some([a, b]) => st.dst = other_side(info, a, b),
            None => {
                crate::log!(Info, "core", "loose_route(): Route {} carries a flow token that is not ours or was altered",
                    uri.as_str(); "peer" => super::peer(info));
                st.bad_token = true;
            }
        }
    }
    let du = match routes.next() {
        Some(Ok(next)) => Some(next.uri_str().to_string()),
        _ => None,
    };
    LooseRoute { ret: 1, du }
}

/// The connection on the other side of a dialog from the one the request came in on.
fn other_side(info: &ReceiveInfo, a: (Proto, u64), b: (Proto, u64)) -> Option<ConnDst> {
    let here = (info.proto, info.conn_id);
    let there = if here == a {
        b
    } else if here == b {
        a
    } else {
        // From a third connection (the UA reconnected): the token cannot help.
        return None;
    };
    (there.1 != 0).then_some(ConnDst {
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
    if msg.to().ok().and_then(|t| t.tag()).is_some() {
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

/// `$si:$sp` of a connection as a SIP URI naming it, for `$du` after a lookup.
pub(crate) fn conn_uri(proto: Proto, peer: SocketAddr) -> String {
    format!("sip:{peer};transport={}", proto.name())
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
        assert_eq!(other_side(&info, a, b).map(|d| d.conn_id), Some(9));
        assert_eq!(other_side(&info, b, a).map(|d| d.conn_id), Some(9));
        assert_eq!(other_side(&info, a, (Proto(0), 0)), None);
        info.conn_id = 6;
        assert_eq!(other_side(&info, a, b), None);
    }
}
