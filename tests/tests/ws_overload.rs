//! Issue 13 part 5, overload end to end on the bundled default config (one I/O worker, its
//! `ws_max_worker_queue` lowered to 1 MiB, the per-connection bound and send timeout raised so
//! that only the worker's budget acts): a callee that reads nothing while MESSAGEs pile up for
//! him makes the worker refuse new handshakes with 503 and `Retry-After` from 3/4 of the
//! budget, then shed him with Close 1013 beyond it; the caller and new clients are served
//! again at once, and each state change is logged once.
mod common;
#[path = "common/raw.rs"]
mod raw;
use common::ws::{connect_sip, next_text, send_text, status, Ws};
use common::*;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// The default config with the queue bounds of this test, and Alice's connection allowed
/// more held transactions than `max_transactions_per_source`'s 1000 (Bob never answers).
fn config() -> String {
    let (cfg, _mi) = default_config_without_auth();
    let send_timeout = "modparam(\"proto_ws\", \"ws_send_timeout\", 100)";
    assert!(cfg.contains(send_timeout), "default config changed");
    cfg.replacen(
        send_timeout,
        "modparam(\"proto_ws\", \"ws_send_timeout\", 600000)\n\
         modparam(\"proto_ws\", \"ws_max_write_queue\", 67108864)\n\
         modparam(\"proto_ws\", \"ws_max_worker_queue\", 1048576)\n\
         modparam(\"proto_ws\", \"ws_workers\", 1)\n\
         loadmodule \"tm.so\"\n\
         modparam(\"tm\", \"max_transactions_per_source\", 100000)",
        1,
    )
}

/// 50 MESSAGEs of 1 KB from Alice to Bob, then an OPTIONS whose answer says the script has
/// handed them all to Bob's connection (once Bob is gone, the MESSAGEs' 480s come before it).
async fn batch(alice: &mut Ws, n: &mut usize) {
    let body = "x".repeat(1000);
    for _ in 0..50 {
        *n += 1;
        send_text(alice, raw::message_to_bob(&format!("o-{n}"), &body)).await;
    }
    let call = format!("o-opt-{n}");
    send_text(alice, options_request(&call, &format!("z9hG4bK{call}"), 1)).await;
    loop {
        let r = next_text(alice).await;
        if header(&r, "Call-ID") == Some(call.as_str()) {
            assert_eq!(status(&r), 200, "{r}");
            return;
        }
        assert_eq!(
            status(&r),
            480,
            "only a MESSAGE for Bob once he is gone: {r}"
        );
    }
}

/// The head of the answer to a fresh opening handshake.
async fn handshake_answer(srv: &Server) -> String {
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    raw::handshake(&mut s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_over_its_budget_refuses_503_then_sheds_the_largest_queue_1013() {
    let srv = Server::start(&config());
    let mut bob = raw::raw_bob(srv.addr, Ipv4Addr::new(127, 0, 7, 7), 4096).await;
    let bob_addr = bob.local_addr().unwrap();
    let mut alice = connect_sip(&srv.ws_url()).await;

    // Fill Bob's queue (past the kernel's socket buffers) until new handshakes get 503.
    let mut n = 0;
    let refused = loop {
        batch(&mut alice, &mut n).await;
        let head = handshake_answer(&srv).await;
        if !head.starts_with("HTTP/1.1 101 ") {
            break head;
        }
        assert!(
            n < 20_000,
            "never refused after {n} MESSAGEs:\n{}",
            srv.log()
        );
    };
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    assert!(refused.contains("\r\nRetry-After: 10\r\n"), "{refused}");
    // Alice is still served while new connections are refused.
    // On: Bob is shed with Close 1013 once the budget is passed.
    let shed = format!("shedding the largest queue with Close 1013 peer={bob_addr}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !srv.log().contains(&shed) {
        batch(&mut alice, &mut n).await;
        assert!(Instant::now() < deadline, "bob never shed:\n{}", srv.log());
    }
    // New clients are admitted again, and Alice keeps her connection.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if handshake_answer(&srv).await.starts_with("HTTP/1.1 101 ") {
            break;
        }
        assert!(Instant::now() < deadline, "still refusing:\n{}", srv.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut carol = connect_sip(&srv.ws_url()).await;
    send_text(&mut carol, options_request("after-1", "z9hG4bKafter1", 1)).await;
    assert_eq!(status(&next_text(&mut carol).await), 200);
    send_text(&mut alice, options_request("after-2", "z9hG4bKafter2", 1)).await;
    assert_eq!(status(&next_text(&mut alice).await), 200);

    // Bob reads what reached his socket: it ends with Close 1013.
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), bob.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(k)) => buf.extend_from_slice(&chunk[..k]),
            Err(_) => break, // the server waits for his Close reply: all he will get is in
        }
    }
    let close = [0x88u8, 0x0c, 0x03, 0xf5];
    let at = buf
        .windows(4)
        .rposition(|w| w == close)
        .unwrap_or_else(|| panic!("no Close 1013 at the end of {} bytes", buf.len()));
    assert_eq!(&buf[at + 4..], b"overloaded", "the Close is the last frame");
    // Counted: the statistics say so (MI get_statistics, OpenSIPS's shape).
    let st = common::sipws::mi(&srv.cfg_path, &["get_statistics", "ws:"])
        .await
        .expect("get_statistics");
    assert_eq!(st["ws:overload_shed"], 1, "{st}");
    assert_eq!(st["ws:close_sent_1013"], 1, "{st}");
    assert!(st["ws:overload_refused"].as_u64() >= Some(1), "{st}");
    let log = srv.log();
    assert_eq!(
        log.matches("websocket worker overloaded").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("accepts connections again").count(), 1, "{log}");
}
