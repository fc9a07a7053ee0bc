//! Issue 14, loss: a WebSocket client's call, and SIPp's UAC's calls over UDP, to a UDP UAS
//! over a link that loses 10% of the datagrams at random, in the kernel. The test makes a
//! network namespace and a veth pair: sipcore on the host side (10.213.x.1), SIPp's UAS in the
//! namespace (10.213.x.2), and nftables in the namespace drops each UDP datagram coming in
//! with probability 1/10 (`numgen random mod 10 0`; the issue names `tc netem`, which this
//! kernel lacks: the drop is the same random loss). Neither caller retransmits (the WebSocket
//! client never does, SIPp's UAC runs with `-nr`); the calls complete because sipcore's client
//! transactions retransmit the INVITE and the BYE (with the stateless `forward()` instead of
//! `t_relay()`, SIPp's calls time out). (The UAS's own responses are not dropped: SIPp's UAS
//! forgets a call at its end, so a lost 200 to the BYE could never be answered again. SIPp
//! calls over a link that loses the first copy of every request are in tm_udp.rs.) Needs
//! root, `ip` and `nft`: without them the test says so and skips (CI runs as root and
//! installs both).
mod common;
use common::udp::*;
use common::ws::{connect_sip, send_text, status};
use common::*;
use futures_util::StreamExt;
use std::process::Command;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A namespace with one end of a veth pair and the lossy filter; removed on drop.
struct LossyNs {
    name: String,
    host_if: String,
    /// The host side's address (sipcore's) and the namespace side's (the UAS's).
    host_ip: String,
    ns_ip: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl LossyNs {
    /// `None` (after saying why) where the test cannot make one: not root, or no `ip`/`nft`.
    fn create(tag: u8) -> Option<LossyNs> {
        // SAFETY: geteuid takes nothing and cannot fail.
        if unsafe { libc_geteuid() } != 0 {
            eprintln!(
                "SKIP: the loss tests need root (a network namespace, a veth pair, nftables)"
            );
            return None;
        }
        for tool in ["ip", "nft"] {
            if Command::new(tool).arg("-V").output().is_err() {
                eprintln!("SKIP: the loss tests need `{tool}` (Debian iproute2, nftables)");
                return None;
            }
        }
        let id = std::process::id() % 200 + 20;
        let ns = LossyNs {
            name: format!("sipcore-loss-{id}-{tag}"),
            host_if: format!("sl{id}h{tag}"),
            host_ip: format!("10.213.{id}.{}", tag * 4 + 1),
            ns_ip: format!("10.213.{id}.{}", tag * 4 + 2),
        };
        let peer_if = format!("sl{id}n{tag}");
        let ns_name = ns.name.clone();
        let setup = || -> Result<(), String> {
            run(&["ip", "netns", "add", &ns_name])?;
            run(&[
                "ip",
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer_if,
            ])?;
            run(&["ip", "link", "set", &peer_if, "netns", &ns_name])?;
            run(&[
                "ip",
                "addr",
                "add",
                &format!("{}/30", ns.host_ip),
                "dev",
                &ns.host_if,
            ])?;
            run(&["ip", "link", "set", &ns.host_if, "up"])?;
            let inns = |a: &[&str]| {
                let mut v = vec!["ip", "netns", "exec", ns_name.as_str()];
                v.extend_from_slice(a);
                run(&v)
            };
            inns(&[
                "ip",
                "addr",
                "add",
                &format!("{}/30", ns.ns_ip),
                "dev",
                &peer_if,
            ])?;
            inns(&["ip", "link", "set", &peer_if, "up"])?;
            inns(&["ip", "link", "set", "lo", "up"])?;
            inns(&["nft", "add", "table", "inet", "loss"])?;
            // Every UDP datagram into the namespace: the INVITE, the ACK and the BYE sipcore
            // relays (its client transactions retransmit the INVITE and the BYE; the UAS
            // retransmits its 200 until an ACK gets through, RFC 3261 §13.3.1.4).
            inns(&[
                "nft",
                "add chain inet loss in { type filter hook input priority 0; }",
            ])?;
            inns(&[
                "nft",
                "add rule inet loss in meta l4proto udp numgen random mod 10 0 counter drop",
            ])?;
            Ok(())
        };
        if let Err(e) = setup() {
            drop(ns);
            panic!("could not set up the lossy namespace: {e}");
        }
        Some(ns)
    }

    /// Whether to make more calls after `calls`: until the filter has dropped at least five
    /// datagrams, which 60 calls (a handful of datagrams each) must have reached.
    fn wants_more(&self, calls: u32) -> bool {
        let dropped = self.dropped();
        assert!(
            dropped >= 5 || calls < 60,
            "{calls} calls and the filter dropped {dropped}"
        );
        dropped < 5
    }

    /// Datagrams the filter dropped so far.
    fn dropped(&self) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "nft", "list", "table", "inet", "loss",
            ])
            .output()
            .expect("nft list");
        String::from_utf8_lossy(&out.stdout)
            .split("packets ")
            .skip(1)
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for LossyNs {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.host_if]);
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// sipcore relays everything to the UAS at `uas` with the stateful `t_relay()`.
fn config(host_ip: &str, udp: u16, uas: &str) -> String {
    let mi = free_port();
    format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nmi_http_port = {mi}\n\
         socket = udp:{host_ip}:{udp}\nsocket = ws:127.0.0.1:{{PORT}}\n\
         loadmodule \"proto_udp.so\"\nloadmodule \"proto_ws.so\"\n\
         modparam(\"proto_ws\", \"require_origin\", 0)\nloadmodule \"tm.so\"\n\
         route {{\n    $du = \"sip:{uas};transport=udp\";\n    t_relay();\n    exit;\n}}\n"
    )
}

/// SIPp's UAS (tests/sipp/uas_lossy.xml: the ACK optional) inside the namespace for `calls`
/// calls.
fn uas_in(ns: &LossyNs, port: u16, calls: usize) -> Sipp {
    let (port_s, calls) = (port.to_string(), calls.to_string());
    let uas = Sipp::spawn_wrapped(
        &["ip", "netns", "exec", &ns.name],
        "uas-lossy",
        &[
            "-sf",
            sipp_scenario("uas_lossy.xml").to_str().unwrap(),
            "-i",
            &ns.ns_ip,
            "-p",
            &port_s,
            "-m",
            &calls,
        ],
    );
    // Bound once `ss` in the namespace lists the port.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, "ss", "-uln"])
            .output()
            .expect("ss");
        if String::from_utf8_lossy(&out.stdout).contains(&format!(":{port} ")) {
            return uas;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIPp's UAS did not bind in the namespace"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// sipcore listening on UDP on the host side of `ns` (and on WebSocket), relaying to a SIPp
/// UAS in the namespace for `calls` calls: the server, its UDP port, the UAS's address.
fn start(ns: &LossyNs, calls: usize) -> (Server, u16, String, Sipp) {
    let (udp, uas_port) = (free_udp_port(), free_udp_port());
    let uas_addr = format!("{}:{uas_port}", ns.ns_ip);
    let srv = Server::start(&config(&ns.host_ip, udp, &uas_addr));
    srv.wait_log(
        &format!("listening on udp:{}:{udp}", ns.host_ip),
        Duration::from_secs(10),
    );
    let uas = uas_in(ns, uas_port, calls);
    (srv, udp, uas_addr, uas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_call_to_a_uas_behind_the_lossy_link_completes() {
    let Some(ns) = LossyNs::create(1) else {
        return;
    };
    let (srv, _, uas_addr, _uas) = start(&ns, 1000);
    let mut ws = connect_sip(&srv.ws_url()).await;
    // Calls one after the other until the filter has dropped at least five datagrams (each
    // call is a handful; at most 60 calls): every one completes.
    let mut calls = 0;
    while ns.wants_more(calls) {
        ws_call(&mut ws, &uas_addr, calls).await;
        calls += 1;
    }
}

/// SIPp as the caller over UDP: batches of calls from SIPp's UAC (which never retransmits:
/// `-nr`) on the host side to the UAS behind the lossy link, until the filter has dropped at
/// least five datagrams (at most 6 batches of 10 calls). Every call of every batch completes:
/// sipcore's client transactions retransmit the INVITEs and BYEs the link loses (timers A and
/// E), and a lost ACK is made up for by the UAS's 200 retransmissions, which sipcore relays.
#[test]
fn sipp_calls_to_a_uas_behind_the_lossy_link_complete() {
    let Some(ns) = LossyNs::create(2) else {
        return;
    };
    let (_srv, udp, _, uas) = start(&ns, 60);
    let target = format!("{}:{udp}", ns.host_ip);
    let mut calls = 0;
    while ns.wants_more(calls) {
        let uac_port = free_udp_port().to_string();
        let mut uac = Sipp::spawn(
            "uac-lossy",
            &[
                &target,
                "-sn",
                "uac",
                "-nr",
                "-i",
                &ns.host_ip,
                "-p",
                &uac_port,
                "-m",
                "10",
                "-r",
                "10",
                "-timeout",
                "90s",
                "-timeout_error",
            ],
        );
        uac.assert_success(Duration::from_secs(120));
        calls += 10;
    }
    // The UAS ran on the other side of the loss: it is still up, waiting for more calls.
    assert!(
        uas.file("errors.log").is_empty(),
        "{}",
        uas.file("errors.log")
    );
}

/// One call from the WebSocket client to the UAS at `uas`: INVITE, 200, ACK, BYE, 200.
async fn ws_call(ws: &mut common::ws::Ws, uas: &str, n: u32) {
    let req = |method: &str, cseq: u32, to_tag: &str| {
        format!(
            "{method} sip:uas@{uas} SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bK{n}{method}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=wsa\r\nTo: <sip:uas@example.com>{to_tag}\r\n\
             Call-ID: ws-lossy-{n}\r\nCSeq: {cseq} {method}\r\nContact: <sip:alice@a.invalid;transport=ws>\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    send_text(ws, req("INVITE", 1, "")).await;
    // The 200 (the UAS retransmits it until an ACK gets through).
    let ok = loop {
        let r = next_text_within(ws, 40).await;
        if status(&r) >= 200 {
            break r;
        }
    };
    assert_eq!(status(&ok), 200, "{ok}");
    let tag = header(&ok, "To")
        .and_then(|t| t.split(";tag=").nth(1))
        .expect("a To tag")
        .to_string();
    let to_tag = format!(";tag={tag}");
    send_text(ws, req("ACK", 1, &to_tag)).await;
    send_text(ws, req("BYE", 2, &to_tag)).await;
    // Until the BYE's 200: a retransmitted 200 of the INVITE (its ACK was lost) is ACKed again.
    loop {
        let r = next_text_within(ws, 40).await;
        match header(&r, "CSeq") {
            Some("2 BYE") => {
                assert_eq!(status(&r), 200, "{r}");
                return;
            }
            Some("1 INVITE") => send_text(ws, req("ACK", 1, &to_tag)).await,
            _ => {}
        }
    }
}

/// The next text frame within `secs` seconds (a lossy link may need more than `next_text`'s 15 s:
/// timer A doubles from 500 ms).
async fn next_text_within(ws: &mut common::ws::Ws, secs: u64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("nothing within the deadline")
            .expect("stream open")
            .expect("no ws error");
        let t = match m {
            Message::Text(t) => t.to_string(),
            Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            _ => continue,
        };
        if !t.starts_with("SIP/2.0 100 ") {
            return t;
        }
    }
}
