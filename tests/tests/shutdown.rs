//! Issue 13 part 5, graceful shutdown end to end: SIGTERM gives the connections up to
//! `shutdown_timeout` to receive what is queued for them and their Close 1001, ships the
//! trace records of those closes to the HEP collector, and exits 0; a client that reads
//! nothing does not hold the exit past `shutdown_timeout`.
mod common;
#[path = "common/hep.rs"]
mod hep;
#[path = "common/raw.rs"]
mod raw;
use common::ws::{connect_sip, next_text, send_text, status};
use common::*;
use futures_util::StreamExt;
use hep::{trace_params, Collector, Hep3, PT_NET};
use raw::{frame, raw_ws};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

fn sigterm(srv: &Server) {
    let st = Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success());
}

/// Wait for the server to exit by itself (within `within`); its exit code.
async fn exit_code(srv: &mut Server, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = srv.child.try_wait().unwrap() {
            return st.code();
        }
        assert!(
            Instant::now() < deadline,
            "still running {within:?} after SIGTERM:\n{}",
            srv.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server frames (first byte, payload) in `buf` (unmasked, RFC 6455 §5.2), and whether
/// the last one is complete.
fn frames(buf: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 <= buf.len() {
        let b0 = buf[i];
        let (len, at) = match buf[i + 1] & 0x7f {
            126 if i + 4 <= buf.len() => {
                (u16::from_be_bytes([buf[i + 2], buf[i + 3]]) as usize, i + 4)
            }
            127 if i + 10 <= buf.len() => (
                u64::from_be_bytes(buf[i + 2..i + 10].try_into().unwrap()) as usize,
                i + 10,
            ),
            n if n < 126 => (n as usize, i + 2),
            _ => break,
        };
        if at + len > buf.len() {
            break;
        }
        out.push((b0, buf[at..at + len].to_vec()));
        i = at + len;
    }
    out
}

/// Bob stops reading (a 4 KiB receive buffer) while 6,000 MESSAGEs of 1 KB are relayed to
/// him: 6 MB, more than the kernel's socket buffers take (`tcp_wmem` allows 4 MB at most), so
/// megabytes wait in his write queue (its bound and the send timeout raised for the test)
/// when SIGTERM comes. He then reads everything: every MESSAGE, then Close 1001, and the
/// server exits 0. (Before, the workers gave closing connections 200 ms, and with
/// `shutdown_timeout = 0` the queue is still lost: this test then fails.) Alice's one
/// connection holds all 6,000 transactions: `max_transactions_per_source` is raised for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_delivers_what_is_queued_then_closes_1001() {
    const N: usize = 6000;
    let (cfg, _mi) = default_config_without_auth();
    let send_timeout = "modparam(\"proto_ws\", \"ws_send_timeout\", 100)";
    assert!(cfg.contains(send_timeout), "default config changed");
    let cfg = cfg.replacen(
        send_timeout,
        "modparam(\"proto_ws\", \"ws_send_timeout\", 600000)\n\
         modparam(\"proto_ws\", \"ws_max_write_queue\", 67108864)\n\
         loadmodule \"tm.so\"\n\
         modparam(\"tm\", \"max_transactions_per_source\", 100000)",
        1,
    );
    let mut srv = Server::start(&format!("shutdown_timeout = 60\n{cfg}"));
    let mut bob = raw::raw_bob(srv.addr, Ipv4Addr::new(127, 0, 4, 4), 4096).await;

    // Alice sends the MESSAGEs, then an OPTIONS: its answer means the script has handed every
    // MESSAGE to Bob's connection (one connection is handled in order), before SIGTERM.
    let mut alice = connect_sip(&srv.ws_url()).await;
    let body = "x".repeat(1000);
    for n in 0..N {
        send_text(&mut alice, raw::message_to_bob(&format!("q-{n}"), &body)).await;
    }
    send_text(&mut alice, options_request("q-end", "z9hG4bKqend", 1)).await;
    let r = next_text(&mut alice).await;
    assert_eq!(
        (status(&r), header(&r, "Call-ID")),
        (200, Some("q-end")),
        "{r}"
    );

    sigterm(&srv);
    srv.wait_log("shutting down", Duration::from_secs(10));
    // Bob reads everything until the server closes the TCP connection.
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        use tokio::io::AsyncReadExt;
        match tokio::time::timeout(Duration::from_secs(10), bob.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("nothing for 10 s and not closed:\n{}", srv.log()),
        }
        assert!(Instant::now() < deadline, "never closed:\n{}", srv.log());
    }
    let got = frames(&buf);
    let messages = got
        .iter()
        .filter(|(b0, p)| b0 & 0x0f == 0x1 && p.starts_with(b"MESSAGE sip:bobx@bob.invalid"))
        .count();
    assert_eq!(
        messages,
        N,
        "MESSAGEs delivered before the close:\n{}",
        srv.log()
    );
    let (b0, close) = got.last().expect("frames");
    assert_eq!(b0 & 0x0f, 0x8, "the last frame is a Close");
    assert_eq!(close[..2], 1001u16.to_be_bytes(), "Close 1001 (going away)");
    assert_eq!(exit_code(&mut srv, Duration::from_secs(60)).await, Some(0));
}

/// The CLOSED events of the connections SIGTERM closes reach the HEP collector before the
/// process exits (the trace queue is flushed after the transports stop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_closes_at_shutdown_reach_the_hep_collector() {
    let col = Collector::udp();
    let hep = trace_params(
        &format!("[hep_dest]{};transport=udp;version=3", col.addr),
        false,
        7,
        false,
    );
    let mi = free_port();
    let mut srv = Server::start(&hep::config(mi, &hep));
    let mut clients = Vec::new();
    let mut peers = Vec::new();
    for i in 0..3 {
        let ws = common::ws::connect_from(srv.addr, &format!("127.0.5.{}", i + 1)).await;
        let tokio_tungstenite::MaybeTlsStream::Plain(t) = ws.get_ref() else {
            unreachable!()
        };
        peers.push(t.local_addr().unwrap());
        clients.push(ws);
    }
    sigterm(&srv);
    // Each client answers the server's Close (tungstenite does as it reads).
    for mut ws in clients {
        tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
    }
    assert_eq!(exit_code(&mut srv, Duration::from_secs(30)).await, Some(0));
    let closed = |p: &[Hep3], peer: std::net::SocketAddr| {
        p.iter()
            .filter(|h| h.proto_type == PT_NET && h.src == peer)
            .filter_map(|h| serde_json::from_slice::<Value>(&h.payload).ok())
            .any(|m| m["Event"] == "CLOSED")
    };
    col.wait_hep3("a CLOSED event per client", Duration::from_secs(10), |p| {
        peers.iter().all(|&a| closed(p, a))
    })
    .await;
}

/// A client that reads nothing (its Close is never answered, its queue never drains) does
/// not hold the exit past `shutdown_timeout` (1 s here; 30 s allowed for a loaded machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_does_not_hold_the_exit() {
    let (cfg, _mi) = default_config_without_auth();
    let mut srv = Server::start(&format!("shutdown_timeout = 1\n{cfg}"));
    let mut deaf = raw_ws(srv.addr, Ipv4Addr::new(127, 0, 6, 6), Some(4096)).await;
    use tokio::io::AsyncWriteExt;
    let opt = options_request("deaf-1", "z9hG4bKdeaf1", 1);
    deaf.write_all(&frame(0x81, opt.as_bytes())).await.unwrap();
    let (_, ok) = raw::read_frame(&mut deaf).await;
    assert!(ok.starts_with(b"SIP/2.0 200 "));
    sigterm(&srv);
    srv.wait_log(
        "shutting down (shutdown_timeout 1 s)",
        Duration::from_secs(10),
    );
    assert_eq!(exit_code(&mut srv, Duration::from_secs(30)).await, Some(0));
    drop(deaf);
}
