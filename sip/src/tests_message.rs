//! Unit tests of [`Message::parse`], its accessors, [`build_reply`],
//! [`stateless_to_tag`] and [`is_keepalive`].

use bytes::Bytes;

use super::{
    build_reply, is_keepalive, stateless_to_tag, Contact, HeaderName, Message, Method, ParseError,
    Scheme,
};

fn msg(s: &str) -> Message {
    Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

fn err(s: &str) -> ParseError {
    Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap_err()
}

#[test]
fn module_doc_example() {
    let req = Message::parse(Bytes::from_static(
        b"OPTIONS sip:a@example.com SIP/2.0\r\nv: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\n\
          f: <sip:b@example.com>;tag=1\r\nt: <sip:a@example.com>\r\ni: c1\r\n\
          CSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
    ))
    .unwrap();
    assert_eq!(req.header("Call-ID"), Some("c1"));
    assert_eq!(req.top_via().unwrap().transport(), "WS");
    req.validate_for_proxy().unwrap();
    let reply = build_reply(&req, 200, "OK", &stateless_to_tag(&req), &[], None);
    assert!(reply.starts_with(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\n"));
}

const INVITE: &str = "INVITE sip:bob@example.com;transport=ws SIP/2.0\r\n\
    Via: SIP/2.0/WS a.invalid;branch=z9hG4bKa;rport\r\n\
    v: SIP/2.0/UDP 192.0.2.1:5070;received=192.0.2.9;branch=z9hG4bKb, SIP/2.0/TCP [2001:db8::1];branch=z9hG4bKc\r\n\
    Max-Forwards: 70\r\n\
    f: \"Alice \\\"A\\\" Smith\" <sip:alice@example.com>;tag=ft1\r\n\
    t: Bob <sip:bob@example.com>\r\n\
    i: cid-1@host\r\n\
    CSeq: 101 INVITE\r\n\
    m: <sip:alice@a.invalid;transport=ws>;expires=60, \"x, y\" <sip:z@example.com>;q=0.5\r\n\
    Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
    Route: <sip:p3.example.com;lr>\r\n\
    Record-Route: <sip:rr.example.com;lr>\r\n\
    Allow: INVITE, ACK,,BYE\r\n\
    k: path, outbound\r\n\
    Expires: 300\r\n\
    Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n\
    c: application/sdp\r\n\
    l: 4\r\n\
    \r\n\
    v=0\n";

#[test]
fn request_line_and_simple_accessors() {
    let m = msg(INVITE);
    assert!(m.is_request());
    assert_eq!(m.method(), Some(Method::Invite));
    assert_eq!(m.method_str(), Some("INVITE"));
    assert_eq!(m.ruri(), Some("sip:bob@example.com;transport=ws"));
    let u = m.request_uri().unwrap();
    assert_eq!(
        (u.scheme(), u.user(), u.host(), u.param("transport")),
        (Scheme::Sip, Some("bob"), "example.com", Some(Some("ws")))
    );
    assert_eq!(m.version(), "SIP/2.0");
    assert_eq!((m.status(), m.reason()), (None, None));
    assert_eq!(m.call_id(), Some("cid-1@host"));
    assert_eq!(m.header("Call-ID"), Some("cid-1@host"));
    assert_eq!(m.header("I"), Some("cid-1@host"));
    assert_eq!(m.header("call-id"), Some("cid-1@host"));
    assert_eq!(m.header("Supported"), Some("path, outbound"));
    assert_eq!(m.header("X-None"), None);
    assert_eq!(m.content_type(), Some("application/sdp"));
    assert_eq!(m.content_length(), Some(4));
    assert_eq!(m.body(), b"v=0\n");
    assert_eq!(m.max_forwards(), Ok(Some(70)));
    assert_eq!(m.expires(), Ok(Some(300)));
    let d = m.date().unwrap().unwrap();
    assert_eq!(
        (d.year, d.month, d.day, d.hour, d.minute, d.second),
        (2010, 11, 13, 23, 29, 0)
    );
    let cseq = m.cseq().unwrap();
    assert_eq!(
        (cseq.seq, cseq.method, cseq.method_kind()),
        (101, "INVITE", Method::Invite)
    );
    assert_eq!(m.header_count(), 17);
    let names: Vec<&str> = m.iter().map(|(n, _)| n).take(3).collect();
    assert_eq!(names, ["Via", "v", "Max-Forwards"]);
    assert_eq!(m.as_bytes(), INVITE.as_bytes());
    assert_eq!(m.validate_for_proxy(), Ok(()));
}

#[test]
fn quoted_display_names_and_tags() {
    let m = msg(INVITE);
    let from = m.from().unwrap();
    assert_eq!(from.display_name(), Some(r#"Alice \"A\" Smith"#));
    assert_eq!(
        from.display_name_unescaped().as_deref(),
        Some(r#"Alice "A" Smith"#)
    );
    assert_eq!(from.tag(), Some("ft1"));
    let to = m.to().unwrap();
    assert_eq!(
        (to.display_name(), to.tag(), to.uri_str()),
        (Some("Bob"), None, "sip:bob@example.com")
    );
}

#[test]
fn comma_separated_values_across_lines() {
    let m = msg(INVITE);
    let vias: Vec<&str> = m.vias().collect();
    assert_eq!(
        vias,
        [
            "SIP/2.0/WS a.invalid;branch=z9hG4bKa;rport",
            "SIP/2.0/UDP 192.0.2.1:5070;received=192.0.2.9;branch=z9hG4bKb",
            "SIP/2.0/TCP [2001:db8::1];branch=z9hG4bKc"
        ]
    );
    let top = m.top_via().unwrap();
    assert_eq!(
        (top.transport(), top.host(), top.port(), top.rport()),
        ("WS", "a.invalid", None, Some(None))
    );
    assert_eq!(m.headers("Via").count(), 2);
    assert_eq!(m.headers("v").count(), 2);
    let routes: Vec<String> = m
        .routes()
        .map(|r| r.unwrap().uri_str().to_owned())
        .collect();
    assert_eq!(
        routes,
        [
            "sip:p1.example.com;lr",
            "sip:p2.example.com;lr",
            "sip:p3.example.com;lr"
        ]
    );
    let rr: Vec<String> = m
        .record_routes()
        .map(|r| r.unwrap().uri_str().to_owned())
        .collect();
    assert_eq!(rr, ["sip:rr.example.com;lr"]);
    let allow: Vec<&str> = m.header_list("Allow").collect();
    assert_eq!(allow, ["INVITE", "ACK", "BYE"]);
    let contacts: Vec<Contact<'_>> = m.contacts().map(Result::unwrap).collect();
    assert_eq!(contacts.len(), 2);
    match contacts[1] {
        Contact::Addr(na) => {
            assert_eq!(na.display_name(), Some("x, y"));
            assert_eq!(na.param("q"), Some(Some("0.5")));
        }
        Contact::Wildcard => panic!("wildcard"),
    }
    let m = msg("REGISTER sip:example.com SIP/2.0\r\nContact: *\r\n\r\n");
    assert_eq!(m.contacts().next(), Some(Ok(Contact::Wildcard)));
}

#[test]
fn folded_lines_are_unfolded() {
    let m = msg("OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n two\r\n\tthree\r\nVia: SIP/2.0/UDP\r\n  h;branch=z9hG4bKx\r\n\r\n");
    assert_eq!(m.header("Subject"), Some("one   two  \tthree"));
    assert_eq!(m.top_via().unwrap().host(), "h");
    assert_eq!(m.as_bytes(), b"OPTIONS sip:a@b SIP/2.0\r\nSubject: one   two  \tthree\r\nVia: SIP/2.0/UDP    h;branch=z9hG4bKx\r\n\r\n");
    assert_eq!(
        err("OPTIONS sip:a@b SIP/2.0\r\n folded\r\n\r\n"),
        ParseError::UnexpectedContinuation
    );
}

#[test]
fn escaped_uris() {
    let m =
        msg("OPTIONS sip:%61lice@example.com;x=%20 SIP/2.0\r\nTo: <sip:b%40c@example.com>\r\n\r\n");
    let u = m.request_uri().unwrap();
    assert_eq!(u.user(), Some("%61lice"));
    assert_eq!(&*super::unescape(u.user().unwrap()), b"alice");
    assert_eq!(u.param("x"), Some(Some("%20")));
    assert_eq!(
        &*super::unescape(m.to().unwrap().uri().unwrap().user().unwrap()),
        b"b@c"
    );
}

#[test]
fn content_length_framing() {
    let head = "MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(
        err(&format!("{head}abc")),
        ParseError::ContentLengthTooLarge {
            declared: 5,
            available: 3
        }
    );
    // Extra octets after the body (next message on a stream) are not part of it.
    let m = msg(&format!("{head}hello\r\n\r\nOPTIONS sip:x SIP/2.0\r\n"));
    assert_eq!(m.body(), b"hello");
    assert_eq!(m.as_bytes(), format!("{head}hello").as_bytes());
    // No Content-Length: the body is the rest.
    let m = msg("MESSAGE sip:a@b SIP/2.0\r\n\r\nrest");
    assert_eq!((m.content_length(), m.body()), (None, &b"rest"[..]));
    assert_eq!(
        err("MESSAGE sip:a@b SIP/2.0\r\nl: x\r\n\r\n"),
        ParseError::BadContentLength
    );
    assert_eq!(
        err("MESSAGE sip:a@b SIP/2.0\r\nl: 0\r\nContent-Length: 0\r\n\r\n"),
        ParseError::DuplicateContentLength
    );
    assert_eq!(
        err("MESSAGE sip:a@b SIP/2.0\r\nl: 99999999999999999999999\r\n\r\n"),
        ParseError::ContentLengthTooLarge {
            declared: u64::MAX,
            available: 0
        }
    );
}

#[test]
fn framing_errors() {
    assert_eq!(err(""), ParseError::Empty);
    assert_eq!(err("\r\n\r\n"), ParseError::Empty);
    assert_eq!(
        err("OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n"),
        ParseError::Incomplete
    );
    assert_eq!(
        err("OPTIONS sip:a@b SIP/2.0\r\nNoColon\r\n\r\n"),
        ParseError::BadHeaderLine
    );
    assert_eq!(
        err("OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n"),
        ParseError::BadHeaderLine
    );
    assert_eq!(err("OPTIONS\r\n\r\n"), ParseError::BadStartLine("no SP"));
    assert_eq!(
        err("SIP/2.0 20 OK\r\n\r\n"),
        ParseError::BadStartLine("status code not in 100..=699")
    );
    assert_eq!(
        err("SIP/2.0 200OK\r\n\r\n"),
        ParseError::BadStartLine("no SP after status code")
    );
    let mut long = String::from("OPTIONS sip:a@b SIP/2.0\r\nX: ");
    long.push_str(&"a".repeat(super::MAX_LINE_LEN));
    long.push_str("\r\n\r\n");
    assert_eq!(err(&long), ParseError::LineTooLong);
    let many = format!(
        "OPTIONS sip:a@b SIP/2.0\r\n{}\r\n",
        "X: 1\r\n".repeat(super::MAX_HEADERS + 1)
    );
    assert_eq!(err(&many), ParseError::TooManyHeaders);
    assert_eq!(
        Message::parse(Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n"
        ))
        .unwrap_err(),
        ParseError::InvalidUtf8
    );
}

#[test]
fn responses_and_leading_crlf() {
    let m = msg("\r\n\r\nSIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\n\r\n");
    assert!(!m.is_request());
    assert_eq!((m.status(), m.reason()), (Some(486), Some("Busy Here")));
    assert_eq!((m.method(), m.ruri()), (None, None));
    assert_eq!(m.request_uri(), Err(ParseError::NotARequest));
    assert!(m.as_bytes().starts_with(b"SIP/2.0 486"));
    assert_eq!(m.from(), Err(ParseError::MissingHeader("From")));
}

fn reply_req() -> Message {
    msg("INVITE sip:bob@example.com SIP/2.0\r\n\
        v: SIP/2.0/WS a.invalid;branch=z9hG4bK1;rport, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2\r\n\
        Max-Forwards: 70\r\n\
        Via: SIP/2.0/TCP 192.0.2.3:5061;branch=z9hG4bK3\r\n\
        t: Bob <sip:bob@example.com>\r\n\
        f: <sip:alice@example.com>;tag=ft1\r\n\
        i: cid-1@host\r\n\
        CSeq: 101 INVITE\r\n\
        l: 0\r\n\r\n")
}

#[test]
fn build_reply_exact_bytes() {
    let req = reply_req();
    let reply = build_reply(
        &req,
        486,
        "Busy Here",
        "tt1",
        &[("Retry-After", "60")],
        None,
    );
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        "SIP/2.0 486 Busy Here\r\n\
         Via: SIP/2.0/WS a.invalid;branch=z9hG4bK1;rport, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2\r\n\
         Via: SIP/2.0/TCP 192.0.2.3:5061;branch=z9hG4bK3\r\n\
         From: <sip:alice@example.com>;tag=ft1\r\n\
         To: Bob <sip:bob@example.com>;tag=tt1\r\n\
         Call-ID: cid-1@host\r\n\
         CSeq: 101 INVITE\r\n\
         Retry-After: 60\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let with_body = build_reply(&req, 200, "OK", "", &[], Some(("text/plain", b"hi")));
    assert!(with_body.ends_with(b"To: Bob <sip:bob@example.com>\r\nCall-ID: cid-1@host\r\nCSeq: 101 INVITE\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"));
}

#[test]
fn stateless_to_tag_stable_for_retransmissions() {
    let a = stateless_to_tag(&reply_req());
    let b = stateless_to_tag(&reply_req());
    assert_eq!(a, b);
    assert_eq!(a.len(), 20);
    // A retransmission with leading CRLF and different header case is the same.
    let text = String::from_utf8(reply_req().as_bytes().to_vec()).unwrap();
    let again = msg(&format!(
        "\r\n{}",
        text.replace("Max-Forwards: 70", "max-forwards: 70")
    ));
    assert_eq!(stateless_to_tag(&again), a);
    let other = msg(&text.replace("branch=z9hG4bK1", "branch=z9hG4bK9"));
    assert_ne!(stateless_to_tag(&other), a);
}

#[test]
fn keepalive_detection() {
    assert!(is_keepalive(b"\r\n\r\n"));
    assert!(is_keepalive(b"\r\n"));
    assert!(!is_keepalive(b""));
    assert!(!is_keepalive(b"\r\nX"));
}

#[test]
fn header_name_table() {
    assert_eq!(HeaderName::from_wire("v"), HeaderName::Via);
    assert_eq!(HeaderName::Via.compact(), Some('v'));
}

#[test]
fn fuzz_entry_point_survives_odd_inputs() {
    let inputs: [&[u8]; 8] = [
        b"",
        b"\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
        b"A sip:b SIP/2.0\r\nVia: SIP/2.0/UDP [::1;branch\r\nTo: \"\r\nContact: <\r\n\r\n",
        b"A sip:b SIP/2.0\r\nl: 1\r\n\r\n\xff",
        b"A sip:b SIP/2.0\r\nX:\r\n \r\n\t\r\n\r\n",
        b"A sip:b SIP/2.0\r\nf: a<\r\nt: <sip:a@b>;tag=\"x\r\nCSeq: 1\r\n\r\n",
        INVITE.as_bytes(),
    ];
    for i in inputs {
        super::fuzz_parse(i);
    }
    for n in 0..INVITE.len() {
        super::fuzz_parse(&INVITE.as_bytes()[..n]);
    }
}

/// Lookups of absent, present and repeated headers (the message's sets of names present),
/// compact forms and unknown names included, agree with a scan of every line.
#[test]
fn lookups_by_presence() {
    let m = msg("OPTIONS sip:a@b SIP/2.0\r\n\
        Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
        m: <sip:x@y>\r\n\
        Contact: <sip:z@y>\r\n\
        X-A: 1\r\n\
        From: <sip:a@b>;tag=1\r\n\
        To: <sip:a@b>\r\n\
        Call-ID: c\r\n\
        CSeq: 1 OPTIONS\r\n\r\n");
    assert_eq!(
        m.headers("Contact").collect::<Vec<_>>(),
        ["<sip:x@y>", "<sip:z@y>"]
    );
    assert_eq!(m.header("m"), Some("<sip:x@y>"));
    assert_eq!(m.header("Route"), None);
    assert_eq!(m.routes().count(), 0);
    assert_eq!(m.first(HeaderName::Date), None);
    assert_eq!(m.header("x-a"), Some("1"));
    assert_eq!(m.header("X-B"), None);
    assert_eq!(m.header("i"), Some("c"));
    assert!(m.has(HeaderName::Contact) && m.repeats(HeaderName::Contact));
    assert!(m.has(HeaderName::From) && !m.repeats(HeaderName::From));
    assert!(!m.has(HeaderName::Route) && !m.repeats(HeaderName::Route));
    assert!(m.has(HeaderName::Other));
    assert_eq!(m.validate_for_proxy(), Ok(()));
    // Without an unknown name, an unknown name is found nowhere.
    let plain = msg("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n");
    assert!(!plain.has(HeaderName::Other));
    assert_eq!(plain.header("X-A"), None);
}

/// Duplicate From, To, Call-ID or CSeq lines are still refused with the presence sets.
#[test]
fn duplicates_found_by_the_presence_sets() {
    let base = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
        From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n";
    for (extra, name) in [
        ("f: <sip:c@d>;tag=2\r\n", "From"),
        ("t: <sip:c@d>\r\n", "To"),
        ("i: d\r\n", "Call-ID"),
        ("CSeq: 2 OPTIONS\r\n", "CSeq"),
    ] {
        let m = msg(&format!("{base}{extra}\r\n"));
        assert_eq!(
            m.validate_for_proxy(),
            Err(ParseError::DuplicateHeader(name)),
            "{extra}"
        );
    }
    assert_eq!(msg(&format!("{base}\r\n")).validate_for_proxy(), Ok(()));
}

/// A second Via value is seen wherever it is: after a comma on the first line, on a line of
/// its own, or not at all; and a bad one is refused in each place.
#[test]
fn more_vias_after_the_top_one() {
    let req = |via: &str| {
        msg(&format!(
            "OPTIONS sip:a@b SIP/2.0\r\n{via}From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n\
             Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
        ))
    };
    let one = req("Via: SIP/2.0/UDP h;branch=z9hG4bK1 \r\n");
    assert!(
        one.may_have_more_vias(),
        "not known before the top Via is read"
    );
    assert!(one.top_via().is_ok());
    assert!(!one.may_have_more_vias());
    for via in [
        "Via: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g;branch=z9hG4bK2\r\n",
        "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nv: SIP/2.0/UDP g;branch=z9hG4bK2\r\n",
    ] {
        let m = req(via);
        assert!(m.top_via().is_ok());
        assert!(m.may_have_more_vias(), "{via}");
        assert_eq!(m.validate_for_proxy(), Ok(()), "{via}");
    }
    let trailing = req("Via: SIP/2.0/UDP h;branch=z9hG4bK1 ,\r\n");
    assert!(trailing.top_via().is_ok());
    assert!(trailing.may_have_more_vias());
    for via in [
        "Via: SIP/2.0/UDP h;branch=z9hG4bK1 ,\r\n",
        "Via: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP\r\n",
        "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nVia: bad\r\n",
    ] {
        assert!(req(via).validate_for_proxy().is_err(), "{via}");
    }
}

/// A CR inside a header value (a stray CR, not a line end) is noticed by the parse and
/// becomes SP in a reply; without one, values are copied as they are.
#[test]
fn stray_cr_in_a_copied_value() {
    let text = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r;branch=z9hG4bK1\r\n\
        From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\rx\r\nCSeq: 1 OPTIONS\r\n\r\n";
    let m = msg(text);
    assert!(m.stray_cr);
    assert_eq!(m.call_id(), Some("c\rx"));
    let src = "192.0.2.9:5060".parse().unwrap();
    for reply in [
        build_reply(&m, 200, "OK", "t", &[], None),
        super::build_reply_from(&m, Some((src, false)), 200, "OK", "t", &[], None),
    ] {
        let r = String::from_utf8(reply).unwrap();
        assert!(r.contains("Call-ID: c x\r\n"), "{r:?}");
        assert!(r.contains("Via: SIP/2.0/UDP h ;branch=z9hG4bK1"), "{r:?}");
        assert_eq!(r.matches('\r').count(), r.matches("\r\n").count(), "{r:?}");
    }
    // A folded line is no stray CR: folds become spaces.
    let folded = msg(
        "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
        Subject: a\r\n b\r\nCall-ID: c\r\n\r\n",
    );
    assert!(!folded.stray_cr);
    let r = String::from_utf8(build_reply(&folded, 200, "OK", "", &[], None)).unwrap();
    assert!(r.contains("Call-ID: c\r\n"), "{r:?}");
    // A lone CR at the end of the data is not a line end: the message is incomplete.
    assert!(Message::parse(Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r")).is_err());
}
