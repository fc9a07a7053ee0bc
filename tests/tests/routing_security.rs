//! Issue 10 ("safe to expose"), routing items, end to end against the bundled default config
//! with raw WebSocket clients: a client's connection is reachable only through the registrar
//! or our flow token (a Route naming Bob's address does not reach Bob), a forged response
//! reaches nobody, nothing makes the server dial an address a client names, a reply for a
//! client whose connection closed is dropped, and a request the relay could only send
//! unparsable is refused. Every "Bob got nothing" is proven by a later message that does reach
//! Bob and arrives first, never by a sleep.
mod common;
use common::digest::{add_users, ask_authorized, send_authorized};
use common::ws::{connect_sip as connect, next_text as recv, Ws};
use common::ws::{send_text as send, status};
use common::*;
use std::net::TcpListener;
use std::time::Duration;

/// A browser-like user: its WebSocket, `.invalid` contact, and its port as the server saw it.
struct Ua {
    ws: Ws,
    user: &'static str,
    contact: String,
    /// The `rport` of the REGISTER's 200: the client's source port (RFC 3581).
    port: u16,
}

impl Ua {
    async fn register(url: &str, user: &'static str) -> Ua {
        let mut ws = connect(url).await;
        let local = match ws.get_ref() {
            tokio_tungstenite::MaybeTlsStream::Plain(t) => t.local_addr().unwrap().port(),
            _ => unreachable!("plain ws"),
        };
        let contact = format!("sip:{user}x@{user}.invalid;transport=ws");
        let r = ask_authorized(
            &mut ws,
            format!(
                "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS {user}.invalid;branch=z9hG4bKr{user}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=t{user}\r\nTo: <sip:{user}@example.com>\r\n\
                 Call-ID: reg-{user}\r\nCSeq: 1 REGISTER\r\nContact: <{contact}>;expires=600\r\nContent-Length: 0\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(status(&r), 200, "{r}");
        // Our own replies carry received and a filled rport (RFC 3261 §18.2.1, RFC 3581).
        let via = header(&r, "Via").unwrap();
        assert!(via.contains(";received=127.0.0.1"), "{r}");
        let port: u16 = via
            .split(";rport=")
            .nth(1)
            .and_then(|p| p.split(';').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no rport in {r}"));
        assert_eq!(port, local, "{r}");
        Ua {
            ws,
            user,
            contact,
            port,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        method: &str,
        ruri: &str,
        to: &str,
        call: &str,
        cseq: u32,
        extra: &str,
        body: &str,
    ) -> String {
        format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/WS {u}.invalid;branch=z9hG4bK{call}{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{u}@example.com>;tag=f{u}\r\nTo: {to}\r\nCall-ID: {call}\r\n\
             CSeq: {cseq} {method}\r\nContact: <{c}>\r\n{extra}Content-Type: text/plain\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            u = self.user,
            c = self.contact,
            len = body.len(),
        )
    }

    /// A MESSAGE to `to_user` through the registrar (an initial request).
    fn message(&self, to_user: &str, call: &str, body: &str) -> String {
        self.request(
            "MESSAGE",
            &format!("sip:{to_user}@example.com"),
            &format!("<sip:{to_user}@example.com>"),
            call,
            1,
            "",
            body,
        )
    }
}

/// Wait until one log line contains every needle (logging is asynchronous).
fn wait_line(srv: &Server, needles: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = srv.log();
        if log.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line with {needles:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The reply a UA sends to `req`.
fn answer(req: &str, code: u16) -> String {
    let mut out = format!("SIP/2.0 {code} OK\r\n");
    for v in headers(req, "Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for h in ["From", "Call-ID", "CSeq"] {
        out.push_str(&format!("{h}: {}\r\n", header(req, h).unwrap()));
    }
    out.push_str(&format!(
        "To: {};tag=callee\r\nContent-Length: 0\r\n\r\n",
        header(req, "To").unwrap()
    ));
    out
}

/// Alice sends a marker MESSAGE to Bob through the registrar; it must be the next thing Bob
/// receives (so nothing sent before it reached him), and Alice gets his 200.
async fn marker_reaches_bob(alice: &mut Ua, bob: &mut Ua, call: &str) {
    let m = alice.message("bob", call, "marker");
    send_authorized(&mut alice.ws, m).await;
    let got = recv(&mut bob.ws).await;
    assert!(got.starts_with("MESSAGE sip:bobx@bob.invalid"), "{got}");
    assert_eq!(
        header(&got, "Call-ID"),
        Some(call),
        "bob got something else first: {got}"
    );
    send(&mut bob.ws, answer(&got, 200)).await;
    let ok = recv(&mut alice.ws).await;
    assert_eq!(
        (status(&ok), header(&ok, "Call-ID")),
        (200, Some(call)),
        "{ok}"
    );
}

/// Item 1: a Route naming Bob's address (his port leaks in rport) must not select Bob's
/// inbound connection: only the registrar or our flow token reach it.
#[tokio::test]
async fn a_route_to_bobs_address_does_not_reach_bob() {
    let (cfg, _mi) = default_config();
    let srv = Server::start(&cfg);
    add_users(&srv, &["alice", "bob", "mallory"]);
    let url = srv.ws_url();
    let mut alice = Ua::register(&url, "alice").await;
    let mut bob = Ua::register(&url, "bob").await;
    let to_bob = "<sip:bob@example.com>;tag=bobtag";
    for (i, (ruri, route)) in [
        (
            bob.contact.clone(),
            format!("Route: <sip:127.0.0.1:{};transport=ws;lr>\r\n", bob.port),
        ),
        (
            format!("sip:bobx@127.0.0.1:{};transport=ws", bob.port),
            String::new(),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let call = format!("hijack-{i}");
        let m = alice.request("MESSAGE", &ruri, to_bob, &call, 1, &route, "hijack");
        send(&mut alice.ws, m).await;
        let r = recv(&mut alice.ws).await;
        assert!(status(&r) >= 400, "alice gets an error answer: {r}");
        assert_eq!(header(&r, "Call-ID"), Some(call.as_str()));
    }
    marker_reaches_bob(&mut alice, &mut bob, "after-hijack").await;
}

/// Item 3: a made-up 200 whose top Via names us (with a branch we never made, or one of ours
/// altered) and whose next Via names Bob's address reaches nobody; the drop is logged.
#[tokio::test]
async fn a_forged_response_reaches_nobody() {
    let (cfg, _mi) = default_config();
    let srv = Server::start(&cfg);
    add_users(&srv, &["alice", "bob", "mallory"]);
    let url = srv.ws_url();
    let mut alice = Ua::register(&url, "alice").await;
    let mut bob = Ua::register(&url, "bob").await;
    let mut mallory = Ua::register(&url, "mallory").await;
    let (srv_port, bob_port) = (srv.port, bob.port);
    let forged = |branch: &str, n: usize| {
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/WS 127.0.0.1:{p};branch={branch}\r\n\
             Via: SIP/2.0/WS bob.invalid;branch=z9hG4bKbob1;received=127.0.0.1;rport={bp}\r\n\
             From: <sip:bob@example.com>;tag=fbob\r\nTo: <sip:x@example.com>;tag=forged\r\n\
             Call-ID: forged-{n}\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
            p = srv_port,
            bp = bob_port
        )
    };
    // A branch we never made.
    send(&mut mallory.ws, forged("z9hG4bKfake", 0)).await;
    wait_line(
        &srv,
        &[
            "reply 200 dropped: our Via's branch",
            "z9hG4bKfake",
            "peer=127.0.0.1:",
        ],
    );
    marker_reaches_bob(&mut alice, &mut bob, "after-forged-0").await;
    // One of ours, as Mallory sees it on a request Alice sends her, with the hop altered.
    let m = alice.message("mallory", "to-mallory", "hi");
    send_authorized(&mut alice.ws, m).await;
    let got = recv(&mut mallory.ws).await;
    let ours = headers(&got, "Via")[0].to_string();
    let real = ours.split("branch=").nth(1).unwrap().to_string();
    assert!(real.starts_with("z9hG4bK") && real.len() > 60, "{ours}");
    let mut altered = real.clone().into_bytes();
    let i = 7 + 24 + 5; // a digit of the hop
    altered[i] = if altered[i] == b'0' { b'1' } else { b'0' };
    let altered = String::from_utf8(altered).unwrap();
    send(&mut mallory.ws, forged(&altered, 1)).await;
    wait_line(
        &srv,
        &[
            "reply 200 dropped: our Via's branch",
            &altered,
            "peer=127.0.0.1:",
        ],
    );
    // The real branch with Bob's Via under it: not the transaction the branch names.
    send(&mut mallory.ws, forged(&real, 2)).await;
    wait_line(&srv, &["reply 200 dropped: its next Via is not the one"]);
    marker_reaches_bob(&mut alice, &mut bob, "after-forged-1").await;
    // The real answer to Alice's request still reaches Alice, through the branch's hop.
    send(&mut mallory.ws, answer(&got, 200)).await;
    let ok = recv(&mut alice.ws).await;
    assert_eq!(
        (status(&ok), header(&ok, "Call-ID")),
        (200, Some("to-mallory")),
        "{ok}"
    );
}

/// Items 2 and 4: with the default config no Route or Request-URI makes the server connect
/// anywhere: a preloaded foreign Route gets 403, our Route without a token in a dialog gets
/// 403, a foreign Route in a dialog is not followed.
#[tokio::test]
async fn a_route_to_an_unused_port_makes_no_connection() {
    let (cfg, _mi) = default_config();
    let srv = Server::start(&cfg);
    add_users(&srv, &["alice", "bob", "mallory"]);
    let url = srv.ws_url();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let lport = listener.local_addr().unwrap().port();
    let mut alice = Ua::register(&url, "alice").await;
    let mut bob = Ua::register(&url, "bob").await;
    let there = format!("<sip:127.0.0.1:{lport};transport=ws;lr>");
    let us = format!("<sip:127.0.0.1:{};transport=ws;lr>", srv.port);
    let to_bob = "<sip:bob@example.com>;tag=bobtag";
    let attacks = [
        // Initial request, preloaded Route elsewhere.
        (
            alice.request(
                "MESSAGE",
                "sip:bob@example.com",
                "<sip:bob@example.com>",
                "pre-1",
                1,
                &format!("Route: {there}\r\n"),
                "x",
            ),
            403,
        ),
        // Initial request, our Route then one elsewhere.
        (
            alice.request(
                "MESSAGE",
                "sip:bob@example.com",
                "<sip:bob@example.com>",
                "pre-2",
                1,
                &format!("Route: {us}, {there}\r\n"),
                "x",
            ),
            403,
        ),
        // In a dialog: our Route without a flow token, then one elsewhere.
        (
            alice.request(
                "BYE",
                &bob.contact,
                to_bob,
                "dlg-1",
                2,
                &format!("Route: {us}\r\nRoute: {there}\r\n"),
                "",
            ),
            403,
        ),
        // In a dialog: a foreign Route only.
        (
            alice.request(
                "BYE",
                &bob.contact,
                to_bob,
                "dlg-2",
                2,
                &format!("Route: {there}\r\n"),
                "",
            ),
            404,
        ),
        // An initial request whose Request-URI is the address.
        (
            alice.request(
                "MESSAGE",
                &format!("sip:x@127.0.0.1:{lport};transport=ws"),
                "<sip:x@example.com>",
                "ruri-1",
                1,
                "",
                "x",
            ),
            404,
        ),
    ];
    for (req, code) in attacks {
        let call = header(&req, "Call-ID").unwrap().to_string();
        // Alice has the password: the answers below are the routing's, not a challenge.
        let r = ask_authorized(&mut alice.ws, req).await;
        assert_eq!(
            (status(&r), header(&r, "Call-ID")),
            (code, Some(call.as_str())),
            "{r}"
        );
    }
    // Bob received none of it, and the others are served as before.
    marker_reaches_bob(&mut alice, &mut bob, "after-routes").await;
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the server connected to the unused port: {other:?}"),
    }
}

/// Item 4: a reply for a client whose connection has closed is dropped and logged; it is never
/// sent by opening a connection to the client's source port.
#[tokio::test]
async fn a_reply_for_a_closed_connection_is_dropped() {
    let (cfg, _mi) = default_config();
    let srv = Server::start(&cfg);
    add_users(&srv, &["alice", "bob", "mallory"]);
    let url = srv.ws_url();
    let mut alice = Ua::register(&url, "alice").await;
    let mut bob = Ua::register(&url, "bob").await;
    let m = alice.message("bob", "orphan", "hi");
    send_authorized(&mut alice.ws, m).await;
    let got = recv(&mut bob.ws).await;
    drop(alice);
    // Bob answers (and retransmits his answer, as a UAS does when the request is
    // retransmitted) until the server has seen alice's connection close and drops it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let dropped = |log: &str| {
        log.lines().any(|l| {
            l.contains("reply 200 dropped: the connection")
                && l.contains("the request came from is gone")
        })
    };
    loop {
        send(&mut bob.ws, answer(&got, 200)).await;
        if dropped(&srv.log()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", srv.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Never sent by dialling alice's old source port.
    let log = srv.log();
    assert!(!log.contains("websocket connect"), "{log}");
}

/// Item 15: a request the relay could only send with more header fields than the parser
/// accepts (128 fields + our Via) is answered 513 and reaches nobody. A CANCEL: the default
/// config lets it through unauthenticated (it cannot be challenged), so it reaches the relay
/// with its 128 fields; an authenticated request loses its credentials to
/// `consume_credentials()` on the way and stays within the limit.
#[tokio::test]
async fn a_request_at_the_header_limit_is_refused_not_relayed_unparsable() {
    let (cfg, _mi) = default_config();
    let srv = Server::start(&cfg);
    add_users(&srv, &["alice", "bob", "mallory"]);
    let url = srv.ws_url();
    let mut alice = Ua::register(&url, "alice").await;
    let mut bob = Ua::register(&url, "bob").await;
    let base = alice.request(
        "CANCEL",
        "sip:bob@example.com",
        "<sip:bob@example.com>",
        "fat",
        1,
        "",
        "",
    );
    let fields = base
        .split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .count();
    let extra: String = (fields..128).map(|i| format!("X-F{i}: {i}\r\n")).collect();
    let fat = base.replacen("Content-Type:", &format!("{extra}Content-Type:"), 1);
    send(&mut alice.ws, fat).await;
    let r = recv(&mut alice.ws).await;
    assert_eq!(status(&r), 513, "{r}");
    assert_eq!(header(&r, "CSeq"), Some("1 CANCEL"), "{r}");
    marker_reaches_bob(&mut alice, &mut bob, "after-fat").await;
}
