//! Outbound connections: our client against tokio-tungstenite, reuse by destination, failures.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sipcore_abi::{Proto, SendError};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

use super::*;

pub(super) fn to(dst: SocketAddr) -> SendTarget {
    SendTarget {
        proto: Proto::WS,
        conn_id: 0,
        dst: SockAddr::from(dst),
        listener: NO_LISTENER,
    }
}

/// A tokio-tungstenite server answering `sip`; reports the request headers it saw and echoes
/// every text message with a "re:" prefix. Returns its address and a channel receiving
/// (Host, Sec-WebSocket-Protocol, Origin) of each handshake.
pub(super) async fn tungstenite_server() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(String, String, String)>,
) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                #[allow(clippy::result_large_err)] // tungstenite's callback signature
                let cb = |req: &Request, mut resp: Response| {
                    let h = |n: &str| {
                        req.headers()
                            .get(n)
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default()
                    };
                    let _ = tx.send((h("host"), h("sec-websocket-protocol"), h("origin")));
                    resp.headers_mut()
                        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
                    Ok(resp)
                };
                let mut ws = tokio_tungstenite::accept_hdr_async(s, cb).await.unwrap();
                // tungstenite's server role rejects unmasked client frames, so every message
                // reaching this loop was masked.
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(t) = m {
                        ws.send(Message::text(format!("re:{}", t.as_str())))
                            .await
                            .unwrap();
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_to_tungstenite_with_reuse() {
    let srv = Server::start(
        WsConfig {
            client_origin: Some("https://proxy.example".into()),
            ..cfg()
        },
        Echo::No,
    );
    let (addr, mut hdrs) = tungstenite_server().await;
    let id = srv.rt.send(&to(addr), b"OPTIONS 1").unwrap();
    assert_ne!(id & crate::driver::runtime::OUTBOUND_BIT, 0);
    let (host, proto, origin) = tokio::time::timeout(Duration::from_secs(5), hdrs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (host, proto, origin),
        (
            addr.to_string(),
            "sip".to_string(),
            "https://proxy.example".to_string()
        )
    );
    let (info, p, text) = srv.next_msg();
    assert_eq!((p.as_slice(), text), (&b"re:OPTIONS 1"[..], true));
    assert_eq!(info.conn_id, id);
    assert_eq!(info.listener, NO_LISTENER);
    assert_eq!(info.src.to_std(), Some(addr));
    let local = info.dst.to_std().unwrap();
    assert_eq!(local.ip(), addr.ip());
    assert_ne!(local.port(), 0);
    // Reuse: same destination, same connection, no second TCP connection.
    assert_eq!(srv.rt.send(&to(addr), b"OPTIONS 2").unwrap(), id);
    assert_eq!(srv.next_msg().1, b"re:OPTIONS 2");
    // A stale conn_id with a destination falls back to the destination.
    let mut t = to(addr);
    t.conn_id = 0x7777_0100;
    assert_eq!(srv.rt.send(&t, b"OPTIONS 3").unwrap(), id);
    assert_eq!(srv.next_msg().1, b"re:OPTIONS 3");
    assert!(hdrs.try_recv().is_err(), "a second connection was opened");
    let c = srv.rt.connections();
    assert_eq!((c.len(), c[0].outbound, c[0].state), (1, true, "open"));
}

#[test]
fn inbound_connection_is_never_selected_by_its_address() {
    // RFC 7118 §5: a client's source address is not a place to send to. A send to it opens
    // (and here fails) an outbound connection; the client's own connection gets nothing.
    let srv = Server::start(cfg(), Echo::No);
    let mut s = ws(srv.addr);
    s.write_all(&frame(0x81, b"REGISTER")).unwrap();
    let (info, _, _) = srv.next_msg();
    let peer = s.local_addr().unwrap();
    let id = srv.rt.send(&to(peer), b"INVITE").unwrap();
    assert_ne!(id, info.conn_id);
    assert_ne!(
        id & crate::driver::runtime::OUTBOUND_BIT,
        0,
        "a new outbound one"
    );
    let (meta, reason) = srv.next_closed(5);
    assert_eq!((meta.id, meta.peer), (id, peer));
    assert!(reason.starts_with("connect failed"), "{reason}");
    // The connection's own id still reaches it, and the INVITE never did.
    srv.rt.send(&target(info.conn_id), b"MARKER").unwrap();
    assert_eq!(read_frame(&mut s), Some((0x81, b"MARKER".to_vec())));
    // Once the inbound connection is gone, its id with its address opens nothing.
    s.write_all(&frame(0x88, b"")).unwrap();
    assert!(at_eof(&mut s));
    srv.next_closed(5);
    let mut t = to(peer);
    t.conn_id = info.conn_id;
    assert_eq!(
        srv.rt.send(&t, b"late reply"),
        Err(SendError::NO_CONNECTION)
    );
    assert!(
        srv.rt.connections().is_empty(),
        "{:?}",
        srv.rt.connections()
    );
}

/// A raw server that answers every handshake with a wrong accept value.
fn bad_accept_server() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nSec-WebSocket-Protocol: sip\r\n\r\n",
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    addr
}

#[test]
fn bad_accept_is_rejected_and_queued_data_dropped() {
    let srv = Server::start(cfg(), Echo::No);
    let addr = bad_accept_server();
    let id = srv.rt.send(&to(addr), b"OPTIONS").unwrap();
    let (m, reason) = srv.next_closed(5);
    assert_eq!(
        (m.id, m.outbound, m.peer, reason.as_str()),
        (id, true, addr, "handshake failed")
    );
    let logs = srv.logs();
    assert!(
        logs.iter().any(
            |l| l.contains("websocket handshake failed") && l.contains(&format!("peer={addr}"))
        ),
        "{logs:?}"
    );
    assert_eq!(
        srv.rt.send_frame(id, true, b"x"),
        Err(SendError::NO_CONNECTION)
    );
}

#[test]
fn connect_refused_and_connect_timeout() {
    let srv = Server::start(cfg(), Echo::No);
    // Refused: a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let id = srv.rt.send(&to(closed), b"x").unwrap();
    let (m, reason) = srv.next_closed(5);
    assert_eq!(m.id, id);
    assert!(reason.starts_with("connect failed"), "{reason}");
    // Timeout: a listener whose accept queue is full drops our SYN.
    let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    l.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    l.listen(0).unwrap();
    let full: SocketAddr = l.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&full, Duration::from_millis(100)) {
            fillers.push(s);
        }
    }
    let t0 = Instant::now();
    let id = srv.rt.connect(full, "h", "/", Some("sip")).unwrap();
    let (m, reason) = srv.next_closed(5);
    assert_eq!(m.id, id);
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(
        reason == "websocket connect timeout" || reason == "websocket handshake timeout",
        "{reason}"
    );
    assert!(srv
        .logs()
        .iter()
        .any(|l| l.contains("timeout") && l.contains(&format!("peer={full}"))));
}
