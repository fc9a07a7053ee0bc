//! Issue 14 (part 1), SIP over UDP with a third-party SIP stack: SIPp (Debian's
//! `sip-tester`) as UAC gets 200 for OPTIONS from the bundled default config with a
//! `socket=udp:` line, and SIPp UAC → sipcore → SIPp UAS full calls (INVITE/180/200/ACK/BYE)
//! relayed statelessly over UDP all succeed.
mod common;
use common::udp::*;
use common::*;
use std::time::Duration;

#[test]
fn sipp_options_over_udp_get_200_from_the_default_config() {
    let udp = free_udp_port();
    let (cfg, _mi) = default_config_udp(udp, "");
    let srv = Server::start(&cfg);
    wait_udp(&srv, udp);

    let target = format!("127.0.0.1:{udp}");
    let local = free_udp_port().to_string();
    let scenario = sipp_scenario("options_uac.xml");
    let mut uac = Sipp::spawn(
        "options",
        &[
            &target,
            "-sf",
            scenario.to_str().unwrap(),
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
    // The 200s came from our UDP socket, with the Via of SIPp's request (RFC 3261 §8.2.6.2).
    let msgs = uac.file("messages.log");
    assert!(msgs.contains("SIP/2.0 200 OK"), "{msgs}");
    assert!(
        msgs.contains(&format!("SIP/2.0/UDP 127.0.0.1:{local};branch=")),
        "{msgs}"
    );
}

/// A relay whose route sends everything to the UAS (`$du`, stateless `forward()`).
const RELAY: &str = r#"
log_level = 3
mpath = "{MPATH}"
mi_http_port = {PORT}
socket = udp:127.0.0.1:{UDP}
loadmodule "proto_udp.so"
modparam("proto_udp", "udp_workers", 2)
route {
    $du = "sip:127.0.0.1:{UAS}";
    forward();
    exit;
}
"#;

#[test]
fn sipp_calls_are_relayed_statelessly_over_udp() {
    let (udp, uas_port, uac_port) = (free_udp_port(), free_udp_port(), free_udp_port());
    let cfg = RELAY
        .replace("{UDP}", &udp.to_string())
        .replace("{UAS}", &uas_port.to_string());
    let srv = Server::start(&cfg);
    wait_udp(&srv, udp);

    let mut uas = Sipp::uas(uas_port, 20);
    let target = format!("127.0.0.1:{udp}");
    let mut uac = Sipp::spawn(
        "uac",
        &[
            &target,
            "-sn",
            "uac",
            "-i",
            "127.0.0.1",
            "-p",
            &uac_port.to_string(),
            "-m",
            "20",
            "-r",
            "20",
            "-timeout",
            "40s",
            "-timeout_error",
        ],
    );
    uac.assert_success(Duration::from_secs(60));
    uas.assert_success(Duration::from_secs(30));

    // The UAS saw our Via on top, naming the UDP socket (RFC 3261 §16.6 step 8), then SIPp's.
    let seen = uas.file("messages.log");
    let ours = format!("Via: SIP/2.0/UDP 127.0.0.1:{udp};branch=z9hG4bK");
    let theirs = format!("Via: SIP/2.0/UDP 127.0.0.1:{uac_port};branch=");
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
}
