//! `modparam("proto_udp", "udp_spread", "call")` (issue 14: a trunk or an SBC sends
//! everything from one address and port): the threads of a UDP socket share it, so one peer
//! is served by every thread (`udp_list` counts what each received), and the datagrams of one
//! call are still handled in the order they came (a 200 never overtakes its 180, a BYE never
//! overtakes its ACK: SIPp fails a call on either). The default, `source`, keeps a peer on one
//! thread (`udp_hygiene.rs` shows it in `udp_list`).
mod common;
use common::udp::*;
use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const CALL: &str = "modparam(\"proto_udp\", \"udp_spread\", \"call\")";

/// The default config with a two-thread UDP socket and `extra` after `loadmodule "proto_udp.so"`.
fn two_threads(udp: u16, extra: &str) -> (String, u16) {
    let (cfg, mi) = default_config_udp(udp, extra);
    let line = format!("socket = udp:127.0.0.1:{udp}");
    assert!(cfg.contains(&line));
    (cfg.replace(&line, &format!("{line} use_workers 2")), mi)
}

/// `udp_list`'s one socket.
fn socket(mi: u16) -> Value {
    let list = mi_call(mi, "udp_list", json!([]));
    list["Sockets"][0].clone()
}

/// What each thread of the socket received, per `udp_list`.
fn received(mi: u16) -> Vec<u64> {
    let s = socket(mi);
    s["received"]
        .as_array()
        .unwrap_or_else(|| panic!("udp_list: {s}"))
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

/// `n` OPTIONS of one call (Call-ID `call`, CSeq 1..=n) sent at once, and the CSeqs of the
/// 200s in the order they came back.
fn burst(peer: &Peer, us: SocketAddr, call: &str, n: u32) -> Vec<u32> {
    for cseq in 1..=n {
        let req = udp_request(
            "OPTIONS",
            "sip:127.0.0.1",
            &peer.addr.to_string(),
            true,
            call,
            "",
        )
        .replace("CSeq: 1 OPTIONS", &format!("CSeq: {cseq} OPTIONS"))
        .replace(
            &format!("branch=z9hG4bK{call}"),
            &format!("branch=z9hG4bK{call}-{cseq}"),
        );
        peer.send(us, req.as_bytes());
    }
    (0..n)
        .map(|_| {
            let r = peer.recv_sip();
            assert!(r.starts_with("SIP/2.0 200 "), "{r}");
            assert_eq!(header(&r, "Call-ID"), Some(call), "{r}");
            let cseq = header(&r, "CSeq").unwrap();
            cseq.split(' ').next().unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn with_udp_spread_call_one_peer_is_served_by_every_thread_each_call_in_order() {
    let udp = free_udp_port();
    let (cfg, mi) = two_threads(udp, CALL);
    let srv = Server::start(&cfg);
    wait_udp(&srv, udp);
    let us: SocketAddr = format!("127.0.0.1:{udp}").parse().unwrap();
    let s = socket(mi);
    assert_eq!(
        (&s["spread"], &s["workers"]),
        (&json!("call"), &json!(2)),
        "{s}"
    );

    // One peer (one address and port) sends bursts of one call's requests: each burst is
    // answered in order, and the peer's datagrams reach both threads. (Sent at once, each
    // datagram wakes a waiting thread while the other is busy.)
    let peer = Peer::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    loop {
        let call = format!("spread-{round}");
        let got = burst(&peer, us, &call, 40);
        assert_eq!(
            got,
            (1..=40).collect::<Vec<_>>(),
            "call {call} answered out of order"
        );
        round += 1;
        let r = received(mi);
        if round >= 5 && r.iter().all(|&n| n > 0) {
            assert_eq!(r.iter().sum::<u64>(), 40 * round, "{r:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "one peer's datagrams stayed on one thread: {r:?}"
        );
    }
    let stats = udp_stats(mi);
    assert_eq!(stats.get("dropped_held"), Some(&0), "{stats:?}");

    // SIGTERM wakes both threads waiting on the shared socket: the server exits by itself,
    // with no thread left behind.
    let st = std::process::Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success());
    let mut srv = srv;
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(st) = srv.child.try_wait().unwrap() {
            break st.code();
        }
        assert!(
            Instant::now() < deadline,
            "still running after SIGTERM:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0), "{}", srv.log());
    assert!(!srv.log().contains("still busy"), "{}", srv.log());
}

#[test]
fn with_udp_spread_source_one_peer_stays_on_one_thread() {
    let udp = free_udp_port();
    let (cfg, mi) = two_threads(udp, "modparam(\"proto_udp\", \"udp_spread\", \"source\")");
    let srv = Server::start(&cfg);
    wait_udp(&srv, udp);
    let us: SocketAddr = format!("127.0.0.1:{udp}").parse().unwrap();
    assert_eq!(socket(mi)["spread"], "source");
    let peer = Peer::new();
    for round in 0..5 {
        let got = burst(&peer, us, &format!("source-{round}"), 40);
        assert_eq!(got, (1..=40).collect::<Vec<_>>());
    }
    let mut r = received(mi);
    r.sort_unstable();
    assert_eq!(r, vec![0, 200], "one peer, one thread");
}

/// Everything to `$du` with `t_relay()` (stateful), over UDP, the threads sharing the socket
/// (the WebSocket socket is the one the harness waits for).
fn relay_config(udp: u16, next: u16) -> (String, u16) {
    let mi = free_port();
    let cfg = format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nmi_http_port = {mi}\n\
         socket = udp:127.0.0.1:{udp} use_workers 2\nsocket = ws:127.0.0.1:{{PORT}}\n\
         loadmodule \"proto_udp.so\"\n{CALL}\nloadmodule \"proto_ws.so\"\n\
         loadmodule \"tm.so\"\n\
         route {{\n    if (has_totag()) {{ if (loose_route()) t_relay(); exit; }}\n    \
         record_route();\n    $du = \"sip:127.0.0.1:{next};transport=udp\";\n    \
         t_relay();\n    exit;\n}}\n"
    );
    (cfg, mi)
}

#[test]
fn sipp_calls_through_threads_sharing_the_socket_all_complete() {
    // SIPp's UAC sends everything from one port, its UAS answers 180 and 200 back to back
    // and the UAC its ACK and BYE: a call whose 200 overtook its 180, or whose BYE
    // overtook its ACK, would fail. Every call must succeed, and both threads must have
    // worked on them. (At this rate such overtaking is rare even unordered: the bursts of
    // the test above are what shows the order kept.)
    let (udp, uas_port, uac_port) = (free_udp_port(), free_udp_port(), free_udp_port());
    let (cfg, mi) = relay_config(udp, uas_port);
    let srv = Server::start(&cfg);
    wait_udp(&srv, udp);
    let calls = 300;
    let mut uas = Sipp::spawn(
        "uas",
        &[
            "-sf",
            sipp_scenario("uas_call.xml").to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-p",
            &uas_port.to_string(),
            "-m",
            &calls.to_string(),
            "-set",
            "bye_from",
            "them",
        ],
    );
    wait_udp_bound(uas_port);
    let target = format!("127.0.0.1:{udp}");
    let mut uac = Sipp::spawn(
        "uac",
        &[
            &target,
            "-sf",
            sipp_scenario("uac_rr.xml").to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-p",
            &uac_port.to_string(),
            "-m",
            &calls.to_string(),
            "-r",
            "100",
            "-timeout",
            "60s",
            "-timeout_error",
        ],
    );
    uac.assert_success(Duration::from_secs(90));
    uas.assert_success(Duration::from_secs(30));
    let r = received(mi);
    assert!(r.iter().all(|&n| n > 0), "{r:?}");
    assert_eq!(udp_stats(mi).get("dropped_held"), Some(&0));
}
