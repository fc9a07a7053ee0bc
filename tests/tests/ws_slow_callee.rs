//! Issue 10 item 7, the relayed variant, on the bundled default config (authentication
//! left out): a registered callee
//! that reads very slowly (8 KiB receive buffer, 4 KiB every 10 ms, so the send timeout never
//! fires) while a caller floods it with MESSAGEs. Its write queue stops at
//! `ws_max_write_queue`: it alone is closed (one warning with its address), the server's peak
//! RSS stays bounded and the memory goes back after the close; the caller is still answered and
//! another client's OPTIONS still get 200. (Data frames were already bounded before issue 10:
//! this test keeps them so, next to the Ping floods of `ws_memory.rs`, which were not.)
mod common;
#[path = "common/raw.rs"]
mod raw;
use common::ws::connect_sip;
use common::*;
use futures_util::{SinkExt, StreamExt};
use raw::*;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

const MB: u64 = 1024;

fn message(n: usize, body: &str) -> String {
    format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WS alice.invalid;branch=z9hG4bKflood{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=ta\r\nTo: <sip:bob@example.com>\r\n\
         Call-ID: flood-{n}@slow\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_callee_flooded_with_messages_is_closed_alone() {
    // Without authentication: the subject is the callee's write queue, and 40,000 MESSAGEs
    // that each had to answer a challenge first would measure the challenges instead.
    let (cfg, _mi) = default_config_without_auth();
    let srv = Server::start(&cfg);
    let pid = srv.child.id();
    let mut witness = connect_sip(&srv.ws_url()).await;
    options_ok(&mut witness, 1).await;

    // Bob registers over a raw connection with a small receive buffer.
    let mut bob = raw_ws(srv.addr, Ipv4Addr::new(127, 0, 2, 2), Some(4096)).await;
    let bob_addr = bob.local_addr().unwrap();
    let register = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS bob.invalid;branch=z9hG4bKrbob\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=tbob\r\nTo: <sip:bob@example.com>\r\n\
         Call-ID: reg-bob@slow\r\nCSeq: 1 REGISTER\r\nContact: <sip:bobx@bob.invalid;transport=ws>;expires=600\r\n\
         Content-Length: 0\r\n\r\n";
    bob.write_all(&frame(0x81, register.as_bytes()))
        .await
        .unwrap();
    let (op, reply) = read_frame(&mut bob).await;
    assert_eq!(op, 0x81);
    assert!(
        reply.starts_with(b"SIP/2.0 200 "),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let rss0 = proc_kib(pid, "VmRSS");
    let hwm0 = proc_kib(pid, "VmHWM");

    // Bob reads 4 KiB every 10 ms until told to stop or closed.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(10)).await;
                match bob.try_read(&mut buf) {
                    Ok(0) => return,
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return,
                    _ => {}
                }
            }
        })
    };

    // Alice floods Bob with 1 KB MESSAGEs and reads every answer.
    let alice = connect_sip(&srv.ws_url()).await;
    let (mut tx, mut rx) = alice.split();
    let answers = Arc::new(AtomicUsize::new(0));
    let counter = {
        let answers = answers.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = rx.next().await {
                if matches!(m, Message::Text(_) | Message::Binary(_)) {
                    answers.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let body = "x".repeat(1000);
    let mut sent = 0;
    let flood_deadline = Instant::now() + Duration::from_secs(60);
    let lines = loop {
        for _ in 0..200 {
            tx.feed(Message::text(message(sent, &body))).await.unwrap();
            sent += 1;
        }
        tx.flush().await.unwrap();
        let lines = overflows(&srv, 1, Duration::ZERO).await;
        if !lines.is_empty() || sent >= 40_000 || Instant::now() > flood_deadline {
            break lines;
        }
    };
    options_ok(&mut witness, 2).await;
    let grown = proc_kib(pid, "VmHWM").saturating_sub(hwm0);
    println!("{sent} MESSAGEs sent; peak RSS grew {grown} KiB");
    assert!(grown < 16 * MB, "peak RSS grew {grown} KiB");
    assert_eq!(
        lines.len(),
        1,
        "the slow callee was never closed at the queue bound"
    );
    assert!(lines[0].contains(&bob_addr.to_string()), "{}", lines[0]);

    // Bob is gone: the next MESSAGE is answered at once (404, his contact went with his
    // connection), and Alice's own connection is intact.
    let before = answers.load(Ordering::Relaxed);
    tx.send(Message::text(message(sent, "after")))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while answers.load(Ordering::Relaxed) <= before {
        assert!(
            Instant::now() < deadline,
            "Alice got no answer after Bob was closed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    options_ok(&mut witness, 3).await;

    // The memory goes back once Bob's queue is freed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let kept = loop {
        let kept = proc_kib(pid, "VmRSS").saturating_sub(rss0);
        if kept < 4 * MB || Instant::now() > deadline {
            break kept;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("{kept} KiB kept after the close");
    assert!(
        kept < 4 * MB,
        "{kept} KiB kept after the slow callee was closed"
    );
    drop(tx);
    counter.abort();
}
