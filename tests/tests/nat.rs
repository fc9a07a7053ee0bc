//! SIP over UDP behind a NAT (issue 14 part 4): OpenSIPS's `force_rport()`, nathelper's
//! `nat_uac_test(flags)` and `fix_nated_contact()` in a script, against a "phone" whose Via
//! and Contact name a private address nobody can reach, while its datagrams come from a
//! loopback port (what a NAT does to them), and SIPp (Debian `sip-tester`) as the callee.
mod common;

use common::udp::{
    free_udp_port, sipp_scenario, udp_request, wait_udp, wait_udp_bound, Peer, Sipp,
};
use common::{free_port, header, headers, Server};
use std::net::SocketAddr;
use std::time::Duration;

/// A proxy on udp that treats a client as behind a NAT when nathelper's tests 1 (private
/// Contact), 2 (Via host is not the source) or 16 (Via port is not the source port) say so:
/// `force_rport()`, and `fix_nated_contact()` for INVITEs; a NATed callee's reply gets its
/// Contact fixed in `onreply_route`. OPTIONS are answered here; INVITEs are record-routed and
/// relayed statefully to their Request-URI; in-dialog requests follow `loose_route()`.
fn config(udp: u16) -> String {
    let mi = free_port();
    format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nmi_http_port = {mi}\n\
         socket = udp:127.0.0.1:{udp}\nsocket = ws:127.0.0.1:{{PORT}}\n\
         loadmodule \"proto_udp.so\"\nloadmodule \"proto_ws.so\"\n\
         loadmodule \"tm.so\"\nloadmodule \"rr.so\"\nloadmodule \"nathelper.so\"\n\
         loadmodule \"registrar.so\"\nloadmodule \"usrloc.so\"\n\
         route {{\n\
             if (nat_uac_test(19)) {{\n\
                 force_rport();\n\
                 if (is_method(\"INVITE|REGISTER\")) fix_nated_contact();\n\
             }}\n\
             if (has_totag()) {{\n\
                 if (loose_route()) {{ t_relay(); exit; }}\n\
                 if (is_method(\"ACK\")) {{ if (t_check_trans()) t_relay(); exit; }}\n\
                 sl_send_reply(404, \"Not here\"); exit;\n\
             }}\n\
             if (is_method(\"OPTIONS\")) {{ sl_send_reply(200, \"OK\"); exit; }}\n\
             if (is_method(\"REGISTER\")) {{ save(\"location\"); exit; }}\n\
             if ($rd != \"127.0.0.1\" && !lookup(\"location\")) {{\n\
                 sl_send_reply(404, \"Not Found\"); exit;\n\
             }}\n\
             record_route();\n\
             if ($ci == \"nat-named\") t_on_reply(\"nat\");\n\
             t_relay();\n\
         }}\n\
         onreply_route {{\n\
             if ($ci != \"nat-named\" && nat_uac_test(1)) fix_nated_contact();\n\
         }}\n\
         onreply_route[nat] {{\n\
             if (nat_uac_test(1)) fix_nated_contact();\n\
         }}\n"
    )
}

fn start() -> (Server, SocketAddr) {
    let udp = free_udp_port();
    let srv = Server::start(&config(udp));
    wait_udp(&srv, udp);
    (srv, format!("127.0.0.1:{udp}").parse().unwrap())
}

/// The next datagram on `peer` that starts with `start`, within 5 s (others skipped).
fn next_starting(peer: &Peer, start: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (m, _) = peer
            .recv_within(left)
            .unwrap_or_else(|| panic!("nothing starting with {start:?} reached {}", peer.addr));
        if m.starts_with(start) {
            return m;
        }
    }
}

/// A phone behind a NAT writes its private address in its Via (no `rport`): `force_rport()`
/// sends our reply to the port its datagram came from, not to the port its Via names (where
/// RFC 3261 §18.2.2 sends it otherwise); a client that is not behind a NAT keeps the
/// standard behaviour (no `rport` added).
#[test]
fn force_rport_answers_a_natted_client_at_its_source_port() {
    let (_srv, us) = start();
    let (phone, other) = (Peer::new(), Peer::new());
    // The Via names a private host and, as port, `other`'s: without force_rport() the 200
    // would go to 127.0.0.1:<other's port>.
    let sent_by = format!("10.255.255.1:{}", other.addr.port());
    let req = udp_request("OPTIONS", "sip:127.0.0.1", &sent_by, false, "nat-o1", "");
    phone.send(us, req.as_bytes());
    let r = next_starting(&phone, "SIP/2.0 200 OK");
    assert_eq!(header(&r, "Call-ID"), Some("nat-o1"), "{r}");
    let via = header(&r, "Via").unwrap();
    assert!(via.contains(&format!("rport={}", phone.addr.port())), "{r}");
    assert!(via.contains("received=127.0.0.1"), "{r}");
    // Nothing went to `other`: the first datagram it gets is the answer to its own request
    // (one source, one receiving thread: requests are handled in order). It is not behind a
    // NAT (its Via is its own address): no rport is added.
    let own = other.addr.to_string();
    let req = udp_request("OPTIONS", "sip:127.0.0.1", &own, false, "nat-o2", "");
    other.send(us, req.as_bytes());
    let r = other.recv_sip();
    assert_eq!(header(&r, "Call-ID"), Some("nat-o2"), "{r}");
    assert!(!header(&r, "Via").unwrap().contains("rport"), "{r}");
}

/// A phone behind a NAT calls SIPp (`tests/sipp/uas_call.xml`), which hangs up: SIPp's BYE
/// goes to the Contact it was given, which `fix_nated_contact()` made the phone's source
/// address, through the proxy (record-routed), and reaches the phone; the phone's 200 ends
/// SIPp's call. Its private Contact (`10.255.255.1`, unreachable) would have lost the BYE.
#[test]
fn fix_nated_contact_lets_the_callee_hang_up_on_a_natted_caller() {
    let (_srv, us) = start();
    let phone = Peer::new();
    let uas_port = free_udp_port();
    let sf = sipp_scenario("uas_call.xml");
    let p = uas_port.to_string();
    let mut uas = Sipp::spawn(
        "uas-nat",
        &[
            "-sf",
            sf.to_str().unwrap(),
            "-set",
            "bye_from",
            "us",
            "-i",
            "127.0.0.1",
            "-p",
            &p,
            "-m",
            "1",
        ],
    );
    wait_udp_bound(uas_port);
    let private = "10.255.255.1:5060";
    let sdp = "v=0\r\no=- 1 1 IN IP4 10.255.255.1\r\ns=-\r\nc=IN IP4 10.255.255.1\r\nt=0 0\r\n\
               m=audio 4000 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:uas@127.0.0.1:{uas_port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {private};branch=z9hG4bKnatinv\r\nMax-Forwards: 70\r\n\
         From: <sip:phone@example.com>;tag=natphone\r\nTo: <sip:uas@example.com>\r\n\
         Call-ID: nat-call\r\nCSeq: 1 INVITE\r\nContact: <sip:phone@{private}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    phone.send(us, invite.as_bytes());
    let ok = next_starting(&phone, "SIP/2.0 200 OK");
    assert_eq!(header(&ok, "CSeq"), Some("1 INVITE"), "{ok}");
    let to = header(&ok, "To").unwrap();
    let contact = header(&ok, "Contact").unwrap();
    let target = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    // The route set: the Record-Route, reversed (one value here: one socket).
    let mut routes = headers(&ok, "Record-Route");
    routes.reverse();
    assert_eq!(routes.len(), 1, "{ok}");
    let ack = format!(
        "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {private};branch=z9hG4bKnatack\r\n\
         Route: {}\r\nMax-Forwards: 70\r\nFrom: <sip:phone@example.com>;tag=natphone\r\n\
         To: {to}\r\nCall-ID: nat-call\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        routes[0]
    );
    phone.send(us, ack.as_bytes());
    // SIPp hangs up: its BYE reaches the phone through the proxy.
    let bye = next_starting(&phone, "BYE ");
    assert!(
        bye.starts_with(&format!("BYE sip:phone@{} ", phone.addr)),
        "the BYE goes to the fixed Contact:\n{bye}"
    );
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for v in headers(&bye, "Via") {
        ok.push_str(&format!("Via: {v}\r\n"));
    }
    for h in ["From", "To", "Call-ID", "CSeq"] {
        ok.push_str(&format!("{h}: {}\r\n", header(&bye, h).unwrap()));
    }
    ok.push_str("Content-Length: 0\r\n\r\n");
    phone.send(us, ok.as_bytes());
    uas.assert_success(Duration::from_secs(20));
    let seen = uas.file("messages.log");
    assert!(
        seen.contains(&format!("Contact: <sip:phone@{}>", phone.addr)),
        "SIPp got the fixed Contact:\n{seen}"
    );
}

/// A callee behind a NAT answers with its private Contact: `fix_nated_contact()` in
/// `onreply_route` gives the caller the callee's source address instead, so the caller's ACK
/// and BYE can reach it; also in an `onreply_route[name]` armed by `t_on_reply()`.
#[test]
fn fix_nated_contact_in_onreply_route_fixes_a_natted_callees_answer() {
    let (_srv, us) = start();
    for call_id in ["nat-reply", "nat-named"] {
        natted_callee_answers(us, call_id);
    }
}

fn natted_callee_answers(us: SocketAddr, call_id: &str) {
    let (caller, callee) = (Peer::new(), Peer::new());
    let own = caller.addr.to_string();
    let req = udp_request(
        "INVITE",
        &format!("sip:callee@{}", callee.addr),
        &own,
        true,
        call_id,
        &format!("Contact: <sip:caller@{own}>\r\n"),
    );
    caller.send(us, req.as_bytes());
    let inv = next_starting(&callee, "INVITE ");
    // The caller is not behind a NAT: its Contact is untouched.
    assert_eq!(
        header(&inv, "Contact"),
        Some(format!("<sip:caller@{own}>").as_str()),
        "{inv}"
    );
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for v in headers(&inv, "Via") {
        ok.push_str(&format!("Via: {v}\r\n"));
    }
    for rr in headers(&inv, "Record-Route") {
        ok.push_str(&format!("Record-Route: {rr}\r\n"));
    }
    for h in ["From", "Call-ID", "CSeq"] {
        ok.push_str(&format!("{h}: {}\r\n", header(&inv, h).unwrap()));
    }
    ok.push_str(&format!(
        "To: {};tag=callee\r\nContact: <sip:callee@192.168.1.50:5060;transport=udp>\r\n\
         Content-Length: 0\r\n\r\n",
        header(&inv, "To").unwrap()
    ));
    callee.send(us, ok.as_bytes());
    let r = next_starting(&caller, "SIP/2.0 200 OK");
    assert_eq!(
        header(&r, "Contact"),
        Some(format!("<sip:callee@{};transport=udp>", callee.addr).as_str()),
        "{r}"
    );
}

/// A phone behind a NAT registers with its private Contact, and the script calls
/// `fix_nated_contact()` before `save()`: the 200 lists the Contact the phone sent (as
/// OpenSIPS, whose save() reads the message without its lumps; phones check that their
/// Contact is listed), goes to the phone's source port (`force_rport()`), and a request for
/// the phone's AoR reaches it at its source address with that Contact as Request-URI.
#[test]
fn a_natted_phone_registers_and_is_reached_at_its_source_address() {
    let (_srv, us) = start();
    let (phone, caller) = (Peer::new(), Peer::new());
    let private = "10.255.255.1:5060";
    let contact = format!("<sip:phone@{private}>");
    let req = udp_request(
        "REGISTER",
        "sip:example.com",
        private,
        false,
        "nat-reg",
        &format!("Contact: {contact}\r\nExpires: 600\r\n"),
    )
    .replace("To: <sip:example.com>", "To: <sip:phone@example.com>")
    .replace(
        "From: <sip:alice@example.com>",
        "From: <sip:phone@example.com>",
    );
    phone.send(us, req.as_bytes());
    let r = next_starting(&phone, "SIP/2.0 200 OK");
    assert_eq!(header(&r, "Call-ID"), Some("nat-reg"), "{r}");
    let listed = header(&r, "Contact").unwrap();
    assert!(listed.starts_with(&contact), "the phone's own Contact: {r}");
    let own = caller.addr.to_string();
    let msg = udp_request(
        "MESSAGE",
        "sip:phone@example.com",
        &own,
        true,
        "nat-msg",
        "",
    );
    caller.send(us, msg.as_bytes());
    let got = next_starting(&phone, "MESSAGE ");
    assert!(
        got.starts_with(&format!("MESSAGE sip:phone@{private} ")),
        "{got}"
    );
}
