//! Issue 10 items 7 and 8, end to end against the real binary, with the server's memory read
//! from `/proc/PID/status`:
//! * a client that floods Pings and never reads is closed once its Pongs fill
//!   `ws_max_write_queue` (they count like everything we queue), and the server's peak RSS
//!   stays bounded (the old server held every Pong: +80 MB in 0.1 s);
//! * clients that flood Pings and read a few bytes now and then (so the send timeout never
//!   fires) are closed the same way, and the memory goes back once they are gone;
//! * 2,000 connections holding 9 bytes of a large frame each cost what arrived (the old server
//!   reserved the announced 64 KiB per connection: 125 MB).
//!
//! Other clients keep getting 200 for OPTIONS throughout.
mod common;
#[path = "common/raw.rs"]
mod raw;
use common::ws::connect_sip;
use common::*;
use raw::*;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// OPTIONS to the server itself get 200; everything else 404. `{EXTRA}` adds modparams.
const CFG: &str = r#"
log_level = 3
mpath = "{MPATH}"
socket = ws:127.0.0.1:{PORT}
loadmodule "proto_ws.so"
modparam("proto_ws", "require_origin", 0)
{EXTRA}
route {
    if (is_method("OPTIONS")) {
        sl_send_reply(200, "OK");
        exit;
    }
    sl_send_reply(404, "Not Here");
}
"#;

/// Floods 125-byte Pings on `s` until `total` bytes are sent or the server closes it. With
/// `slow_read`, also reads 4 KiB after every 64 KiB sent and every 10 ms while blocked, and once
/// everything is sent keeps reading 4 KiB every 10 ms until `stop`: a slow reader (about
/// 400 KB/s) whose reads free enough of its 8 KiB receive buffer for the kernel to reopen the
/// window, so the server's writes keep progressing and its send timeout never fires. Without
/// it, never reads. Returns the bytes sent.
async fn ping_flood(
    mut s: TcpStream,
    total: usize,
    slow_read: bool,
    stop: Arc<AtomicBool>,
) -> usize {
    let ping = frame(0x89, &[b'p'; 125]);
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 500)
        .collect();
    let mut buf = [0u8; 4096];
    // False once the server closed the connection.
    let mut read_some = |s: &mut TcpStream| match s.try_read(&mut buf) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    };
    let (mut sent, mut off, mut since_read) = (0, 0, 0usize);
    while sent < total && !stop.load(Ordering::Relaxed) {
        // Whole frames only: a write is never abandoned halfway.
        match tokio::time::timeout(Duration::from_millis(10), s.writable()).await {
            Ok(Ok(())) => match s.try_write(&burst[off..]) {
                Ok(n) => {
                    (sent, since_read) = (sent + n, since_read.saturating_add(n));
                    off = (off + n) % burst.len();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return sent,
            },
            Ok(Err(_)) => return sent,
            Err(_) => since_read = usize::MAX,
        }
        if slow_read && since_read >= 64 * 1024 {
            since_read = 0;
            if !read_some(&mut s) {
                return sent;
            }
        }
    }
    while slow_read && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if !read_some(&mut s) {
            return sent;
        }
    }
    sent
}

const MB: u64 = 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_that_never_reads_is_closed_and_memory_stays_bounded() {
    // A send timeout far longer than the flood: only the queue bound can stop it.
    let srv = Server::start(&CFG.replace(
        "{EXTRA}",
        r#"modparam("proto_ws", "ws_send_timeout", 30000)"#,
    ));
    let pid = srv.child.id();
    let mut witness = connect_sip(&srv.ws_url()).await;
    options_ok(&mut witness, 1).await;
    let hwm0 = proc_kib(pid, "VmHWM");

    let flooder = raw_ws(srv.addr, Ipv4Addr::LOCALHOST, Some(4096)).await;
    let peer = flooder.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flood = tokio::spawn(ping_flood(flooder, 48 << 20, false, stop.clone()));
    // The witness is served during the flood.
    options_ok(&mut witness, 2).await;
    let sent = flood.await.unwrap();
    let lines = overflows(&srv, 1, Duration::from_secs(20)).await;
    let grown = proc_kib(pid, "VmHWM").saturating_sub(hwm0);
    println!("flood: {sent} bytes of Pings sent; peak RSS grew {grown} KiB");
    assert!(
        grown < 16 * MB,
        "peak RSS grew {grown} KiB during the flood"
    );
    assert_eq!(
        lines.len(),
        1,
        "the flooder was not closed at the queue bound"
    );
    assert!(lines[0].contains(&peer.to_string()), "{}", lines[0]);
    assert!(sent < 48 << 20, "the flood was never refused");
    options_ok(&mut witness, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_flooding_pings_are_closed_and_memory_goes_back() {
    const READERS: usize = 16;
    let (cfg, _mi) = default_config();
    let srv = Server::start(&cfg);
    let pid = srv.child.id();
    let mut witness = connect_sip(&srv.ws_url()).await;
    options_ok(&mut witness, 1).await;
    let rss0 = proc_kib(pid, "VmRSS");
    let hwm0 = proc_kib(pid, "VmHWM");

    let stop = Arc::new(AtomicBool::new(false));
    let mut floods = Vec::new();
    let mut peers = Vec::new();
    for i in 0..READERS {
        // One loopback address each, so that a limit per client address does not refuse them.
        let src = Ipv4Addr::new(127, 0, 1, 2 + i as u8);
        let s = raw_ws(srv.addr, src, Some(4096)).await;
        peers.push(s.local_addr().unwrap().to_string());
        floods.push(tokio::spawn(ping_flood(s, 16 << 20, true, stop.clone())));
    }
    options_ok(&mut witness, 2).await;
    let lines = overflows(&srv, READERS, Duration::from_secs(20)).await;
    let grown = proc_kib(pid, "VmHWM").saturating_sub(hwm0);
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        f.await.unwrap();
    }
    println!("{READERS} slow readers: peak RSS grew {grown} KiB");
    assert!(grown < 16 * MB, "peak RSS grew {grown} KiB");
    for p in &peers {
        assert!(
            lines.iter().filter(|l| l.contains(p.as_str())).count() == 1,
            "slow reader {p} not closed at the queue bound: {lines:?}"
        );
    }
    options_ok(&mut witness, 3).await;
    // Memory goes back once they are gone (allow for allocator and thread caches).
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
        "{kept} KiB kept after every flooder was closed"
    );
    options_ok(&mut witness, 4).await;
}

/// `Max open files` soft limit of this process (the server inherits it).
fn nofile_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_partial_frames_cost_what_arrived() {
    const N: usize = 2000;
    let limit = nofile_limit();
    assert!(
        limit >= 2 * N as u64 + 200,
        "this test needs {} file descriptors (ulimit -n is {limit})",
        2 * N + 200
    );
    let srv = Server::start(&CFG.replace(
        "{EXTRA}",
        r#"modparam("proto_ws", "ws_max_connections", 2100)"#,
    ));
    let pid = srv.child.id();
    let mut witness = connect_sip(&srv.ws_url()).await;
    options_ok(&mut witness, 1).await;
    // Connections are spread over 250 loopback source addresses (8 each), so that a limit
    // per client address does not refuse them.
    let src = |i: usize| Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8);
    // Warm up the worker threads' allocator arenas and read buffers.
    let mut warm = Vec::new();
    for i in 0..16 {
        let mut s = raw_ws(srv.addr, src(i), None).await;
        s.write_all(&frame(0x89, b"")).await.unwrap();
        let mut pong = [0u8; 2];
        s.read_exact(&mut pong).await.unwrap();
        assert_eq!(pong, [0x8A, 0]);
        warm.push(s);
    }
    let rss0 = proc_kib(pid, "VmRSS");
    // The 8-byte header of a 65 535-byte masked text frame, and one payload byte.
    let big = frame(0x81, &[b'a'; 65535]);
    let mut conns = Vec::with_capacity(N);
    for i in 0..N {
        let mut s = raw_ws(srv.addr, src(i), None).await;
        s.write_all(&big[..9]).await.unwrap();
        conns.push(s);
    }
    // Each connection's bytes are read before its Ping: a Pong on every 50th connection shows
    // the server has read the partial frames.
    for s in conns.iter_mut().step_by(50) {
        let mut rest = big[9..].to_vec();
        rest.extend_from_slice(&frame(0x89, b"p"));
        s.write_all(&rest).await.unwrap();
    }
    for s in conns.iter_mut().step_by(50) {
        // The 65 535-byte message is SIP garbage: the server may answer nothing, or close.
        let mut pong = [0u8; 3];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut pong))
            .await
            .expect("pong within 10 s")
            .unwrap();
        assert_eq!(pong, [0x8A, 1, b'p']);
    }
    options_ok(&mut witness, 2).await;
    let per_conn = (proc_kib(pid, "VmRSS").saturating_sub(rss0)) * 1024 / N as u64;
    println!("{N} partial frames: RSS per connection {per_conn} bytes");
    assert!(
        per_conn < 8 * 1024,
        "{per_conn} bytes of RSS per connection holding 9 bytes"
    );
    drop(conns);
    options_ok(&mut witness, 3).await;
}
