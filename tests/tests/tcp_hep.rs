//! Issue 14: HEP tracing of SIP over TCP, end to end: proto_tcp's `trace_destination` /
//! `trace_on` with proto_hep, every SIP message in and out captured with IP protocol 6 (TCP),
//! the real addresses and the Call-ID, and the connection's events with `Protocol: TCP`;
//! MI `tcp_trace` and `tcp_list`.
mod common;
#[path = "common/hep.rs"]
mod hep;

use common::tcp::*;
use common::udp::mi_call;
use common::*;
use hep::*;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

const CFG: &str = r#"
log_level = 3
mpath = "{MPATH}"
mi_http_port = {MI}
socket = tcp:127.0.0.1:{PORT}
loadmodule "proto_hep.so"
loadmodule "proto_tcp.so"
modparam("proto_hep", "hep_id", "[hep_dest]127.0.0.1:{HEP};transport=udp;version=3")
modparam("proto_hep", "hep_capture_id", 2002)
modparam("proto_tcp", "trace_destination", "hep_dest")
modparam("proto_tcp", "trace_on", 1)
route {
    sl_send_reply(200, "OK");
    exit;
}
"#;

fn options(me: SocketAddr, id: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bK{id}\r\n\
         Max-Forwards: 70\r\nTo: <sip:127.0.0.1>\r\nFrom: <sip:a@example.com>;tag={id}\r\n\
         Call-ID: {id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_messages_are_traced_with_ip_proto_6() {
    let col = Collector::udp();
    let mi = free_port();
    let cfg = CFG
        .replace("{MI}", &mi.to_string())
        .replace("{HEP}", &col.addr.port().to_string());
    let srv = Server::start(&cfg);
    wait_tcp(&srv, srv.port);
    let us: SocketAddr = format!("127.0.0.1:{}", srv.port).parse().unwrap();
    let mut a = TcpPeer::connect(srv.port);
    let me = a.local();
    let req = options(me, "tcp-hep-1");
    a.send(req.as_bytes());
    let reply = a.recv_sip();
    let pkts = col
        .wait_hep3("the OPTIONS and its 200", T, |p| {
            find_sip(p, &req).is_some() && find_sip(p, &reply).is_some()
        })
        .await;
    for (text, src, dst) in [(&req, me, us), (&reply, us, me)] {
        let h = find_sip(&pkts, text).unwrap();
        assert_eq!(
            (h.proto_type, h.ip_proto, h.family),
            (PT_SIP, 6, AF_INET),
            "{}",
            summary(h)
        );
        assert_eq!((h.src, h.dst), (src, dst), "{}", summary(h));
        assert_eq!(h.corr(), "tcp-hep-1");
        assert_eq!(h.capture_id, 2002);
    }
    // The connection's acceptance is a transport event of protocol TCP.
    let accepted = pkts
        .iter()
        .find(|p| p.proto_type == PT_NET && p.text().contains("ACCEPTED"))
        .unwrap_or_else(|| panic!("no connection event among {} captures", pkts.len()));
    assert_eq!(accepted.ip_proto, 6);
    assert!(accepted.text().contains("TCP"), "{}", accepted.text());

    // MI: tcp_list shows the connection, tcp_trace switches tracing.
    let list = mi_call(mi, "tcp_list", json!([]));
    let text = list.to_string();
    assert!(text.contains(&me.to_string()), "{list}");
    assert_eq!(
        mi_call(mi, "tcp_trace", json!([])),
        json!({"TCP tracing": "on"})
    );
    assert_eq!(mi_call(mi, "tcp_trace", json!(["off"])), json!("OK"));
    assert_eq!(
        mi_call(mi, "tcp_trace", json!([])),
        json!({"TCP tracing": "off"})
    );
}
