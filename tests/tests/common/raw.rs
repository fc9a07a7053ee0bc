//! Raw WebSocket clients and server measurements for the resource-bound tests (issue 10):
//! hand-made handshakes and frames (fast, and free to misbehave), `/proc` readings, and a
//! witness that checks other clients are still served.
//!
//! Use from a test file that also has `mod common;`:
//! `#[path = "common/raw.rs"] mod raw;`
#![allow(dead_code)]

use crate::common::ws::{next_text, Ws};
use crate::common::{header, options_request, Server};
use futures_util::SinkExt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// A field of `/proc/PID/status`, in KiB.
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A masked client frame (RFC 6455 §5.2, §5.3).
pub fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x5a, 0x13, 0xc7, 0x08];
    let mut f = vec![b0];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// A raw WebSocket connection from `src` (port chosen by the OS), with a receive buffer of
/// `rcvbuf` bytes when given, after a hand-made `sip` handshake (RFC 6455 §4.1).
pub async fn raw_ws(srv: SocketAddr, src: Ipv4Addr, rcvbuf: Option<u32>) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n).unwrap();
    }
    sock.bind(SocketAddr::new(src.into(), 0)).unwrap();
    let mut s = sock.connect(srv).await.unwrap();
    let head = handshake(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    s
}

/// Send a hand-made `sip` opening handshake on `s` and read the answer's head (whatever its
/// status), within 5 s.
pub async fn handshake(s: &mut TcpStream) -> String {
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: sip\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
            .await
            .expect("handshake reply within 5 s")
            .unwrap();
        assert_eq!(n, 1, "closed during the handshake");
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Bob registered (`<sip:bobx@bob.invalid;transport=ws>`, no authentication asked) over a raw
/// connection from `src` with a `rcvbuf`-byte receive buffer, which reads nothing more until
/// the test does: the slow or silent callee of the queue tests.
pub async fn raw_bob(srv: SocketAddr, src: Ipv4Addr, rcvbuf: u32) -> TcpStream {
    let mut bob = raw_ws(srv, src, Some(rcvbuf)).await;
    let contact = ["<sip:bobx@bob.invalid;transport=ws>".to_string()];
    let reg = crate::common::sipws::register("bob", "reg-bob", 1, &contact, 600);
    bob.write_all(&frame(0x81, reg.as_bytes())).await.unwrap();
    let (_, ok) = read_frame(&mut bob).await;
    assert!(
        ok.starts_with(b"SIP/2.0 200 "),
        "{}",
        String::from_utf8_lossy(&ok)
    );
    bob
}

/// A MESSAGE from Alice to Bob (`call` is its Call-ID and branch suffix) with a text `body`.
pub fn message_to_bob(call: &str, body: &str) -> String {
    format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bK{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\n\
         Call-ID: {call}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One OPTIONS round trip on `ws`: 200 within 5 s.
pub async fn options_ok(ws: &mut Ws, n: u32) {
    let call_id = format!("witness-{n}@mem");
    ws.send(Message::text(options_request(
        &call_id,
        &format!("z9hG4bKw{n}"),
        n,
    )))
    .await
    .unwrap();
    loop {
        let r = next_text(ws).await;
        if header(&r, "Call-ID") == Some(call_id.as_str()) {
            assert!(r.starts_with("SIP/2.0 200 "), "{r}");
            return;
        }
    }
}

/// The overflow warnings logged within `timeout` once there are `n` (fewer on timeout).
pub async fn overflows(srv: &Server, n: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines: Vec<String> = srv
            .log()
            .lines()
            .filter(|l| l.contains("websocket write queue overflow"))
            .map(String::from)
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads one unmasked server frame: (first byte, payload), within 5 s.
pub async fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).await.unwrap();
        assert_eq!(h[1] & 0x80, 0, "server frame masked");
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                s.read_exact(&mut l).await.unwrap();
                u16::from_be_bytes(l) as usize
            }
            127 => {
                let mut l = [0u8; 8];
                s.read_exact(&mut l).await.unwrap();
                u64::from_be_bytes(l) as usize
            }
            n => n as usize,
        };
        let mut p = vec![0u8; len];
        s.read_exact(&mut p).await.unwrap();
        (h[0], p)
    })
    .await
    .expect("a frame within 5 s")
}
