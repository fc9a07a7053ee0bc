//! Tests of [`forward_request`] with exact output bytes.

use bytes::Bytes;

use super::{forward_request, stateless_branch, EditError, ForwardRequest, Message, ParseError};

fn msg(s: &str) -> Message {
    Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

fn fwd_text(req: &Message, f: &ForwardRequest<'_>) -> String {
    String::from_utf8(forward_request(req, f).unwrap()).unwrap()
}

const INVITE: &str = "INVITE sip:proxy.example.com;lr SIP/2.0\r\n\
    Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK74bf9\r\n\
    Max-Forwards: 70\r\n\
    Route: <sip:proxy.example.com;lr>, <sip:edge.example.net;lr>\r\n\
    Record-Route: <sip:upstream.example.org;lr>\r\n\
    From: Alice <sip:alice@example.com>;tag=9fxced76sl\r\n\
    To: Bob <sip:bob@example.net>\r\n\
    Call-ID: 3848276298220188511@example.com\r\n\
    CSeq: 2 INVITE\r\n\
    Proxy-Authorization: Digest username=\"alice\", realm=\"example.com\"\r\n\
    Content-Type: application/sdp\r\n\
    Content-Length: 4\r\n\
    \r\n\
    v=0\n";

/// Branch of INVITE forwarded unchanged, pinned independently (Python's
/// hashlib, as described in `branch.rs`): hash of z9hG4bK74bf9, then the loop
/// digits over its own Request-URI, Call-ID, From tag and CSeq number.
const BRANCH: &str = "z9hG4bK0a5a78766b0c97a302a50e43a23518c4";

/// The same, forwarded to `sip:bob@192.0.2.20:5070`: only the loop digits differ.
const BRANCH_TO_BOB: &str = "z9hG4bK0a5a78766b0c97a302a50e43cb890198";

#[test]
fn full_rewrite_exact_bytes() {
    let req = msg(INVITE);
    assert_eq!(stateless_branch(&req), BRANCH);
    let f = ForwardRequest {
        request_uri: Some("sip:bob@192.0.2.20:5070"),
        record_route: Some("<sip:proxy.example.com;lr>"),
        pop_routes: 1,
        source: Some("198.51.100.4:41000".parse().unwrap()),
        remove_headers: &["proxy-authorization"],
        add_headers: &[("X-Proxied", "sipcore")],
        ..ForwardRequest::new("udp", "proxy.example.com", 5060)
    };
    assert_eq!(
        fwd_text(&req, &f),
        format!(
            "INVITE sip:bob@192.0.2.20:5070 SIP/2.0\r\n\
             Via: SIP/2.0/UDP proxy.example.com:5060;branch={BRANCH_TO_BOB}\r\n\
             Via: SIP/2.0/UDP 10.0.0.5:5060;rport=41000;branch=z9hG4bK74bf9;received=198.51.100.4\r\n\
             Max-Forwards: 69\r\n\
             Route: <sip:edge.example.net;lr>\r\n\
             Record-Route: <sip:proxy.example.com;lr>\r\n\
             Record-Route: <sip:upstream.example.org;lr>\r\n\
             From: Alice <sip:alice@example.com>;tag=9fxced76sl\r\n\
             To: Bob <sip:bob@example.net>\r\n\
             Call-ID: 3848276298220188511@example.com\r\n\
             CSeq: 2 INVITE\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: 4\r\n\
             X-Proxied: sipcore\r\n\
             \r\n\
             v=0\n"
        )
    );
    let out = msg(&fwd_text(&req, &f));
    assert_eq!(out.validate_for_proxy(), Ok(()));
    assert_eq!(out.top_via().unwrap().branch(), Some(BRANCH_TO_BOB));
    assert_eq!(out.body(), b"v=0\n");
}

#[test]
fn minimal_rewrite_adds_max_forwards_and_content_length() {
    let req = msg("\r\nOPTIONS sip:bob@example.net SIP/2.0\r\n\
        v: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK1\r\n\
        f: <sip:alice@example.com>;tag=1\r\nt: <sip:bob@example.net>\r\ni: c1\r\n\
        CSeq: 1 OPTIONS\r\nk: path\r\n\r\n");
    let b = stateless_branch(&req);
    let f = ForwardRequest {
        record_route: Some("<sip:[2001:db8::1]:5060;transport=tcp;lr>"),
        remove_headers: &["Supported"],
        ..ForwardRequest::new("TCP", "2001:db8::1", 5060)
    };
    assert_eq!(
        fwd_text(&req, &f),
        format!(
            "OPTIONS sip:bob@example.net SIP/2.0\r\n\
             Via: SIP/2.0/TCP [2001:db8::1]:5060;branch={b}\r\n\
             v: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK1\r\n\
             Record-Route: <sip:[2001:db8::1]:5060;transport=tcp;lr>\r\n\
             f: <sip:alice@example.com>;tag=1\r\nt: <sip:bob@example.net>\r\ni: c1\r\n\
             CSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        )
    );
}

#[test]
fn single_route_line_removed_and_received_replaced() {
    let req = msg("MESSAGE sip:bob@example.net SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc.example.com;received=10.9.9.9;branch=z9hG4bKm1, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm0\r\n\
        Route: <sip:proxy.example.com;lr>\r\nRoute: <sip:next.example.com;lr>\r\nMax-Forwards: 0010\r\n\
        From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.net>\r\nCall-ID: m\r\nCSeq: 7 MESSAGE\r\n\
        Content-Length: 0\r\n\r\n");
    let f = ForwardRequest {
        pop_routes: 1,
        source: Some("[2001:db8::7]:5060".parse().unwrap()),
        ..ForwardRequest::new("UDP", "192.0.2.99", 5060)
    };
    let b = stateless_branch(&req);
    assert_eq!(
        fwd_text(&req, &f),
        format!(
            "MESSAGE sip:bob@example.net SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.99:5060;branch={b}\r\n\
             Via: SIP/2.0/UDP pc.example.com;received=[2001:db8::7];branch=z9hG4bKm1, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm0\r\n\
             Route: <sip:next.example.com;lr>\r\nMax-Forwards: 9\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.net>\r\nCall-ID: m\r\nCSeq: 7 MESSAGE\r\n\
             Content-Length: 0\r\n\r\n"
        )
    );
}

#[test]
fn same_source_adds_nothing_to_the_via() {
    let req = msg(INVITE.replace(";rport", "").as_str());
    let f = ForwardRequest {
        source: Some("10.0.0.5:5060".parse().unwrap()),
        ..ForwardRequest::new("UDP", "p", 5060)
    };
    assert!(
        fwd_text(&req, &f).contains("\r\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK74bf9\r\n")
    );
}

#[test]
fn retransmissions_cancel_and_ack_get_the_same_via() {
    let f = ForwardRequest::new("UDP", "proxy.example.com", 5060);
    let via = format!("Via: SIP/2.0/UDP proxy.example.com:5060;branch={BRANCH}\r\n");
    let first = fwd_text(&msg(INVITE), &f);
    assert_eq!(fwd_text(&msg(INVITE), &f), first);
    let cancel = INVITE
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("2 INVITE", "2 CANCEL");
    let ack = INVITE
        .replace("INVITE sip:", "ACK sip:")
        .replace("2 INVITE", "2 ACK")
        .replace(
            "To: Bob <sip:bob@example.net>",
            "To: Bob <sip:bob@example.net>;tag=8321234356",
        );
    for text in [INVITE.to_owned(), cancel, ack] {
        assert!(fwd_text(&msg(&text), &f).contains(&via), "{text}");
    }
}

#[test]
fn errors() {
    let f = ForwardRequest::new("UDP", "proxy.example.com", 5060);
    let zero = msg(&INVITE.replace("Max-Forwards: 70", "Max-Forwards: 0"));
    assert_eq!(forward_request(&zero, &f), Err(EditError::TooManyHops));
    let bad = msg(&INVITE.replace("Max-Forwards: 70", "Max-Forwards: 300"));
    assert_eq!(
        forward_request(&bad, &f),
        Err(EditError::Parse(ParseError::BadMaxForwards))
    );
    let resp = msg("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n");
    assert_eq!(forward_request(&resp, &f), Err(EditError::NotARequest));
    let no_route = msg(&INVITE.replace(
        "Route: <sip:proxy.example.com;lr>, <sip:edge.example.net;lr>\r\n",
        "",
    ));
    let pop = ForwardRequest { pop_routes: 1, ..f };
    assert_eq!(
        forward_request(&no_route, &pop),
        Err(EditError::Parse(ParseError::MissingHeader("Route")))
    );
    let bad_via = msg(&INVITE.replace("SIP/2.0/UDP 10.0.0.5:5060", "SIP/2.0/UDP 10.0.0.5:99999"));
    let src = ForwardRequest {
        source: Some("192.0.2.1:5060".parse().unwrap()),
        ..f
    };
    assert!(matches!(
        forward_request(&bad_via, &src),
        Err(EditError::Parse(ParseError::BadVia(_)))
    ));
    let req = msg(INVITE);
    let cases = [
        (
            ForwardRequest {
                transport: "U DP",
                ..f
            },
            "Via transport",
        ),
        (ForwardRequest { transport: "", ..f }, "Via transport"),
        (
            ForwardRequest {
                host: "a\r\nX: y",
                ..f
            },
            "Via host",
        ),
        (ForwardRequest { host: "", ..f }, "Via host"),
        (
            ForwardRequest {
                request_uri: Some("sip:a b"),
                ..f
            },
            "Request-URI",
        ),
        (
            ForwardRequest {
                record_route: Some("sip:p;lr"),
                ..f
            },
            "Record-Route",
        ),
        (
            ForwardRequest {
                record_route: Some("<sip:p;lr>\r\nX: 1"),
                ..f
            },
            "Record-Route",
        ),
        (
            ForwardRequest {
                remove_headers: &["Bad Name"],
                ..f
            },
            "header name",
        ),
        (
            ForwardRequest {
                add_headers: &[("X:", "1")],
                ..f
            },
            "header name",
        ),
        (
            ForwardRequest {
                add_headers: &[("X", "1\r\nY: 2")],
                ..f
            },
            "header value",
        ),
    ];
    for (case, what) in cases {
        assert_eq!(
            forward_request(&req, &case),
            Err(EditError::InvalidInput(what)),
            "{case:?}"
        );
    }
}

#[test]
fn compact_names_removed_and_folds_kept_unfolded() {
    let req = msg(
        "OPTIONS sip:b@example.net SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
        i: c\r\nSubject: one\r\n two\r\nMax-Forwards: 5\r\nl: 0\r\n\r\n",
    );
    let f = ForwardRequest {
        remove_headers: &["Call-ID"],
        ..ForwardRequest::new("UDP", "p", 5060)
    };
    let b = stateless_branch(&req);
    assert_eq!(
        fwd_text(&req, &f),
        format!(
            "OPTIONS sip:b@example.net SIP/2.0\r\nVia: SIP/2.0/UDP p:5060;branch={b}\r\n\
             Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nSubject: one   two\r\nMax-Forwards: 4\r\nl: 0\r\n\r\n"
        )
    );
}

#[test]
fn force_rport_adds_rport_and_received_for_connection_oriented_clients() {
    let req = msg("OPTIONS sip:b@example.net SIP/2.0\r\n\
        Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws1\r\n\
        From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.net>\r\n\
        Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    let src: std::net::SocketAddr = "192.0.2.7:51234".parse().unwrap();
    let f = ForwardRequest {
        source: Some(src),
        force_rport: true,
        ..ForwardRequest::new("WS", "198.51.100.1", 8080)
    };
    let out = fwd_text(&req, &f);
    assert!(
        out.contains("Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws1;received=192.0.2.7;rport=51234\r\n"),
        "{out}"
    );
    // Without force, a Via without rport only gets received (RFC 3261 §18.2.1).
    let f = ForwardRequest {
        force_rport: false,
        ..f
    };
    let out = fwd_text(&req, &f);
    assert!(
        out.contains("branch=z9hG4bKws1;received=192.0.2.7\r\n"),
        "{out}"
    );
    // A Via that already has rport=N keeps it.
    let req2 =
        msg(&String::from_utf8_lossy(req.as_bytes()).replace("z9hG4bKws1", "z9hG4bKws1;rport=9"));
    let f = ForwardRequest {
        force_rport: true,
        ..f
    };
    let out = fwd_text(&req2, &f);
    assert!(
        out.contains("branch=z9hG4bKws1;rport=9;received=192.0.2.7\r\n"),
        "{out}"
    );
}

/// Fuzz finding (issue 10, item 15): a request with exactly `MAX_HEADERS` fields parses, but
/// relayed with our Via it would have one more and no longer parse: refused, not built.
#[test]
fn a_relay_never_exceeds_what_the_parser_accepts() {
    use super::{MAX_HEADERS, MAX_LINE_LEN};
    let head = "MESSAGE sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/WS a.invalid;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n\
        From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\n\
        CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n";
    let with = |n: usize| {
        let mut s = head.to_string();
        for i in 0..n {
            s.push_str(&format!("X-H{i}: {i}\r\n"));
        }
        s + "\r\n"
    };
    let f = ForwardRequest::new("WS", "192.0.2.1", 8080);
    // 127 fields: the relay has 128, which parses.
    let ok = msg(&with(MAX_HEADERS - 8));
    assert_eq!(ok.header_count(), MAX_HEADERS - 1);
    let out = forward_request(&ok, &f).unwrap();
    assert_eq!(
        Message::parse(Bytes::from(out)).unwrap().header_count(),
        MAX_HEADERS
    );
    // 128 fields: the relay would have 129.
    let full = msg(&with(MAX_HEADERS - 7));
    assert_eq!(full.header_count(), MAX_HEADERS);
    assert_eq!(
        forward_request(&full, &f),
        Err(EditError::TooLarge("header count"))
    );
    // A Record-Route or an added header counts too.
    let rr = ForwardRequest {
        record_route: Some("<sip:p.example.com;lr>"),
        ..f
    };
    assert_eq!(
        forward_request(&ok, &rr),
        Err(EditError::TooLarge("header count"))
    );
    // A top Via at the line limit cannot take received/rport.
    let pad = "x".repeat(MAX_LINE_LEN - "Via: SIP/2.0/WS a.invalid;branch=z9hG4bK1;p=".len());
    let long = msg(&(head.replace(
        "branch=z9hG4bK1\r\n",
        &format!("branch=z9hG4bK1;p={pad}\r\n"),
    ) + "\r\n"));
    let src = ForwardRequest {
        source: Some("192.0.2.9:4000".parse().unwrap()),
        force_rport: true,
        ..f
    };
    assert_eq!(
        forward_request(&long, &src),
        Err(EditError::TooLarge("header line"))
    );
    // A new Request-URI that makes the start line too long.
    let ruri = format!("sip:{}@example.com", "b".repeat(MAX_LINE_LEN));
    let big = ForwardRequest {
        request_uri: Some(&ruri),
        ..f
    };
    assert_eq!(
        forward_request(&ok, &big),
        Err(EditError::TooLarge("start line"))
    );
}

/// Found by the `relay` fuzz target: an empty `Route:` line holds no value, so the first Route
/// value (on the next line) is the one removed.
#[test]
fn empty_route_line_is_skipped_when_popping() {
    let req = msg("MESSAGE sip:bob@example.net SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm0\r\n\
        Route: \r\nRoute: <sip:tok@proxy.example.com;lr>\r\nRoute: <sip:next.example.com;lr>\r\n\
        Max-Forwards: 10\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.net>\r\n\
        Call-ID: m\r\nCSeq: 7 MESSAGE\r\nContent-Length: 0\r\n\r\n");
    let f = ForwardRequest {
        pop_routes: 1,
        ..ForwardRequest::new("UDP", "192.0.2.99", 5060)
    };
    let out = fwd_text(&req, &f);
    assert!(!out.contains("tok@proxy.example.com"), "{out}");
    assert!(
        out.contains("Route: <sip:next.example.com;lr>\r\n"),
        "{out}"
    );
}

/// Found by the `relay` fuzz target: empty elements before the first Route value go with it.
#[test]
fn empty_route_elements_are_skipped_when_popping() {
    let req = msg("MESSAGE sip:bob@example.net SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm0\r\n\
        Route: , <sip:tok@proxy.example.com;lr>, <sip:next.example.com;lr>\r\n\
        Max-Forwards: 10\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.net>\r\n\
        Call-ID: m\r\nCSeq: 7 MESSAGE\r\nContent-Length: 0\r\n\r\n");
    let f = ForwardRequest {
        pop_routes: 1,
        ..ForwardRequest::new("UDP", "192.0.2.99", 5060)
    };
    let out = fwd_text(&req, &f);
    assert!(
        out.contains("\r\nRoute: <sip:next.example.com;lr>\r\n"),
        "{out}"
    );
    let one = msg("MESSAGE sip:bob@example.net SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm0\r\nRoute: <sip:tok@proxy.example.com;lr>, \r\n\
        Max-Forwards: 10\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.net>\r\n\
        Call-ID: m\r\nCSeq: 7 MESSAGE\r\nContent-Length: 0\r\n\r\n");
    assert!(
        !fwd_text(&one, &f).contains("Route"),
        "a trailing empty element goes too"
    );
}

/// Found by the `relay` fuzz target: a form feed is not SIP white space, so `\x0c` between two
/// commas is a value of its own and stays when the first value is popped.
#[test]
fn only_sip_white_space_goes_with_the_popped_route() {
    let req = msg("MESSAGE sip:bob@example.net SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm0\r\n\
        Route: <sip:tok@proxy.example.com;lr>,\x0c,<sip:next.example.com;lr>\r\n\
        Max-Forwards: 10\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.net>\r\n\
        Call-ID: m\r\nCSeq: 7 MESSAGE\r\nContent-Length: 0\r\n\r\n");
    let f = ForwardRequest {
        pop_routes: 1,
        ..ForwardRequest::new("UDP", "192.0.2.99", 5060)
    };
    let out = fwd_text(&req, &f);
    assert!(
        out.contains("\r\nRoute: \x0c,<sip:next.example.com;lr>\r\n"),
        "{out:?}"
    );
}

/// Double record-routing (RFC 5658 §3): both of our Route values go, whether they share a
/// line or not, and the next hop's stays.
#[test]
fn two_route_values_are_popped_across_lines_and_within_one() {
    let f = ForwardRequest {
        pop_routes: 2,
        ..ForwardRequest::new("WSS", "192.0.2.99", 443)
    };
    for routes in [
        "Route: <sip:t@192.0.2.99:80;transport=ws;lr>, <sip:t@192.0.2.99:443;transport=wss;lr>, <sip:next.example.com;lr>\r\n",
        "Route: <sip:t@192.0.2.99:80;transport=ws;lr>\r\nRoute: <sip:t@192.0.2.99:443;transport=wss;lr>, <sip:next.example.com;lr>\r\n",
        "Route: <sip:t@192.0.2.99:80;transport=ws;lr>\r\nRoute: \r\nRoute: <sip:t@192.0.2.99:443;transport=wss;lr>\r\nRoute: <sip:next.example.com;lr>\r\n",
    ] {
        let req = msg(&format!(
            "BYE sip:bob@example.net SIP/2.0\r\n\
            Via: SIP/2.0/WS h.invalid;branch=z9hG4bKm0\r\n{routes}\
            Max-Forwards: 10\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.net>;tag=2\r\n\
            Call-ID: m\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n"
        ));
        let out = fwd_text(&req, &f);
        assert!(!out.contains("sip:t@"), "{out}");
        assert!(out.contains("<sip:next.example.com;lr>\r\n"), "{out}");
    }
    let only_ours = msg("BYE sip:bob@example.net SIP/2.0\r\n\
        Via: SIP/2.0/WS h.invalid;branch=z9hG4bKm0\r\n\
        Route: <sip:t@192.0.2.99:80;transport=ws;lr>,<sip:t@192.0.2.99:443;transport=wss;lr>\r\n\
        Max-Forwards: 10\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.net>;tag=2\r\n\
        Call-ID: m\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n");
    assert!(!fwd_text(&only_ours, &f).contains("Route"));
}
