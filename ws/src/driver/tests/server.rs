//! Server path: handshake, delivery, replies (both paths), control frames, protocol errors.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sipcore_abi::Proto;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

use super::*;
use crate::driver::worker::FAST_SENDS;

type Client = tokio_tungstenite::WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: SocketAddr) -> (Client, SocketAddr) {
    let mut req = format!("ws://{addr}/sip").into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    req.headers_mut()
        .insert("Origin", "https://example.com".parse().unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "sip");
    let local = match ws.get_ref() {
        MaybeTlsStream::Plain(s) => s.local_addr().unwrap(),
        _ => unreachable!(),
    };
    (ws, local)
}

async fn next_text(ws: &mut Client) -> String {
    let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    m.to_text().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_delivered_with_receive_info_and_fast_path_reply() {
    let srv = Server::start(cfg(), Echo::Send);
    let before = FAST_SENDS.load(Ordering::Relaxed);
    let (mut ws, local) = connect(srv.addr).await;
    ws.send(Message::text(OPTIONS)).await.unwrap();
    assert_eq!(next_text(&mut ws).await, OPTIONS);
    let (info, payload, text) = srv.next_msg();
    assert_eq!(payload, OPTIONS.as_bytes());
    assert!(text);
    assert_eq!(info.proto, Proto::WS);
    assert_eq!(info.src.to_std(), Some(local));
    assert_eq!(info.dst.to_std(), Some(srv.addr));
    assert_eq!(info.listener, 3);
    assert_ne!(info.conn_id, 0);
    assert_eq!(info.conn_id & 0xFF, 0, "worker 0 owns it");
    assert!(
        FAST_SENDS.load(Ordering::Relaxed) > before,
        "reply did not take the fast path"
    );
    let list = srv.rt.connections();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].id, list[0].peer, list[0].state),
        (info.conn_id, local, "open")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_thread_replies_text_and_binary() {
    let srv = Server::start(cfg(), Echo::No);
    let (mut ws, _) = connect(srv.addr).await;
    ws.send(Message::text(OPTIONS)).await.unwrap();
    let (info, _, _) = srv.next_msg();
    let id = srv
        .rt
        .send(&target(info.conn_id), b"SIP/2.0 200 OK\r\n\r\n")
        .unwrap();
    assert_eq!(id, info.conn_id);
    assert_eq!(next_text(&mut ws).await, "SIP/2.0 200 OK\r\n\r\n");
    srv.rt.send_frame(info.conn_id, false, &[0, 1, 2]).unwrap();
    let m = ws.next().await.unwrap().unwrap();
    assert_eq!(m, Message::binary(vec![0u8, 1, 2]));
    // Unknown connection, no destination.
    assert_eq!(
        srv.rt.send(&target(0x7777_0000), b"x"),
        Err(sipcore_abi::SendError::NO_CONNECTION)
    );
    // Closing via the MI path: Close 1000 with our reason reaches the client.
    assert!(srv.rt.close(info.conn_id, 1000, "closed by MI"));
    match tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
    {
        Some(Ok(Message::Close(Some(f)))) => {
            assert_eq!(u16::from(f.code), 1000);
            assert_eq!(f.reason.as_str(), "closed by MI");
        }
        other => panic!("expected a Close, got {other:?}"),
    }
    let (meta, _) = srv.next_closed(5);
    assert_eq!(meta.id, info.conn_id);
    assert!(!srv.rt.close(info.conn_id, 1000, "again"));
}

#[test]
fn handshake_without_sip_gets_400_and_server_keeps_serving() {
    let srv = Server::start(cfg(), Echo::No);
    let mut bad = tcp(srv.addr);
    bad.write_all(request("").as_bytes()).unwrap();
    let head = read_head(&mut bad);
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(head.contains("Sec-WebSocket-Version: 13\r\n"), "{head}");
    assert!(at_eof(&mut bad));
    let peer = bad.local_addr().unwrap().to_string();
    let logs = srv.logs();
    assert!(
        logs.iter().any(|l| l.contains("websocket handshake failed")
            && l.contains(&format!("peer={peer}"))
            && l.contains("status=400")),
        "{logs:?}"
    );
    let mut good = ws(srv.addr);
    good.write_all(&frame(0x81, b"hello")).unwrap();
    assert_eq!(srv.next_msg().1, b"hello");
}

#[test]
fn pipelined_frames_after_handshake() {
    let srv = Server::start(cfg(), Echo::No);
    let mut s = tcp(srv.addr);
    let mut bytes = request("Sec-WebSocket-Protocol: sip\r\n").into_bytes();
    bytes.extend(frame(0x81, b"one"));
    bytes.extend(frame(0x82, b"two"));
    s.write_all(&bytes).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101"));
    assert_eq!(srv.next_msg().1, b"one");
    let (_, p, text) = srv.next_msg();
    assert_eq!((p.as_slice(), text), (&b"two"[..], false));
}

#[test]
fn ping_pong_crlf_keepalive_and_close_echo() {
    let srv = Server::start(cfg(), Echo::No);
    let mut s = ws(srv.addr);
    s.write_all(&frame(0x89, b"hi")).unwrap();
    assert_eq!(read_frame(&mut s), Some((0x8A, b"hi".to_vec())));
    s.write_all(&frame(0x81, b"\r\n\r\n")).unwrap();
    assert_eq!(read_frame(&mut s), Some((0x81, b"\r\n".to_vec())));
    s.write_all(&frame(0x81, b"after")).unwrap();
    assert_eq!(
        srv.next_msg().1,
        b"after",
        "the CRLF keep-alive must not be delivered"
    );
    let mut body = 1000u16.to_be_bytes().to_vec();
    body.extend_from_slice(b"bye");
    s.write_all(&frame(0x88, &body)).unwrap();
    assert_eq!(read_frame(&mut s), Some((0x88, vec![0x03, 0xE8])));
    assert!(at_eof(&mut s));
    srv.next_closed(5);
    // An empty Close is answered with an empty Close.
    let mut s = ws(srv.addr);
    s.write_all(&frame(0x88, b"")).unwrap();
    assert_eq!(read_frame(&mut s), Some((0x88, vec![])));
    assert!(at_eof(&mut s));
}

fn expect_close(s: &mut std::net::TcpStream, code: u16) {
    let (b0, p) = read_frame(s).expect("no Close frame");
    assert_eq!(b0, 0x88);
    assert_eq!(
        u16::from_be_bytes([p[0], p[1]]),
        code,
        "reason: {}",
        String::from_utf8_lossy(&p[2..])
    );
    assert!(at_eof(s));
}

#[test]
fn protocol_errors_close_with_the_right_code_and_spare_others() {
    let srv = Server::start(
        WsConfig {
            max_msg_size: 1024,
            ..cfg()
        },
        Echo::No,
    );
    let mut healthy = ws(srv.addr);
    let mut unmasked = ws(srv.addr);
    unmasked.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    expect_close(&mut unmasked, 1002);
    let mut bad_utf8 = ws(srv.addr);
    bad_utf8
        .write_all(&frame(0x81, &[b'a', 0xFF, b'b']))
        .unwrap();
    expect_close(&mut bad_utf8, 1007);
    let mut too_big = ws(srv.addr);
    too_big.write_all(&frame(0x82, &[0u8; 2000])[..20]).unwrap();
    expect_close(&mut too_big, 1009);
    let mut reserved = ws(srv.addr);
    reserved.write_all(&frame(0x83, b"x")).unwrap();
    expect_close(&mut reserved, 1002);
    healthy.write_all(&frame(0x81, b"still here")).unwrap();
    assert_eq!(srv.next_msg().1, b"still here");
    healthy.write_all(&frame(0x89, b"")).unwrap();
    assert_eq!(read_frame(&mut healthy), Some((0x8A, vec![])));
    assert!(srv
        .logs()
        .iter()
        .any(|l| l.contains("websocket protocol error") && l.contains("code=1007")));
}

#[test]
fn large_message_in_many_segments_and_too_many_frames() {
    let srv = Server::start(cfg(), Echo::No);
    let mut s = ws(srv.addr);
    let msg: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let f = frame(0x81, &msg);
    for chunk in f.chunks(f.len() / 50 + 1) {
        s.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(srv.next_msg().1, msg);
    // 4 frames (the default limit) are fine, 5 are not.
    let mut four = frame(0x01, b"a");
    four.extend(frame(0x00, b"b"));
    four.extend(frame(0x00, b"c"));
    four.extend(frame(0x80, b"d"));
    s.write_all(&four).unwrap();
    assert_eq!(srv.next_msg().1, b"abcd");
    let mut five = frame(0x01, b"a");
    for _ in 0..3 {
        five.extend(frame(0x00, b"b"));
    }
    five.extend(frame(0x80, b"c"));
    s.write_all(&five).unwrap();
    expect_close(&mut s, 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sends_close_1001() {
    let srv = Server::start(cfg(), Echo::No);
    let (mut ws, _) = connect(srv.addr).await;
    ws.send(Message::text("x")).await.unwrap();
    srv.next_msg();
    let rt = srv.rt.clone();
    let t0 = std::time::Instant::now();
    let stopper = std::thread::spawn(move || rt.stop());
    match tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
    {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 1001),
        other => panic!("expected Close 1001, got {other:?}"),
    }
    stopper.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    srv.rt.stop();
    assert_eq!(
        srv.rt.send(&target(1), b"x"),
        Err(sipcore_abi::SendError::INTERNAL)
    );
}

#[test]
fn reply_reaches_a_peer_that_half_closed() {
    let srv = Server::start(cfg(), Echo::Send);
    let mut s = ws(srv.addr);
    s.write_all(&frame(0x81, b"last words")).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_frame(&mut s), Some((0x81, b"last words".to_vec())));
    assert!(at_eof(&mut s));
}

/// RFC 7118 §4.2, RFC 6455 §5.6: what we send goes in a text frame when it is UTF-8, else in a
/// binary frame (a text frame with invalid UTF-8 makes a strict peer fail with 1007).
#[test]
fn frame_type_follows_the_content() {
    let srv = Server::start(cfg(), Echo::Send);
    let mut s = ws(srv.addr);
    let binary: &[u8] = b"MESSAGE sip:bob@x SIP/2.0\r\n\r\n\xff\xfe\x00 body";
    s.write_all(&frame(0x82, binary)).unwrap();
    assert_eq!(read_frame(&mut s), Some((0x82, binary.to_vec())));
    // UTF-8 content goes as text, also when it arrived in a binary frame.
    s.write_all(&frame(0x82, "MESSAGE κόσμε".as_bytes()))
        .unwrap();
    assert_eq!(
        read_frame(&mut s),
        Some((0x81, "MESSAGE κόσμε".as_bytes().to_vec()))
    );
    s.write_all(&frame(0x81, b"OPTIONS")).unwrap();
    assert_eq!(read_frame(&mut s), Some((0x81, b"OPTIONS".to_vec())));
    // A UTF-8 sequence cut at the end is not UTF-8.
    s.write_all(&frame(0x82, b"abc\xce")).unwrap();
    assert_eq!(read_frame(&mut s), Some((0x82, b"abc\xce".to_vec())));
}
