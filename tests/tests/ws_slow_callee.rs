//! Issue 10 item 7, the relayed variant, on the bundled default config (authentication
//! left out): a registered callee
//! that reads very slowly (8 KiB receive buffer, 4 KiB every 10 ms, so the send timeout never
//! fires) while callers flood it with MESSAGEs (several: t_relay() is stateful, and one
//! connection holds at most `max_transactions_per_source` transactions). Its write queue stops at
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
    let (cfg, mi_port) = default_config_without_auth();
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

    // Callers flood Bob with 1 KB MESSAGEs and read every answer. t_relay() is stateful:
    // each relayed MESSAGE is a transaction held until Bob answers or his connection goes, and
    // one connection holds at most `max_transactions_per_source` (1000) of them (beyond, 503).
    // So the flood comes from CALLERS connections of at most PER_CALLER MESSAGEs each:
    // enough together to reach Bob's queue bound, none refused, and the 480s each caller
    // gets at once when Bob is closed (one per MESSAGE it has in flight) stay well below its
    // own write-queue bound.
    const CALLERS: usize = 40;
    const PER_CALLER: usize = 500;
    let answers = Arc::new(AtomicUsize::new(0));
    let mut txs = Vec::new();
    let mut counters = Vec::new();
    for _ in 0..CALLERS {
        let (tx, mut rx) = connect_sip(&srv.ws_url()).await.split();
        let answers = answers.clone();
        counters.push(tokio::spawn(async move {
            while let Some(Ok(m)) = rx.next().await {
                if matches!(m, Message::Text(_) | Message::Binary(_)) {
                    answers.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        txs.push(tx);
    }
    let body = "x".repeat(1000);
    let mut sent = 0;
    let flood_deadline = Instant::now() + Duration::from_secs(60);
    let lines = loop {
        for _ in 0..200 {
            let tx = &mut txs[sent % CALLERS];
            tx.feed(Message::text(message(sent, &body))).await.unwrap();
            sent += 1;
        }
        for tx in &mut txs {
            tx.flush().await.unwrap();
        }
        let lines = overflows(&srv, 1, Duration::ZERO).await;
        if !lines.is_empty() || sent >= CALLERS * PER_CALLER || Instant::now() > flood_deadline {
            break lines;
        }
    };
    options_ok(&mut witness, 2).await;
    let grown = proc_kib(pid, "VmHWM").saturating_sub(hwm0);
    println!("{sent} MESSAGEs sent; peak RSS grew {grown} KiB");
    // The write queues, plus at most 4 KiB for each transaction held (every MESSAGE sent
    // made one).
    let bound = 16 * MB + 4 * sent as u64;
    assert!(
        grown < bound,
        "peak RSS grew {grown} KiB (bound {bound} KiB)"
    );
    assert_eq!(
        lines.len(),
        1,
        "the slow callee was never closed at the queue bound"
    );
    assert!(lines[0].contains(&bob_addr.to_string()), "{}", lines[0]);

    // Bob is gone: the next MESSAGE is answered at once (404, his contact went with his
    // connection), and the callers' own connections are intact.
    // Every MESSAGE is answered: the ones held for Bob get 480 when his connection goes
    // (their transactions end at once), later ones 404.
    let deadline = Instant::now() + Duration::from_secs(10);
    while answers.load(Ordering::Relaxed) < sent {
        assert!(
            Instant::now() < deadline,
            "{} of {sent} MESSAGEs answered after Bob was closed",
            answers.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    txs[0]
        .send(Message::text(message(sent, "after")))
        .await
        .unwrap();
    while answers.load(Ordering::Relaxed) <= sent {
        assert!(
            Instant::now() < deadline,
            "a caller got no answer after Bob was closed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    options_ok(&mut witness, 3).await;

    // No transaction is left (each ended with its answer).
    let held = || {
        common::metrics::values(&common::metrics::scrape(mi_port))
            .get("sipcore_tm_inuse_transactions")
            .copied()
    };
    assert_eq!(
        held(),
        Some(0.0),
        "transactions left after every MESSAGE was answered"
    );
    let armed = common::metrics::values(&common::metrics::scrape(mi_port))
        .get("sipcore_tm_armed_timers")
        .copied();
    assert_eq!(armed, Some(0.0), "timers left armed by ended transactions");
    // The memory goes back once Bob's queue is freed and the callers are gone: all of the
    // queue's; of the transactions', what glibc's malloc gives back (it keeps about 2 KiB of
    // each freed transaction in its arenas even after the trim the transaction layer asks for
    // after a burst; none is held, as `inuse_transactions` showed). A leaked transaction
    // (4 KiB and more each) would exceed the bound.
    drop(txs);
    for c in counters {
        c.abort();
    }
    let bound = 4 * MB + 2 * sent as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    let kept = loop {
        let kept = proc_kib(pid, "VmRSS").saturating_sub(rss0);
        if kept < bound || Instant::now() > deadline {
            break kept;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("{kept} KiB kept after the close");
    assert!(
        kept < bound,
        "{kept} KiB kept after the slow callee was closed (bound {bound} KiB)"
    );
}
