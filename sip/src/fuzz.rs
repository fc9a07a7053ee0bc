//! Fuzzing entry point: parses arbitrary bytes and exercises every accessor.

use bytes::Bytes;

use super::branch::stateless_branch;
use super::error::ParseError;
use super::forward::{forward_request, ForwardRequest};
use super::headers::HeaderName;
use super::message::Message;
use super::name_addr::{Contact, NameAddr};
use super::received::{
    via_received, with_via_received, write_first_via_received, write_first_via_rewritten,
};
use super::reply::{build_reply, stateless_to_tag};
use super::response::forward_response;
use super::uri::{unescape, Uri};
use super::via::Via;

/// Source address used for the `received`/`rport` rewrite.
const SRC: std::net::SocketAddr = std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1)),
    40000,
);

/// Header names every input is asked for, present or not (compact forms included).
const PROBES: &[&str] = &[
    "Via",
    "v",
    "From",
    "f",
    "To",
    "t",
    "Call-ID",
    "i",
    "CSeq",
    "Contact",
    "m",
    "Route",
    "Record-Route",
    "Max-Forwards",
    "Date",
    "Content-Length",
    "l",
    "X-Unknown",
];

/// Parses `data` as one message and, if it parses, calls every accessor,
/// validator and the reply builder on it. Must never panic, whatever `data`
/// holds; meant for `cargo fuzz` targets and property tests. It also
/// forwards the message as a request and as a response and asserts that the
/// rewritten bytes parse again (a failure there is a bug worth a panic).
pub fn fuzz_parse(data: &[u8]) {
    let _ = super::is_keepalive(data);
    // The Call-ID a transport peeks at is a non-empty piece of one line of the input.
    let peeked = super::peek::call_id(data);
    if let Some(v) = peeked {
        assert!(!v.is_empty() && !v.contains(&b'\n'));
        let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
        assert!(v.as_ptr() as usize >= start && v.as_ptr() as usize + v.len() <= end);
    }
    let Ok(m) = Message::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    // Where the parser finds a one-line Call-ID, the peek finds the same: a call's datagrams
    // are kept in order under the Call-ID the host sees.
    if let Some(id) = m
        .call_id()
        .filter(|id| !id.is_empty() && !id.contains([' ', '\t']))
    {
        // (Lines ending in CRLF with no CR or LF elsewhere, none folded: the parser is
        // lenient beyond that, the peek need not be.)
        let crlf = data.windows(2).filter(|w| *w == b"\r\n").count();
        let cr = data.iter().filter(|&&b| b == b'\r').count();
        let lf = data.iter().filter(|&&b| b == b'\n').count();
        let folded = data.windows(2).any(|w| w == b"\n " || w == b"\n\t");
        if crlf == cr && crlf == lf && !folded {
            assert_eq!(peeked, Some(id.as_bytes()), "peek and parse differ");
        }
    }
    let _ = (
        m.is_request(),
        m.method(),
        m.method_str(),
        m.ruri(),
        m.version(),
    );
    let _ = (m.status(), m.reason(), m.call_id(), m.content_type());
    let _ = (
        m.content_length(),
        m.body().len(),
        m.as_bytes().len(),
        m.header_count(),
    );
    if let Ok(u) = m.request_uri() {
        exercise_uri(&u);
    }
    // A URI parses as it did when every character was checked first.
    for text in [m.ruri()].into_iter().flatten().chain(
        [m.from(), m.to()]
            .into_iter()
            .flatten()
            .map(|na| na.uri_str()),
    ) {
        assert_eq!(Uri::parse(text), uri_checked_first(text), "{text:?}");
    }
    for (name, value) in m.iter() {
        let _ = m.header(name);
        let _ = m.headers(name).count();
        let _ = m.header_list(name).count();
        let _ = unescape(value);
    }
    // Lookups through the sets of names present find what a scan of every line finds.
    for name in PROBES.iter().copied().chain(m.iter().map(|(n, _)| n)) {
        let want: Vec<&str> = m
            .iter()
            .filter(|(n, _)| match HeaderName::from_wire(name) {
                HeaderName::Other => {
                    HeaderName::from_wire(n) == HeaderName::Other
                        && n.trim().eq_ignore_ascii_case(name.trim())
                }
                id => HeaderName::from_wire(n) == id,
            })
            .map(|(_, v)| v)
            .collect();
        assert_eq!(m.headers(name).collect::<Vec<_>>(), want, "{name:?}");
        let id = HeaderName::from_wire(name);
        if id != HeaderName::Other {
            assert_eq!(m.first(id), want.first().copied(), "{name:?}");
        }
    }
    // Whether a Via value follows the top one, once the top one was read.
    let _ = m.top_via();
    if !m.may_have_more_vias() {
        assert_eq!(m.vias().nth(1), None);
    }
    if let Ok(c) = m.cseq() {
        let _ = (c.seq, c.method, c.method_kind());
    }
    for na in [m.from(), m.to()].into_iter().flatten() {
        exercise_name_addr(&na);
    }
    for v in m.vias() {
        if let Ok(v) = Via::parse(v) {
            let _ = (v.protocol(), v.version(), v.transport(), v.host(), v.port());
            let _ = (v.branch(), v.is_rfc3261_branch(), v.received(), v.rport());
            // A response's branch is attacker input to the reply router.
            let _ = v.branch().map(|b| super::hop::verify_branch(b, &[7; 32]));
            let _ = (v.param("ttl"), v.params().iter().count());
        }
    }
    // The cached fields are what the parsers give, on the first read and on the next ones.
    let direct_ruri = m.ruri().map_or(Err(ParseError::NotARequest), Uri::parse);
    let direct_top = m
        .vias()
        .next()
        .map_or(Err(ParseError::MissingHeader("Via")), Via::parse);
    let direct_next = m.vias().nth(1).map(Via::parse);
    let direct_from = m
        .first(HeaderName::From)
        .map_or(Err(ParseError::MissingHeader("From")), NameAddr::parse);
    for _ in 0..2 {
        assert_eq!(m.request_uri(), direct_ruri);
        assert_eq!(m.top_via(), direct_top);
        assert_eq!(m.next_via(), direct_next);
        assert_eq!(m.from(), direct_from);
    }
    assert_eq!(m.from_tag_param(), m.from().map(|n| n.params().get("tag")));
    assert_eq!(m.to_tag_param(), m.to().map(|n| n.params().get("tag")));
    assert_eq!(m.top_branch(), m.top_via().map(|v| v.branch()));
    for c in m.contacts().flatten() {
        if let Contact::Addr(na) = c {
            exercise_name_addr(&na);
        }
    }
    for na in m.routes().chain(m.record_routes()).flatten() {
        exercise_name_addr(&na);
    }
    let _ = (m.max_forwards(), m.expires(), m.date());
    // The cached From and To are what the parser gives.
    let parts = |n: super::name_addr::NameAddr<'_>| {
        let p = (n.display_name().map(str::to_string), n.is_quoted());
        (
            p,
            n.is_name_addr(),
            n.uri_str().to_string(),
            n.params().as_str().to_string(),
        )
    };
    for (cached, name) in [(m.from(), HeaderName::From), (m.to(), HeaderName::To)] {
        let direct = m.first(name).map(super::name_addr::NameAddr::parse);
        match (cached, direct) {
            (Ok(c), Some(Ok(d))) => assert_eq!(parts(c), parts(d)),
            (Err(_), Some(Err(_)) | None) => {}
            (c, d) => panic!("cached {c:?}, parsed {d:?}"),
        }
    }
    let _ = m.validate_for_proxy().map_err(|e| e.reply_code());
    // Contacts read after validation (URIs not checked again) are what the parser gives.
    let again: Vec<_> = m.contacts().collect();
    let direct: Vec<_> = m.list(HeaderName::Contact).map(Contact::parse).collect();
    assert_eq!(again, direct);
    let _ = (
        stateless_branch(&m),
        m.top_via().map(|v| via_received(&v, SRC)),
    );
    let fwd = ForwardRequest {
        request_uri: Some("sip:x@192.0.2.1"),
        record_route: Some("<sip:p.invalid;lr>"),
        pop_routes: 1,
        source: Some(SRC),
        remove_headers: &["Route", "k", "X-A"],
        add_headers: &[("X-B", "1")],
        ..ForwardRequest::new("WS", "p.invalid", 443)
    };
    for f in [fwd, ForwardRequest::new("UDP", "2001:db8::1", 5060)] {
        if let Ok(out) = forward_request(&m, &f) {
            // Forwarding a parsed request yields a message that parses.
            assert!(Message::parse(Bytes::from(out)).is_ok());
        }
    }
    if m.top_via().is_ok() {
        // The fast paths for our own replies write what the full rewrite writes.
        for force in [false, true] {
            let (mut fast, mut full) = (Vec::new(), Vec::new());
            let a = write_first_via_received(&mut fast, &m, SRC, force).is_ok();
            let b = write_first_via_rewritten(&mut full, &m, SRC, force).is_ok();
            assert!(!b || (a && fast == full), "fast Via rewrite differs");
        }
    }
    if let Ok(fixed) = with_via_received(&m, SRC) {
        let _ = fixed.top_via().map(|v| (v.received(), v.rport()));
    }
    if let Ok(r) = forward_response(&m) {
        let _ = (
            r.removed,
            r.next,
            r.dest.socket_addr(),
            r.dest.port_or_default(),
        );
        assert!(Message::parse(Bytes::from(r.bytes)).is_ok());
    }
    let tag = stateless_to_tag(&m);
    let reply = build_reply(
        &m,
        400,
        "Bad Request",
        &tag,
        &[("X", "y")],
        Some(("a/b", b"c")),
    );
    // No copied value starts a line of its own: every CR and LF of the head is a CRLF.
    let head = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&reply[..], |e| &reply[..e + 2]);
    for (i, &b) in head.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR in a reply"),
            b'\n' => assert_eq!(
                head.get(i.wrapping_sub(1)),
                Some(&b'\r'),
                "bare LF in a reply"
            ),
            _ => {}
        }
    }
    // The same for the reply built with `received`/`rport` (the Via's fast path).
    let own = super::reply::build_reply_from(&m, Some((SRC, true)), 200, "OK", &tag, &[], None);
    let own_head = own
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&own[..], |e| &own[..e + 2]);
    assert!(
        own_head.iter().enumerate().all(|(i, &b)| match b {
            b'\r' => own_head.get(i + 1) == Some(&b'\n'),
            b'\n' => own_head.get(i.wrapping_sub(1)) == Some(&b'\r'),
            _ => true,
        }),
        "bare CR or LF in a reply with received/rport"
    );
    // A reply built from a parsed message must itself parse.
    let _ = Message::parse(Bytes::from(reply));
}

/// [`Uri::parse`] as it was written before it skipped the character pass for SIP URIs: every
/// character checked first.
fn uri_checked_first(s: &str) -> Result<Uri<'_>, ParseError> {
    if !s.bytes().all(super::uri::is_uri_char) {
        return Err(ParseError::BadUri("character not allowed in a URI"));
    }
    Uri::parse(s)
}

fn exercise_name_addr(na: &super::name_addr::NameAddr<'_>) {
    let _ = (
        na.display_name(),
        na.display_name_unescaped(),
        na.is_quoted(),
    );
    let _ = (na.is_name_addr(), na.uri_str(), na.scheme(), na.tag());
    let _ = (
        na.param("q"),
        na.params().iter().count(),
        na.params().is_empty(),
    );
    if let Ok(u) = na.uri() {
        exercise_uri(&u);
    }
}

fn exercise_uri(u: &Uri<'_>) {
    let _ = (
        u.as_str(),
        u.scheme(),
        u.scheme_str(),
        u.user(),
        u.password(),
    );
    let _ = (
        u.host(),
        u.port(),
        u.param("transport"),
        u.headers(),
        u.opaque(),
    );
    let _ = u.params().iter().count();
    let _ = u.user().map(unescape);
}
