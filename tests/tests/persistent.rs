//! A registered flow stays open (RFC 5626 §4.4; OpenSIPS registrar's `tcp_persistent_flag`,
//! here the registrar's `tcp_persistent`, on by default), against the real binary:
//! `ws_connection_lifetime` does not count CRLF keep-alives as activity, so a client that never
//! registers is closed after the lifetime even if it sends them; a client that registered and
//! then only sends CRLFs (SIP.js) or nothing stays open, and reachable, as long as its binding
//! lasts. Once it unregisters it is closed at the lifetime like any other.
mod common;
use common::sipws::{ask, register, status};
use common::ws::{connect_sip, next_text, Ws};
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Lifetime 1 s; REGISTERs of 30 s accepted.
fn config(extra: &str) -> String {
    format!(
        r#"
log_level = 3
mpath = "{{MPATH}}"
loadmodule "proto_ws.so"
modparam("proto_ws", "require_origin", 0)
modparam("proto_ws", "ws_connection_lifetime", 1)
loadmodule "registrar.so"
modparam("registrar", "min_expires", 10)
{extra}
socket = ws:127.0.0.1:{{PORT}}
route {{
    if (is_method("REGISTER")) {{ save("location"); exit; }}
    if (lookup("location")) {{ t_relay(); exit; }}
    sl_send_reply(404, "Not Found");
}}
"#
    )
}

const LIFETIME: Duration = Duration::from_secs(1);

/// Send an RFC 5626 §4.4.1 double-CRLF keep-alive and read the answer: `None` for the CRLF
/// pong, else the Close code received instead.
async fn crlf(ws: &mut Ws) -> Option<u16> {
    ws.send(Message::text("\r\n\r\n")).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "\r\n" => None,
        Ok(Some(Ok(Message::Close(Some(f))))) => Some(u16::from(f.code)),
        other => panic!("unexpected {other:?}"),
    }
}

/// Send CRLF keep-alives (and nothing else) until the server closes the connection; its
/// Close code. Fails after `within`.
async fn crlf_until_closed(ws: &mut Ws, within: Duration, what: &str) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(code) = crlf(ws).await {
            return code;
        }
        assert!(Instant::now() < deadline, "{what} stayed open");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn contact(user: &str) -> Vec<String> {
    vec![format!("<sip:{user}@{user}.invalid;transport=ws>")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_flow_outlives_the_lifetime_until_it_unregisters() {
    let srv = Server::start(&config(""));
    let url = srv.ws_url();
    let mut alice = connect_sip(&url).await;
    let r = ask(
        &mut alice,
        register("alice", "reg-a", 1, &contact("alice"), 30),
    )
    .await;
    assert_eq!(status(&r), 200, "{r}");
    let registered = Instant::now();
    // Opened after Alice's REGISTER: its lifetime ends after hers would have.
    let mut control = connect_sip(&url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        assert_eq!(
            crlf(&mut alice).await,
            None,
            "the registered flow was closed"
        );
        if let Some(code) = crlf(&mut control).await {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "the unregistered client stayed open"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(code, 1001, "the unregistered client");
    // Only keep-alives from Alice until three lifetimes have passed: still open throughout.
    while registered.elapsed() < 3 * LIFETIME {
        assert_eq!(
            crlf(&mut alice).await,
            None,
            "the registered flow was closed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And reachable: Bob's MESSAGE arrives over her connection.
    let mut bob = connect_sip(&url).await;
    bob.send(Message::text(
        "MESSAGE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/WS bob.invalid;branch=z9hG4bKm1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b\r\nTo: <sip:alice@example.com>\r\n\
         Call-ID: msg-1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    ))
    .await
    .unwrap();
    let got = next_text(&mut alice).await;
    assert!(
        got.starts_with("MESSAGE sip:alice@alice.invalid;transport=ws SIP/2.0\r\n"),
        "{got}"
    );
    assert!(got.ends_with("\r\n\r\nhello"), "{got}");
    // Unregistered: back to the normal lifetime, closed although it keeps sending CRLFs.
    let r = ask(
        &mut alice,
        register("alice", "reg-a", 2, &contact("alice"), 0),
    )
    .await;
    assert_eq!(status(&r), 200, "{r}");
    let code =
        crlf_until_closed(&mut alice, Duration::from_secs(20), "the unregistered flow").await;
    assert_eq!(code, 1001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tcp_persistent_a_registered_flow_is_closed_at_the_lifetime() {
    let srv = Server::start(&config(r#"modparam("registrar", "tcp_persistent", 0)"#));
    let mut alice = connect_sip(&srv.ws_url()).await;
    let r = ask(
        &mut alice,
        register("alice", "reg-a", 1, &contact("alice"), 30),
    )
    .await;
    assert_eq!(status(&r), 200, "{r}");
    let code = crlf_until_closed(&mut alice, Duration::from_secs(20), "the registered flow").await;
    assert_eq!(code, 1001);
}
