//! Issue 14, SIP over TCP framing end to end (RFC 3261 §18.3, RFC 5626 §4.4.1) against the
//! real `proto_tcp.so`: pipelined messages in one write and a message split at every few
//! bytes are each answered; a CRLF CRLF ping gets a CRLF pong; a message without
//! Content-Length, an oversized one and garbage each close only their own connection, with
//! one log line naming the peer, while another client on the same server is answered
//! throughout; a reader that never reads does not stall the others.
mod common;
use common::tcp::*;
use common::*;
use std::time::{Duration, Instant};

const CFG: &str = r#"
log_level = 3
mpath = "{MPATH}"
mi_http_port = {MI}
socket = tcp:127.0.0.1:{PORT}
loadmodule "proto_tcp.so"
loadmodule "sl.so"
modparam("proto_tcp", "tcp_max_msg_size", 4096)
modparam("proto_tcp", "tcp_max_write_queue", 65536)
modparam("proto_tcp", "tcp_send_timeout", 300)
route {
    if (is_method("INFO")) { sl_send_reply(200, $rb); exit; }
    sl_send_reply(200, "OK");
    exit;
}
"#;

/// Prints the server's log if the test fails.
struct Dump(std::path::PathBuf);
impl Drop for Dump {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", std::fs::read_to_string(&self.0).unwrap_or_default());
        }
    }
}

fn start() -> (Server, u16) {
    let mi = free_port();
    let srv = Server::start(&CFG.replace("{MI}", &mi.to_string()));
    wait_tcp(&srv, srv.port);
    (srv, mi)
}

/// An OPTIONS over TCP from `me`, numbered `n`.
fn options(me: std::net::SocketAddr, n: u32) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKtcp{n}\r\n\
         Max-Forwards: 70\r\nTo: <sip:127.0.0.1>\r\nFrom: <sip:a@example.com>;tag=t{n}\r\n\
         Call-ID: tcp-{n}@test\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The server answers `peer` (an OPTIONS gets its 200 with the same CSeq).
fn answered(peer: &mut TcpPeer, n: u32) {
    let me = peer.local();
    peer.send(options(me, n).as_bytes());
    let r = peer.recv_sip();
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert_eq!(
        header(&r, "CSeq"),
        Some(format!("{n} OPTIONS").as_str()),
        "{r}"
    );
}

#[test]
fn pipelined_and_split_messages_and_keepalives() {
    let (srv, _mi) = start();
    let srv_log = srv.log_path.clone();
    let _dump = Dump(srv_log);
    let mut p = TcpPeer::connect(srv.port);
    let me = p.local();
    // Three requests in one write, CRLFs between them: three answers, in order.
    let burst = format!("{}\r\n{}{}", options(me, 1), options(me, 2), options(me, 3));
    p.send(burst.as_bytes());
    for n in 1..=3 {
        let r = p.recv_sip();
        assert_eq!(
            header(&r, "CSeq"),
            Some(format!("{n} OPTIONS").as_str()),
            "{r}"
        );
    }
    // One request with a body, written in 16 pieces (under tcp_max_msg_chunks, 32; every
    // split position is a unit test of sipcore-sip's framing).
    let body = "hello\r\n\r\nworld";
    let msg = format!(
        "MESSAGE sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKsplit\r\n\
         Max-Forwards: 70\r\nTo: <sip:127.0.0.1>\r\nFrom: <sip:a@example.com>;tag=s\r\n\
         Call-ID: split@test\r\nCSeq: 9 MESSAGE\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for piece in msg.as_bytes().chunks(msg.len() / 16 + 1) {
        p.send(piece);

        std::thread::sleep(Duration::from_millis(2));
    }
    let r = p.recv_sip();
    assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    assert_eq!(header(&r, "CSeq"), Some("9 MESSAGE"), "{r}");
    // RFC 5626 §4.4.1: a ping gets exactly a pong, and the connection goes on.
    p.send(b"\r\n\r\n");
    p.recv_exact(b"\r\n");
    answered(&mut p, 10);
    // A ping split over two writes.
    p.send(b"\r\n");

    std::thread::sleep(Duration::from_millis(20));
    p.send(b"\r\n");
    p.recv_exact(b"\r\n");
    answered(&mut p, 11);
    assert!(!srv.log().contains("protocol error"), "{}", srv.log());
}

/// Each bad input closes its own connection with one warning naming the peer; the witness
/// connection, open the whole time, is answered before and after each.
#[test]
fn framing_errors_close_only_that_connection_with_one_log_line() {
    let (srv, mi) = start();
    let mut witness = TcpPeer::connect(srv.port);
    answered(&mut witness, 1);
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "no Content-Length",
            b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\nCall-ID: x\r\n\r\n"
                .to_vec(),
        ),
        (
            "exceeds 4096",
            format!(
                "MESSAGE sip:127.0.0.1 SIP/2.0\r\nCall-ID: big\r\nContent-Length: 100000\r\n\r\n{}",
                "x".repeat(1000)
            )
            .into_bytes(),
        ),
        (
            "header section longer than 4096",
            format!("OPTIONS sip:127.0.0.1 SIP/2.0\r\nX: {}", "y".repeat(5000)).into_bytes(),
        ),
        ("not SIP", vec![0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00]),
    ];
    for (i, (reason, bytes)) in cases.iter().enumerate() {
        let mut bad = TcpPeer::connect(srv.port);
        let peer = bad.local().to_string();
        bad.send(bytes);
        assert!(
            bad.closed_within(Duration::from_secs(10)),
            "{reason}: the connection stayed open"
        );
        let log = srv.wait_log(&format!("peer={peer}"), Duration::from_secs(10));
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(&peer)).collect();
        let errors: Vec<&&str> = lines
            .iter()
            .filter(|l| l.contains("protocol error"))
            .collect();
        assert_eq!(errors.len(), 1, "{reason}: {lines:#?}");
        assert!(errors[0].contains(reason), "{reason}: {lines:#?}");
        answered(&mut witness, 2 + i as u32);
    }
    // A message trickled in more reads than tcp_max_msg_chunks (32) allows: a header that
    // never ends, a few bytes at a time until the server closes (it takes 1,300 writes to
    // reach the 4096-byte limit instead, far more than 33 reads however the server's reads
    // coalesce them).
    let mut slow = TcpPeer::connect(srv.port);
    let peer = slow.local().to_string();
    slow.send(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nX: ");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut closed = false;
    while !closed && Instant::now() < deadline {
        use std::io::Write;
        closed =
            slow.sock.write_all(b"abc").is_err() || slow.closed_within(Duration::from_millis(5));
    }
    assert!(closed, "kept");
    let log = srv.wait_log(&format!("peer={peer}"), Duration::from_secs(10));
    assert!(
        log.lines()
            .any(|l| l.contains(&peer) && l.contains("message incomplete after 32 reads")),
        "{log}"
    );
    answered(&mut witness, 50);
    let st = tcp_stats(mi);
    assert!(st["limit_violations"] >= 3, "{st:?}");
}

/// A client that sends requests and never reads its answers: its write queue fills and it
/// is closed (`tcp_send_timeout`, `tcp_max_write_queue`); a witness is answered meanwhile,
/// each answer within a second.
#[test]
fn a_reader_that_never_reads_is_closed_alone() {
    let (srv, _mi) = start();
    let mut witness = TcpPeer::connect(srv.port);
    answered(&mut witness, 1);
    let mut slow = TcpPeer::connect(srv.port);
    slow.sock
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let peer = slow.local().to_string();
    // Each INFO's 200 carries its 3 KB body back (the reason phrase is $rb): the
    // answers pile up in sipcore's queue for this connection.
    let body = "b".repeat(3000);
    let me = slow.local();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0u32;
    let mut closed = false;
    while Instant::now() < deadline {
        n += 1;
        let m = format!(
            "INFO sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKslow{n}\r\n\
             Max-Forwards: 70\r\nTo: <sip:127.0.0.1>\r\nFrom: <sip:s@example.com>;tag=s\r\n\
             Call-ID: slow@test\r\nCSeq: {n} INFO\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        use std::io::Write;
        if slow.sock.write_all(m.as_bytes()).is_err() {
            closed = true;
            break;
        }
        if n.is_multiple_of(20) {
            let t = Instant::now();
            answered(&mut witness, 1 + n);
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "witness waited {:?}",
                t.elapsed()
            );
            if srv.log().contains(&format!("peer={peer}")) {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed,
        "the slow reader was never closed after {n} requests"
    );
    let log = srv.wait_log(&format!("peer={peer}"), Duration::from_secs(10));
    assert!(
        log.lines()
            .any(|l| l.contains(&peer) && (l.contains("send timeout") || l.contains("overflow"))),
        "{log}"
    );
    answered(&mut witness, 100_000);
}

/// OpenSIPS's core `tcp_connection_lifetime = N` (a global line) reaches proto_tcp: an idle
/// connection is closed after it (here 1 s), and another that keeps sending only CRLF pings
/// is closed too (keep-alives are not activity; the registrar keeps registered flows open).
#[test]
fn the_core_tcp_connection_lifetime_closes_idle_connections() {
    let mi = free_port();
    let cfg = CFG.replace("{MI}", &mi.to_string()).replace(
        "log_level = 3\n",
        "log_level = 3\ntcp_connection_lifetime = 1\n",
    );
    let srv = Server::start(&cfg);
    wait_tcp(&srv, srv.port);
    let mut idle = TcpPeer::connect(srv.port);
    answered(&mut idle, 1);
    let mut pinger = TcpPeer::connect(srv.port);
    answered(&mut pinger, 2);
    let t = Instant::now();
    let mut pinger_closed = false;
    while t.elapsed() < Duration::from_secs(10) && !pinger_closed {
        use std::io::Write;
        if pinger.sock.write_all(b"\r\n\r\n").is_err() {
            pinger_closed = true;
            break;
        }
        pinger_closed = pinger.closed_within(Duration::from_millis(300));
    }
    assert!(pinger_closed, "the pinging connection was kept");
    assert!(
        idle.closed_within(Duration::from_secs(10)),
        "the idle connection was kept"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "closed too early"
    );
}
