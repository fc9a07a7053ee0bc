//! HEP collectors that are down, refuse or stall, end to end: the SIP service is not affected,
//! losses are counted (`hep_stats`), each destination's state changes are logged once (issue
//! 10, item 14), and a stalled TCP collector is retried less and less often.
mod common;
#[path = "common/hep.rs"]
mod hep;

use common::*;
use futures_util::SinkExt;
use hep::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// Start a server tracing to `hep_id` (destination `hep_dest`) with the MI on a free port.
fn start(hep_id: &str, homer5: bool, filter: bool, extra: &str) -> Server {
    let hep = trace_params(hep_id, homer5, 2001, filter) + extra;
    let mi_port = free_port();
    let srv = Server::start(&config(mi_port, &hep));
    wait_port(mi_port);
    srv
}

/// `total` OPTIONS over `clients` connections from 127.0.0.1, each answered within 2 s.
async fn flood(
    srv: SocketAddr,
    clients: usize,
    total: usize,
    pad: usize,
    tag: &'static str,
) -> usize {
    let mut tasks = Vec::new();
    for c in 0..clients {
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = connect_from(srv, "127.0.0.1").await;
            let n = total / clients;
            for i in 0..n {
                options(
                    &mut ws,
                    &format!("{tag}-{c}-{i}@hep"),
                    i as u32 + 1,
                    pad,
                    Duration::from_secs(2),
                )
                .await;
            }
            n
        }));
    }
    let mut answered = 0;
    for t in tasks {
        answered += t.await.expect("client task");
    }
    answered
}

/// The health lines (issue 10, item 14) logged for `hep_dest` so far: ("failing" |
/// "recovered", line) in order. A marker is logged first (a frame that is not SIP; `n` = how
/// many this test has sent, this one included): once it shows, every earlier record has been
/// written (one log queue, in order), so the count is not a sleep-then-look.
async fn health_lines(srv: &Server, n: usize) -> (Vec<(&'static str, String)>, String) {
    let (mut ws, _) = connect_from(srv.addr, "127.0.0.2").await;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        "marker: not SIP",
    ))
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + T;
    let log = loop {
        let log = srv.log();
        if log.matches("message is not SIP").count() >= n {
            break log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "marker {n} not logged:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let lines = log
        .lines()
        .filter(|l| l.contains("HEP destination [hep_dest]"))
        .filter_map(|l| {
            if l.contains(": failing (") {
                Some(("failing", l.to_string()))
            } else if l.contains(": recovered after ") {
                Some(("recovered", l.to_string()))
            } else {
                None
            }
        })
        .collect();
    (lines, log)
}

/// Health lines alternate failing / recovered, starting with failing: one per state change.
fn assert_alternate(lines: &[(&str, String)], log: &str) {
    for (i, (kind, _)) in lines.iter().enumerate() {
        let want = if i % 2 == 0 { "failing" } else { "recovered" };
        assert_eq!(
            *kind, want,
            "not one line per state change: {lines:#?}\n{log}"
        );
    }
}

fn assert_no_panic(srv: &mut Server) {
    assert!(srv.alive(), "sipcore died:\n{}", srv.log());
    let log = srv.log();
    assert!(!log.contains("panicked"), "panic in the log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_collector_refused_drops_and_answers() {
    let refused = free_port();
    let q = "modparam(\"proto_hep\", \"hep_queue_len\", 16)\n";
    let mut srv = start(
        &format!("[hep_dest]127.0.0.1:{refused};transport=tcp;version=3"),
        true,
        false,
        q,
    );
    assert_eq!(flood(srv.addr, 4, 300, 0, "down").await, 300);
    let d = hep_dest_stats(&srv.cfg_path, "hep_dest", |d| {
        d["dropped"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(d["connected"], json!(false), "{d}");
    assert_eq!(d["sent"], json!(0), "{d}");

    // Issue 10, item 14: logged once when it starts failing, not per attempt, not never.
    hep_dest_stats(&srv.cfg_path, "hep_dest", |d| {
        d["errors"].as_u64().unwrap_or(0) >= 4
    })
    .await;
    let (lines, log) = health_lines(&srv, 1).await;
    assert_eq!(lines.len(), 1, "{lines:#?}\n{log}");
    assert!(
        lines[0]
            .1
            .contains(&format!("failing (connect to 127.0.0.1:{refused}: ")),
        "{}",
        lines[0].1
    );

    // The collector comes up: one line when packets flow again, with the outage's counts.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", refused))
        .await
        .unwrap();
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut c, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while matches!(c.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    let (mut ws, _) = connect_from(srv.addr, "127.0.0.1").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    while !srv.log().contains(": recovered after ") {
        assert!(
            std::time::Instant::now() < deadline,
            "never recovered:\n{}",
            srv.log()
        );
        i += 1;
        options(&mut ws, &format!("back-{i}@hep"), i, 0, T).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (lines, log) = health_lines(&srv, 2).await;
    assert_eq!(lines.len(), 2, "{lines:#?}\n{log}");
    assert_alternate(&lines, &log);
    assert!(lines[1].1.contains(" packets dropped, "), "{}", lines[1].1);
    reader.abort();
    assert_no_panic(&mut srv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_collector_closed_port_answers() {
    let closed = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let q = "modparam(\"proto_hep\", \"hep_queue_len\", 16)\n";
    let mut srv = start(
        &format!("[hep_dest]127.0.0.1:{closed};transport=udp;version=3"),
        true,
        false,
        q,
    );
    assert_eq!(flood(srv.addr, 4, 300, 0, "udpdown").await, 300);
    let num = |d: &Value, k: &str| {
        d[k].as_u64()
            .unwrap_or_else(|| panic!("{k} not a number: {d}"))
    };
    // Every capture (300 requests + 300 replies, plus events) is counted as sent, dropped or
    // failed: none is silently lost.
    let d = hep_dest_stats(&srv.cfg_path, "hep_dest", |d| {
        ["sent", "dropped", "errors"]
            .iter()
            .map(|k| d[*k].as_u64().unwrap_or(0))
            .sum::<u64>()
            >= 600
    })
    .await;
    for k in ["sent", "dropped", "errors", "connects"] {
        num(&d, k);
    }
    // Hundreds of refused datagrams, one line (issue 10, item 14).
    let (lines, log) = health_lines(&srv, 1).await;
    assert_eq!(lines.len(), 1, "{lines:#?}\n{log}");
    // The first symptom names it: refused datagrams, or the small queue filling up first.
    assert!(
        lines[0].1.contains(": failing (send: ") || lines[0].1.contains(": failing (queue full"),
        "{}",
        lines[0].1
    );
    assert_no_panic(&mut srv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tcp_collector_drops_and_answers() {
    // A collector that accepts and never reads, with a small receive buffer.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(16).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let acc = accepted.clone();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            acc.lock().unwrap().push(std::time::Instant::now());
            held.push(s);
        }
    });

    let q = "modparam(\"proto_hep\", \"hep_queue_len\", 16)\n";
    let mut srv = start(
        &format!("[hep_dest]127.0.0.1:{port};transport=tcp;version=3"),
        true,
        true,
        q,
    );
    let addr = srv.addr;
    // An untraced client (filter route drops 127.0.0.2) keeps being answered during the flood.
    let other = tokio::spawn(async move {
        let (mut ws, _) = connect_from(addr, "127.0.0.2").await;
        for i in 0..30 {
            options(
                &mut ws,
                &format!("untraced-{i}@hep"),
                i + 1,
                0,
                Duration::from_secs(2),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ws
    });
    assert_eq!(flood(srv.addr, 4, 600, 8192, "stall").await, 600);
    let mut ws = other.await.expect("untraced client");
    options(
        &mut ws,
        "untraced-after@hep",
        100,
        0,
        Duration::from_secs(2),
    )
    .await;

    hep_dest_stats(&srv.cfg_path, "hep_dest", |d| {
        d["dropped"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert!(
        !accepted.lock().unwrap().is_empty(),
        "the sender never connected"
    );

    // Issue 10, item 14: the stalled collector is retried less and less often. Traffic goes
    // on until it has seen 6 connections; connection k+1 comes at least the k-th backoff
    // (100, 200, 400, 800, 1600 ms) after connection k, where it used to come right after each
    // write timeout (lower bounds: a loaded machine only makes the gaps longer).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while accepted.lock().unwrap().len() < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} connections:\n{}",
            accepted.lock().unwrap().len(),
            srv.log()
        );
        flood(srv.addr, 4, 80, 8000, "stall-more").await;
    }
    let times = accepted.lock().unwrap().clone();
    for (k, w) in times.windows(2).take(5).enumerate() {
        let gap = w[1] - w[0];
        let min = Duration::from_millis(100) * (1 << k);
        assert!(gap >= min, "reconnect {} after {gap:?} (< {min:?})", k + 1);
    }
    // Logged per state change, not per stall.
    let (lines, log) = health_lines(&srv, 1).await;
    assert!(!lines.is_empty(), "the stall was never logged:\n{log}");
    assert_alternate(&lines, &log);
    assert_no_panic(&mut srv);
    holder.abort();
}
