//! Admission: `max_connections` and `max_connections_per_ip` answer 503 with `Retry-After`,
//! log once per state change, bound the refusals in progress; CRLF keep-alives are not
//! activity for the idle lifetime.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::*;

/// Send a `sip` handshake request and read the answer's head.
fn handshake_answer(s: &mut TcpStream) -> String {
    s.write_all(request("Sec-WebSocket-Protocol: sip\r\n").as_bytes())
        .unwrap();
    read_head(s)
}

/// Like [`handshake_answer`], for a connection that may be closed or reset at once: whatever
/// head arrives ("" for none).
fn answer_or_nothing(s: &mut TcpStream) -> String {
    use std::io::Read;
    let _ = s.write_all(request("Sec-WebSocket-Protocol: sip\r\n").as_bytes());
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn count(srv: &Server, needle: &str) -> usize {
    srv.logs().iter().filter(|l| l.contains(needle)).count()
}

/// Open a connection from `src` (any 127.0.0.0/8 address) to `addr`.
fn tcp_from(src: &str, addr: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: SocketAddr = format!("{src}:0").parse().unwrap();
    sock.bind(&src.into()).unwrap();
    sock.connect(&addr.into()).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

#[test]
fn max_connections_answers_503_with_retry_after_and_recovers() {
    let srv = Server::start(
        WsConfig {
            max_connections: 3,
            ..cfg()
        },
        Echo::No,
    );
    let mut conns: Vec<_> = (0..3).map(|_| ws(srv.addr)).collect();
    for _ in 0..3 {
        let mut extra = tcp(srv.addr);
        let head = handshake_answer(&mut extra);
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains("\r\nRetry-After: 10\r\n"), "{head}");
        assert!(at_eof(&mut extra), "closed after the answer");
    }
    assert_eq!(
        count(&srv, "connection limit reached"),
        1,
        "{:?}",
        srv.logs()
    );
    // The admitted ones lost nothing.
    for c in &mut conns {
        c.write_all(&frame(0x81, b"still here")).unwrap();
        assert_eq!(srv.next_msg().1, b"still here");
    }
    let mut first = conns.remove(0);
    first.write_all(&frame(0x88, b"")).unwrap();
    assert!(at_eof(&mut first));
    srv.next_closed(5);
    let mut again = ws(srv.addr);
    again.write_all(&frame(0x81, b"ok")).unwrap();
    assert_eq!(srv.next_msg().1, b"ok");
    let logs = srv.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("admitted again") && l.contains("refused=3")),
        "{logs:?}"
    );
    assert_eq!(srv.rt.connections().len(), 3);
}

#[test]
fn per_ip_limit_refuses_that_address_only() {
    let srv = Server::start(
        WsConfig {
            max_connections_per_ip: 2,
            ..cfg()
        },
        Echo::No,
    );
    let mut mine: Vec<_> = (0..2).map(|_| ws(srv.addr)).collect();
    let mut extra = tcp_from("127.0.0.1", srv.addr);
    let head = handshake_answer(&mut extra);
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert!(head.contains("Retry-After: "), "{head}");
    assert!(at_eof(&mut extra));
    // Another address is unaffected.
    let mut other = tcp_from("127.0.0.2", srv.addr);
    let head = handshake_answer(&mut other);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    other.write_all(&frame(0x81, b"from .2")).unwrap();
    assert_eq!(srv.next_msg().1, b"from .2");
    for c in &mut mine {
        c.write_all(&frame(0x81, b"mine")).unwrap();
        assert_eq!(srv.next_msg().1, b"mine");
    }
    let logs = srv.logs();
    assert_eq!(count(&srv, "connection limit reached"), 1, "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("ws_max_connections_per_ip") && l.contains("ip=127.0.0.1")),
        "{logs:?}"
    );
}

#[test]
fn refusals_in_progress_are_bounded() {
    let srv = Server::start(
        WsConfig {
            max_connections: 1,
            refuse_pool: 3,
            refuse_deadline: Duration::from_secs(60),
            ..cfg()
        },
        Echo::No,
    );
    let _admitted = ws(srv.addr);
    // Three refused clients read their answer and stay connected: the pool is full.
    let mut pooled: Vec<_> = (0..3)
        .map(|_| {
            let mut s = tcp(srv.addr);
            let head = handshake_answer(&mut s);
            assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
            s
        })
        .collect();
    // The next one is closed without an answer.
    let mut s = tcp(srv.addr);
    assert_eq!(answer_or_nothing(&mut s), "", "closed without an answer");
    // A pooled one leaving frees its place.
    drop(pooled.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = tcp(srv.addr);
        if answer_or_nothing(&mut s).starts_with("HTTP/1.1 503 ") {
            break;
        }
        assert!(Instant::now() < deadline, "the pool never freed a place");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn crlf_keepalives_do_not_keep_an_idle_connection() {
    let srv = Server::start(
        WsConfig {
            lifetime: Duration::from_millis(500),
            ..cfg()
        },
        Echo::No,
    );
    let mut s = ws(srv.addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        s.write_all(&frame(0x81, b"\r\n\r\n")).unwrap();
        match read_frame(&mut s) {
            Some((0x81, p)) if p == b"\r\n" => {}
            Some((0x88, p)) => {
                assert_eq!(u16::from_be_bytes([p[0], p[1]]), 1001);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "CRLF keep-alives kept the connection open"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_shared_listener_spreads_connections_over_the_workers() {
    // One socket polled by both workers (no reuse_port): whichever accepts, connections go
    // round-robin, so both workers get exactly half.
    let srv = Server::start(
        WsConfig {
            workers: 2,
            ..cfg()
        },
        Echo::No,
    );
    let _conns: Vec<_> = (0..10).map(|_| ws(srv.addr)).collect();
    let list = srv.rt.connections();
    assert_eq!(list.len(), 10);
    let on_first = list
        .iter()
        .filter(|c| crate::driver::runtime::worker_of(c.id) == 0)
        .count();
    assert_eq!(on_first, 5, "{list:?}");
}
