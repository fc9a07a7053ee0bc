//! The management interface end to end: `sipcore mi ...` (the CLI) and raw JSON-RPC 2.0 over
//! HTTP against a running `sipcore` with proto_ws and proto_hep loaded.
mod common;
#[path = "common/hep.rs"]
mod hep;

use common::*;
use futures_util::StreamExt;
use hep::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(5);

/// A running server tracing to a UDP collector, with its MI port.
struct Setup {
    srv: Server,
    col: Collector,
    mi_port: u16,
}

fn setup() -> Setup {
    let col = Collector::udp();
    let hep_id = format!(
        "[hep_dest]127.0.0.1:{};transport=udp;version=3",
        col.addr.port()
    );
    let mi_port = free_port();
    let srv = Server::start(&config(mi_port, &trace_params(&hep_id, true, 7, false)));
    wait_port(mi_port);
    Setup { srv, col, mi_port }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_trace_query_set_alias_and_bad_value() {
    let s = setup();
    let cfg = &s.srv.cfg_path;
    assert_eq!(
        mi_ok(cfg, &["ws_trace"]).await,
        json!({ "WS tracing": "on" })
    );
    assert_eq!(mi_ok(cfg, &["ws_trace", "off"]).await, json!("OK"));
    assert_eq!(
        mi_ok(cfg, &["ws_trace"]).await,
        json!({ "WS tracing": "off" })
    );
    assert_eq!(
        mi_ok(cfg, &["ws:trace"]).await,
        json!({ "WS tracing": "off" })
    );
    assert_eq!(mi_ok(cfg, &["ws:trace", "on"]).await, json!("OK"));
    assert_eq!(
        mi_ok(cfg, &["ws_trace"]).await,
        json!({ "WS tracing": "on" })
    );
    assert_eq!(mi_err_code(cfg, &["ws_trace", "bogus"]).await, 500);
    // A bad value changes nothing.
    assert_eq!(
        mi_ok(cfg, &["ws_trace"]).await,
        json!({ "WS tracing": "on" })
    );
}

/// The `ws_list` entries, keyed by peer address.
async fn ws_list(cfg: &std::path::Path) -> Vec<Value> {
    let v = mi_ok(cfg, &["ws_list"]).await;
    v["Connections"]
        .as_array()
        .unwrap_or_else(|| panic!("ws_list: {v}"))
        .clone()
}

fn entry_for(list: &[Value], peer: SocketAddr) -> Option<&Value> {
    list.iter().find(|c| {
        c["peer"]
            .as_str()
            .and_then(|p| p.parse::<SocketAddr>().ok())
            == Some(peer)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_list_and_ws_close() {
    let s = setup();
    let cfg = &s.srv.cfg_path;
    let (mut a, a_addr) = connect_from(s.srv.addr, "127.0.0.1").await;
    let (mut b, b_addr) = connect_from(s.srv.addr, "127.0.0.1").await;
    options(&mut a, "list-a@mi", 1, 0, T).await;
    options(&mut b, "list-b@mi", 1, 0, T).await;

    let list = ws_list(cfg).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let ea = entry_for(&list, a_addr)
        .unwrap_or_else(|| panic!("{a_addr} missing: {list:?}"))
        .clone();
    let eb = entry_for(&list, b_addr)
        .unwrap_or_else(|| panic!("{b_addr} missing: {list:?}"))
        .clone();
    for e in [&ea, &eb] {
        assert!(e["id"].is_u64(), "{e}");
        assert_eq!(
            e["local"]
                .as_str()
                .and_then(|l| l.parse::<SocketAddr>().ok()),
            Some(s.srv.addr),
            "{e}"
        );
        assert!(e["age"].is_u64(), "{e}");
        assert_eq!(e["outbound"], json!(false), "{e}");
        assert_eq!(e["traced"], json!(true), "{e}");
        assert!(e["state"].as_str().is_some_and(|st| !st.is_empty()), "{e}");
    }
    assert_ne!(ea["id"], eb["id"]);

    // Close A by id: A gets a Close frame with 1000, B keeps working.
    let id = ea["id"].as_u64().unwrap().to_string();
    assert_eq!(mi_ok(cfg, &["ws_close", &id]).await, json!("OK"));
    let code = loop {
        let m = tokio::time::timeout(T, a.next())
            .await
            .expect("close within 5s");
        match m {
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a Close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 1000);
    options(&mut b, "list-b2@mi", 2, 0, T).await;

    let deadline = Instant::now() + T;
    loop {
        let list = ws_list(cfg).await;
        if entry_for(&list, a_addr).is_none() {
            assert!(entry_for(&list, b_addr).is_some(), "{list:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "closed connection still listed: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mi_err_code(cfg, &["ws_close", "987654321"]).await, 404);
    assert!(
        mi(cfg, &["ws_close"]).await.is_err(),
        "ws_close without an id must fail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn which_version_uptime() {
    let s = setup();
    let cfg = &s.srv.cfg_path;
    let which = mi_ok(cfg, &["which"]).await;
    let names: Vec<&str> = which
        .as_array()
        .unwrap_or_else(|| panic!("which: {which}"))
        .iter()
        .map(|n| n.as_str().unwrap_or_else(|| panic!("which: {which}")))
        .collect();
    for n in [
        "ws_trace",
        "ws_list",
        "ws_close",
        "hep_stats",
        "which",
        "version",
        "uptime",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let v = mi_ok(cfg, &["version"]).await;
    assert!(
        !v.is_null() && v != json!("") && v != json!({}),
        "version: {v}"
    );
    let u = mi_ok(cfg, &["uptime"]).await;
    assert!(!u.is_null() && u != json!({}), "uptime: {u}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hep_stats_counts_sent_packets() {
    let s = setup();
    let cfg = &s.srv.cfg_path;
    let (mut a, _) = connect_from(s.srv.addr, "127.0.0.1").await;
    let (req, reply) = options(&mut a, "stats@mi", 1, 0, T).await;
    s.col
        .wait_hep3("the OPTIONS and its reply", T, |p| {
            find_sip(p, &req).is_some() && find_sip(p, &reply).is_some()
        })
        .await;
    let d = hep_dest_stats(cfg, "hep_dest", |d| d["sent"].as_u64().unwrap_or(0) >= 2).await;
    assert!(
        d["destination"]
            .as_str()
            .unwrap_or("")
            .contains(&s.col.addr.port().to_string()),
        "{d}"
    );
    for k in ["sent", "dropped", "errors", "connects"] {
        assert!(d[k].is_u64(), "{k}: {d}");
    }
    assert!(d["connected"].is_boolean(), "{d}");
    assert_eq!(d["dropped"], json!(0), "{d}");
    // Everything counted as sent arrived.
    let sent = d["sent"].as_u64().unwrap() as usize;
    let deadline = Instant::now() + T;
    while s.col.count() < sent {
        assert!(
            Instant::now() < deadline,
            "sent {sent} but the collector got {}",
            s.col.count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = mi_ok(cfg, &["hep_stats"]).await;
    let dests = all["destinations"].as_array().unwrap();
    let sum = |k: &str| dests.iter().map(|d| d[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(all["sent"].as_u64(), Some(sum("sent")), "{all}");
    assert_eq!(all["dropped"].as_u64(), Some(sum("dropped")), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_command_is_an_error_and_the_server_survives() {
    let mut s = setup();
    let cfg = s.srv.cfg_path.clone();
    assert_eq!(mi_err_code(&cfg, &["no_such_command"]).await, -32601);
    assert!(s.srv.alive());
    assert_eq!(
        mi_ok(&cfg, &["ws_trace"]).await,
        json!({ "WS tracing": "on" })
    );
    // The CLI also takes the URL directly.
    let url = format!("http://127.0.0.1:{}/mi", s.mi_port);
    let w = mi_args(vec!["--url".into(), url, "which".into()])
        .await
        .expect("which via --url");
    assert!(
        w.as_array().is_some_and(|a| a.contains(&json!("ws_list"))),
        "{w}"
    );
}

/// POST to the MI root and parse the JSON answer.
async fn rpc(port: u16, body: &str) -> Value {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let body = body.to_string();
    let (status, text) = tokio::task::spawn_blocking(move || http_post(addr, "/mi", &body))
        .await
        .unwrap();
    assert!(
        (200..300).contains(&status) || (400..500).contains(&status),
        "status {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("MI answer is not JSON ({e}): {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_json_rpc_over_http() {
    let mut s = setup();
    let p = s.mi_port;
    let v = rpc(p, r#"{"jsonrpc":"2.0","method":"ws_trace","id":1}"#).await;
    assert_eq!(
        v,
        json!({ "jsonrpc": "2.0", "result": { "WS tracing": "on" }, "id": 1 })
    );
    let v = rpc(
        p,
        r#"{"jsonrpc":"2.0","method":"ws_trace","params":["off"],"id":"x"}"#,
    )
    .await;
    assert_eq!(v, json!({ "jsonrpc": "2.0", "result": "OK", "id": "x" }));
    let v = rpc(
        p,
        r#"{"jsonrpc":"2.0","method":"ws_trace","params":["bogus"],"id":3}"#,
    )
    .await;
    assert_eq!(
        (v["error"]["code"].as_i64(), v["id"].clone()),
        (Some(500), json!(3)),
        "{v}"
    );

    let v = rpc(p, r#"{"jsonrpc":"2.0","method":"ws_trace", "id":"#).await;
    assert_eq!(v["error"]["code"].as_i64(), Some(-32700), "{v}");
    assert_eq!(v["id"], Value::Null, "{v}");

    let v = rpc(p, r#"{"jsonrpc":"2.0","method":"nope","id":4}"#).await;
    assert_eq!(
        (v["error"]["code"].as_i64(), v["id"].clone()),
        (Some(-32601), json!(4)),
        "{v}"
    );

    let v = rpc(
        p,
        r#"[{"jsonrpc":"2.0","method":"ws_trace","id":10},{"jsonrpc":"2.0","method":"which","id":11}]"#,
    )
    .await;
    let answers = v
        .as_array()
        .unwrap_or_else(|| panic!("batch answer is not an array: {v}"));
    assert_eq!(answers.len(), 2, "{v}");
    let by_id = |id: i64| {
        answers
            .iter()
            .find(|a| a["id"] == json!(id))
            .unwrap_or_else(|| panic!("no answer {id}: {v}"))
    };
    assert_eq!(by_id(10)["result"], json!({ "WS tracing": "off" }));
    assert!(
        by_id(11)["result"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("ws_trace"))),
        "{v}"
    );
    assert!(s.srv.alive());
}
