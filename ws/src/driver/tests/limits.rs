//! Limits and deadlines: send timeout, write-queue overflow, idle lifetime, keep-alive,
//! max_connections, handshake and message deadlines.

use std::io::Write;
use std::time::{Duration, Instant};

use sipcore_abi::SendError;

use super::*;

#[test]
fn slow_reader_is_dropped_after_send_timeout_others_keep_exchanging() {
    let srv = Server::start(
        WsConfig {
            max_write_queue: 64 << 20,
            ..cfg()
        },
        Echo::Send,
    );
    let slow = slow_ws(srv.addr);
    let slow_peer = slow.local_addr().unwrap().to_string();
    let mut others: Vec<_> = (0..100).map(|_| ws(srv.addr)).collect();
    // Find the slow connection's id.
    let slow_id = srv
        .rt
        .connections()
        .iter()
        .find(|c| c.peer.to_string() == slow_peer)
        .map(|c| c.id)
        .unwrap();
    let big = vec![b'x'; 60_000];
    let t0 = Instant::now();
    let flooder = {
        let rt = srv.rt.clone();
        std::thread::spawn(move || loop {
            match rt.send_frame(slow_id, false, &big) {
                Ok(()) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return (e, t0.elapsed()),
            }
            if t0.elapsed() > Duration::from_secs(10) {
                return (SendError::INTERNAL, t0.elapsed());
            }
        })
    };
    // Meanwhile every other connection exchanges messages on the same worker without loss.
    for round in 0..5 {
        for (i, s) in others.iter_mut().enumerate() {
            s.write_all(&frame(0x81, format!("m{round}-{i}").as_bytes()))
                .unwrap();
        }
        for (i, s) in others.iter_mut().enumerate() {
            let (_, p) = read_frame(s).unwrap();
            assert_eq!(p, format!("m{round}-{i}").as_bytes());
        }
    }
    let (err, _) = flooder.join().unwrap();
    assert_eq!(err, SendError::NO_CONNECTION);
    let logs = srv.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("send timeout") && l.contains(&format!("peer={slow_peer}"))),
        "{logs:?}"
    );
    loop {
        let (m, reason) = srv.next_closed(10);
        if m.id == slow_id {
            assert_eq!(reason, "send timeout");
            break;
        }
    }
    assert_eq!(srv.rt.connections().len(), 100);
    drop(slow);
}

#[test]
fn write_queue_overflow_closes_only_that_connection() {
    let srv = Server::start(
        WsConfig {
            max_write_queue: 100_000,
            ..cfg()
        },
        Echo::Flood(4),
    );
    let mut other = ws(srv.addr);
    let mut slow = slow_ws(srv.addr);
    slow.write_all(&frame(0x81, b"go")).unwrap();
    let (info, _, _) = srv.next_msg();
    // Same-thread sends: 40 000 + 40 000 fit, the third overflows synchronously.
    let results = srv.sink.results.lock().unwrap().clone();
    assert_eq!(
        results,
        vec![
            Ok(()),
            Ok(()),
            Err(SendError::QUEUE_FULL),
            Err(SendError::NO_CONNECTION)
        ]
    );
    let (m, reason) = srv.next_closed(5);
    assert_eq!(
        (m.id, reason.as_str()),
        (info.conn_id, "write queue overflow")
    );
    assert!(srv
        .logs()
        .iter()
        .any(|l| l.contains("write queue overflow")));
    // The other connection is untouched (its own flood is within... it never sent, so just talk).
    srv.sink.results.lock().unwrap().clear();
    assert_eq!(
        srv.rt.send(&target(info.conn_id), b"x"),
        Err(SendError::NO_CONNECTION)
    );
    other.write_all(&frame(0x89, b"p")).unwrap();
    assert_eq!(read_frame(&mut other), Some((0x8A, b"p".to_vec())));
}

#[test]
fn idle_lifetime_closes_with_1001() {
    let srv = Server::start(
        WsConfig {
            lifetime: Duration::from_millis(300),
            ..cfg()
        },
        Echo::No,
    );
    let t0 = Instant::now();
    let mut s = ws(srv.addr);
    // Activity postpones it.
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(&frame(0x81, b"hi")).unwrap();
    srv.next_msg();
    let (b0, p) = read_frame(&mut s).unwrap();
    let waited = t0.elapsed();
    assert_eq!((b0, u16::from_be_bytes([p[0], p[1]])), (0x88, 1001));
    assert!(
        waited >= Duration::from_millis(450),
        "closed after {waited:?}"
    );
    s.write_all(&frame(0x88, &1001u16.to_be_bytes())).unwrap();
    assert!(at_eof(&mut s));
}

/// The handshake deadline's timer entry carries the idle deadline of the open connection
/// (one heap entry per idle connection, issue 16): when it fires on an open connection it
/// neither closes it as a handshake timeout nor loses the idle lifetime.
#[test]
fn handshake_deadline_carries_the_idle_lifetime() {
    let srv = Server::start(
        WsConfig {
            inbound_handshake_timeout: Duration::from_millis(100),
            lifetime: Duration::from_millis(400),
            ..cfg()
        },
        Echo::No,
    );
    let t0 = Instant::now();
    let mut s = ws(srv.addr);
    let (b0, p) = read_frame(&mut s).unwrap();
    let waited = t0.elapsed();
    assert_eq!((b0, u16::from_be_bytes([p[0], p[1]])), (0x88, 1001));
    assert!(
        waited >= Duration::from_millis(400),
        "closed after {waited:?}"
    );
    s.write_all(&frame(0x88, &1001u16.to_be_bytes())).unwrap();
    assert!(at_eof(&mut s));
}

#[test]
fn keepalive_ping_then_pong_deadline() {
    let srv = Server::start(
        WsConfig {
            keepalive_interval: Some(Duration::from_millis(150)),
            keepalive_timeout: Duration::from_millis(150),
            ..cfg()
        },
        Echo::No,
    );
    let mut s = ws(srv.addr);
    assert_eq!(read_frame(&mut s), Some((0x89, vec![])));
    s.write_all(&frame(0x8A, b"")).unwrap();
    // Answered: another ping comes; unanswered: dropped.
    let t0 = Instant::now();
    assert_eq!(read_frame(&mut s), Some((0x89, vec![])));
    assert!(at_eof(&mut s));
    assert!(t0.elapsed() >= Duration::from_millis(250));
    let (_, reason) = srv.next_closed(5);
    assert_eq!(reason, "keepalive timeout");
}

#[test]
fn handshake_deadline_and_read_count() {
    let srv = Server::start(
        WsConfig {
            inbound_handshake_timeout: Duration::from_millis(200),
            max_msg_chunks: 2,
            ..cfg()
        },
        Echo::No,
    );
    let t0 = Instant::now();
    let mut s = tcp(srv.addr);
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    assert!(at_eof(&mut s));
    assert!(t0.elapsed() >= Duration::from_millis(190));
    assert!(srv
        .logs()
        .iter()
        .any(|l| l.contains("websocket handshake timeout")));
    // Three reads of an incomplete head with max_msg_chunks = 2 -> 400.
    let mut s = tcp(srv.addr);
    let req = request("Sec-WebSocket-Protocol: sip\r\n");
    s.write_all(&req.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    s.write_all(&req.as_bytes()[10..20]).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let _ = s.write_all(&req.as_bytes()[20..30]);
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
}

#[test]
fn message_deadline_closes_with_1008() {
    let srv = Server::start(
        WsConfig {
            max_msg_time: Duration::from_millis(200),
            ..cfg()
        },
        Echo::No,
    );
    let mut s = ws(srv.addr);
    let t0 = Instant::now();
    s.write_all(&frame(0x01, b"first fragment only")).unwrap();
    let (b0, p) = read_frame(&mut s).unwrap();
    assert_eq!((b0, u16::from_be_bytes([p[0], p[1]])), (0x88, 1008));
    assert!(t0.elapsed() >= Duration::from_millis(190));
    assert!(at_eof(&mut s));
}

/// SIP over TCP (`sip_stream`): `max_msg_time` bounds each message from when it began to
/// arrive. Messages each sent in two writes are all delivered although together they take
/// more than twice the limit, and they leave no timer entry each behind (the deadline's entry
/// stays armed across messages); a message left incomplete closes the connection.
#[test]
fn sip_stream_message_deadline_is_per_message_and_costs_no_entry_per_message() {
    let srv = Server::start(
        WsConfig {
            sip_stream: true,
            max_msg_time: Duration::from_millis(800),
            ..cfg()
        },
        Echo::No,
    );
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_nodelay(true).unwrap();
    let t0 = Instant::now();
    let mut n = 0;
    // Past two limits' worth, so the entry fires with later messages in progress; each
    // message has the whole limit (a loaded machine may stall the server for a while).
    while t0.elapsed() < Duration::from_millis(1_800) || n < 50 {
        let m = format!("OPTIONS sip:x SIP/2.0\r\nCall-ID: c{n}\r\nContent-Length: 0\r\n\r\n");
        let (a, b) = m.as_bytes().split_at(12);
        s.write_all(a).unwrap();
        std::thread::sleep(Duration::from_millis(3));
        s.write_all(b).unwrap();
        let (_, payload, _) = srv.next_msg();
        assert!(payload.ends_with(format!("c{n}\r\nContent-Length: 0\r\n\r\n").as_bytes()));
        n += 1;
    }
    let heap = srv.sink.heap.lock().unwrap().clone();
    assert_eq!(heap.len(), n);
    assert!(
        heap.iter().all(|&e| e <= 4),
        "timer entries at each of {n} deliveries: {heap:?}"
    );
    // Incomplete: closed once the limit is past (the test socket's read timeout bounds it).
    s.write_all(b"OPTIONS sip:x SIP/2.0\r\nCall-").unwrap();
    let started = Instant::now();
    assert!(
        at_eof(&mut s),
        "an incomplete message kept its connection open"
    );
    assert!(started.elapsed() >= Duration::from_millis(750));
}

#[test]
fn huge_durations_do_not_overflow_deadlines() {
    let srv = Server::start(
        WsConfig {
            lifetime: Duration::MAX,
            keepalive_interval: Some(Duration::MAX),
            keepalive_timeout: Duration::MAX,
            send_timeout: Duration::MAX,
            max_msg_time: Duration::MAX,
            inbound_handshake_timeout: Duration::MAX,
            ..cfg()
        },
        Echo::Send,
    );
    let mut s = ws(srv.addr);
    s.write_all(&frame(0x01, b"a")).unwrap();
    s.write_all(&frame(0x80, b"b")).unwrap();
    assert_eq!(read_frame(&mut s), Some((0x81, b"ab".to_vec())));
}
