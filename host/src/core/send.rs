//! The assembled core ([`Core`]: the script, the transports, the sockets) and every way it
//! sends: over a connection only, to an address, and stateless replies.
//!
//! A message for a client goes over the client's connection and nowhere else: a send to a
//! connection of a connection-oriented transport names the connection id with no address
//! ([`SockAddr::NONE`]), so a closed connection never turns into a new outbound connection to
//! the client's ephemeral port (RFC 7118 §5: a WebSocket client does not accept connections).
use super::addr::{connection_oriented, ConnDst, SocketInfo};
use crate::script::Script;
use crate::sip::Message;
use abi_stable::std_types::{RResult, RSlice, RStr};
use sipcore_abi::{Proto, ReceiveInfo, SendTarget, SockAddr, TransportRef, NO_LISTENER};
use std::net::SocketAddr;
use std::sync::OnceLock;

/// Everything the message path needs, built once at startup.
pub struct Core {
    pub(super) script: &'static Script,
    transports: Vec<(Proto, TransportRef)>,
    pub(super) sockets: Vec<SocketInfo>,
    /// The Via sent-by of each socket, in the order of `sockets` (computed once: it goes into
    /// every forwarded request).
    via: Vec<(Proto, String, u16)>,
}

static SCRIPT: OnceLock<Script> = OnceLock::new();

/// Publish the compiled script (before modules are initialised: they may resolve routes).
pub fn set_script(script: Script) -> &'static Script {
    SCRIPT.get_or_init(|| script)
}

/// The compiled script, once published.
pub fn script() -> Option<&'static Script> {
    SCRIPT.get()
}

/// The peer of a message, for log lines.
pub(crate) fn peer(info: &ReceiveInfo) -> String {
    info.src
        .to_std()
        .map_or_else(|| "unknown".into(), |a| a.to_string())
}

impl Core {
    /// Assemble the core (after [`set_script`]).
    pub fn new(transports: Vec<(Proto, TransportRef)>, sockets: Vec<SocketInfo>) -> Option<Core> {
        let via = sockets
            .iter()
            .map(|s| {
                let (host, port) = s.public_host_port();
                (s.proto, host, port)
            })
            .collect();
        Some(Core {
            script: script()?,
            transports,
            sockets,
            via,
        })
    }

    pub(super) fn transport(&self, proto: Proto) -> Option<TransportRef> {
        self.transports
            .iter()
            .find(|(p, _)| *p == proto)
            .map(|(_, t)| *t)
    }

    /// Ask the transport of `proto` to keep connection `conn_id` open for `secs` seconds even if
    /// idle (0: the normal idle lifetime), through its ABI 1.2 `keep_until`. `None` when no
    /// loaded module serves `proto` or its plugin predates ABI 1.2; else whether the
    /// connection exists.
    pub(super) fn keep_conn(&self, proto: Proto, conn_id: u64, secs: u32) -> Option<bool> {
        let keep = self.transport(proto)?.keep_until()?;
        Some(keep(conn_id, secs))
    }

    /// Hand `data` to the transport of `target.proto`.
    fn send(&self, target: &SendTarget, data: &[u8]) -> Result<u64, String> {
        let t = self
            .transport(target.proto)
            .ok_or_else(|| format!("no loaded module serves {}", target.proto.name()))?;
        match (t.send())(target, RSlice::from_slice(data)) {
            RResult::ROk(id) => Ok(id),
            RResult::RErr(e) => Err(e.as_str().to_string()),
        }
    }

    /// Send `data` back where the message `info` describes came from (replies, RFC 3261
    /// §18.2.2): over the same connection for connection-oriented transports, and only over it
    /// (no address: a closed connection is an error, not a new connection); to the source
    /// address for connectionless ones.
    pub(super) fn send_back(&self, info: &ReceiveInfo, data: &[u8]) -> Result<u64, String> {
        if connection_oriented(info.proto) {
            return self.send_conn(
                &ConnDst {
                    proto: info.proto,
                    conn_id: info.conn_id,
                    gone: (0, ""),
                },
                data,
            );
        }
        self.send(
            &SendTarget {
                proto: info.proto,
                conn_id: 0,
                dst: info.src,
                listener: info.listener,
            },
            data,
        )
    }

    /// Send over an open connection only (no new connection to its peer: a browser does not
    /// listen).
    pub(super) fn send_conn(&self, c: &ConnDst, data: &[u8]) -> Result<u64, String> {
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

    /// Send to an address the script chose (a request to its next hop, a reply over a
    /// connectionless transport): the transport may reuse or open an outbound connection.
    /// `host`: the name `addr` was located from, for the transport to open the connection
    /// for that name (TLS SNI and certificate check; ABI 1.3 `send_named`).
    pub(super) fn send_to(
        &self,
        proto: Proto,
        addr: SocketAddr,
        host: Option<&str>,
        data: &[u8],
    ) -> Result<u64, String> {
        let target = SendTarget {
            proto,
            conn_id: 0,
            dst: addr.into(),
            listener: NO_LISTENER,
        };
        let t = self
            .transport(proto)
            .ok_or_else(|| format!("no loaded module serves {}", proto.name()))?;
        match (host, t.send_named()) {
            (Some(h), Some(send_named)) => {
                match send_named(&target, RStr::from_str(h), RSlice::from_slice(data)) {
                    RResult::ROk(id) => Ok(id),
                    RResult::RErr(e) => Err(e.as_str().to_string()),
                }
            }
            _ => self.send(&target, data),
        }
    }

    /// The Via sent-by for messages we send over `proto` (to `to`, when an address): the
    /// socket's advertised address, or its own; of the first socket of `proto` in `to`'s
    /// address family (the one the transport sends from), else the first of `proto`.
    pub(super) fn via_for(&self, proto: Proto, to: Option<SocketAddr>) -> Option<(&str, u16)> {
        let of = || {
            self.via
                .iter()
                .zip(&self.sockets)
                .filter(move |((p, _, _), _)| *p == proto)
        };
        let same_family = to.and_then(|a| of().find(|(_, s)| s.addr.is_ipv4() == a.is_ipv4()));
        same_family
            .or_else(|| of().next())
            .map(|((_, host, port), _)| (host.as_str(), *port))
    }

    /// Answer the request `msg` statelessly with `code reason` and `headers` (RFC 3261
    /// §8.2.6, §16.7: a To tag from [`stateless_to_tag`](crate::sip::stateless_to_tag) above
    /// 100). The top Via gets `received` (§18.2.1) and a filled `rport` (RFC 3581 §4; always
    /// for connection-oriented transports, as the relay does). An ACK is never answered
    /// (§17): `Ok(false)`. `Ok(true)` when sent.
    pub(super) fn reply(
        &self,
        info: &ReceiveInfo,
        msg: &Message,
        code: u16,
        reason: &str,
        headers: &[(&str, &str)],
    ) -> Result<bool, String> {
        if msg.method_str() == Some("ACK") {
            return Ok(false);
        }
        let tag = (code > 100).then(|| crate::sip::stateless_to_tag(msg));
        let tag = tag.as_deref().unwrap_or("");
        let source = info
            .src
            .to_std()
            .map(|s| (s, connection_oriented(info.proto)));
        let r = crate::sip::build_reply_from(msg, source, code, reason, tag, headers, None);
        self.send_back(&reply_dest(info, msg), &r)?;
        crate::stats::counters::reply_sent(code);
        Ok(true)
    }
}

/// Where a reply of ours to `msg` goes: `info` itself, except over a connectionless
/// transport when the top Via names a port and has no `rport`: then the source IP at that
/// port (RFC 3261 §18.2.2 "received" and the sent-by port; with `rport`, the source port,
/// RFC 3581 §4), as OpenSIPS's `update_sock_struct_from_ip`. A Via without a port keeps the
/// source port (a client behind NAT that omits both is still reached).
pub(crate) fn reply_dest(info: &ReceiveInfo, msg: &Message) -> ReceiveInfo {
    let mut to = *info;
    if connection_oriented(info.proto) {
        return to;
    }
    if let (Some(src), Ok(via)) = (info.src.to_std(), msg.top_via()) {
        if let (None, Some(port)) = (via.rport(), via.port()) {
            to.src = SocketAddr::new(src.ip(), port).into();
        }
    }
    to
}

/// The reason phrase for the status a malformed request gets (RFC 4475 §3.1.2).
pub(crate) fn bad_reason(code: u16) -> &'static str {
    match code {
        505 => "Version Not Supported",
        _ => "Bad Request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(via: &str) -> Message {
        let text = format!(
            "OPTIONS sip:p.example.com SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:p.example.com>\r\nCall-ID: c\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(bytes::Bytes::from(text)).unwrap()
    }

    fn from(proto: Proto) -> ReceiveInfo {
        ReceiveInfo {
            proto,
            src: SockAddr::from("192.0.2.1:40000".parse::<SocketAddr>().unwrap()),
            dst: SockAddr::NONE,
            conn_id: 7,
            listener: 0,
        }
    }

    /// RFC 3261 §18.2.2 and RFC 3581 §4 for our own replies over UDP.
    #[test]
    fn udp_replies_go_to_the_via_port_unless_rport() {
        let dest = |proto, via| {
            reply_dest(&from(proto), &options(via))
                .src
                .to_std()
                .unwrap()
        };
        let udp = Proto::UDP;
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        // The sent-by port, at the source IP (never the Via's host).
        let v = "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1";
        assert_eq!(dest(udp, v), at("192.0.2.1:5070"));
        // rport asks for the source port.
        let v = "SIP/2.0/UDP 10.0.0.5:5070;rport;branch=z9hG4bK1";
        assert_eq!(dest(udp, v), at("192.0.2.1:40000"));
        // No port in the Via: the source port.
        assert_eq!(
            dest(udp, "SIP/2.0/UDP h;branch=z9hG4bK1"),
            at("192.0.2.1:40000")
        );
        // Connection-oriented transports answer over the connection, whatever the Via says.
        let ws = reply_dest(
            &from(Proto::WS),
            &options("SIP/2.0/WS h.invalid:5;branch=z9hG4bK1"),
        );
        assert_eq!(
            (ws.conn_id, ws.src.to_std()),
            (7, Some(at("192.0.2.1:40000")))
        );
    }
}
