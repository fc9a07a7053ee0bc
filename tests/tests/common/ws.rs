//! A third-party WebSocket client (tokio-tungstenite) speaking the `sip` subprotocol.
use futures_util::StreamExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

/// A client connection.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `url` asking for `Sec-WebSocket-Protocol: sip` (RFC 7118 §4); asserts the
/// server's 101 chose it.
pub async fn connect_sip(url: &str) -> Ws {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("handshake");
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["Sec-WebSocket-Protocol"], "sip");
    ws
}

/// The next SIP message (a text or binary frame; pings and pongs skipped), within 15 s (a
/// deadline for a starved machine, not a speed requirement: CI runs the tests with both cores
/// busy).
/// 100 Trying is skipped: t_relay() is stateful and sends it for every INVITE (RFC 3261
/// §17.2.1), hop by hop; the tests of the transaction layer read it with [`next_any_text`].
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        let t = next_any_text(ws).await;
        if !t.starts_with("SIP/2.0 100 ") {
            return t;
        }
    }
}

/// The next text (or binary, as text) message, whatever it is.
pub async fn next_any_text(ws: &mut Ws) -> String {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("reply within 15 s")
            .expect("stream open")
            .expect("no ws error");
        match m {
            Message::Text(t) => return t.to_string(),
            Message::Binary(b) => return String::from_utf8(b.to_vec()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The status code of a SIP response (0 when it is not one).
pub fn status(msg: &str) -> u16 {
    msg.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Send `text` as one text frame.
pub async fn send_text(ws: &mut Ws, text: String) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(text))
        .await
        .unwrap();
}

/// Connects to `server` from the local address `local_ip` (e.g. `127.0.0.2`, another source
/// than the other clients of a test), asking for the `sip` subprotocol; within 5 s.
pub async fn connect_from(server: std::net::SocketAddr, local_ip: &str) -> Ws {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(std::net::SocketAddr::new(local_ip.parse().unwrap(), 0))
        .unwrap();
    let tcp = tokio::time::timeout(Duration::from_secs(5), sock.connect(server))
        .await
        .expect("TCP connect within 5s")
        .expect("TCP connect");
    let mut req = format!("ws://{server}/").into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let tcp = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
    let (ws, resp) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::client_async(req, tcp),
    )
    .await
    .expect("handshake within 5s")
    .expect("handshake");
    assert_eq!(resp.status(), 101);
    ws
}
