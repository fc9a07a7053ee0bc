//! Issue 10 item 5, end to end on the bundled default config: a MESSAGE whose body is not UTF-8
//! arrives in a binary frame and reaches the callee in a binary frame (RFC 7118 §4.2,
//! RFC 6455 §5.6). Relayed as a text frame, a strict client (tokio-tungstenite, as browsers)
//! fails the connection with 1007 and loses its registration.
mod common;
use common::digest::{add_users, ask_authorized, authorize_bytes};
use common::ws::status;
use common::ws::{connect_sip, next_text, Ws};
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

async fn register(url: &str, user: &str) -> Ws {
    let mut ws = connect_sip(url).await;
    let req = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS {user}.invalid;branch=z9hG4bKr{user}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=t{user}\r\nTo: <sip:{user}@example.com>\r\n\
         Call-ID: reg-{user}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}x@{user}.invalid;transport=ws>;expires=600\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let r = ask_authorized(&mut ws, req).await;
    assert_eq!(status(&r), 200, "{r}");
    ws
}

/// Send the MESSAGE `sent` in a binary frame, answer its 407 challenge, and send it again
/// with credentials, in a binary frame too.
async fn send_binary_authorized(ws: &mut Ws, sent: Vec<u8>) {
    ws.send(Message::binary(sent.clone())).await.unwrap();
    let challenge = next_text(ws).await;
    assert_eq!(status(&challenge), 407, "{challenge}");
    ws.send(Message::binary(authorize_bytes(&sent, &challenge)))
        .await
        .unwrap();
}

/// A MESSAGE from alice to bob with `body` (Content-Length set).
fn message(n: u32, ctype: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WS alice.invalid;branch=z9hG4bKm{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=ta\r\nTo: <sip:bob@example.com>\r\n\
         Call-ID: msg-{n}@frame-type\r\nCSeq: {n} MESSAGE\r\nContent-Type: {ctype}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

/// The next data frame on `ws` (pings skipped), within 5 s; panics on a WebSocket error (what
/// tungstenite reports for a text frame that is not UTF-8).
async fn next_data(ws: &mut Ws) -> Message {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("stream open")
            .expect("no WebSocket error (a text frame must hold UTF-8)");
        match m {
            Message::Ping(_) | Message::Pong(_) => continue,
            m => return m,
        }
    }
}

/// The reply a UA sends to `req`.
fn answer(req: &str) -> String {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_utf8_reaches_the_callee_in_a_binary_frame() {
    let (cfg, _mi) = default_config();
    let srv = Server::start(&cfg);
    add_users(&srv, &["alice", "bob"]);
    let url = srv.ws_url();
    let mut bob = register(&url, "bob").await;
    let mut alice = connect_sip(&url).await;

    // Not UTF-8 (0xFF never appears in UTF-8; a cut sequence at the end).
    let body: &[u8] = b"\x00\x01\xff\xfe binary payload \xce";
    let sent = message(1, "application/octet-stream", body);
    send_binary_authorized(&mut alice, sent).await;
    let got = match next_data(&mut bob).await {
        Message::Binary(b) => b.to_vec(),
        other => panic!("expected a binary frame, got {other:?}"),
    };
    assert!(got.starts_with(b"MESSAGE sip:bobx@bob.invalid;transport=ws SIP/2.0\r\n"));
    assert!(got.ends_with(body), "body changed on the way");
    let req = String::from_utf8_lossy(&got).to_string();
    bob.send(Message::text(answer(&req))).await.unwrap();
    let reply = next_text(&mut alice).await;
    assert_eq!(status(&reply), 200, "{reply}");

    // Bob is still registered and connected: a UTF-8 MESSAGE reaches him as text.
    let sent = message(3, "text/plain;charset=utf-8", "κόσμε".as_bytes());
    send_binary_authorized(&mut alice, sent).await;
    match next_data(&mut bob).await {
        Message::Text(t) => {
            assert!(t.starts_with("MESSAGE sip:bobx@bob.invalid"), "{t}");
            assert!(t.ends_with("κόσμε"), "{t}");
            bob.send(Message::text(answer(t.as_str()))).await.unwrap();
        }
        other => panic!("expected a text frame, got {other:?}"),
    }
    assert_eq!(status(&next_text(&mut alice).await), 200);
}
