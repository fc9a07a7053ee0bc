//! Issue 14 (part 1): HEP tracing of SIP over UDP, end to end: proto_udp's
//! `trace_destination`/`trace_on`/`trace_filter_route` with proto_hep, every SIP datagram in
//! and out captured with IP protocol 17, the real addresses and the Call-ID, checked by a
//! collector whose decoder is written from the HEP3 spec (`common/hep.rs`); MI `udp_trace`.
mod common;
#[path = "common/hep.rs"]
mod hep;

use common::udp::*;
use common::*;
use hep::*;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);
const CAPTURE_ID: u32 = 2001;

const CFG: &str = r#"
log_level = 3
mpath = "{MPATH}"
mi_http_port = {PORT}
socket = udp:127.0.0.1:{UDP}
loadmodule "proto_hep.so"
loadmodule "proto_udp.so"
modparam("proto_hep", "hep_id", "[hep_dest]127.0.0.1:{HEP};transport=udp;version=3")
modparam("proto_hep", "hep_capture_id", 2001)
modparam("proto_udp", "trace_destination", "hep_dest")
modparam("proto_udp", "trace_on", 1)
modparam("proto_udp", "trace_filter_route", "udp_filter")
route {
    if (is_method("OPTIONS")) {
        sl_send_reply(200, "OK");
        exit;
    }
    $du = "sip:127.0.0.1:{UAS}";
    forward();
}
route[udp_filter] {
    if ($si == "127.0.0.2" && $proto == "udp") drop;
}
"#;

/// The SIP capture of exactly `text` from `src` to `dst`, checked: UDP, IPv4, Call-ID.
fn captured(pkts: &[Hep3], text: &str, src: SocketAddr, dst: SocketAddr, call_id: &str) {
    let h = find_sip(pkts, text).unwrap_or_else(|| panic!("no capture of:\n{text}"));
    assert_eq!(
        (h.proto_type, h.ip_proto, h.family),
        (PT_SIP, 17, AF_INET),
        "{}",
        summary(h)
    );
    assert_eq!((h.src, h.dst), (src, dst), "{}", summary(h));
    assert_eq!(h.corr(), call_id);
    assert_eq!(h.capture_id, CAPTURE_ID);
    assert_sane_time(h.ts_sec, h.ts_usec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_are_traced_with_ip_proto_17_and_filtered() {
    let col = Collector::udp();
    let (udp, uas) = (free_udp_port(), Peer::new());
    let cfg = CFG
        .replace("{UDP}", &udp.to_string())
        .replace("{HEP}", &col.addr.port().to_string())
        .replace("{UAS}", &uas.addr.port().to_string());
    let srv = Server::start(&cfg);
    wait_udp(&srv, udp);
    let us: SocketAddr = format!("127.0.0.1:{udp}").parse().unwrap();
    let (a, b) = (Peer::new(), Peer::on("127.0.0.2"));
    let options = |p: &Peer, call_id: &str| {
        udp_request(
            "OPTIONS",
            "sip:127.0.0.1",
            &p.addr.to_string(),
            true,
            call_id,
            "",
        )
    };

    // B first (filtered out by the route): if it were traced, its captures would come first.
    b.send(us, options(&b, "b-1").as_bytes());
    assert_eq!(header(&b.recv_sip(), "Call-ID"), Some("b-1"));
    let req = options(&a, "a-1");
    a.send(us, req.as_bytes());
    let reply = a.recv_sip();
    let pkts = col
        .wait_hep3("A's OPTIONS and its 200", T, |p| {
            find_sip(p, &req).is_some() && find_sip(p, &reply).is_some()
        })
        .await;
    captured(&pkts, &req, a.addr, us, "a-1");
    captured(&pkts, &reply, us, a.addr, "a-1");

    // A relayed request and its reply: four captures, each with its own addresses.
    let req = udp_request(
        "MESSAGE",
        "sip:bob@example.com",
        &a.addr.to_string(),
        true,
        "a-2",
        "",
    );
    a.send(us, req.as_bytes());
    let relayed = uas.recv_sip();
    let answer = ok_for(&relayed);
    uas.send(us, answer.as_bytes());
    let back = a.recv_sip();
    let pkts = col
        .wait_hep3("the relay's four datagrams", T, |p| {
            [&req, &relayed, &answer, &back]
                .iter()
                .all(|t| find_sip(p, t).is_some())
        })
        .await;
    captured(&pkts, &req, a.addr, us, "a-2");
    captured(&pkts, &relayed, us, uas.addr, "a-2");
    captured(&pkts, &answer, uas.addr, us, "a-2");
    captured(&pkts, &back, us, a.addr, "a-2");

    // MI udp_trace off stops it at once, on resumes it.
    assert_eq!(
        mi_call(srv.port, "udp_trace", json!([])),
        json!({"UDP tracing": "on"})
    );
    assert_eq!(mi_call(srv.port, "udp_trace", json!(["off"])), json!("OK"));
    a.send(us, options(&a, "off-1").as_bytes());
    assert_eq!(header(&a.recv_sip(), "Call-ID"), Some("off-1"));
    assert_eq!(
        mi_call(srv.port, "udp:trace", json!({"trace_mode": "on"})),
        json!("OK")
    );
    let req = options(&a, "on-1");
    a.send(us, req.as_bytes());
    let reply = a.recv_sip();
    let pkts = col
        .wait_hep3("the OPTIONS after udp_trace on", T, |p| {
            find_sip(p, &req).is_some() && find_sip(p, &reply).is_some()
        })
        .await;

    // Nothing of B's (filter route) nor of the OPTIONS sent while tracing was off.
    let leaked: Vec<String> = pkts
        .iter()
        .filter(|h| h.src.ip() == b.addr.ip() || h.dst.ip() == b.addr.ip() || h.corr() == "off-1")
        .map(summary)
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    assert_eq!(
        pkts.len(),
        8,
        "{:?}",
        pkts.iter().map(summary).collect::<Vec<_>>()
    );
}
