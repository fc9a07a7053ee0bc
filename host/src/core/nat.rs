//! NAT traversal helpers with OpenSIPS's names: `force_rport()` (OpenSIPS core, RFC 3581),
//! `fix_nated_contact([uri_params])` and `nat_uac_test(flags)` (OpenSIPS nathelper).
//!
//! Pure code over a parsed [`Message`]: a rewrite gives a new message (edited bytes, parsed
//! again), which the script's later functions, the relay and the replies then use, as
//! OpenSIPS applies its lumps when the message is sent. Only the public accessors of the SIP
//! parser are used: the spans of what is rewritten are found from the slices they return.
use crate::sip::{Contact, Message, ParseError, Uri, Via};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;

/// Why a NAT helper could not rewrite a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatError {
    /// The message has no Via (or no Contact for `fix_nated_contact()`).
    #[error("no {0} header")]
    Missing(&'static str),
    /// The header to rewrite does not parse.
    #[error("malformed {0}: {1}")]
    Malformed(&'static str, ParseError),
    /// `Contact: *` has no address to fix.
    #[error("Contact is '*'")]
    Wildcard,
    /// The parser's slice is not inside the message's bytes (cannot happen with this parser).
    #[error("cannot locate the {0} in the message")]
    NoSpan(&'static str),
    /// `uri_params` holds characters that would break the header.
    #[error("uri_params {0:?} is not a list of URI parameters")]
    BadParams(String),
    /// The rewritten message does not parse again.
    #[error("the rewritten message does not parse: {0}")]
    Reparse(ParseError),
}

/// Where `part` (a slice the parser returned) lies in `msg`'s bytes.
fn span_of(msg: &Message, part: &str) -> Option<Range<usize>> {
    let all = msg.as_bytes();
    let base = all.as_ptr() as usize;
    let start = (part.as_ptr() as usize).checked_sub(base)?;
    let end = start.checked_add(part.len())?;
    (end <= all.len()).then_some(start..end)
}

/// `msg` with `range` replaced by `text`, parsed again.
fn splice(msg: &Message, range: Range<usize>, text: &str) -> Result<Message, NatError> {
    let src = msg.as_bytes();
    let mut out = Vec::with_capacity(src.len() + text.len());
    out.extend_from_slice(&src[..range.start]);
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&src[range.end..]);
    Message::parse(bytes::Bytes::from(out)).map_err(NatError::Reparse)
}

/// `force_rport()` (OpenSIPS core; RFC 3581 §4): the top Via gets a valueless `rport`, as if
/// the client had asked for one, so that the relay fills it with the source port and every
/// reply (ours and relayed ones) goes to the source port. `Ok(None)`: it already has one.
pub fn force_rport(msg: &Message) -> Result<Option<Message>, NatError> {
    let raw = msg.vias().next().ok_or(NatError::Missing("Via"))?;
    let via = Via::parse(raw).map_err(|e| NatError::Malformed("Via", e))?;
    if via.rport().is_some() {
        return Ok(None);
    }
    let end = span_of(msg, raw).ok_or(NatError::NoSpan("Via"))?.end;
    splice(msg, end..end, ";rport").map(Some)
}

/// `ip:port` as a URI's hostport (IPv6 in brackets).
fn hostport(a: SocketAddr) -> String {
    match a.ip().to_canonical() {
        IpAddr::V4(ip) => format!("{ip}:{}", a.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
    }
}

/// The span of `uri`'s host and port (`host[:port]`) in `msg`.
fn hostport_span(msg: &Message, uri: &Uri<'_>) -> Option<Range<usize>> {
    let host = span_of(msg, uri.host())?;
    let bytes = msg.as_bytes();
    let mut end = host.end;
    // A host given in brackets may be returned without them.
    if bytes.get(end) == Some(&b']') {
        end += 1;
    }
    let start = if host.start > 0 && bytes[host.start - 1] == b'[' && bytes[end - 1] == b']' {
        host.start - 1
    } else {
        host.start
    };
    if bytes.get(end) == Some(&b':') {
        end += 1;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    Some(start..end)
}

/// `fix_nated_contact([uri_params])` (OpenSIPS nathelper): the first Contact URI's host and
/// port become the address the message came from (`source`), and `uri_params` (`;a=b...`,
/// the leading `;` optional), when given, are added to that URI. A phone behind a NAT that
/// writes its private address in Contact is then reached by in-dialog requests at the
/// address its NAT gave it.
pub fn fix_nated_contact(
    msg: &Message,
    source: SocketAddr,
    uri_params: &str,
) -> Result<Message, NatError> {
    let params = uri_params.trim();
    let params = params.strip_prefix(';').unwrap_or(params);
    let safe = params
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"<>,\"\\".contains(&b));
    if !safe {
        return Err(NatError::BadParams(uri_params.to_string()));
    }
    let first = msg.contacts().next().ok_or(NatError::Missing("Contact"))?;
    let na = match first.map_err(|e| NatError::Malformed("Contact", e))? {
        Contact::Wildcard => return Err(NatError::Wildcard),
        Contact::Addr(na) => na,
    };
    let uri_str = na.uri_str();
    let uri = Uri::parse(uri_str).map_err(|e| NatError::Malformed("Contact", e))?;
    let uri_span = span_of(msg, uri_str).ok_or(NatError::NoSpan("Contact URI"))?;
    let hp = hostport_span(msg, &uri)
        .filter(|r| r.start >= uri_span.start && r.end <= uri_span.end)
        .ok_or(NatError::NoSpan("Contact host"))?;
    if params.is_empty() {
        return splice(msg, hp, &hostport(source));
    }
    // The whole URI is rewritten, so that the parameters go inside it, after its own and
    // before its headers (`?...`, RFC 3261 §19.1.1): an addr-spec Contact gets angle
    // brackets (else they would be header parameters).
    let text = msg.as_bytes();
    let params_end = match uri.headers().and_then(|h| span_of(msg, h)) {
        Some(h) if h.start > hp.end && text[h.start - 1] == b'?' => h.start - 1,
        _ => uri_span.end,
    };
    let before = String::from_utf8_lossy(&text[uri_span.start..hp.start]);
    let middle = String::from_utf8_lossy(&text[hp.end..params_end]);
    let after = String::from_utf8_lossy(&text[params_end..uri_span.end]);
    let new_uri = format!("{before}{}{middle};{params}{after}", hostport(source));
    let new_uri = if na.is_name_addr() {
        new_uri
    } else {
        format!("<{new_uri}>")
    };
    splice(msg, uri_span, &new_uri)
}

/// A private (RFC 1918) or shared (RFC 6598, carrier-grade NAT) IPv4 address, as nathelper's
/// tests look for.
fn is_private(host: &str) -> bool {
    let Ok(ip) = host.parse::<Ipv4Addr>() else {
        return false;
    };
    let [a, b, ..] = ip.octets();
    a == 10
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 100 && (64..128).contains(&b))
}

/// Whether `host` names the IP address `ip` (brackets of IPv6 allowed).
fn same_ip(host: &str, ip: IpAddr) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|h| h.to_canonical() == ip.to_canonical())
}

/// `nat_uac_test(flags)` (OpenSIPS nathelper): whether any of the tests `flags` selects finds
/// the client behind a NAT. 1: the Contact's host is a private address; 2: the top Via's
/// host is not the source IP ("received" test); 4: the top Via's host is private; 8: the SDP
/// body's `c=` lines name a private address; 16: the source port is not the top Via's port
/// (5060 when none); 32: the Contact's host is not the source IP; 64: the Contact's port is
/// not the source port (5060 when none). A test that cannot be made (no Contact, no body) is
/// negative.
pub fn nat_uac_test(msg: &Message, source: SocketAddr, flags: u32) -> bool {
    let via = msg.top_via().ok();
    let contact = msg
        .contacts()
        .next()
        .and_then(Result::ok)
        .and_then(|c| match c {
            Contact::Addr(na) => Uri::parse(na.uri_str()).ok(),
            Contact::Wildcard => None,
        });
    let test = |bit: u32| flags & bit != 0;
    (test(1) && contact.as_ref().is_some_and(|u| is_private(u.host())))
        || (test(2)
            && via
                .as_ref()
                .is_some_and(|v| !same_ip(v.host(), source.ip())))
        || (test(4) && via.as_ref().is_some_and(|v| is_private(v.host())))
        || (test(8) && sdp_is_private(msg.body()))
        || (test(16)
            && via
                .as_ref()
                .is_some_and(|v| v.port().unwrap_or(5060) != source.port()))
        || (test(32)
            && contact
                .as_ref()
                .is_some_and(|u| !same_ip(u.host(), source.ip())))
        || (test(64)
            && contact
                .as_ref()
                .is_some_and(|u| u.port().unwrap_or(5060) != source.port()))
}

/// Whether an SDP body (RFC 8866 §5.7) has a `c=IN IP4` line with a private address.
fn sdp_is_private(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).lines().any(|l| {
        let mut f = l
            .trim_end()
            .strip_prefix("c=")
            .unwrap_or("")
            .split_ascii_whitespace();
        matches!((f.next(), f.next(), f.next()), (Some("IN"), Some("IP4"), Some(a))
            if is_private(a.split('/').next().unwrap_or(a)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(via: &str, contact: &str, body: &str) -> Message {
        let text = format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP second.example.com;branch=z9hG4bK2\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n\
             Call-ID: c\r\nCSeq: 1 INVITE\r\n{contact}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Message::parse(bytes::Bytes::from(text)).unwrap()
    }

    const SRC: &str = "203.0.113.7:40123";

    fn src() -> SocketAddr {
        SRC.parse().unwrap()
    }

    /// RFC 3581 §4 as OpenSIPS's force_rport(): rport added once to the top Via only.
    #[test]
    fn force_rport_adds_rport_to_the_top_via_once() {
        let m = msg("SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1", "", "");
        let f = force_rport(&m).unwrap().unwrap();
        let v = f.top_via().unwrap();
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(
            f.vias().nth(1),
            Some("SIP/2.0/UDP second.example.com;branch=z9hG4bK2")
        );
        assert!(force_rport(&f).unwrap().is_none());
        let m = msg("SIP/2.0/UDP 10.0.0.5;rport;branch=z9hG4bK1", "", "");
        assert!(force_rport(&m).unwrap().is_none());
        // Two Via values in one header line: only the first changes.
        let m = msg(
            "SIP/2.0/UDP a.example;branch=z9hG4bKa , SIP/2.0/UDP b.example;branch=z9hG4bKb",
            "",
            "",
        );
        let f = force_rport(&m).unwrap().unwrap();
        assert_eq!(
            f.vias().next(),
            Some("SIP/2.0/UDP a.example;branch=z9hG4bKa;rport")
        );
        assert_eq!(
            f.vias().nth(1),
            Some("SIP/2.0/UDP b.example;branch=z9hG4bKb")
        );
    }

    #[test]
    fn fix_nated_contact_rewrites_the_first_contact_hostport() {
        let via = "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1";
        let cases = [
            (
                "<sip:alice@10.0.0.5:5070;transport=udp>;expires=60",
                "sip:alice@203.0.113.7:40123;transport=udp",
            ),
            ("\"A\" <sip:alice@10.0.0.5>", "sip:alice@203.0.113.7:40123"),
            (
                "sip:alice@10.0.0.5:5070;expires=30",
                "sip:alice@203.0.113.7:40123",
            ),
            ("<sip:[fd00::5]:5070>", "sip:203.0.113.7:40123"),
            ("<sip:phone.local>", "sip:203.0.113.7:40123"),
        ];
        for (contact, want) in cases {
            let m = msg(via, &format!("Contact: {contact}\r\n"), "");
            let f = fix_nated_contact(&m, src(), "").unwrap();
            let Some(Ok(Contact::Addr(na))) = f.contacts().next() else {
                panic!("{contact}");
            };
            assert_eq!(na.uri_str(), want, "{contact}");
        }
        // The header parameters stay.
        let m = msg(via, "Contact: sip:alice@10.0.0.5:5070;expires=30\r\n", "");
        let f = fix_nated_contact(&m, src(), "").unwrap();
        assert_eq!(
            f.header("Contact"),
            Some("sip:alice@203.0.113.7:40123;expires=30")
        );
        // uri_params go inside the URI; an addr-spec gets brackets.
        let f = fix_nated_contact(&m, src(), ";nat=yes").unwrap();
        assert_eq!(
            f.header("Contact"),
            Some("<sip:alice@203.0.113.7:40123;nat=yes>;expires=30")
        );
        let m = msg(via, "Contact: <sip:alice@10.0.0.5>;q=1\r\n", "");
        let f = fix_nated_contact(&m, "[2001:db8::9]:5000".parse().unwrap(), "nat=yes").unwrap();
        assert_eq!(
            f.header("Contact"),
            Some("<sip:alice@[2001:db8::9]:5000;nat=yes>;q=1")
        );
        // URI headers stay last.
        let m = msg(
            via,
            "Contact: <sip:alice@10.0.0.5:5070;transport=udp?Subject=x>\r\n",
            "",
        );
        let f = fix_nated_contact(&m, src(), "nat=yes").unwrap();
        assert_eq!(
            f.header("Contact"),
            Some("<sip:alice@203.0.113.7:40123;transport=udp;nat=yes?Subject=x>")
        );
        // Nothing to fix, or nothing safe to add.
        assert_eq!(
            fix_nated_contact(&msg(via, "", ""), src(), "").unwrap_err(),
            NatError::Missing("Contact")
        );
        assert_eq!(
            fix_nated_contact(&msg(via, "Contact: *\r\n", ""), src(), "").unwrap_err(),
            NatError::Wildcard
        );
        assert!(matches!(
            fix_nated_contact(&m, src(), "a>b"),
            Err(NatError::BadParams(_))
        ));
        assert!(matches!(
            fix_nated_contact(&m, src(), "a\r\nX: y"),
            Err(NatError::BadParams(_))
        ));
    }

    #[test]
    fn nat_uac_test_flags() {
        let natted = msg(
            "SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1",
            "Contact: <sip:a@192.168.1.20:5062>\r\n",
            "v=0\r\no=- 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n",
        );
        for flag in [1, 2, 4, 8, 16, 32, 64] {
            assert!(nat_uac_test(&natted, src(), flag), "{flag}");
        }
        let public = msg(
            "SIP/2.0/UDP 203.0.113.7:40123;branch=z9hG4bK1",
            "Contact: <sip:a@203.0.113.7:40123>\r\n",
            "v=0\r\nc=IN IP4 203.0.113.7\r\n",
        );
        for flag in [1, 2, 4, 8, 16, 32, 64, 127] {
            assert!(!nat_uac_test(&public, src(), flag), "{flag}");
        }
        // 100.64.0.0/10 (RFC 6598) is shared address space; 172.32 is public.
        let cgn = msg(
            "SIP/2.0/UDP 100.100.1.1;branch=z9hG4bK1",
            "Contact: <sip:a@172.32.0.1>\r\n",
            "",
        );
        assert!(nat_uac_test(&cgn, src(), 4));
        assert!(!nat_uac_test(&cgn, src(), 1));
        // Any selected test is enough; a port test uses 5060 when none is written.
        let p = msg("SIP/2.0/UDP 203.0.113.7;branch=z9hG4bK1", "", "");
        assert!(nat_uac_test(&p, src(), 16));
        assert!(!nat_uac_test(
            &p,
            "203.0.113.7:5060".parse().unwrap(),
            16 | 2 | 1 | 32
        ));
        assert!(!nat_uac_test(&natted, src(), 0));
    }
}
