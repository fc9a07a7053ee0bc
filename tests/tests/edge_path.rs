//! Issue 15, parts 1 and 2: sipcore as the WebSocket edge in front of a registrar, with no
//! registration table of its own. The edge adds its Path (RFC 3327) to each REGISTER, with the
//! flow token of the client's connection and `ob` (RFC 5626 §5.2), and relays it over UDP to
//! the registrar; the registrar (a second sipcore here) stores the Path and sends each request
//! for the user back through it, where the token picks the client's WebSocket. JsSIP and
//! SIP.js (tests/js/scenario.js) pass MESSAGE both ways, OPTIONS, calls with INFO, re-INVITE
//! and BYE from either side, CANCEL and an unregistered callee through the two.
mod common;
use common::edge::*;
use common::udp::*;
use common::*;

fn run_scenario(stack: &str) {
    ensure_node_modules();
    let (registrar, _, edge, edge_udp) = edge_before_sipcore();
    let stdout = scenario_through(&edge, stack, &|| registrar.log());
    let steps: Vec<&str> = stdout.lines().filter(|l| l.contains("\"step\"")).collect();
    assert!(steps.len() >= 10, "{stdout}");
    // The REGISTERs reached the registrar with the edge's Path (its UDP address, a flow
    // token, lr and ob), and the edge kept no registration of its own (it has no save()).
    let edge_path = format!("@127.0.0.1:{edge_udp};transport=udp;lr;ob>");
    let log = registrar.wait_log(
        "REGISTER sip:alice@example.com path=<sip:",
        std::time::Duration::from_secs(5),
    );
    assert!(
        log.lines()
            .any(|l| l.contains("REGISTER sip:alice@example.com") && l.contains(&edge_path)),
        "{log}"
    );
    let edge_dump = mi_call(mi_port_of(&edge), "ul_dump", serde_json::json!([])).to_string();
    assert!(!edge_dump.contains("@example.com"), "{edge_dump}");
}

/// Every scenario of tests/js/scenario.js with `stack` through `edge`; its stdout (panics
/// with the logs, `behind`: the registrar's, when a step failed).
fn scenario_through(edge: &Server, stack: &str, behind: &dyn Fn() -> String) -> String {
    scenario_js(stack, &edge.ws_url(), None, "all", &|| {
        format!("--- edge:\n{}\n--- behind it:\n{}", edge.log(), behind())
    })
}

#[test]
fn jssip_calls_sipjs_through_the_edge_and_a_registrar_behind_it() {
    run_scenario("jssip,sipjs");
}

#[test]
fn sipjs_calls_jssip_through_the_edge_and_a_registrar_behind_it() {
    run_scenario("sipjs,jssip");
}

/// A client that registers directly with a Path naming someone else (to have its callers'
/// requests sent there) is refused 403: the top Path must name the hop the REGISTER came from.
#[test]
fn a_forged_path_is_refused() {
    let reg_udp = free_udp_port();
    let registrar = Server::start(&registrar_config(reg_udp));
    wait_udp(&registrar, reg_udp);
    let to: std::net::SocketAddr = format!("127.0.0.1:{reg_udp}").parse().unwrap();
    let phone = Peer::new();
    let reg = |path: &str, id: &str| {
        udp_request(
            "REGISTER",
            "sip:example.com",
            &phone.addr.to_string(),
            true,
            id,
            &format!(
                "Contact: <sip:mallory@{}>;expires=600\r\nPath: {path}\r\nSupported: path\r\n",
                phone.addr
            ),
        )
        .replace("<sip:alice@example.com>", "<sip:mallory@example.com>")
        .replace("To: <sip:example.com>", "To: <sip:mallory@example.com>")
    };
    phone.send(to, reg("<sip:192.0.2.66:5060;lr>", "forged").as_bytes());
    let r = phone.recv_sip();
    assert!(r.starts_with("SIP/2.0 403 "), "{r}");
    // Its own address in the Path is accepted, and returned (the UA supports path); a
    // `received` naming someone else is not followed: its callers' requests come to it.
    let decoy = Peer::new();
    let own = format!(
        "<sip:{};lr;received=sip%3A{}%3A{}>",
        phone.addr,
        decoy.addr.ip(),
        decoy.addr.port()
    );
    phone.send(to, reg(&own, "own").as_bytes());
    let r = phone.recv_sip();
    assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    assert_eq!(header(&r, "Path"), Some(own.as_str()), "{r}");
    let caller = Peer::new();
    let m = udp_request(
        "MESSAGE",
        "sip:mallory@example.com",
        &caller.addr.to_string(),
        true,
        "to-mallory",
        "",
    );
    caller.send(to, m.as_bytes());
    let got = phone.recv_sip();
    assert!(got.starts_with("MESSAGE "), "{got}");
    assert!(
        decoy
            .recv_within(std::time::Duration::from_millis(300))
            .is_none(),
        "the request went to the Path's received address"
    );
    registrar.wait_log(
        "does not name the hop it came from",
        std::time::Duration::from_secs(5),
    );
}

/// The first test: JsSIP and SIP.js register through the sipcore edge with Kamailio
/// as the registrar and pass every scenario (MESSAGE, OPTIONS, calls with INFO, re-INVITE, BYE
/// from either side, CANCEL, 404), with no registration table in the edge. Kamailio used to
/// answer every request to a registered browser 404: it could not reach an `.invalid` contact
/// without a Path.
#[test]
fn browsers_reach_each_other_through_the_edge_with_kamailio_as_registrar() {
    ensure_node_modules();
    let (kam, _, edge, edge_udp) = edge_before_kamailio();
    for stack in ["jssip,sipjs", "sipjs,jssip"] {
        scenario_through(&edge, stack, &|| kam.log());
    }
    let edge_path = format!("@127.0.0.1:{edge_udp};transport=udp;lr;ob>");
    assert!(
        kam.log()
            .lines()
            .any(|l| l.contains("REGISTER sip:alice@example.com") && l.contains(&edge_path)),
        "{}",
        kam.log()
    );
    let edge_dump = mi_call(mi_port_of(&edge), "ul_dump", serde_json::json!([])).to_string();
    assert!(!edge_dump.contains("@example.com"), "{edge_dump}");
}

/// RFC 5626 §6 at the registrar: an Outbound REGISTER (reg-id, +sip.instance, Supported:
/// outbound) whose first hop's Path lacks `ob` is refused 439; with `ob` (or with no Path: we
/// are the first hop) the 200 carries `Require: outbound` and `Flow-Timer`.
#[test]
fn outbound_registers_get_flow_timer_or_439() {
    let reg_udp = free_udp_port();
    let registrar = Server::start(&registrar_config(reg_udp));
    wait_udp(&registrar, reg_udp);
    let to: std::net::SocketAddr = format!("127.0.0.1:{reg_udp}").parse().unwrap();
    let phone = Peer::new();
    let reg = |path: Option<&str>, id: &str| {
        let path = path.map(|p| format!("Path: {p}\r\n")).unwrap_or_default();
        udp_request(
            "REGISTER",
            "sip:example.com",
            &phone.addr.to_string(),
            true,
            id,
            &format!(
                "Contact: <sip:ob@{}>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";expires=600\r\n\
                 {path}Supported: outbound, path\r\n",
                phone.addr
            ),
        )
        .replace("<sip:alice@example.com>", "<sip:ob@example.com>")
        .replace("To: <sip:example.com>", "To: <sip:ob@example.com>")
    };
    phone.send(
        to,
        reg(Some(&format!("<sip:{};lr>", phone.addr)), "no-ob").as_bytes(),
    );
    let r = phone.recv_sip();
    assert!(r.starts_with("SIP/2.0 439 "), "{r}");
    phone.send(
        to,
        reg(Some(&format!("<sip:{};lr;ob>", phone.addr)), "ob").as_bytes(),
    );
    let r = phone.recv_sip();
    assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    assert_eq!(header(&r, "Require"), Some("outbound"), "{r}");
    assert_eq!(header(&r, "Flow-Timer"), Some("120"), "{r}");
    phone.send(to, reg(None, "direct").as_bytes());
    let r = phone.recv_sip();
    assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    assert_eq!(header(&r, "Flow-Timer"), Some("120"), "{r}");
}

/// RFC 5626 §5.3 at the edge: a request the registrar sends through the Path of a client
/// whose WebSocket has closed is answered 430 Flow Failed by the edge (one log line), and the
/// registrar passes it back to the caller (a phone on UDP here); a client still connected is
/// reached through the same edge.
#[tokio::test]
async fn a_request_through_the_path_of_a_closed_flow_gets_430() {
    use common::sipws::{ask, register};
    use common::ws::{connect_sip, next_any_text, send_text, status};
    let (registrar, reg_udp, edge, _) = edge_before_sipcore();
    let mut ws = std::collections::HashMap::new();
    for user in ["bob", "carol"] {
        let mut w = connect_sip(&edge.ws_url()).await;
        let c = vec![format!("<sip:{user}@{user}.invalid;transport=ws>")];
        let r = ask(&mut w, register(user, &format!("reg-{user}"), 1, &c, 600)).await;
        assert_eq!(status(&r), 200, "{r}\n{}", registrar.log());
        ws.insert(user, w);
    }
    // Bob's connection closes; the registrar still holds his binding and its Path.
    drop(ws.remove("bob"));
    let to: std::net::SocketAddr = format!("127.0.0.1:{reg_udp}").parse().unwrap();
    let phone = Peer::new();
    let msg = |user: &str, id: &str| {
        udp_request(
            "MESSAGE",
            &format!("sip:{user}@example.com"),
            &phone.addr.to_string(),
            true,
            id,
            "",
        )
    };
    // The edge notices the close on its own time: ask until the answer is 430 (a 408 or
    // anything else fails the test).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        phone.send(to, msg("bob", &format!("m-bob-{n}")).as_bytes());
        let r = phone.recv_sip();
        let code: u16 = r[8..11].parse().unwrap_or(0);
        if code == 430 {
            break;
        }
        assert!(
            code == 480 && std::time::Instant::now() < deadline,
            "{r}\n--- edge:\n{}",
            edge.log()
        );
    }
    edge.wait_log("430 Flow Failed", std::time::Duration::from_secs(5));
    // Carol, still connected, is reached through the same edge.
    phone.send(to, msg("carol", "m-carol").as_bytes());
    let w = ws.get_mut("carol").unwrap();
    let got = next_any_text(w).await;
    assert!(got.starts_with("MESSAGE "), "{got}");
    send_text(w, ok_for(&got)).await;
    let r = phone.recv_sip();
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
}
