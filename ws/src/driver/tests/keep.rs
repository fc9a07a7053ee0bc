//! The registrar's keep (`Runtime::keep_until`, RFC 5626 §4.4, OpenSIPS registrar's
//! `tcp_persistent_flag`): a kept connection outlives the idle lifetime while only CRLF
//! keep-alives arrive, an unkept one beside it does not, a shorter keep does not shorten it, and
//! `0` gives the lifetime back.

use std::io::Write;
use std::time::{Duration, Instant};

use super::*;

/// Send a double-CRLF keep-alive and read the answer: `None` for the CRLF pong, else the
/// Close code received instead.
fn crlf(s: &mut TcpStream) -> Option<u16> {
    s.write_all(&frame(0x81, b"\r\n\r\n")).unwrap();
    match read_frame(s) {
        Some((0x81, p)) if p == b"\r\n" => None,
        Some((0x88, p)) => Some(u16::from_be_bytes([p[0], p[1]])),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn kept_connection_outlives_the_idle_lifetime_until_released() {
    let srv = Server::start(
        WsConfig {
            lifetime: Duration::from_millis(300),
            ..cfg()
        },
        Echo::Keep(30),
    );
    let mut kept = ws(srv.addr);
    // A data message: the sink keeps its connection from inside `deliver` (the worker's thread).
    kept.write_all(&frame(0x81, b"REGISTER")).unwrap();
    let (info, ..) = srv.next_msg();
    assert_eq!(*srv.sink.results.lock().unwrap(), vec![Ok(())]);
    // A shorter keep from another thread extends nothing and shortens nothing.
    let short = Instant::now();
    assert!(srv.rt.keep_until(info.conn_id, 1));
    // Opened after the keep: its lifetime ends after the kept one's would have.
    let mut control = ws(srv.addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(crlf(&mut kept), None, "the kept connection was closed");
        if let Some(code) = crlf(&mut control) {
            assert_eq!(code, 1001);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the unkept connection stayed open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (gone, _) = srv.next_closed(10);
    assert_ne!(gone.id, info.conn_id);
    assert!(!srv.rt.keep_until(gone.id, 30), "a closed connection");
    assert!(!srv.rt.keep_until(12345 << 9, 30), "an unknown connection");
    // Still open and answering, with only keep-alives, past the short keep too.
    while short.elapsed() < Duration::from_secs(2) {
        assert_eq!(
            crlf(&mut kept),
            None,
            "the shorter keep shortened the first"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Released from another thread: its idle lifetime is long over, it closes now.
    assert!(srv.rt.keep_until(info.conn_id, 0));
    // (The read timeout of the test socket bounds the wait.)
    let (b0, p) = read_frame(&mut kept).expect("the released connection was not closed");
    assert_eq!((b0, u16::from_be_bytes([p[0], p[1]])), (0x88, 1001));
    let (m, reason) = srv.next_closed(10);
    assert_eq!(
        (m.id, reason.as_str()),
        (info.conn_id, "closed by us: idle timeout")
    );
}

/// A keep renewed with every message (a REGISTER refresh each time) adds no timer entry while
/// the idle deadline it gives only moves later. Before, each keep pushed one and left the one
/// before in the worker's heap until its time: at 60,000 REGISTERs a second the heap grew by
/// 1.4 MB a second for a keep-alive interval.
#[test]
fn renewed_keeps_do_not_pile_up_timer_entries() {
    let srv = Server::start(cfg(), Echo::Keep(3600));
    let mut s = ws(srv.addr);
    for i in 0..200 {
        s.write_all(&frame(0x81, format!("REGISTER {i}").as_bytes()))
            .unwrap();
        srv.next_msg();
    }
    let heap = srv.sink.heap.lock().unwrap().clone();
    assert_eq!(heap.len(), 200, "the heap was not read after every keep");
    assert!(
        heap.iter().all(|&n| n <= 4),
        "timer entries after each keep: {heap:?}"
    );
    assert!(srv.sink.results.lock().unwrap().iter().all(|r| r.is_ok()));
}
