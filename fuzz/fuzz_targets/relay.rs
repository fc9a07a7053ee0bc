//! The relay path of a stateless proxy (RFC 3261 §16.6, §16.7): parse → `forward_request`
//! with fixed settings → reparse; the reply to what we sent → `forward_response` → reparse.
//!
//! Invariant: whatever we build from a message we accepted parses again (and, if the
//! received request passed `validate_for_proxy`, so does the forwarded one), with the edits
//! asked for and nothing else changed: method, Call-ID, CSeq and body kept, our Via on top
//! with the transport, host and port given, Max-Forwards decremented (or added), the new
//! Request-URI and Record-Route in place, one Route fewer when popping. A 200 built for the
//! forwarded request, relayed back, loses exactly our Via and goes to the client's.
#![no_main]
use bytes::Bytes;
use sipcore::sip::{
    build_reply, forward_request, forward_response, stateless_to_tag, ForwardRequest, Message,
    BRANCH_MAGIC_COOKIE,
};
use std::net::SocketAddr;

const SRC: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1)),
    40000,
);

fn forwards() -> [ForwardRequest<'static>; 6] {
    [
        ForwardRequest {
            request_uri: Some("sip:bob@192.0.2.1:5060;transport=ws"),
            record_route: Some("<sip:p.invalid;transport=ws;lr>"),
            source: Some(SRC),
            force_rport: true,
            add_headers: &[("X-Fwd", "1")],
            ..ForwardRequest::new("WS", "p.invalid", 443)
        },
        ForwardRequest {
            pop_routes: 1,
            remove_headers: &["User-Agent"],
            ..ForwardRequest::new("UDP", "2001:db8::1", 5060)
        },
        ForwardRequest::new("tcp", "10.0.0.1", 5060),
        ForwardRequest::new("UDP", "2001:db8::1", 5060),
        // What `sip_parse` (sip/src/fuzz.rs) forwards with: removals by compact name.
        ForwardRequest {
            request_uri: Some("sip:x@192.0.2.1"),
            record_route: Some("<sip:p.invalid;lr>"),
            pop_routes: 1,
            source: Some(SRC),
            remove_headers: &["Route", "k", "X-A"],
            add_headers: &[("X-B", "1")],
            ..ForwardRequest::new("WS", "p.invalid", 443)
        },
        // Between transports (ws in, wss out): double record-routing and both Routes popped.
        ForwardRequest {
            record_route: Some("<sip:t@p.invalid:443;transport=wss;lr>, <sip:t@p.invalid:80;transport=ws;lr>"),
            pop_routes: 2,
            source: Some(SRC),
            force_rport: true,
            ..ForwardRequest::new("WSS", "p.invalid", 443)
        },
    ]
}

fn reparse(bytes: Vec<u8>, what: &str, from: &Message) -> Message {
    match Message::parse(Bytes::from(bytes)) {
        Ok(m) => m,
        Err(e) => panic!(
            "{what} does not parse: {e:?} (received message had {} header fields)",
            from.header_count()
        ),
    }
}

fn relay_request(m: &Message, f: &ForwardRequest<'_>) {
    let Ok(out) = forward_request(m, f) else {
        return;
    };
    let o = reparse(out, "forwarded request", m);
    if m.validate_for_proxy().is_ok() {
        if let Err(e) = o.validate_for_proxy() {
            panic!("forwarded request fails validation: {e:?}");
        }
    }
    assert!(o.is_request());
    assert_eq!(o.method_str(), m.method_str());
    assert_eq!(o.call_id(), m.call_id());
    assert_eq!(o.body(), m.body());
    if let (Ok(a), Ok(b)) = (m.cseq(), o.cseq()) {
        assert_eq!((a.seq, a.method), (b.seq, b.method));
    }
    assert_eq!(o.ruri(), f.request_uri.or(m.ruri()));
    let via = o.top_via().expect("our Via parses");
    assert_eq!(via.transport(), f.transport.to_ascii_uppercase());
    assert_eq!(via.host().trim_matches(['[', ']']), f.host);
    assert_eq!(via.port(), Some(f.port));
    let branch = via.branch().expect("our Via has a branch").to_owned();
    assert!(branch.starts_with(BRANCH_MAGIC_COOKIE));
    let expect_mf = match m.max_forwards() {
        Ok(Some(n)) => n - 1,
        _ => f.default_max_forwards,
    };
    assert_eq!(o.max_forwards(), Ok(Some(expect_mf)));
    if let Some(rr) = f.record_route {
        let ours: Vec<&str> = rr.split(", ").collect();
        let got: Vec<&str> = o.header_list("Record-Route").take(ours.len()).collect();
        assert_eq!(got, ours);
    }
    let removes = |n: &str| f.remove_headers.iter().any(|r| r.eq_ignore_ascii_case(n));
    let routes = m.header_list("Route").count();
    let pop = usize::from(f.pop_routes);
    if pop > 0 && !removes("Route") && routes > 0 {
        assert_eq!(
            o.header_list("Route").count() + pop.min(routes),
            routes,
            "not {pop} Route values popped"
        );
    }
    for name in f.remove_headers {
        assert_eq!(o.header(name), None, "{name} not removed");
    }
    // The answer from the next hop comes back through us.
    let reply = build_reply(&o, 200, "OK", &stateless_to_tag(&o), &[], None);
    let r = reparse(reply, "reply to the forwarded request", m);
    let Ok(back) = forward_response(&r) else {
        assert!(m.top_via().is_err(), "reply with two Vias not relayed");
        return;
    };
    assert_eq!(back.removed.branch(), Some(branch.as_str()));
    let next_host = back.next.host().to_owned();
    let back = reparse(back.bytes, "relayed reply", m);
    assert_eq!(back.status(), Some(200));
    let client = back.top_via().expect("client Via parses");
    assert_eq!(client.host(), next_host);
    if let Ok(orig) = m.top_via() {
        assert_eq!(client.host(), orig.host(), "reply goes to another Via");
    }
}

fn relay_response(m: &Message) {
    let Ok(r) = forward_response(m) else {
        return;
    };
    let vias = m.vias().count();
    let o = reparse(r.bytes, "relayed response", m);
    assert!(!o.is_request());
    assert_eq!(o.status(), m.status());
    assert_eq!(o.call_id(), m.call_id());
    assert_eq!(o.body(), m.body());
    assert_eq!(o.vias().count() + 1, vias, "not exactly one Via removed");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    if m.is_request() {
        for f in forwards() {
            relay_request(&m, &f);
        }
    } else {
        relay_response(&m);
    }
});
