//! The `received` and `rport` parameters a server adds to the top Via of a
//! request it receives (RFC 3261 §18.2.1, RFC 3581 §4), and the address a
//! response goes back to (RFC 3261 §18.2.2, RFC 3581 §4).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::edit::{EditError, Rewriter};
use super::message::Message;
use super::scan::{ipv4_text, push_decimal, skip_ws, token_end};
use super::via::Via;

/// What to add to the top Via of a received request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViaReceived {
    /// `received=` to set (replacing any present), or `None` to leave the
    /// Via without one.
    pub received: Option<IpAddr>,
    /// Value for an `rport` present without one, else `None`.
    pub rport: Option<u16>,
}

/// The sent-by host as an IP address, if it is an IPv4 address or an IPv6
/// reference (brackets optional).
pub(crate) fn host_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().ok()
}

/// Computes the parameters for the top Via `via` of a request received from
/// `source`:
///
/// - `received` is the source IP when the sent-by host is a domain name or an
///   address other than the source (RFC 3261 §18.2.1), and always when `rport`
///   is present without a value (RFC 3581 §4);
/// - `rport` is the source port when `rport` is present without a value.
///
/// IPv4-mapped IPv6 source addresses (dual-stack sockets) compare as IPv4.
pub fn via_received(via: &Via<'_>, source: SocketAddr) -> ViaReceived {
    let src = source.ip().to_canonical();
    let rport = (via.rport() == Some(None)).then_some(source.port());
    let same = host_ip(via.host()).is_some_and(|ip| ip.to_canonical() == src);
    ViaReceived {
        received: (rport.is_some() || !same).then_some(src),
        rport,
    }
}

/// Writes an address as a `received` value: IPv6 as a reference in brackets
/// (as RFC 5118 §4.5 shows it).
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        // By hand: this is on the path of every reply and every relayed request.
        IpAddr::V4(v4) => {
            let mut buf = [0u8; 15];
            let n = ipv4_text(v4, &mut buf);
            out.extend_from_slice(&buf[..n]);
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "[{v6}]");
        }
    }
}

/// Adds the edits that apply [`via_received`] for `source` to the top Via of
/// `msg`: fills a valueless `rport` in place, replaces an existing `received`
/// value or appends `;received=` at the end of the top Via value.
pub(crate) fn apply(
    msg: &Message,
    w: &mut Rewriter<'_>,
    source: SocketAddr,
    force_rport: bool,
) -> Result<(), EditError> {
    let raw = msg
        .top_via_text()
        .ok_or(super::ParseError::MissingHeader("Via"))?;
    let via = msg.top_via()?;
    let mut fix = via_received(&via, source);
    // `force_rport` (as OpenSIPS's force_rport()): add rport even when the client did not ask,
    // for connection-oriented transports whose replies must find the client's connection.
    let add_rport = force_rport && via.rport().is_none();
    if add_rport {
        fix.rport = Some(source.port());
        fix.received = Some(source.ip().to_canonical());
    }
    let end = msg
        .range_of(raw)
        .ok_or(EditError::InvalidInput("top Via"))?
        .end;
    let mut replaced = false;
    for (name, value) in via.params().iter() {
        if let (Some(port), None, true) = (fix.rport, value, name.eq_ignore_ascii_case("rport")) {
            if let Some(r) = msg.range_of(name) {
                w.insert(r.end, |o| {
                    o.push(b'=');
                    push_decimal(o, port.into());
                });
            }
        }
        if let (Some(ip), Some(v), true) =
            (fix.received, value, name.eq_ignore_ascii_case("received"))
        {
            if let Some(r) = msg.range_of(v) {
                w.replace(r, |o| write_ip(o, ip));
                replaced = true;
            }
        }
    }
    if let (Some(ip), false) = (fix.received, replaced) {
        w.insert(end, |o| {
            o.extend_from_slice(b";received=");
            write_ip(o, ip);
        });
    }
    if add_rport {
        let port = source.port();
        w.insert(end, |o| {
            o.extend_from_slice(b";rport=");
            push_decimal(o, port.into());
        });
    }
    Ok(())
}

/// Returns `msg` with [`via_received`] for `source` applied to its top Via,
/// re-parsed: for a server that answers itself, so that [`build_reply`]
/// copies the completed Via (RFC 3581 §4: the response carries the filled
/// `rport`). Applying it twice changes nothing more. When forwarding, set
/// [`ForwardRequest::source`](super::ForwardRequest::source) instead, which
/// does the same in the forwarding rewrite.
///
/// Errors: [`EditError::Parse`] if there is no Via or the top one is malformed.
///
/// [`build_reply`]: super::build_reply
pub fn with_via_received(msg: &Message, source: SocketAddr) -> Result<Message, EditError> {
    let mut w = Rewriter::new(msg);
    apply(msg, &mut w, source, false)?;
    Ok(Message::parse(Bytes::from(w.finish(msg.extent_range())))?)
}

/// The value of the first Via header field of `msg` (every comma-separated
/// value it holds) with [`via_received`] for `source` applied to the top Via
/// value, and `rport` added when `force_rport` (OpenSIPS `force_rport()`):
/// what a server that answers a request itself copies into its response
/// (RFC 3261 §18.2.1, RFC 3581 §4), without re-parsing the request.
///
/// Errors: [`EditError::Parse`] if there is no Via or the top one is malformed.
pub fn first_via_received(
    msg: &Message,
    source: SocketAddr,
    force_rport: bool,
) -> Result<Vec<u8>, EditError> {
    let mut out = Vec::new();
    write_first_via_received(&mut out, msg, source, force_rport)?;
    Ok(out)
}

/// [`first_via_received`], appended to `out` (nothing is written on error).
pub(crate) fn write_first_via_received(
    out: &mut Vec<u8>,
    msg: &Message,
    source: SocketAddr,
    force_rport: bool,
) -> Result<(), EditError> {
    let (first, _) = msg
        .first_and_last(super::headers::HeaderName::Via)
        .ok_or(super::ParseError::MissingHeader("Via"))?;
    let value = first.value.range();
    // The common cases, without parsing the Via: a WebSocket client's Via with neither
    // parameter (both appended when `force_rport`, whatever the sent-by says, as `apply`
    // would), or with a valueless `rport` and no `received` (RFC 3581 §4: the port goes into
    // it and `received` is appended, whatever the sent-by says).
    let raw = msg
        .top_via_text()
        .ok_or(super::ParseError::MissingHeader("Via"))?;
    let end = msg.range_of(raw).map(|r| r.end);
    let fill = match (plain_rport(raw.as_bytes()), end) {
        (Some(None), Some(end)) if force_rport => Some((end, None)),
        (Some(Some(name_end)), Some(end)) => Some((end, Some(end - raw.len() + name_end))),
        _ => None,
    };
    if let Some((end, rport_at)) = fill {
        let port = source.port();
        let upto = rport_at.unwrap_or(end);
        out.extend_from_slice(msg.buf.get(value.start..upto).unwrap_or_default());
        if rport_at.is_some() {
            out.push(b'=');
            push_decimal(out, port.into());
            out.extend_from_slice(msg.buf.get(upto..end).unwrap_or_default());
        }
        out.extend_from_slice(b";received=");
        write_ip(out, source.ip().to_canonical());
        if rport_at.is_none() {
            out.extend_from_slice(b";rport=");
            push_decimal(out, port.into());
        }
        out.extend_from_slice(msg.buf.get(end..value.end).unwrap_or_default());
        return Ok(());
    }
    write_first_via_rewritten(out, msg, source, force_rport)
}

/// [`write_first_via_received`] without its fast paths: the top Via parsed and rewritten by
/// [`apply`]. The fuzz target checks that both give the same bytes for every Via that parses.
pub(crate) fn write_first_via_rewritten(
    out: &mut Vec<u8>,
    msg: &Message,
    source: SocketAddr,
    force_rport: bool,
) -> Result<(), EditError> {
    let (first, _) = msg
        .first_and_last(super::headers::HeaderName::Via)
        .ok_or(super::ParseError::MissingHeader("Via"))?;
    let mut w = Rewriter::new(msg);
    apply(msg, &mut w, source, force_rport)?;
    w.finish_into(first.value.range(), out);
    Ok(())
}

/// For the fast path of [`write_first_via_received`]: `Some(None)` when the Via value has
/// neither an `rport` nor a `received` parameter, `Some(Some(i))` when it has one valueless
/// `rport` (ending at byte `i`) and no `received`; `None` for anything else, or when quoted
/// text or a comment could hide a parameter (then the Via is parsed and rewritten in full).
fn plain_rport(raw: &[u8]) -> Option<Option<usize>> {
    let mut found = None;
    // One pass: every `;` starts a parameter; a quote or a comment anywhere means no.
    for i in memchr::memchr3_iter(b';', b'"', b'(', raw) {
        if raw.get(i) != Some(&b';') {
            return None;
        }
        let start = skip_ws(raw, i + 1);
        let end = token_end(raw, start);
        let name = raw.get(start..end).unwrap_or_default();
        if name.eq_ignore_ascii_case(b"received") {
            return None;
        }
        if name.eq_ignore_ascii_case(b"rport") {
            let next = raw.get(skip_ws(raw, end)).copied();
            if found.is_some() || !matches!(next, None | Some(b';')) {
                return None;
            }
            found = Some(end);
        }
    }
    Some(found)
}

/// Where to send a response whose top Via (after removing this element's
/// own) is `via`, over an unreliable transport or when the connection the
/// request came on is gone (RFC 3261 §18.2.2, RFC 3581 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseDest<'a> {
    /// The Via transport (`UDP`, `TCP`, `TLS`, `WS`, ...). For reliable
    /// transports the response goes first over the connection the request
    /// arrived on; WS/WSS Vias hold a `.invalid` host, so only that
    /// connection can be used (RFC 7118 §5).
    pub transport: &'a str,
    /// `maddr` if present, else `received` if present, else the sent-by host
    /// (IPv6 references keep their brackets; a name needs RFC 3263 §5 DNS).
    pub host: &'a str,
    /// For `maddr` and plain sent-by: the sent-by port; for `received`: the
    /// filled-in `rport`, else the sent-by port. `None` means the default
    /// port of the transport ([`ResponseDest::port_or_default`]).
    pub port: Option<u16>,
}

impl<'a> ResponseDest<'a> {
    /// Computes the destination from a Via value.
    pub fn from_via(via: &Via<'a>) -> Self {
        let (host, port) = match (via.param("maddr").flatten(), via.received()) {
            (Some(maddr), _) => (maddr, via.port()),
            (None, Some(received)) => (received, via.rport().flatten().or(via.port())),
            (None, None) => (via.host(), via.port()),
        };
        ResponseDest {
            transport: via.transport(),
            host,
            port,
        }
    }

    /// The port, or 5061 for TLS and WSS and 5060 otherwise (RFC 3261
    /// §18.2.2, §19.1.2).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(
            if self.transport.eq_ignore_ascii_case("TLS")
                || self.transport.eq_ignore_ascii_case("WSS")
            {
                5061
            } else {
                5060
            },
        )
    }

    /// The host as an IP address, if it is one (brackets optional).
    pub fn ip(&self) -> Option<IpAddr> {
        host_ip(self.host)
    }

    /// The socket address, if the host is an IP address.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.ip()
            .map(|ip| SocketAddr::new(ip, self.port_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// The fast paths of `write_first_via_received` write exactly what the full rewrite does.
    #[test]
    fn fast_paths_match_the_full_rewrite() {
        let vias = [
            "SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK3215764",
            "SIP/2.0/WS bench1.invalid;rport;branch=z9hG4bK-1-2",
            "SIP/2.0/WS bench1.invalid;branch=z9hG4bK-1-2;rport",
            "SIP/2.0/WS bench1.invalid ; RPORT ;branch=z9hG4bK-1-2",
            "SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bK1, SIP/2.0/UDP p;branch=z9hG4bK0",
            "SIP/2.0/UDP 10.1.1.1:4540;rport=9;branch=z9hG4bK1",
            "SIP/2.0/UDP 10.1.1.1:4540;received=10.0.0.1;branch=z9hG4bK1",
            "SIP/2.0/UDP 10.1.1.1:4540;rport;received=10.0.0.1;branch=z9hG4bK1",
            "SIP/2.0/UDP 10.1.1.1:4540;rportx;branch=z9hG4bK1",
            "SIP/2.0/UDP 10.1.1.1:4540;rport;rport;branch=z9hG4bK1",
            "SIP/2.0/UDP 10.1.1.1;x=\"a;rport\";branch=z9hG4bK1",
            "SIP/2.0/UDP [2001:db8::1]:5060;rport;branch=z9hG4bK1",
        ];
        for via in vias {
            let m = Message::parse(Bytes::from(format!(
                "OPTIONS sip:a@b SIP/2.0\r\nVia: {via}\r\nv: SIP/2.0/TCP q;branch=z9hG4bK2\r\n\
                 From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
            )))
            .unwrap();
            for source in [src("198.51.100.7:40000"), src("[2001:db8::9]:5062")] {
                for force in [false, true] {
                    let (mut fast, mut full) = (Vec::new(), Vec::new());
                    write_first_via_received(&mut fast, &m, source, force).unwrap();
                    write_first_via_rewritten(&mut full, &m, source, force).unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(&fast),
                        String::from_utf8_lossy(&full),
                        "{via} from {source}, force_rport {force}"
                    );
                }
            }
        }
    }

    #[test]
    fn received_only_when_needed() {
        let via = Via::parse("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK1").unwrap();
        let same = via_received(&via, src("192.0.2.4:5060"));
        assert_eq!(
            same,
            ViaReceived {
                received: None,
                rport: None
            }
        );
        let nat = via_received(&via, src("198.51.100.7:40000"));
        assert_eq!(nat.received, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(nat.rport, None);
        let name = Via::parse("SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bK1").unwrap();
        assert_eq!(
            via_received(&name, src("192.0.2.4:5060")).received,
            Some("192.0.2.4".parse().unwrap())
        );
        let mapped = via_received(&via, src("[::ffff:192.0.2.4]:5060"));
        assert_eq!(mapped.received, None);
        let v6 = Via::parse("SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bK1").unwrap();
        assert_eq!(
            via_received(&v6, src("[2001:db8::9:1]:5060")).received,
            None
        );
        assert_eq!(
            via_received(&v6, src("[2001:db8::9:255]:5060")).received,
            Some("2001:db8::9:255".parse().unwrap())
        );
    }

    #[test]
    fn rport_forces_received() {
        // RFC 3581 §4: received is added even when it equals sent-by.
        let via = Via::parse("SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff").unwrap();
        assert_eq!(
            via_received(&via, src("10.1.1.1:4540")),
            ViaReceived {
                received: Some("10.1.1.1".parse().unwrap()),
                rport: Some(4540)
            }
        );
        let filled = Via::parse("SIP/2.0/UDP 10.1.1.1:4540;rport=4540").unwrap();
        assert_eq!(
            via_received(&filled, src("10.1.1.1:4540")),
            ViaReceived {
                received: None,
                rport: None
            }
        );
    }

    #[test]
    fn request_rewritten_for_a_local_reply() {
        let req = Message::parse(Bytes::from_static(
            b"\r\nOPTIONS sip:p.example.com SIP/2.0\r\n\
              Via: SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff, SIP/2.0/UDP 10.0.0.1\r\n\
              Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        ))
        .unwrap();
        let fixed = with_via_received(&req, src("192.0.2.1:9988")).unwrap();
        let expected: &[u8] = b"OPTIONS sip:p.example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP 10.1.1.1:4540;rport=9988;branch=z9hG4bKkjshdyff;received=192.0.2.1, \
            SIP/2.0/UDP 10.0.0.1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(fixed.as_bytes(), expected);
        let again = with_via_received(&fixed, src("192.0.2.1:9988")).unwrap();
        assert_eq!(again.as_bytes(), expected);
        let reply = super::super::build_reply(&fixed, 200, "OK", "", &[], None);
        assert!(reply.starts_with(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.1.1.1:4540;rport=9988;branch=z9hG4bKkjshdyff;received=192.0.2.1, "
        ));
        let none = Message::parse(Bytes::from_static(b"OPTIONS sip:p SIP/2.0\r\n\r\n")).unwrap();
        assert_eq!(
            with_via_received(&none, src("192.0.2.1:1")).err(),
            Some(EditError::Parse(super::super::ParseError::MissingHeader(
                "Via"
            )))
        );
    }

    #[test]
    fn response_destinations() {
        let d = |s: &'static str| ResponseDest::from_via(&Via::parse(s).unwrap());
        // RFC 3581 §4 example: received + rport.
        let r = d("SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;rport=9988;branch=z9hG4bKkjshdyff");
        assert_eq!(
            (r.host, r.port, r.port_or_default()),
            ("192.0.2.1", Some(9988), 9988)
        );
        assert_eq!(r.socket_addr(), Some(src("192.0.2.1:9988")));
        let r = d("SIP/2.0/UDP pc33.example.com;received=192.0.2.1;branch=z9hG4bK1");
        assert_eq!(
            (r.host, r.port, r.port_or_default()),
            ("192.0.2.1", None, 5060)
        );
        let r =
            d("SIP/2.0/UDP pc33.example.com:5070;maddr=239.255.255.1;received=192.0.2.1;rport=1");
        assert_eq!((r.host, r.port), ("239.255.255.1", Some(5070)));
        let r = d("SIP/2.0/TLS pc33.example.com;branch=z9hG4bK1");
        assert_eq!(
            (r.host, r.port_or_default(), r.ip()),
            ("pc33.example.com", 5061, None)
        );
        let r = d("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bK1");
        assert_eq!(r.socket_addr(), Some(src("[2001:db8::9:255]:5060")));
        let r = d("SIP/2.0/WS df7jal23ls0d.invalid;rport;branch=z9hG4bK1");
        assert_eq!(
            (r.transport, r.host, r.port),
            ("WS", "df7jal23ls0d.invalid", None)
        );
    }

    #[test]
    fn fast_and_general_paths_agree() {
        for via in [
            "SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK1",
            "SIP/2.0/WS a.invalid;branch=z9hG4bK1, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2",
            "SIP/2.0/WS 10.0.0.1:5060 ; branch = z9hG4bK1",
            "SIP/2.0/WS a.invalid;branch=z9hG4bK1;rport",
            "SIP/2.0/WS a.invalid;branch=z9hG4bK1;received=1.2.3.4",
        ] {
            let text = format!(
                "OPTIONS sip:p SIP/2.0\r\nVia: {via}\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
            );
            let req = Message::parse(Bytes::from(text.into_bytes())).unwrap();
            for source in [
                src("192.0.2.9:4000"),
                src("0.0.0.0:0"),
                src("255.10.1.100:65535"),
                src("[2001:db8::9]:4000"),
                src("[::ffff:192.0.2.9]:4000"),
            ] {
                let mut general = Vec::new();
                let (first, _) = req
                    .first_and_last(super::super::headers::HeaderName::Via)
                    .unwrap();
                let mut w = Rewriter::new(&req);
                apply(&req, &mut w, source, true).unwrap();
                w.finish_into(first.value.range(), &mut general);
                assert_eq!(
                    String::from_utf8(first_via_received(&req, source, true).unwrap()).unwrap(),
                    String::from_utf8(general).unwrap(),
                    "{via} from {source}"
                );
            }
        }
    }
}
