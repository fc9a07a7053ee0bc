//! Crossing transports (issue 14 part 4; RFC 7118 §5, RFC 5658): calls between a browser
//! stack over WebSocket (JsSIP in Node) and SIPp over UDP through the stateful `t_relay()`
//! with `record_route()`. Each call gets two Record-Route values (the socket facing the
//! callee, then the one facing the caller), and in-dialog requests cross back both ways: a
//! BYE from the WebSocket side and one from the UDP side, for calls placed from either side.
//!
//! Needs Node.js (`tests/js`, JsSIP) and SIPp (Debian `sip-tester`); `.ci/run` installs both.
mod common;

use common::udp::{
    free_udp_port, sipp_scenario, udp_request, wait_udp, wait_udp_bound, Peer, Sipp,
};
use common::ws::{connect_sip, send_text};
use common::{ensure_node_modules, free_port, header, headers, js_dir, Server};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A registrar and stateful proxy on ws and udp, with no authentication (the subject here is
/// routing): INVITEs are record-routed; in-dialog requests follow `loose_route()`; a request
/// for `127.0.0.1` goes to its Request-URI (the SIPp UAS), others to the location table.
/// `rr` is a `modparam("rr", ...)` line or "".
fn config(udp: u16, rr: &str) -> String {
    let mi = free_port();
    format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nmi_http_port = {mi}\n\
         socket = udp:127.0.0.1:{udp}\nsocket = ws:127.0.0.1:{{PORT}}\n\
         loadmodule \"proto_udp.so\"\nloadmodule \"proto_ws.so\"\n\
         modparam(\"proto_ws\", \"require_origin\", 0)\n\
         loadmodule \"tm.so\"\nloadmodule \"rr.so\"\nloadmodule \"registrar.so\"\n\
         loadmodule \"usrloc.so\"\n{rr}\n\
         route {{\n\
             if (has_totag()) {{\n\
                 if (loose_route()) {{ t_relay(); exit; }}\n\
                 if (is_method(\"ACK\")) {{ if (t_check_trans()) t_relay(); exit; }}\n\
                 sl_send_reply(404, \"Not here\"); exit;\n\
             }}\n\
             if (is_method(\"REGISTER\")) {{ save(\"location\"); exit; }}\n\
             if (is_method(\"INVITE\")) record_route();\n\
             if ($rd == \"127.0.0.1\") {{ t_relay(); exit; }}\n\
             if (!lookup(\"location\")) {{ sl_send_reply(404, \"Not Found\"); exit; }}\n\
             t_relay();\n\
         }}\n"
    )
}

/// SIPp's UAC (`tests/sipp/uac_call.xml`) calling `bob@example.com` through sipcore's UDP
/// socket; `bye_from`: `us` (SIPp hangs up) or `them` (it waits for the callee's BYE).
fn sipp_uac(udp: u16, bye_from: &str) -> Sipp {
    let port = free_udp_port().to_string();
    let sf = sipp_scenario("uac_call.xml");
    Sipp::spawn(
        &format!("uac-{bye_from}"),
        &[
            &format!("127.0.0.1:{udp}"),
            "-sf",
            sf.to_str().unwrap(),
            "-s",
            "bob",
            "-set",
            "domain",
            "example.com",
            "-set",
            "bye_from",
            bye_from,
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-m",
            "1",
        ],
    )
}

/// SIPp's UAS (`tests/sipp/uas_call.xml`) on 127.0.0.1:`port` for one call; `bye_from`: `us`
/// (SIPp hangs up after the ACK) or `them` (it waits for the caller's BYE).
fn sipp_uas(port: u16, bye_from: &str) -> Sipp {
    let sf = sipp_scenario("uas_call.xml");
    let p = port.to_string();
    let uas = Sipp::spawn(
        &format!("uas-{bye_from}"),
        &[
            "-sf",
            sf.to_str().unwrap(),
            "-set",
            "bye_from",
            bye_from,
            "-i",
            "127.0.0.1",
            "-p",
            &p,
            "-m",
            "1",
        ],
    );
    wait_udp_bound(port);
    uas
}

/// JsSIP alice calls a SIPp UAS over UDP twice (alice hangs up the first call, the UAS the
/// second), then SIPp calls the registered JsSIP bob twice from UDP (SIPp hangs up the first,
/// bob the second). scenario.js checks the two Record-Route values in each direction, and
/// every call's BYE is answered 200 by the other side.
#[test]
fn jssip_over_websocket_and_sipp_over_udp_call_each_other_and_hang_up_from_either_side() {
    ensure_node_modules();
    let (udp, uas_port, uas_bye_port) = (free_udp_port(), free_udp_port(), free_udp_port());
    let srv = Server::start(&config(udp, ""));
    wait_udp(&srv, udp);
    let mut uas = sipp_uas(uas_port, "them");
    let mut uas_bye = sipp_uas(uas_bye_port, "us");
    let mut node = Command::new("node")
        .arg(js_dir().join("scenario.js"))
        .args([
            "--stack",
            "jssip",
            "--url",
            &srv.ws_url(),
            "--scenario",
            "udp",
            "--timeout",
            "60",
            "--step-timeout",
            "10",
            "--peer",
            &format!("sip:uas@127.0.0.1:{uas_port}"),
            "--peer-bye",
            &format!("sip:uas@127.0.0.1:{uas_bye_port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node not found: install Node.js (.ci/run does)");
    let stderr = node.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    let mut steps = String::new();
    let mut started_uacs = false;
    let mut uac_failures = String::new();
    for line in BufReader::new(node.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        steps.push_str(&line);
        steps.push('\n');
        if line.contains("\"step\":\"udp_in.ready\"") && line.contains("\"ok\":true") {
            // The calls towards the browser, one after the other (bob tells the calls apart
            // by their order). Their success is checked below; scenario.js reads the
            // other side.
            started_uacs = true;
            for bye_from in ["us", "them"] {
                let mut uac = sipp_uac(udp, bye_from);
                let st = uac.wait(Duration::from_secs(30));
                if !st.success() {
                    uac_failures.push_str(&format!(
                        "--- sipp uac ({bye_from} hang up): {st}\n{}\n{}\n",
                        uac.file("errors.log"),
                        uac.file("messages.log")
                    ));
                }
            }
        }
    }
    let status = node.wait().unwrap();
    let stderr = err_reader.join().unwrap();
    assert!(
        status.success() && started_uacs && uac_failures.is_empty(),
        "scenario udp failed ({status}):\n--- steps:\n{steps}\n--- node stderr:\n{stderr}\n{uac_failures}--- sipcore:\n{}",
        srv.log()
    );
    uas.assert_success(Duration::from_secs(10));
    uas_bye.assert_success(Duration::from_secs(10));
}

/// Sockets on udp over IPv4 and IPv6 and on ws; every initial request is record-routed and
/// relayed statefully to its Request-URI, in-dialog ones follow `loose_route()`.
fn rr_config(udp4: u16, udp6: u16, rr: &str) -> String {
    let mi = free_port();
    format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nmi_http_port = {mi}\n\
         socket = udp:127.0.0.1:{udp4}\nsocket = udp:[::1]:{udp6}\nsocket = ws:127.0.0.1:{{PORT}}\n\
         loadmodule \"proto_udp.so\"\nloadmodule \"proto_ws.so\"\n\
         modparam(\"proto_ws\", \"require_origin\", 0)\n\
         loadmodule \"tm.so\"\nloadmodule \"rr.so\"\n{rr}\n\
         route {{\n\
             if (has_totag()) {{\n\
                 if (loose_route()) {{ t_relay(); exit; }}\n\
                 sl_send_reply(404, \"Not here\"); exit;\n\
             }}\n\
             record_route();\n\
             t_relay();\n\
         }}\n"
    )
}

/// The Record-Route values of a request, top first (a header line may hold several).
fn record_routes(msg: &str) -> Vec<String> {
    headers(msg, "Record-Route")
        .iter()
        .flat_map(|h| h.split(", <"))
        .map(|v| {
            let v = v.trim();
            if v.starts_with('<') {
                v.to_string()
            } else {
                format!("<{v}")
            }
        })
        .collect()
}

/// The next request `method` `peer` receives within 5 s (other datagrams skipped: 100
/// Trying, retransmissions).
fn next_request(peer: &Peer, method: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (m, _) = peer
            .recv_within(left)
            .unwrap_or_else(|| panic!("no {method} reached {} within 5 s", peer.addr));
        if m.starts_with(&format!("{method} ")) {
            return m;
        }
    }
}

/// RFC 5658 §3 as OpenSIPS's `enable_double_rr`: a request that leaves on another socket
/// than it came in on (ws to udp; udp over IPv4 to udp over IPv6) gets two Record-Route
/// values, the outbound socket's on top, each with its transport and `lr`; one that stays on
/// its socket gets one. An in-dialog request carrying both as Route loses both
/// (`loose_route()`), also when the two are of different address families, and goes on by
/// its Request-URI; the Via it gets is the outbound socket's. With `enable_double_rr` 0 there
/// is one value, the inbound socket's (as OpenSIPS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_route_is_doubled_when_the_request_changes_socket() {
    let bind6 = || std::net::UdpSocket::bind("[::1]:0").expect("IPv6 loopback");
    let (udp4, udp6) = (free_udp_port(), bind6().local_addr().unwrap().port());
    let srv = Server::start(&rr_config(udp4, udp6, ""));
    wait_udp(&srv, udp4);
    srv.wait_log(
        &format!("listening on udp:[::1]:{udp6}"),
        Duration::from_secs(10),
    );
    let (p4, q4) = (Peer::new(), Peer::new());
    let p6 = Peer::on("::1");
    let ws_port = srv.port;
    let us4: SocketAddr = format!("127.0.0.1:{udp4}").parse().unwrap();
    let us6: SocketAddr = format!("[::1]:{udp6}").parse().unwrap();

    // ws in, udp out: udp on top, then ws.
    let mut ws = connect_sip(&srv.ws_url()).await;
    let invite = format!(
        "INVITE sip:p4@{} SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bKwsrr1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=wsa\r\nTo: <sip:p4@example.com>\r\n\
         Call-ID: rr-ws\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@a.invalid;transport=ws>\r\n\
         Content-Length: 0\r\n\r\n",
        p4.addr
    );
    send_text(&mut ws, invite).await;
    let got = next_request(&p4, "INVITE");
    let rr = record_routes(&got);
    assert_eq!(rr.len(), 2, "{got}");
    assert!(
        rr[0].contains(&format!("@127.0.0.1:{udp4};transport=udp;lr>")),
        "{got}"
    );
    assert!(
        rr[1].contains(&format!("@127.0.0.1:{ws_port};transport=ws;lr>")),
        "{got}"
    );
    // The same flow token in both.
    assert_eq!(rr[0].split('@').next(), rr[1].split('@').next(), "{got}");

    // udp over IPv4 in, udp over IPv6 out: the IPv6 socket on top, and in the Via.
    let req = udp_request(
        "INVITE",
        &format!("sip:p6@[::1]:{}", p6.addr.port()),
        &p4.addr.to_string(),
        true,
        "rr-v4v6",
        &format!("Contact: <sip:p4@{}>\r\n", p4.addr),
    );
    p4.send(us4, req.as_bytes());
    let got = next_request(&p6, "INVITE");
    let rr = record_routes(&got);
    assert_eq!(rr.len(), 2, "{got}");
    assert!(
        rr[0].contains(&format!("@[::1]:{udp6};transport=udp;lr>")),
        "{got}"
    );
    assert!(
        rr[1].contains(&format!("@127.0.0.1:{udp4};transport=udp;lr>")),
        "{got}"
    );
    assert!(
        header(&got, "Via")
            .unwrap()
            .starts_with(&format!("SIP/2.0/UDP [::1]:{udp6};")),
        "{got}"
    );
    // The callee's BYE (its route set: the Record-Route as received) comes back on the IPv6
    // socket, loses both Routes and reaches the caller by its Contact.
    let bye = format!(
        "BYE sip:p4@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};rport;branch=z9hG4bKp6bye\r\n\
         Route: {}, {}\r\nMax-Forwards: 70\r\nFrom: <sip:p6@[::1]>;tag=p6\r\n\
         To: <sip:alice@example.com>;tag=arr-v4v6\r\nCall-ID: rr-v4v6\r\nCSeq: 1 BYE\r\n\
         Content-Length: 0\r\n\r\n",
        p4.addr, p6.addr, rr[0], rr[1]
    );
    p6.send(us6, bye.as_bytes());
    let got = next_request(&p4, "BYE");
    assert_eq!(header(&got, "Route"), None, "{got}");
    assert!(
        got.starts_with(&format!("BYE sip:p4@{} ", p4.addr)),
        "{got}"
    );

    // Same socket in and out: one value.
    let req = udp_request(
        "INVITE",
        &format!("sip:q4@{}", q4.addr),
        &p4.addr.to_string(),
        true,
        "rr-same",
        "",
    );
    p4.send(us4, req.as_bytes());
    let got = next_request(&q4, "INVITE");
    let rr = record_routes(&got);
    assert_eq!(rr.len(), 1, "{got}");
    assert!(
        rr[0].contains(&format!("@127.0.0.1:{udp4};transport=udp;lr>")),
        "{got}"
    );
    drop(srv);

    // enable_double_rr 0: one value, the inbound socket's.
    let udp4 = free_udp_port();
    let udp6 = bind6().local_addr().unwrap().port();
    let srv = Server::start(&rr_config(
        udp4,
        udp6,
        "modparam(\"rr\", \"enable_double_rr\", 0)",
    ));
    wait_udp(&srv, udp4);
    let mut ws = connect_sip(&srv.ws_url()).await;
    let invite = format!(
        "INVITE sip:p4@{} SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bKwsrr2\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=wsa\r\nTo: <sip:p4@example.com>\r\n\
         Call-ID: rr-ws-single\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@a.invalid;transport=ws>\r\n\
         Content-Length: 0\r\n\r\n",
        p4.addr
    );
    send_text(&mut ws, invite).await;
    let got = next_request(&p4, "INVITE");
    let rr = record_routes(&got);
    assert_eq!(rr.len(), 1, "{got}");
    assert!(
        rr[0].contains(&format!("@127.0.0.1:{};transport=ws;lr>", srv.port)),
        "{got}"
    );
}
