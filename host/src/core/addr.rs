//! Small shared helpers of the core about sockets, addresses and connections (a leaf module:
//! it imports nothing else from the core).
use crate::sip::Hop;
use sipcore_abi::{Proto, ReceiveInfo};
use std::net::SocketAddr;

/// One listening socket, as created from the config.
#[derive(Debug, Clone)]
pub struct SocketInfo {
    /// Index in the socket list (`ListenerSpec::id`).
    pub id: u32,
    /// Protocol.
    pub proto: Proto,
    /// Bound address.
    pub addr: SocketAddr,
    /// `as host[:port]`, when given.
    pub advertised: Option<String>,
    /// `tag NAME`, when given.
    pub tag: Option<String>,
}

impl SocketInfo {
    /// Host and port others should address this socket by: its advertised `as host[:port]`
    /// (the bound port when it gives none), or the bound address.
    pub(crate) fn public_host_port(&self) -> (String, u16) {
        if let Some(adv) = &self.advertised {
            return match adv.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || adv.starts_with('[') => match p.parse() {
                    Ok(p) => (h.to_string(), p),
                    Err(_) => (adv.clone(), self.addr.port()),
                },
                _ => (adv.clone(), self.addr.port()),
            };
        }
        (self.addr.ip().to_string(), self.addr.port())
    }

    /// `ws:127.0.0.1:8080 as 1.2.3.4:80`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}:{}", self.proto.name(), self.addr);
        if let Some(a) = &self.advertised {
            s.push_str(" as ");
            s.push_str(a);
        }
        s
    }
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

/// `host[:port]`, `[v6]:port` or a bare v6 address.
pub(crate) fn split_host_port(s: &str) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            return (h, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (s, None),
    }
}

/// Whether a transport keeps connections that replies and in-dialog requests must reuse.
pub(crate) fn connection_oriented(p: Proto) -> bool {
    p != Proto::UDP && p != Proto::NONE
}

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

/// `$si:$sp` of a connection as a SIP URI naming it, for `$du` after a lookup.
pub(crate) fn conn_uri(proto: Proto, peer: SocketAddr) -> String {
    format!("sip:{peer};transport={}", proto.name())
}

/// The hop a request came from (bound into our Via branch, RFC 3261 §16.11): its connection
/// for connection-oriented transports, its source address otherwise.
pub(crate) fn hop_of(info: &ReceiveInfo) -> Option<Hop> {
    if connection_oriented(info.proto) {
        return (info.conn_id != 0).then_some(Hop::Conn {
            proto: info.proto.0,
            conn_id: info.conn_id,
        });
    }
    info.src.to_std().map(|addr| Hop::Addr {
        proto: info.proto.0,
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipcore_abi::SockAddr;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("a.example:80"), ("a.example", Some(80)));
        assert_eq!(split_host_port("[::1]:5060"), ("::1", Some(5060)));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(split_host_port("host"), ("host", None));
    }

    #[test]
    fn hops() {
        let mut info = ReceiveInfo {
            proto: Proto::WS,
            src: SockAddr::from("127.0.0.1:4000".parse::<SocketAddr>().unwrap()),
            dst: SockAddr::NONE,
            conn_id: 9,
            listener: 0,
        };
        assert_eq!(
            hop_of(&info),
            Some(Hop::Conn {
                proto: Proto::WS.0,
                conn_id: 9
            })
        );
        info.conn_id = 0;
        assert_eq!(hop_of(&info), None);
        info.proto = Proto::UDP;
        assert_eq!(
            hop_of(&info),
            Some(Hop::Addr {
                proto: Proto::UDP.0,
                addr: "127.0.0.1:4000".parse().unwrap()
            })
        );
    }
}
