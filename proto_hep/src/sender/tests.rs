//! Sender tests against real local sockets.

use super::*;
use crate::codec::{self, HepRecord, Version};
use crate::hep_id::HepDest;
use bytes::{Bytes, BytesMut};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn dest(host: Host, port: u16, transport: Transport) -> HepDest {
    HepDest {
        name: "t".into(),
        host,
        port,
        transport,
        version: Version::V3,
    }
}

fn cfg(queue_len: usize) -> SenderConfig {
    SenderConfig {
        queue_len,
        tcp_connect_timeout: Duration::from_millis(500),
        tcp_write_timeout: Duration::from_millis(200),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        recover_after: Duration::from_millis(100),
        udp_gso: true,
    }
}

/// A HEP3 packet whose payload is `payload` (also used by the UDP and segmentation tests).
pub(crate) fn hep(payload: &[u8]) -> Bytes {
    let rec = HepRecord {
        version: Version::V3,
        src: "10.0.0.1:5060".parse().unwrap(),
        dst: "10.0.0.2:5060".parse().unwrap(),
        ip_proto: 17,
        proto_type: 1,
        ts_sec: 1,
        ts_usec: 2,
        capture_id: 3,
        auth_key: None,
        correlation_id: Some(b"cid"),
        node_name: None,
        payload,
        payload_compressed: false,
        extra: &[],
    };
    let mut out = BytesMut::new();
    codec::encode(&rec, &mut out).unwrap();
    out.freeze()
}

/// Polls `f` until true or 5 s pass.
fn wait_for(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A port with nothing listening on it (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind((LOCAL, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Accepts one connection on another thread, with a timeout.
fn accept(l: &TcpListener) -> TcpStream {
    let l = l.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(l.accept().map(|(s, _)| s));
    });
    let s = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads one framed HEP3 packet from a stream.
fn read_packet(s: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 6];
    s.read_exact(&mut head).unwrap();
    let n = codec::v3_frame_len(&head).unwrap().unwrap();
    let mut p = head.to_vec();
    p.resize(n, 0);
    s.read_exact(&mut p[6..]).unwrap();
    p
}

#[test]
fn udp_packets_arrive_intact() {
    let sock = UdpSocket::bind((LOCAL, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let s = Sender::new(dest(Host::Ip(LOCAL), port, Transport::Udp), cfg(16)).unwrap();
    let packets: Vec<Bytes> = (0..3).map(|i| hep(format!("msg {i}").as_bytes())).collect();
    for p in &packets {
        assert!(s.send(p.clone()));
    }
    let mut buf = [0u8; 2048];
    for p in &packets {
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &p[..]);
        assert_eq!(
            codec::decode(&buf[..n]).unwrap().correlation_id,
            Some(&b"cid"[..])
        );
    }
    wait_for("3 sent", || s.stats().sent == 3);
    let st = s.stats();
    assert!(st.connected);
    assert_eq!((st.dropped, st.errors, st.connects), (0, 0, 0));
}

#[test]
fn udp_closed_port_is_not_fatal() {
    let port = UdpSocket::bind((LOCAL, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Sender::new(dest(Host::Ip(LOCAL), port, Transport::Udp), cfg(64)).unwrap();
    for _ in 0..20 {
        assert!(s.send(hep(b"x")));
        std::thread::sleep(Duration::from_millis(1));
    }
    wait_for("all accounted", || {
        let st = s.stats();
        st.sent + st.dropped == 20
    });
    // Refusals (if the kernel reports any) cost the packet, not the socket.
    assert!(s.stats().connected);
}

#[test]
fn tcp_packets_arrive_framed_in_order() {
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    // "localhost" exercises resolution and trying each resolved address in turn.
    let host = Host::Name("localhost".into());
    let s = Sender::new(dest(host, port, Transport::Tcp), cfg(256)).unwrap();
    let mut c = accept(&l);
    let packets: Vec<Bytes> = (0..200)
        .map(|i| hep(&vec![b'a' + (i % 26) as u8; i * 37]))
        .collect();
    for p in &packets {
        assert!(s.send(p.clone()));
    }
    for (i, p) in packets.iter().enumerate() {
        let got = read_packet(&mut c);
        assert_eq!(&got[..], &p[..], "packet {i}");
        assert_eq!(codec::decode(&got).unwrap().payload.len(), i * 37);
    }
    wait_for("200 sent", || s.stats().sent == 200);
    let st = s.stats();
    assert_eq!((st.dropped, st.connects, st.connected), (0, 1, true));
}

#[test]
fn tcp_refused_never_blocks_and_counts_drops() {
    let port = closed_port();
    let s = Sender::new(dest(Host::Ip(LOCAL), port, Transport::Tcp), cfg(16)).unwrap();
    let p = hep(b"lost");
    let start = Instant::now();
    let accepted = (0..10_000).filter(|_| s.send(p.clone())).count();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(accepted <= 16, "{accepted}");
    wait_for("connect errors", || s.stats().errors >= 2);
    let st = s.stats();
    assert_eq!(st.dropped, (10_000 - accepted) as u64);
    assert_eq!((st.sent, st.connects, st.connected), (0, 0, false));
    // Dropping interrupts the backoff sleep promptly.
    let start = Instant::now();
    drop(s);
    assert!(start.elapsed() < Duration::from_millis(900));
}

#[test]
fn tcp_stalled_collector_never_blocks_send() {
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    // Accept every connection and never read from it.
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (l2, held2) = (l.try_clone().unwrap(), held.clone());
    std::thread::spawn(move || {
        while let Ok((c, _)) = l2.accept() {
            held2.lock().unwrap().push(c);
        }
    });
    let s = Sender::new(dest(Host::Ip(LOCAL), port, Transport::Tcp), cfg(256)).unwrap();
    wait_for("connected", || s.stats().connected);
    let big = hep(&vec![b'z'; 32 * 1024]);
    let start = Instant::now();
    let accepted = (0..10_000).filter(|_| s.send(big.clone())).count();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(accepted < 5_000, "{accepted}");
    // Kernel buffers fill up, the write times out, the connection is dropped and renewed.
    wait_for("write timeout", || {
        let st = s.stats();
        st.errors >= 1 && st.connects >= 2
    });
    let st = s.stats();
    assert!(st.dropped >= (10_000 - accepted) as u64);
    // Sending is still immediate while the thread is stuck in a write.
    let start = Instant::now();
    for _ in 0..1000 {
        s.send(big.clone());
    }
    assert!(start.elapsed() < Duration::from_millis(200));
    // Drop is bounded by the write timeout (flush) plus one stalled write.
    let start = Instant::now();
    drop(s);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn tcp_reconnects_after_collector_restart() {
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let s = Sender::new(dest(Host::Ip(LOCAL), port, Transport::Tcp), cfg(64)).unwrap();
    let mut c = accept(&l);
    let first = hep(b"first");
    assert!(s.send(first.clone()));
    assert_eq!(read_packet(&mut c), &first[..]);
    // Collector goes away entirely.
    drop(c);
    drop(l);
    for i in 0..5 {
        s.send(hep(format!("outage {i}").as_bytes()));
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for("outage noticed", || {
        !s.stats().connected && s.stats().errors >= 2
    });
    // Collector comes back on the same port.
    let l = TcpListener::bind((LOCAL, port)).unwrap();
    let mut c = accept(&l);
    let back = hep(b"back");
    assert!(s.send(back.clone()));
    // Packets queued during the outage may precede it; each arrives whole.
    loop {
        let got = read_packet(&mut c);
        let d = codec::decode(&got).unwrap();
        if d.payload == b"back" {
            assert_eq!(got, &back[..]);
            break;
        }
        assert!(d.payload.starts_with(b"outage "), "{:?}", d.payload);
    }
    let st = s.stats();
    assert_eq!((st.connects, st.connected), (2, true));
}

#[test]
fn tcp_idle_connection_closed_by_collector_is_probed() {
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let s = Sender::new(dest(Host::Ip(LOCAL), port, Transport::Tcp), cfg(64)).unwrap();
    let mut c = accept(&l);
    let a = hep(b"a");
    assert!(s.send(a.clone()));
    assert_eq!(read_packet(&mut c), &a[..]);
    drop(c);
    std::thread::sleep(tcp::PROBE_IDLE + Duration::from_millis(200));
    let b = hep(b"b");
    assert!(s.send(b.clone()));
    let mut c2 = accept(&l);
    assert_eq!(read_packet(&mut c2), &b[..]);
    wait_for("2 sent", || s.stats().sent == 2);
    let st = s.stats();
    assert_eq!((st.dropped, st.errors, st.connects), (0, 1, 2));
}

#[test]
fn tls_is_refused_for_now() {
    let r = Sender::new(dest(Host::Ip(LOCAL), 9061, Transport::Tls), cfg(1));
    assert!(matches!(r, Err(SenderError::TlsUnsupported)));
}

#[test]
fn config_is_sanitized() {
    let c = SenderConfig {
        queue_len: 0,
        tcp_connect_timeout: Duration::ZERO,
        tcp_write_timeout: Duration::ZERO,
        backoff_min: Duration::from_secs(2),
        backoff_max: Duration::from_secs(1),
        recover_after: Duration::from_secs(1),
        udp_gso: true,
    }
    .sanitized();
    assert_eq!(c.queue_len, 1);
    assert_eq!(c.tcp_connect_timeout, MIN_TIMEOUT);
    assert_eq!(c.tcp_write_timeout, MIN_TIMEOUT);
    assert_eq!(c.backoff_max, Duration::from_secs(2));
}
