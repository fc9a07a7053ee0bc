//! HEPv3 over UDP with UDP segmentation offload (issue 16, part 6; `hep_udp_gso`, on by
//! default): runs of traced packets leave in one `sendmsg` each, every packet but the last of a
//! run padded with a chunk of vendor 0xffff. Each datagram must still decode, on its own, in
//! third-party collectors: sipcapture's hep-js (Homer's Node decoder; `tests/js/hep-sink.js`)
//! and sngrep's HEP listener (Debian's `sngrep`), and in the spec-written decoder of
//! `common/hep.rs`; and every packet the server counts as sent must arrive.
mod common;
#[path = "common/hep.rs"]
mod hep;

use common::*;
use hep::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// A server tracing every WebSocket connection and SIP message to 127.0.0.1:`hep_port` over
/// UDP, with `hep_udp_gso` = `gso`.
fn start(hep_port: u16, gso: bool) -> Server {
    let mut hep = trace_params(
        &format!("[hep_dest]127.0.0.1:{hep_port};transport=udp;version=3"),
        false,
        2001,
        false,
    );
    hep.push_str(&format!(
        "modparam(\"proto_hep\", \"hep_udp_gso\", {})\n",
        u8::from(gso)
    ));
    let mi_port = free_port();
    let srv = Server::start(&config(mi_port, &hep));
    wait_port(mi_port);
    srv
}

/// `clients` connections from 127.0.0.1 to 127.0.0.4, each sending `per_client` OPTIONS one
/// after the other, with `X-Pad` headers of varying size (so that consecutive captures differ
/// in size and runs need padding).
async fn traffic(srv: &Server, clients: usize, per_client: usize) {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let addr = srv.addr;
        tasks.push(tokio::spawn(async move {
            let ip = format!("127.0.0.{}", 1 + c % 4);
            let (mut ws, _) = connect_from(addr, &ip).await;
            for i in 0..per_client {
                let pad = (c * 31 + i * 17) % 200;
                options(&mut ws, &format!("gso-{c}-{i}@t"), i as u32 + 1, pad, T).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
}

/// Waits until the collector has accounted for every packet the server counts as sent
/// (`arrived()`: datagrams read, plus those its socket dropped), with at least `min` sent and
/// none dropped by the server; returns that count. Both counters only grow and the collector's
/// never passes the server's, so once they are equal every packet sent so far has arrived.
async fn all_arrived(srv: &Server, min: u64, arrived: impl Fn() -> u64) -> u64 {
    let deadline = Instant::now() + T;
    loop {
        let d = hep_dest_stats(&srv.cfg_path, "hep_dest", |_| true).await;
        assert_eq!(d["dropped"], 0, "packets dropped: {d}");
        let sent = d["sent"].as_u64().unwrap();
        let got = arrived();
        if sent >= min && got == sent {
            return sent;
        }
        assert!(
            Instant::now() < deadline,
            "{got} of {sent} packets arrived (at least {min} expected): {d}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `node tests/js/hep-sink.js PORT`, its latest counter line kept.
struct NodeSink {
    child: Child,
    last: Arc<Mutex<String>>,
}

impl NodeSink {
    fn start(port: u16) -> NodeSink {
        ensure_node_modules();
        let mut child = Command::new("node")
            .arg(js_dir().join("hep-sink.js"))
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node not found: install Node.js (.ci/run does)");
        let out = BufReader::new(child.stdout.take().unwrap());
        let last = Arc::new(Mutex::new(String::new()));
        let (l2, (tx, rx)) = (Arc::clone(&last), std::sync::mpsc::channel());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if line.starts_with("listening ") {
                    let _ = tx.send(());
                }
                assert!(!line.starts_with("bad_hex="), "hep-js rejected {line}");
                *l2.lock().unwrap() = line;
            }
        });
        rx.recv_timeout(T).expect("hep-sink.js did not start");
        NodeSink { child, last }
    }

    /// The counter `key` of the latest line.
    fn get(&self, key: &str) -> u64 {
        let line = self.last.lock().unwrap().clone();
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// The kernel's count of datagrams dropped at the IPv4 UDP socket bound to 127.0.0.1:`port`
/// (last column of /proc/net/udp).
fn udp_socket_drops(port: u16) -> u64 {
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(local.as_str()))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

impl Drop for NodeSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_segmented_packet_decodes_in_hep_js() {
    let port = udp::free_udp_port();
    let sink = NodeSink::start(port);
    let srv = start(port, true);
    traffic(&srv, 8, 150).await;
    // Two SIP captures per OPTIONS, plus the connection events; what hep-js did not read, its
    // socket's buffer dropped (counted by the kernel).
    let sent = all_arrived(&srv, 2 * 8 * 150, || {
        sink.get("datagrams") + udp_socket_drops(port)
    })
    .await;
    let got = sink.get("datagrams");
    let drops = sent - got;
    eprintln!("hep-js read {got} datagrams, its socket dropped {drops}, of {sent} sent");
    // Most reach hep-js (a receive buffer of 4 MiB at most); every one decodes.
    assert!(
        got * 10 >= sent * 9,
        "only {got} of {sent} read ({drops} dropped)"
    );
    assert_eq!(sink.get("decoded"), got);
    assert_eq!(sink.get("bad"), 0);
    assert!(sink.get("sip") * 10 >= 2 * 8 * 150 * 9);
    // Runs were segmented: padded packets reached the collector and decoded like the rest.
    assert!(sink.get("padded") > 0, "no padded datagram arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padded_packets_keep_every_chunk_and_the_switch_turns_padding_off() {
    for gso in [true, false] {
        let col = Collector::udp();
        let srv = start(col.addr.port(), gso);
        traffic(&srv, 4, 100).await;
        let sent = all_arrived(&srv, 2 * 4 * 100, || col.count() as u64).await;
        assert!(col.errors().is_empty(), "{:?}", col.errors());
        let pkts = col.hep3();
        assert_eq!(pkts.len() as u64, sent);
        let padded = pkts
            .iter()
            .filter(|h| h.chunks.iter().any(|c| c.vendor == 0xffff))
            .count();
        if gso {
            assert!(padded > 0, "no padded packet with hep_udp_gso 1");
        } else {
            assert_eq!(padded, 0, "padding with hep_udp_gso 0");
        }
        // Every SIP capture is there, whole, with its Call-ID as the correlation id.
        for c in 0..4 {
            for i in 0..100 {
                let call_id = format!("gso-{c}-{i}@t");
                let n = pkts.iter().filter(|h| h.corr() == call_id).count();
                assert_eq!(n, 2, "captures of {call_id}");
            }
        }
        for h in pkts.iter().filter(|h| h.proto_type == PT_SIP) {
            let text = h.text();
            assert!(
                text.ends_with("\r\n\r\n"),
                "cut SIP capture: {}",
                summary(h)
            );
        }
    }
}

/// sngrep (Debian) listening for HEP (`-L`; with no device or file given it captures nothing
/// else): it rebuilds the SIP packets it decodes into a pcap (`-O`); every OPTIONS and every
/// 200 must be in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_segmented_packet_decodes_in_sngrep() {
    if Command::new("sngrep").arg("-V").output().is_err() {
        panic!("sngrep not found: install Debian's sngrep (.ci/run does)");
    }
    let port = udp::free_udp_port();
    let dir = temp_dir("sngrep");
    let pcap = dir.join("hep.pcap");
    let mut sng = Command::new("sngrep")
        .args(["-N", "-q", "-F", "-L"])
        .arg(format!("udp:127.0.0.1:{port}"))
        .arg("-O")
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sngrep");
    // sngrep binds its listener after it starts: wait until the port is taken.
    let deadline = Instant::now() + T;
    while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "sngrep does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let srv = start(port, true);
    traffic(&srv, 4, 100).await;
    let want: Vec<String> = (0..4)
        .flat_map(|c| (0..100).map(move |i| format!("gso-{c}-{i}@t")))
        .collect();
    // Every capture is in the pcap, or (on a starved machine) the kernel dropped as many
    // datagrams at sngrep's socket as captures are missing, and nine in ten arrived.
    let deadline = Instant::now() + T;
    loop {
        let bytes = std::fs::read(&pcap).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let missing: usize = want
            .iter()
            .map(|id| 2usize.saturating_sub(text.matches(&format!("Call-ID: {id}\r\n")).count()))
            .sum();
        if missing == 0 {
            break;
        }
        if Instant::now() > deadline {
            let drops = udp_socket_drops(port) as usize;
            if drops >= missing && missing * 10 <= want.len() * 2 {
                eprintln!("sngrep: {missing} captures missing, {drops} dropped at its socket");
                break;
            }
            let _ = sng.kill();
            let out = sng.wait_with_output().unwrap();
            panic!(
                "{missing} of {} captures not in sngrep's pcap ({drops} datagrams dropped at its \
                 socket); sngrep: {}",
                want.len() * 2,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = sng.kill();
    let _ = sng.wait();
    let _ = std::fs::remove_dir_all(dir);
}
