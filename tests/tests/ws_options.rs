//! Issue 2, end to end: a third-party WebSocket client (tokio-tungstenite) talks SIP to the real
//! `sipcore` binary over `ws://` with subprotocol `sip` (RFC 7118).
mod common;
use common::ws::{connect_sip, next_text};
use common::*;
use futures_util::SinkExt;
use std::io::{Read, Write};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const CFG: &str = r#"
log_level = 3
mpath = "{MPATH}"
socket = ws:127.0.0.1:{PORT}
loadmodule "proto_ws.so"
modparam("proto_ws", "require_origin", 0)

route {
    if (is_method("OPTIONS")) {
        sl_send_reply(200, "OK");
        exit;
    }
    if ($hdr(X-Test) == "drop-me") {
        drop;
    }
    xlog("L_INFO", "no route for $rm from $si:$sp\n");
    sl_send_reply(403, "Forbidden here");
}
"#;

fn check_reply_matches(req: &str, reply: &str, code: &str) {
    assert!(reply.starts_with(&format!("SIP/2.0 {code} ")), "{reply}");
    // Vias copied in order; the top one gains received and the client's port in rport
    // (RFC 3261 §18.2.1, RFC 3581: the server fills them in its own replies).
    let (got, sent) = (headers(reply, "Via"), headers(req, "Via"));
    assert_eq!(got.len(), sent.len(), "Vias copied in order");
    assert_eq!(got[1..], sent[1..], "Vias copied in order");
    let rest = got[0]
        .strip_prefix(sent[0])
        .and_then(|r| r.strip_prefix(";received=127.0.0.1;rport="))
        .unwrap_or_else(|| panic!("top Via {} is not {} + received/rport", got[0], sent[0]));
    assert!(rest.parse::<u16>().is_ok(), "{}", got[0]);
    assert_eq!(header(reply, "From"), header(req, "From"));
    assert_eq!(header(reply, "Call-ID"), header(req, "Call-ID"));
    assert_eq!(header(reply, "CSeq"), header(req, "CSeq"));
    let to = header(reply, "To").unwrap();
    assert!(to.starts_with(header(req, "To").unwrap()), "{to}");
    assert!(to.contains(";tag="), "To must get a tag: {to}");
    assert_eq!(header(reply, "Content-Length"), Some("0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_gets_200_and_two_clients_get_their_own_answers() {
    let srv = Server::start(CFG);
    let mut a = connect_sip(&srv.ws_url()).await;
    let mut b = connect_sip(&srv.ws_url()).await;
    for i in 1..=20u32 {
        let ra = options_request(&format!("a-{i}@test"), &format!("z9hG4bKa{i}"), i);
        let rb = options_request(&format!("b-{i}@test"), &format!("z9hG4bKb{i}"), i);
        // Interleave: both requests in flight at once.
        a.send(Message::text(ra.clone())).await.unwrap();
        b.send(Message::text(rb.clone())).await.unwrap();
        let reply_b = next_text(&mut b).await;
        let reply_a = next_text(&mut a).await;
        check_reply_matches(&ra, &reply_a, "200");
        check_reply_matches(&rb, &reply_b, "200");
    }
    // A retransmission gets the same To tag (stateless replies are deterministic).
    let r = options_request("same@test", "z9hG4bKsame", 7);
    a.send(Message::text(r.clone())).await.unwrap();
    let t1 = header(&next_text(&mut a).await, "To").unwrap().to_string();
    a.send(Message::text(r)).await.unwrap();
    let t2 = header(&next_text(&mut a).await, "To").unwrap().to_string();
    assert_eq!(t1, t2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_requests_get_the_scripted_reply_and_drop_sends_nothing() {
    let srv = Server::start(CFG);
    let mut ws = connect_sip(&srv.ws_url()).await;
    let msg = options_request("m@test", "z9hG4bKm1", 1).replace("OPTIONS", "MESSAGE");
    ws.send(Message::text(msg.clone())).await.unwrap();
    let reply = next_text(&mut ws).await;
    check_reply_matches(&msg, &reply, "403");
    assert!(
        reply.starts_with("SIP/2.0 403 Forbidden here\r\n"),
        "{reply}"
    );
    srv.wait_log(
        "no route for MESSAGE from 127.0.0.1:",
        Duration::from_secs(5),
    );

    // `drop` sends nothing; the next request on the same connection is still answered.
    let dropped = msg.replace("Content-Length: 0", "X-Test: drop-me\r\nContent-Length: 0");
    ws.send(Message::text(dropped)).await.unwrap();
    let o = options_request("after-drop@test", "z9hG4bKad", 2);
    ws.send(Message::text(o.clone())).await.unwrap();
    let reply = next_text(&mut ws).await;
    check_reply_matches(&o, &reply, "200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_sip_message_is_logged_with_peer_and_dropped() {
    let srv = Server::start(CFG);
    let mut ws = connect_sip(&srv.ws_url()).await;
    ws.send(Message::text("hello, this is not SIP"))
        .await
        .unwrap();
    let log = srv.wait_log("not SIP", Duration::from_secs(5));
    assert!(log.contains("peer=127.0.0.1:"), "{log}");
    let o = options_request("after-junk@test", "z9hG4bKaj", 3);
    ws.send(Message::text(o.clone())).await.unwrap();
    check_reply_matches(&o, &next_text(&mut ws).await, "200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_without_sip_gets_400_and_others_keep_working() {
    let mut srv = Server::start(CFG);
    let mut ok = connect_sip(&srv.ws_url()).await;

    // 1. A third-party client without the subprotocol is refused with 400.
    let err = tokio_tungstenite::connect_async(srv.ws_url())
        .await
        .expect_err("must be refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => {
            assert_eq!(resp.status(), 400);
            assert_eq!(resp.headers()["Sec-WebSocket-Version"], "13");
        }
        other => panic!("expected HTTP 400, got {other:?}"),
    }

    // 2. The same over a raw socket: exact status line, then the server closes.
    let mut raw = std::net::TcpStream::connect(srv.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: chat\r\n\r\n",
    )
    .unwrap();
    let mut resp = String::new();
    raw.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 400 "), "{resp}");
    assert!(resp.contains("Sec-WebSocket-Version: 13\r\n"), "{resp}");
    let log = srv.wait_log("peer=127.0.0.1:", Duration::from_secs(5));
    assert!(log.to_lowercase().contains("handshake"), "{log}");

    // 3. The established client is unaffected and new ones still connect.
    let o = options_request("still@test", "z9hG4bKst", 9);
    ok.send(Message::text(o.clone())).await.unwrap();
    check_reply_matches(&o, &next_text(&mut ok).await, "200");
    let mut again = connect_sip(&srv.ws_url()).await;
    again.send(Message::text(o.clone())).await.unwrap();
    check_reply_matches(&o, &next_text(&mut again).await, "200");
    assert!(srv.alive());
}
