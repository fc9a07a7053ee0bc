//! Issue 14, SIP over TCP (`proto_tcp.so`, RFC 3261 §18) with a third-party SIP stack: SIPp
//! over TCP (`-t t1`, Debian's `sip-tester`) as UAC and UAS through sipcore's stateful
//! `t_relay()` with record-routing: full calls (INVITE/180/200/ACK/BYE), and an INVITE the
//! UAS never answers gets 408 at `fr_inv_timeout`... (see each test).
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
        target, "-sn", "uac", "-t", "t1", "-i", "127.0.0.1", "-p", port, "-m", calls, "-r", "10",
        "-timeout", "40s", "-timeout_error",
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
