//! Issue 15 with a real browser: two SIP.js pages in Debian's chromium (headless, driven by
//! `tests/js/browser-run.js`) register through a sipcore WebSocket edge that keeps no
//! registration table, with a registrar behind it (a second sipcore, or Kamailio 5.6), and
//! pass REGISTER, MESSAGE both ways, OPTIONS, a call (INVITE/180/200/ACK, WebRTC media, INFO
//! from either side, BYE from the callee), a second call with BYE from the caller, CANCEL of a
//! ringing call, and 404 for an unregistered user ([`common::browser::BROWSER_STEPS`]).
//!
//! While both pages are registered the edge's MI `ul_dump` lists nobody, and the registrar
//! holds each binding with the edge's Path (flow token, `lr`, `ob`). Every request a page got
//! carries the Vias of its way: the edge's WebSocket hop on top, the registrar's below it, then
//! the edge's UDP hop the request first left by: it came from the registrar through the Path.
//!
//! Weaker than tests/js/scenario.js (edge_path.rs): no re-INVITE, SIP.js pages only.
//! Needs `chromium` (`.ci/run` installs it; `CHROMIUM=/path` overrides) and Node.
mod common;
use common::browser::{browser_run, browser_step, BROWSER_STEPS};
use common::edge::*;
use common::udp::*;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Every step of `stdout` that reports the Vias of a request a page received: the top one is
/// the edge's WebSocket hop, then the registrar's (`registrar`: its `SIP/2.0/UDP host:port`),
/// then the edge's UDP hop (`edge_udp`), then the sending page's.
fn assert_vias_through_the_path(stdout: &str, registrar: &str, edge_udp: &str) {
    let mut seen = 0;
    for step in BROWSER_STEPS {
        let line: Value = serde_json::from_str(browser_step(stdout, step)).unwrap();
        if let Some(via) = line.get("via") {
            let via: Vec<&str> = via
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let ok = via.len() == 4
                && via[0].starts_with("SIP/2.0/WS ")
                && via[1].starts_with(&format!("{registrar};"))
                && via[2].starts_with(&format!("{edge_udp};"))
                && via[3].starts_with("SIP/2.0/WS ");
            assert!(ok, "{step}: Via {via:?} is not edge, registrar, edge, page");
            seen += 1;
        }
    }
    // MESSAGE x2, OPTIONS, INVITE x2, INFO x2, BYE x2, the cancelled call's INVITE (its CANCEL
    // has one Via: each stateful hop sends its own, RFC 3261 §16.10).
    assert_eq!(seen, 10, "{stdout}");
}

/// The edge's MI `ul_dump` now: no AoR in any domain.
fn assert_edge_keeps_no_registrations(edge: &Server) {
    let dump = mi_call(mi_port_of(edge), "ul_dump", json!([]));
    let domains = dump["Domains"].as_array().expect("ul_dump lists Domains");
    assert!(
        domains
            .iter()
            .all(|d| d["AORs"].as_array().is_none_or(|a| a.is_empty())),
        "the edge holds registrations: {dump}"
    );
    assert!(!dump.to_string().contains("@example.com"), "{dump}");
}

/// Real chromium pages through the edge with a second sipcore as the registrar.
#[test]
fn browser_pages_reach_each_other_through_the_edge_and_a_registrar_behind_it() {
    ensure_node_modules();
    let (registrar, reg_udp, edge, edge_udp) = edge_before_sipcore();
    let path = format!("@127.0.0.1:{edge_udp};transport=udp;lr;ob>");
    let registered = || {
        assert_edge_keeps_no_registrations(&edge);
        // The registrar holds both pages' bindings, each with the edge's Path.
        let dump = mi_call(mi_port_of(&registrar), "ul_dump", json!([])).to_string();
        for aor in ["alice@example.com", "bob@example.com"] {
            assert!(dump.contains(aor), "{aor} not registered: {dump}");
        }
        assert_eq!(dump.matches(&path).count(), 2, "{path} twice: {dump}");
    };
    let stdout = browser_run(&edge.ws_url(), &registered, &|| {
        format!(
            "--- edge:\n{}\n--- registrar:\n{}",
            edge.log(),
            registrar.log()
        )
    });
    assert_vias_through_the_path(
        &stdout,
        &format!("SIP/2.0/UDP 127.0.0.1:{reg_udp}"),
        &format!("SIP/2.0/UDP 127.0.0.1:{edge_udp}"),
    );
    assert_edge_keeps_no_registrations(&edge);
}

/// The same with Kamailio 5.6 (Debian; `registrar` with `use_path`) as the registrar.
#[test]
fn browser_pages_reach_each_other_through_the_edge_with_kamailio_as_registrar() {
    ensure_node_modules();
    let (kam, kam_udp, edge, edge_udp) = edge_before_kamailio();
    let path = format!("@127.0.0.1:{edge_udp};transport=udp;lr;ob>");
    let registered = || {
        assert_edge_keeps_no_registrations(&edge);
        // Kamailio logged each page's REGISTER with the edge's Path (its xlog line).
        for aor in ["alice@example.com", "bob@example.com"] {
            let logged = |log: &str| {
                log.lines()
                    .any(|l| l.contains(&format!("REGISTER sip:{aor} path=")) && l.contains(&path))
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !logged(&kam.log()) {
                assert!(
                    Instant::now() < deadline,
                    "no REGISTER of {aor} with {path}:\n{}",
                    kam.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let stdout = browser_run(&edge.ws_url(), &registered, &|| {
        format!("--- edge:\n{}\n--- kamailio:\n{}", edge.log(), kam.log())
    });
    assert_vias_through_the_path(
        &stdout,
        &format!("SIP/2.0/UDP 127.0.0.1:{kam_udp}"),
        &format!("SIP/2.0/UDP 127.0.0.1:{edge_udp}"),
    );
    assert_edge_keeps_no_registrations(&edge);
}
