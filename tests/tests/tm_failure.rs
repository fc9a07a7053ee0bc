//! Issue 14, OpenSIPS tm's script side of a transaction: `t_on_failure()` and
//! `failure_route` (a busy or silent callee's call goes to a second one), `t_check_status()`,
//! `$T_reply_code`, `$T_fr_timeout`, `t_on_reply()` (its `drop` of a provisional response),
//! `t_on_branch()` (an edit for one branch only), `t_newtran()` before `t_relay()`. SIPp plays
//! the callers and callees where a scenario fits; raw UDP peers where the test must see every
//! message.
mod common;
use common::udp::*;
use common::*;
use std::net::SocketAddr;
use std::time::Duration;

/// UDP (and WebSocket, unused) with `script` as the routes; `tm` modparam lines.
fn config(udp: u16, tm: &str, script: &str) -> String {
    let mi = free_port();
    format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nmi_http_port = {mi}\n\
         socket = udp:127.0.0.1:{udp}\nsocket = ws:127.0.0.1:{{PORT}}\n\
         loadmodule \"proto_udp.so\"\nloadmodule \"proto_ws.so\"\n\
         loadmodule \"tm.so\"\n{tm}\n{script}\n"
    )
}

/// The issue's example: INVITEs go to `first` with record-routing; `failure_route[next]`
/// sends a call that failed with one of `statuses` to `second`. In-dialog requests follow
/// their Route (our Record-Route) or, where the callee did not copy it (SIPp's built-in UAS
/// does not), their Request-URI (the callee's Contact).
fn failover_script(first: SocketAddr, second: SocketAddr, statuses: &str, pre: &str) -> String {
    format!(
        "route {{\n\
         \x20   if (has_totag()) {{\n\
         \x20       loose_route();\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   record_route();\n\
         \x20   {pre}\n\
         \x20   if (is_method(\"INVITE\")) t_on_failure(\"next\");\n\
         \x20   $du = \"sip:{first};transport=udp\";\n\
         \x20   t_relay();\n\
         \x20   exit;\n\
         }}\n\
         failure_route[next] {{\n\
         \x20   xlog(\"L_INFO\", \"failure_route: $T_reply_code\\n\");\n\
         \x20   if (t_check_status(\"{statuses}\")) {{\n\
         \x20       $du = \"sip:{second};transport=udp\";\n\
         \x20       t_relay();\n\
         \x20   }}\n\
         }}\n"
    )
}

/// SIPp's UAC calls through sipcore; a busy SIPp UAS answers 486 to every call, and
/// `failure_route` sends each to a second SIPp UAS, which answers: every call completes
/// (INVITE, 200, ACK, BYE, 200 over the route set) and the busy one saw each INVITE and the
/// ACK of its 486.
#[test]
fn a_call_refused_486_goes_to_a_second_uas_through_failure_route() {
    let (udp, busy_port, uas_port, uac_port) = (
        free_udp_port(),
        free_udp_port(),
        free_udp_port(),
        free_udp_port(),
    );
    let busy: SocketAddr = format!("127.0.0.1:{busy_port}").parse().unwrap();
    let uas: SocketAddr = format!("127.0.0.1:{uas_port}").parse().unwrap();
    let srv = Server::start(&config(udp, "", &failover_script(busy, uas, "486|408", "")));
    wait_udp(&srv, udp);
    let scenario = sipp_scenario("uas_busy.xml");
    let mut busy_uas = Sipp::spawn(
        "busy",
        &[
            "-sf",
            scenario.to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-p",
            &busy_port.to_string(),
            "-m",
            "3",
        ],
    );
    wait_udp_bound(busy_port);
    let mut second = Sipp::uas(uas_port, 3);
    let uac_sf = sipp_scenario("uac_rr.xml");
    let mut uac = Sipp::spawn(
        "uac",
        &[
            &format!("127.0.0.1:{udp}"),
            "-sf",
            uac_sf.to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-p",
            &uac_port.to_string(),
            "-m",
            "3",
            "-r",
            "3",
            "-timeout",
            "60s",
            "-timeout_error",
        ],
    );
    uac.assert_success(Duration::from_secs(60));
    second.assert_success(Duration::from_secs(30));
    busy_uas.assert_success(Duration::from_secs(30));
    // The UAC never saw the 486 (the failure route replaced it) and saw the 180 of each.
    let msgs = uac.file("messages.log");
    assert!(!msgs.contains("SIP/2.0 486"), "{msgs}");
    srv.wait_log("failure_route: 486", Duration::from_secs(5));
}

/// A callee that never answers: `$T_fr_timeout` (1 s, set by the script for this transaction;
/// the modparam says 30 s) ends its branch with 408, `failure_route` sends the INVITE to a
/// second callee (a new branch: its own Via branch), whose 200 reaches the caller, who never
/// sees the 408.
#[test]
fn fr_timeout_set_by_the_script_sends_a_silent_callees_call_elsewhere() {
    let udp = free_udp_port();
    let (silent, second, caller) = (Peer::new(), Peer::new(), Peer::new());
    let srv = Server::start(&config(
        udp,
        "modparam(\"tm\", \"fr_timeout\", 30)",
        &failover_script(silent.addr, second.addr, "408", "$T_fr_timeout = 1;"),
    ));
    wait_udp(&srv, udp);
    let to: SocketAddr = format!("127.0.0.1:{udp}").parse().unwrap();
    let invite = udp_request(
        "INVITE",
        "sip:bob@example.com",
        &caller.addr.to_string(),
        true,
        "fr-failover",
        "",
    );
    caller.send(to, invite.as_bytes());
    assert!(caller.recv_sip().starts_with("SIP/2.0 100 Trying"));
    let first = silent.recv_sip();
    assert!(first.starts_with("INVITE "), "{first}");
    // The second callee gets it within a few seconds (not 30): fr_timeout was 1 s.
    let (inv2, _) = second
        .recv_within(Duration::from_secs(10))
        .expect("the failure route's branch");
    assert!(inv2.starts_with("INVITE "), "{inv2}");
    let top = |m: &str| header(m, "Via").unwrap().to_string();
    assert_ne!(
        top(&first),
        top(&inv2),
        "a new branch has its own Via branch"
    );
    assert_eq!(header(&inv2, "Call-ID"), Some("fr-failover"));
    // Record-Route of the main route is kept for the failure route's branch.
    assert!(header(&inv2, "Record-Route").is_some(), "{inv2}");
    second.send(to, ok_for(&inv2).as_bytes());
    let r = loop {
        let m = caller.recv_sip();
        if !m.starts_with("SIP/2.0 1") {
            break m;
        }
    };
    assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    srv.wait_log("failure_route: 408", Duration::from_secs(5));
}

/// A failure route that does not relay: the response chosen before it goes upstream as it
/// would have (486 here: `t_check_status` did not match), and the busy callee's 486 is ACKed
/// by sipcore.
#[test]
fn a_failure_route_that_relays_nothing_lets_the_chosen_response_through() {
    let udp = free_udp_port();
    let (busy, unused, caller) = (Peer::new(), Peer::new(), Peer::new());
    let srv = Server::start(&config(
        udp,
        "",
        &failover_script(busy.addr, unused.addr, "^408$", ""),
    ));
    wait_udp(&srv, udp);
    let to: SocketAddr = format!("127.0.0.1:{udp}").parse().unwrap();
    let invite = udp_request(
        "INVITE",
        "sip:bob@example.com",
        &caller.addr.to_string(),
        true,
        "no-failover",
        "",
    );
    caller.send(to, invite.as_bytes());
    let inv = busy.recv_sip();
    let resp = ok_for(&inv).replace("SIP/2.0 200 OK", "SIP/2.0 486 Busy Here");
    busy.send(to, resp.as_bytes());
    let ack = busy.recv_sip();
    assert!(ack.starts_with("ACK "), "{ack}");
    let r = loop {
        let m = caller.recv_sip();
        if !m.starts_with("SIP/2.0 1") {
            break m;
        }
    };
    assert!(r.starts_with("SIP/2.0 486 "), "{r}");
    srv.wait_log("failure_route: 486", Duration::from_secs(5));
    assert!(
        unused.recv_within(Duration::from_millis(200)).is_none(),
        "nothing goes to the second callee"
    );
}

/// `t_on_reply()`: its `onreply_route[name]` sees each response of the transaction
/// (`$T_reply_code`, `t_check_status`) and its `drop` stops a provisional one (the 180 never
/// reaches the caller, the 200 does). `t_on_branch()`: its `branch_route` edits the branch
/// (`append_hf`) before it goes out. `t_newtran()` before `t_relay()`: the transaction exists
/// first (the INVITE's retransmission is absorbed), and `t_relay()` forwards on it.
#[test]
fn reply_and_branch_routes_and_t_newtran() {
    let udp = free_udp_port();
    let (callee, caller) = (Peer::new(), Peer::new());
    let script = format!(
        "route {{\n\
         \x20   t_newtran();\n\
         \x20   t_on_reply(\"watch\");\n\
         \x20   t_on_branch(\"mark\");\n\
         \x20   $du = \"sip:{};transport=udp\";\n\
         \x20   t_relay();\n\
         \x20   exit;\n\
         }}\n\
         onreply_route[watch] {{\n\
         \x20   xlog(\"L_INFO\", \"reply route: $T_reply_code\\n\");\n\
         \x20   if (t_check_status(\"18[0-9]\")) drop;\n\
         }}\n\
         branch_route[mark] {{\n\
         \x20   append_hf(\"X-Branch: marked\\r\\n\");\n\
         }}\n",
        callee.addr
    );
    let srv = Server::start(&config(udp, "", &script));
    wait_udp(&srv, udp);
    let to: SocketAddr = format!("127.0.0.1:{udp}").parse().unwrap();
    let invite = udp_request(
        "INVITE",
        "sip:bob@example.com",
        &caller.addr.to_string(),
        true,
        "routes",
        "",
    );
    caller.send(to, invite.as_bytes());
    assert!(caller.recv_sip().starts_with("SIP/2.0 100 Trying"));
    let inv = callee.recv_sip();
    assert_eq!(header(&inv, "X-Branch"), Some("marked"), "{inv}");
    // The caller retransmits: the transaction absorbs it (only our own timer A copies reach
    // the callee, identical to the first).
    caller.send(to, invite.as_bytes());
    let ringing = ok_for(&inv).replace("SIP/2.0 200 OK", "SIP/2.0 180 Ringing");
    callee.send(to, ringing.as_bytes());
    srv.wait_log("reply route: 180", Duration::from_secs(5));
    callee.send(to, ok_for(&inv).as_bytes());
    let r = loop {
        let m = caller.recv_sip();
        assert!(
            !m.starts_with("SIP/2.0 180"),
            "the dropped 180 reached the caller"
        );
        if !m.starts_with("SIP/2.0 100") {
            break m;
        }
    };
    assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    srv.wait_log("reply route: 200", Duration::from_secs(5));
    // Whatever reached the callee again was a retransmission of ours (timer A), never a
    // second relay of the caller's copy by the script.
    while let Some((m, _)) = callee.recv_within(Duration::from_millis(100)) {
        assert_eq!(m, inv, "not the same INVITE");
    }
}

/// A config naming a failure route that does not exist stops at its file:line:col.
#[test]
fn t_on_failure_of_a_missing_route_is_a_config_error() {
    let udp = free_udp_port();
    let cfg = config(
        udp,
        "",
        "route {\n    t_on_failure(\"nowhere\");\n    t_relay();\n}\n",
    );
    let (status, err, _) = run_to_exit(&cfg, "tm.cfg");
    assert!(!status.success());
    // Line 11 of the rendered config, at the route's name.
    assert!(
        err.contains("tm.cfg:11:18") && err.contains("failure_route[nowhere]"),
        "{err}"
    );
}

/// Serial forking by q (`serialize_branches(1)`), the next group from the failure route.
const SERIAL_SCRIPT: &str = "route {\n\
    \x20   if (is_method(\"REGISTER\")) { save(\"location\"); exit; }\n\
    \x20   if (has_totag()) { loose_route(); t_relay(); exit; }\n\
    \x20   if (!lookup(\"location\")) { sl_send_reply(404, \"Not Found\"); exit; }\n\
    \x20   serialize_branches(1);\n\
    \x20   t_on_failure(\"next\");\n\
    \x20   t_relay();\n\
    \x20   exit;\n\
    }\n\
    failure_route[next] {\n\
    \x20   if (next_branches()) { t_on_failure(\"next\"); t_relay(); }\n\
    }\n";

/// UDP phones registered through `to` as `sip:phone@example.com`, phone `i` with Contact
/// `sip:phone{i}@...` and q `qs[i]`.
fn register_phones(to: SocketAddr, qs: &[&str]) -> Vec<Peer> {
    let phones: Vec<Peer> = qs.iter().map(|_| Peer::new()).collect();
    for (i, (p, q)) in phones.iter().zip(qs).enumerate() {
        let reg = udp_request(
            "REGISTER",
            "sip:example.com",
            &p.addr.to_string(),
            true,
            &format!("serial-reg{i}"),
            &format!("Contact: <sip:phone{i}@{}>;q={q};expires=600\r\n", p.addr),
        )
        .replace("<sip:alice@example.com>", "<sip:phone@example.com>")
        .replace("To: <sip:example.com>", "To: <sip:phone@example.com>");
        p.send(to, reg.as_bytes());
        let r = p.recv_sip();
        assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    }
    phones
}

/// A server on [`SERIAL_SCRIPT`] with phones of q `qs` ([`register_phones`]) and a caller
/// whose INVITE (Call-ID `call`) the first phone has received: (server, its UDP address,
/// phones, caller, the INVITE sent, the INVITE phone 0 got).
fn serial_call(qs: &[&str], call: &str) -> (Server, SocketAddr, Vec<Peer>, Peer, String, String) {
    let udp = free_udp_port();
    let srv = Server::start(&config(udp, "", SERIAL_SCRIPT));
    wait_udp(&srv, udp);
    let to: SocketAddr = format!("127.0.0.1:{udp}").parse().unwrap();
    let phones = register_phones(to, qs);
    let caller = Peer::new();
    let invite = udp_request(
        "INVITE",
        "sip:phone@example.com",
        &caller.addr.to_string(),
        true,
        call,
        "",
    );
    caller.send(to, invite.as_bytes());
    let inv0 = phones[0].recv_sip();
    assert!(inv0.starts_with("INVITE sip:phone0@"), "{inv0}");
    (srv, to, phones, caller, invite, inv0)
}

/// Serial forking (RFC 3261 §16.6, OpenSIPS's `serialize_branches()` / `next_branches()`):
/// three phones of one AoR registered over UDP with q 1.0, 0.5 and 0.5. The INVITE rings the
/// q 1.0 phone alone; its 486 sends the failure route to the next group, both q 0.5 phones in
/// parallel; the first 200 wins and the other, which rang, gets a CANCEL.
#[test]
fn serialize_branches_rings_groups_of_q_in_turn() {
    let (_srv, to, phones, caller, _, inv0) = serial_call(&["1.0", "0.5", "0.5"], "serial-call");
    // The q 0.5 phones are not rung with it (a parallel branch goes out in the same t_relay(),
    // before the first phone could even read its copy).
    for p in &phones[1..] {
        assert!(
            p.recv_within(Duration::from_millis(300)).is_none(),
            "a q 0.5 phone rang in parallel with the q 1.0 one"
        );
    }
    let busy = ok_for(&inv0).replace("SIP/2.0 200 OK", "SIP/2.0 486 Busy Here");
    phones[0].send(to, busy.as_bytes());
    // (Timer A may have retransmitted the INVITE meanwhile: those copies come first.)
    loop {
        let m = phones[0].recv_sip();
        if m.starts_with("ACK ") {
            break;
        }
        assert_eq!(
            m, inv0,
            "neither the ACK of the 486 nor a copy of the INVITE"
        );
    }
    let inv1 = phones[1].recv_sip();
    let inv2 = phones[2].recv_sip();
    let branch = |m: &str| header(m, "Via").unwrap().to_string();
    assert_ne!(branch(&inv1), branch(&inv2), "one branch per phone");
    assert!(inv1.starts_with("INVITE sip:phone1@"), "{inv1}");
    assert!(inv2.starts_with("INVITE sip:phone2@"), "{inv2}");
    let ringing = ok_for(&inv2).replace("SIP/2.0 200 OK", "SIP/2.0 180 Ringing");
    phones[2].send(to, ringing.as_bytes());
    let r = loop {
        let m = caller.recv_sip();
        if m.starts_with("SIP/2.0 180") {
            break m;
        }
        assert!(m.starts_with("SIP/2.0 100"), "{m}");
    };
    assert!(r.starts_with("SIP/2.0 180"), "{r}");
    phones[1].send(to, ok_for(&inv1).as_bytes());
    let ok = caller.recv_sip();
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    let cancel = loop {
        let m = phones[2].recv_sip();
        if !m.starts_with("INVITE ") {
            break m;
        }
    };
    assert!(cancel.starts_with("CANCEL sip:phone2@"), "{cancel}");
    // The caller never saw the 486.
    assert!(!ok.contains("486"));
}

/// RFC 3261 §16.7 step 7: a forked request whose branches all answer 401/407 gets one
/// response upstream carrying every branch's challenge.
#[test]
fn the_challenges_of_every_branch_reach_the_caller() {
    let udp = free_udp_port();
    let script = "route {\n\
        \x20   if (is_method(\"REGISTER\")) { save(\"location\"); exit; }\n\
        \x20   if (!lookup(\"location\")) { sl_send_reply(404, \"Not Found\"); exit; }\n\
        \x20   t_relay();\n\
        \x20   exit;\n\
        }\n";
    let srv = Server::start(&config(udp, "", script));
    wait_udp(&srv, udp);
    let to: SocketAddr = format!("127.0.0.1:{udp}").parse().unwrap();
    let phones = [Peer::new(), Peer::new()];
    for (i, p) in phones.iter().enumerate() {
        let reg = udp_request(
            "REGISTER",
            "sip:example.com",
            &p.addr.to_string(),
            true,
            &format!("chal-reg{i}"),
            &format!("Contact: <sip:dev{i}@{}>;expires=600\r\n", p.addr),
        )
        .replace("<sip:alice@example.com>", "<sip:carol@example.com>")
        .replace("To: <sip:example.com>", "To: <sip:carol@example.com>");
        p.send(to, reg.as_bytes());
        assert!(p.recv_sip().starts_with("SIP/2.0 200 "));
    }
    let caller = Peer::new();
    let msg = udp_request(
        "MESSAGE",
        "sip:carol@example.com",
        &caller.addr.to_string(),
        true,
        "chal-msg",
        "",
    );
    caller.send(to, msg.as_bytes());
    for (i, p) in phones.iter().enumerate() {
        let req = p.recv_sip();
        assert!(req.starts_with("MESSAGE sip:dev"), "{req}");
        let chal = ok_for(&req)
            .replace("SIP/2.0 200 OK", "SIP/2.0 407 Proxy Authentication Required")
            .replace(
                "Content-Length: 0",
                &format!("Proxy-Authenticate: Digest realm=\"realm{i}\", nonce=\"n{i}\"\r\nContent-Length: 0"),
            );
        p.send(to, chal.as_bytes());
    }
    let r = caller.recv_sip();
    assert!(r.starts_with("SIP/2.0 407 "), "{r}");
    let realms: Vec<&str> = headers(&r, "Proxy-Authenticate");
    assert_eq!(realms.len(), 2, "{r}");
    assert!(
        realms.iter().any(|v| v.contains("realm0")) && realms.iter().any(|v| v.contains("realm1")),
        "{r}"
    );
}

/// RFC 3261 §16.10: once the caller cancels, the transaction makes no new branch. With serial
/// forking, the cancelled q 1.0 phone's 487 runs the failure route, whose `next_branches()`
/// and `t_relay()` must not ring the q 0.5 phone; the caller gets the 487.
#[test]
fn a_cancelled_serial_fork_rings_no_next_group() {
    let (_srv, to, phones, caller, invite, inv0) = serial_call(&["1.0", "0.5"], "cserial-call");
    let ringing = ok_for(&inv0).replace("SIP/2.0 200 OK", "SIP/2.0 180 Ringing");
    phones[0].send(to, ringing.as_bytes());
    let cancel = invite
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    caller.send(to, cancel.as_bytes());
    // The phone gets the CANCEL (after any INVITE retransmission) and answers it and 487.
    let c = loop {
        let m = phones[0].recv_sip();
        if !m.starts_with("INVITE ") {
            break m;
        }
    };
    assert!(c.starts_with("CANCEL sip:phone0@"), "{c}");
    phones[0].send(to, ok_for(&c).as_bytes());
    let terminated = ok_for(&inv0).replace("SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated");
    phones[0].send(to, terminated.as_bytes());
    // The caller: 200 for its CANCEL, then the 487 (100 and 180 before them).
    let mut got_487 = false;
    while !got_487 {
        let m = caller.recv_sip();
        got_487 = m.starts_with("SIP/2.0 487");
        assert!(
            got_487
                || m.starts_with("SIP/2.0 100")
                || m.starts_with("SIP/2.0 180")
                || (m.starts_with("SIP/2.0 200") && m.contains("CSeq: 1 CANCEL")),
            "{m}"
        );
    }
    // (A new branch would have held the 487 back.) An INVITE to the next group would have
    // been sent before that 487 (loopback datagrams are queued when their send returns): none
    // is queued.
    assert!(
        phones[1].recv_within(Duration::from_millis(1)).is_none(),
        "the q 0.5 phone rang after the CANCEL"
    );
}
