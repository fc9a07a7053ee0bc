//! Issue 14, SIP over TCP (`proto_tcp.so`, RFC 3261 §18) with a third-party SIP stack: SIPp
//! over TCP (`-t t1`, Debian's `sip-tester`) as UAC and UAS through sipcore's stateful
//! `t_relay()` with record-routing: full calls (INVITE/180/200/ACK/BYE); a call cancelled while
//! ringing (CANCEL relayed over the callee's connection, 487 back); an INVITE the callee never
//! answers gets 408 at `fr_timeout` and the callee gets the CANCEL.
mod common;
use common::tcp::*;
use common::udp::*;
use common::*;
use std::time::Duration;

/// A stateful relay over TCP: in-dialog requests with a Route follow it (`loose_route()`), the
/// rest goes to the UAS at `127.0.0.1:{UAS}` over TCP, INVITEs record-routed.
const RELAY: &str = r#"
log_level = 3
mpath = "{MPATH}"
mi_http_port = {MI}
socket = tcp:127.0.0.1:{PORT}
loadmodule "proto_tcp.so"
loadmodule "tm.so"
loadmodule "rr.so"
modparam("tm", "fr_timeout", {FR})
modparam("tm", "fr_inv_timeout", {FR})
route {
    # SIPp's built-in UAC sends its BYE without the Route set: to the UAS as well.
    if (has_totag() && loose_route()) { t_relay(); exit; }
    if (is_method("INVITE")) record_route();
    $du = "sip:127.0.0.1:{UAS};transport=tcp";
    t_relay();
    exit;
}
"#;

/// The relay's config (its tcp socket is the harness's `{PORT}`) and MI port.
fn relay(uas: u16, fr: u32) -> (String, u16) {
    let mi = free_port();
    let cfg = RELAY
        .replace("{MI}", &mi.to_string())
        .replace("{UAS}", &uas.to_string())
        .replace("{FR}", &fr.to_string());
    (cfg, mi)
}

fn uac_args<'a>(target: &'a str, port: &'a str, calls: &'a str) -> Vec<&'a str> {
    vec![
        target,
        "-sn",
        "uac",
        "-t",
        "t1",
        "-i",
        "127.0.0.1",
        "-p",
        port,
        "-m",
        calls,
        "-r",
        "10",
        "-timeout",
        "40s",
        "-timeout_error",
    ]
}

#[test]
fn sipp_calls_over_tcp_through_t_relay_with_record_route() {
    let (uas_port, uac_port) = (free_port(), free_port());
    let (cfg, mi) = relay(uas_port, 5);
    let srv = Server::start(&cfg);
    let tcp = srv.port;
    wait_tcp(&srv, tcp);
    let mut uas = sipp_uas_tcp(uas_port, 20, &[]);
    let target = format!("127.0.0.1:{tcp}");
    let p = uac_port.to_string();
    let mut uac = Sipp::spawn("uac-tcp", &uac_args(&target, &p, "20"));
    uac.assert_success(Duration::from_secs(60));
    uas.assert_success(Duration::from_secs(30));

    // The UAS saw our Via (TCP, the tcp socket) on top of SIPp's, and our Record-Route.
    let seen = uas.file("messages.log");
    let ours = format!("Via: SIP/2.0/TCP 127.0.0.1:{tcp};branch=z9hG4bK");
    let theirs = format!("Via: SIP/2.0/TCP 127.0.0.1:{uac_port};branch=");
    for method in ["INVITE", "ACK", "BYE"] {
        let req = seen
            .split("\n\n")
            .find(|m| m.trim_start().starts_with(&format!("{method} sip:")))
            .unwrap_or_else(|| panic!("the UAS got no {method}:\n{seen}"));
        let (a, b) = (req.find(&ours), req.find(&theirs));
        assert!(
            matches!((a, b), (Some(a), Some(b)) if a < b),
            "{method} Vias:\n{req}"
        );
    }
    let invite = seen
        .split("\n\n")
        .find(|m| m.trim_start().starts_with("INVITE sip:"))
        .unwrap();
    assert!(
        invite.contains(&format!("@127.0.0.1:{tcp};transport=tcp;lr>")),
        "{invite}"
    );
    // One connection each way, reused by every call (RFC 3261 §18: connection reuse):
    // SIPp's to us and ours to the UAS (and the harness's probe of the port at startup).
    let st = tcp_stats(mi);
    assert_eq!(st.get("connections_total"), Some(&3), "{st:?}");
}

/// A callee on a TCP listener of the test, which sipcore connects to.
fn callee() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// Accept sipcore's connection within 10 s.
fn accept(l: &std::net::TcpListener) -> TcpPeer {
    l.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return TcpPeer::accepted(s);
            }
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("sipcore never connected to the callee: {e}"),
        }
    }
}

#[test]
fn a_call_cancelled_while_ringing_over_tcp() {
    let (l, uas_port) = callee();
    let (cfg, _mi) = relay(uas_port, 10);
    let srv = Server::start(&cfg);
    wait_tcp(&srv, srv.port);
    let target = format!("127.0.0.1:{}", srv.port);
    let p = free_port().to_string();
    let sf = sipp_scenario("cancel_uac.xml");
    let mut uac = Sipp::spawn(
        "cancel-uac",
        &[
            &target,
            "-sf",
            sf.to_str().unwrap(),
            "-t",
            "t1",
            "-i",
            "127.0.0.1",
            "-p",
            &p,
            "-m",
            "1",
            "-timeout",
            "30s",
            "-timeout_error",
        ],
    );
    let mut uas = accept(&l);
    let invite = uas.recv_sip();
    assert!(invite.starts_with("INVITE sip:callee@"), "{invite}");
    uas.send(reply_to(&invite, "180 Ringing", "callee1").as_bytes());
    // The CANCEL comes over the same connection (RFC 3261 §9.1: to the INVITE's destination,
    // with its branch).
    let cancel = uas.recv_sip();
    assert!(cancel.starts_with("CANCEL sip:callee@"), "{cancel}");
    let branch = |m: &str| {
        header(m, "Via")
            .and_then(|v| v.split_once("branch="))
            .map(|(_, b)| b.split(';').next().unwrap_or("").to_string())
    };
    assert_eq!(branch(&cancel), branch(&invite), "{cancel}");
    uas.send(reply_to(&cancel, "200 OK", "callee1").as_bytes());
    uas.send(reply_to(&invite, "487 Request Terminated", "callee1").as_bytes());
    // Our ACK for the 487 is hop-by-hop (RFC 3261 §17.1.1.3).
    let ack = uas.recv_sip();
    assert!(ack.starts_with("ACK sip:callee@"), "{ack}");
    uac.assert_success(Duration::from_secs(30));
}

#[test]
fn an_invite_the_callee_never_answers_gets_408_at_fr_timeout() {
    let (l, uas_port) = callee();
    let (cfg, _mi) = relay(uas_port, 2);
    let srv = Server::start(&cfg);
    wait_tcp(&srv, srv.port);
    let target = format!("127.0.0.1:{}", srv.port);
    let p = free_port().to_string();
    let sf = sipp_scenario("timeout_uac.xml");
    let mut uac = Sipp::spawn(
        "timeout-uac",
        &[
            &target,
            "-sf",
            sf.to_str().unwrap(),
            "-t",
            "t1",
            "-i",
            "127.0.0.1",
            "-p",
            &p,
            "-m",
            "1",
            "-timeout",
            "30s",
            "-timeout_error",
        ],
    );
    let mut uas = accept(&l);
    let invite = uas.recv_sip();
    assert!(invite.starts_with("INVITE sip:callee@"), "{invite}");
    // Nothing answered: over TCP nothing is retransmitted (RFC 3261 §17.1.1.2: timer A only
    // over unreliable transports); at fr_timeout the caller gets 408 and the callee a CANCEL
    // (or nothing: no provisional came, RFC 3261 §9.1 says not to CANCEL then).
    uac.assert_success(Duration::from_secs(30));
    // Whatever reached the callee after the INVITE (by now fr_timeout has passed: timer A
    // would have fired 2 times) is not a retransmission of it.
    while let Some(m) = uas.try_recv_sip(Duration::from_millis(300)) {
        assert!(!m.starts_with("INVITE "), "retransmitted over TCP:\n{m}");
    }
    let log = srv.log();
    assert!(!log.contains("ERR"), "{log}");
}

/// The bundled default config with a `socket=tcp:` line answers SIPp's OPTIONS over TCP with
/// 200, over SIPp's own connection (the Via of its request in the answer).
#[test]
fn sipp_options_over_tcp_get_200_from_the_default_config() {
    let tcp = free_port();
    let (cfg, _mi) = default_config();
    let (ws, load) = ("socket = ws:127.0.0.1:{PORT}", "loadmodule \"proto_ws.so\"");
    assert!(
        cfg.contains(ws) && cfg.contains(load),
        "default config changed"
    );
    let cfg = cfg
        .replace(ws, &format!("{ws}\nsocket = tcp:127.0.0.1:{tcp}"))
        .replace(load, &format!("{load}\nloadmodule \"proto_tcp.so\""));
    let srv = Server::start(&cfg);
    wait_tcp(&srv, tcp);
    let target = format!("127.0.0.1:{tcp}");
    let local = free_port().to_string();
    let scenario = sipp_scenario("options_uac.xml");
    let mut uac = Sipp::spawn(
        "options-tcp",
        &[
            &target,
            "-sf",
            scenario.to_str().unwrap(),
            "-t",
            "t1",
            "-i",
            "127.0.0.1",
            "-p",
            &local,
            "-m",
            "5",
            "-r",
            "50",
            "-timeout",
            "20s",
            "-timeout_error",
        ],
    );
    uac.assert_success(Duration::from_secs(30));
    let msgs = uac.file("messages.log");
    assert!(msgs.contains("SIP/2.0 200 OK"), "{msgs}");
    assert!(
        msgs.contains(&format!("SIP/2.0/TCP 127.0.0.1:{local};branch=")),
        "{msgs}"
    );
}
