//! Statistics end to end: `GET /metrics` from the real binary checked by Prometheus's own
//! `promtool check metrics`, counters that move with traffic, MI `get_statistics` /
//! `reset_statistics` (OpenSIPS's answer shapes), and the Grafana dashboard in
//! `contrib/grafana/` naming only metrics the server exports.
mod common;

use common::metrics::*;
use common::sipws::*;
use common::ws::connect_sip;
use common::*;
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::UdpSocket;

fn get(v: &std::collections::HashMap<String, f64>, name: &str) -> f64 {
    *v.get(name)
        .unwrap_or_else(|| panic!("{name} is not exported: {v:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_move_with_traffic() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (cfg, mi_port) = stats_config(collector.local_addr().unwrap().port());
    let srv = Server::start(&cfg);
    wait_port(mi_port);

    let first = scrape(mi_port);
    promtool_check(&first).unwrap_or_else(|e| panic!("promtool: {e}\n{first}"));
    let before = values(&first);
    for name in [
        "sipcore_core_rcv_requests_total",
        "sipcore_sl_sent_replies_total",
        "sipcore_registrar_accepted_regs_total",
        "sipcore_usrloc_registered_users",
        "sipcore_shmem_real_used_size",
        "sipcore_ws_connections",
        "sipcore_ws_handshakes_accepted_total",
        "sipcore_hep_sent_total",
        "sipcore_hep_collector_dropped_total",
        "sipcore_udp_received_total",
        "sipcore_udp_dropped_not_sip_total",
    ] {
        get(&before, name);
    }
    assert!(get(&before, "sipcore_shmem_real_used_size") > 0.0);

    // An OPTIONS and a REGISTER over one connection, then a normal close.
    let mut ws = register_one(&srv.ws_url(), "alice").await;
    let r = ask(&mut ws, options_request("stats-1", "z9hG4bKstats1", 1)).await;
    assert!(status(&r) >= 200, "{r}");
    let b = before.clone();
    let during = wait_metrics(mi_port, "the OPTIONS and the REGISTER", move |v| {
        get(v, "sipcore_core_rcv_requests_total")
            >= get(&b, "sipcore_core_rcv_requests_total") + 2.0
            && get(v, "sipcore_sl_sent_replies_total")
                >= get(&b, "sipcore_sl_sent_replies_total") + 2.0
            && get(v, "sipcore_registrar_accepted_regs_total") >= 1.0
            && get(v, "sipcore_usrloc_registered_users") == 1.0
            && v.get("sipcore_usrloc_location_users") == Some(&1.0)
            && v.get("sipcore_usrloc_location_contacts") == Some(&1.0)
            && get(v, "sipcore_ws_connections") == 1.0
            && get(v, "sipcore_ws_handshakes_accepted_total") >= 1.0
    });
    assert!(get(&during, "sipcore_ws_connections_total") >= 1.0);
    let text = scrape(mi_port);
    promtool_check(&text).unwrap_or_else(|e| panic!("promtool: {e}\n{text}"));

    ws.send(tokio_tungstenite::tungstenite::Message::Close(None))
        .await
        .unwrap();
    let after = wait_metrics(mi_port, "the connection closed", |v| {
        get(v, "sipcore_ws_connections") == 0.0
            && get(v, "sipcore_usrloc_registered_users") == 0.0
            && get(v, "sipcore_ws_close_received_none_total") >= 1.0
    });
    assert!(
        get(&after, "sipcore_ws_close_sent_none_total") >= 1.0,
        "our echo of the Close"
    );

    // A refused handshake (no Upgrade: a plain HTTP GET) is counted by its status.
    let (st, _, _) = http_get(srv.port, "/");
    assert!(st >= 400, "{st}");
    let refused = |v: &std::collections::HashMap<String, f64>| -> f64 {
        v.iter()
            .filter(|(k, _)| k.starts_with("sipcore_ws_handshakes_refused_"))
            .map(|(_, x)| *x)
            .sum()
    };
    let before_refusal = refused(&after);
    wait_metrics(mi_port, "the refused handshake", move |v| {
        refused(v) >= before_refusal + 1.0
    });

    // A message over ws_max_msg_size (65535) is a limit violation: Close 1009.
    let mut big = connect_sip(&srv.ws_url()).await;
    let _ = big
        .send(tokio_tungstenite::tungstenite::Message::text(
            "x".repeat(70_000),
        ))
        .await;
    wait_metrics(mi_port, "the oversized message", |v| {
        get(v, "sipcore_ws_limit_violations_total") >= 1.0
            && get(v, "sipcore_ws_close_sent_1009_total") >= 1.0
    });
    drop(big);

    // The same figures over MI, in OpenSIPS's shapes.
    let cfg_path = &srv.cfg_path;
    let all = mi(cfg_path, &["get_statistics", "all"]).await.unwrap();
    assert!(all["core:rcv_requests"].as_u64().unwrap() >= 2, "{all}");
    assert!(
        all["ws:connections"].is_u64() && all["hep:sent"].is_u64(),
        "{all}"
    );
    let groups = mi(cfg_path, &["get_statistics", "core:", "registrar:"])
        .await
        .unwrap();
    let keys: HashSet<&str> = groups
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        keys.iter()
            .all(|k| k.starts_with("core:") || k.starts_with("registrar:")),
        "{groups}"
    );
    assert!(keys.contains("registrar:accepted_regs"), "{groups}");
    assert_eq!(
        mi(cfg_path, &["get_statistics", "no_such_stat"]).await,
        Err(json!({"code": 404, "message": "Statistics Not Found"}))
    );
    assert_eq!(
        mi(
            cfg_path,
            &["reset_statistics", "rcv_requests", "accepted_regs"]
        )
        .await,
        Ok(json!("OK"))
    );
    let one = mi(cfg_path, &["get_statistics", "rcv_requests"])
        .await
        .unwrap();
    assert_eq!(one, json!({"core:rcv_requests": 0}));
    let reset = scrape(mi_port);
    let v = values(&reset);
    assert_eq!(get(&v, "sipcore_registrar_accepted_regs_total"), 0.0);
    // Gauges are not reset.
    assert!(get(&v, "sipcore_shmem_real_used_size") > 0.0);
    assert_eq!(
        mi(cfg_path, &["reset_all_statistics"]).await,
        Ok(json!("OK"))
    );
    let all = mi(cfg_path, &["get_statistics", "all"]).await.unwrap();
    assert_eq!(all["sl:sent_replies"], json!(0), "{all}");
    assert!(all["shmem:real_used_size"].as_u64().unwrap() > 0);

    // Another path is still 404.
    let (st, _, _) = http_get(mi_port, "/nope");
    assert_eq!(st, 404);
}

/// Every `sipcore_...` name in an expression (or a variable's query) of the dashboard.
fn dashboard_metrics(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("expr" | "definition" | "query", Value::String(e)) => {
                        for (i, _) in e.match_indices("sipcore_") {
                            let name: String = e[i..]
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                                .collect();
                            out.insert(name);
                        }
                    }
                    _ => dashboard_metrics(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| dashboard_metrics(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_dashboard_uses_only_exported_metrics() {
    let path = repo().join("contrib/grafana/sipcore.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    assert!(
        dash["panels"].as_array().is_some_and(|p| p.len() >= 8),
        "panels"
    );
    let mut used = HashSet::new();
    dashboard_metrics(&dash, &mut used);
    assert!(used.len() >= 15, "{used:?}");

    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (cfg, mi_port) = stats_config(collector.local_addr().unwrap().port());
    let srv = Server::start(&cfg);
    wait_port(mi_port);
    // The location table exists once something registered.
    let _ws = register_one(&srv.ws_url(), "bob").await;
    let v = wait_metrics(mi_port, "the location table", |v| {
        v.contains_key("sipcore_usrloc_location_users")
    });
    let mut missing: Vec<&String> = used.iter().filter(|n| !v.contains_key(*n)).collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "the dashboard names metrics the server does not export: {missing:?}"
    );
    // And a fresh connection is all the dashboard needs to show something.
    let _other = connect_sip(&srv.ws_url()).await;
}
