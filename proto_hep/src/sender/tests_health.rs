//! Issue 10, item 14: state changes are reported once each, and a collector that accepts but
//! stalls is retried less and less often.

use super::*;
use crate::codec::Version;
use crate::hep_id::HepDest;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const T: Duration = Duration::from_secs(10);

fn dest(port: u16) -> HepDest {
    HepDest {
        name: "h".into(),
        host: Host::Ip(LOCAL),
        port,
        transport: Transport::Tcp,
        version: Version::V3,
    }
}

fn reporting(port: u16, cfg: SenderConfig) -> (Sender, mpsc::Receiver<HealthChange>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let report: Reporter = Box::new(move |c| {
        let _ = tx.lock().unwrap().send(c.clone());
    });
    (Sender::with_reporter(dest(port), cfg, report).unwrap(), rx)
}

/// A HEP3-looking packet of `n` bytes (the sender does not parse what it ships).
fn packet(n: usize) -> Vec<u8> {
    let mut p = vec![b'x'; n];
    p[..4].copy_from_slice(b"HEP3");
    p[4..6].copy_from_slice(&(n as u16).to_be_bytes());
    p
}

#[test]
fn refused_then_back_is_reported_once_each() {
    let port = TcpListener::bind((LOCAL, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = SenderConfig {
        queue_len: 8,
        tcp_connect_timeout: Duration::from_millis(500),
        tcp_write_timeout: Duration::from_millis(200),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        recover_after: Duration::from_millis(200),
        udp_gso: true,
    };
    let (s, rx) = reporting(port, cfg);
    s.send(packet(100));
    match rx.recv_timeout(T).expect("no Failing report") {
        HealthChange::Failing { reason, .. } => {
            assert!(reason.starts_with("connect to 127.0.0.1:"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Many more failed attempts, each one silent.
    let end = Instant::now() + T;
    while s.stats().errors < 10 {
        assert!(Instant::now() < end, "{:?}", s.stats());
        s.send(packet(100));
        std::thread::sleep(Duration::from_millis(5));
    }
    // The collector comes back and reads everything: one Recovered, with the outage's counts.
    let l = TcpListener::bind((LOCAL, port)).unwrap();
    std::thread::spawn(move || {
        while let Ok((mut c, _)) = l.accept() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    let end = Instant::now() + T;
    let recovered = loop {
        s.send(packet(100));
        if let Ok(c) = rx.recv_timeout(Duration::from_millis(10)) {
            break c;
        }
        assert!(Instant::now() < end, "never recovered: {:?}", s.stats());
    };
    match recovered {
        HealthChange::Recovered {
            errors, dropped, ..
        } => {
            assert!(errors >= 10, "{errors}");
            assert!(dropped >= 1, "{dropped}");
        }
        other => panic!("a second report before recovery: {other:?}"),
    }
    assert_eq!(rx.try_recv().ok(), None);
}

#[test]
fn stalled_collector_is_retried_less_and_less_often() {
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    // Accept every connection, note when, and never read.
    let accepted: Arc<Mutex<Vec<(Instant, TcpStream)>>> = Arc::default();
    let acc = Arc::clone(&accepted);
    std::thread::spawn(move || {
        while let Ok((c, _)) = l.accept() {
            acc.lock().unwrap().push((Instant::now(), c));
        }
    });
    let cfg = SenderConfig {
        queue_len: 64,
        tcp_connect_timeout: Duration::from_millis(500),
        tcp_write_timeout: Duration::from_millis(30),
        backoff_min: Duration::from_millis(40),
        backoff_max: Duration::from_secs(5),
        recover_after: Duration::from_secs(30),
        udp_gso: true,
    };
    let (s, rx) = reporting(port, cfg);
    // Keep traffic flowing until the collector has seen 5 connections.
    let big = packet(60_000);
    let end = Instant::now() + Duration::from_secs(20);
    while accepted.lock().unwrap().len() < 5 {
        assert!(Instant::now() < end, "{:?}", s.stats());
        for _ in 0..16 {
            s.send(&big);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let times: Vec<Instant> = accepted.lock().unwrap().iter().map(|a| a.0).collect();
    // Connection k+1 comes at least the k-th backoff (40, 80, 160, 320 ms) after connection k
    // (plus the stall itself): the delays double instead of restarting at each stall. Lower
    // bounds only, so a loaded machine cannot make this fail.
    for (k, w) in times.windows(2).take(4).enumerate() {
        let gap = w[1] - w[0];
        let min = Duration::from_millis(40) * (1 << k);
        assert!(gap >= min, "reconnect {} after {gap:?} (< {min:?})", k + 1);
    }
    // One report for the whole outage: every stall before the 5th connection would have been
    // reported before it was made.
    assert!(
        matches!(rx.try_recv(), Ok(HealthChange::Failing { .. })),
        "no Failing report"
    );
    assert_eq!(rx.try_recv().ok(), None, "more than one report");
}
