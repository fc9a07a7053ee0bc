//! Issue 10, process behaviour: SIGHUP does not stop the server (item 13), one log record is
//! one line whatever a client puts in a header (item 18), a request whose headers are not
//! UTF-8 is answered 400 (item 18), and item 14's startup warning about an MI listening on a
//! non-loopback address.
mod common;
use common::ws::status;
use common::ws::{connect_sip, next_text, Ws};
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::process::Command;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(5);

fn cfg(route: &str) -> String {
    format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nsocket = ws:127.0.0.1:{{PORT}}\n\
         loadmodule \"proto_ws.so\"\nmodparam(\"proto_ws\", \"require_origin\", 0)\n\
         route {{ {route} }}\n"
    )
}

async fn options_ok(ws: &mut Ws, call_id: &str, cseq: u32) {
    ws.send(Message::text(options_request(
        call_id,
        &format!("z9hG4bK{call_id}"),
        cseq,
    )))
    .await
    .unwrap();
    let r = next_text(ws).await;
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(header(&r, "Call-ID"), Some(call_id));
}

fn signal(srv: &Server, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(srv.child.id().to_string())
        .status()
        .expect("run kill");
    assert!(st.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_is_logged_and_service_goes_on() {
    let mut srv = Server::start(&cfg("sl_send_reply(200, \"OK\");"));
    let mut before = connect_sip(&srv.ws_url()).await;
    options_ok(&mut before, "hup-1", 1).await;

    signal(&srv, "HUP");
    srv.wait_log("received SIGHUP: ignored", T);
    assert!(srv.alive(), "SIGHUP killed the server:\n{}", srv.log());
    // The connection opened before the signal and a new one are both served.
    options_ok(&mut before, "hup-2", 2).await;
    let mut after = connect_sip(&srv.ws_url()).await;
    options_ok(&mut after, "hup-3", 1).await;

    // A second SIGHUP is not special either; SIGTERM still stops the server gracefully: the
    // open connection gets a Close 1001 (Going Away).
    signal(&srv, "HUP");
    wait_count(&srv, "received SIGHUP: ignored", 2);
    options_ok(&mut after, "hup-4", 2).await;
    signal(&srv, "TERM");
    let close = loop {
        match tokio::time::timeout(T, before.next()).await {
            Ok(Some(Ok(Message::Close(c)))) => break c,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no Close frame after SIGTERM: {other:?}\n{}", srv.log()),
        }
    };
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1001));
    let deadline = std::time::Instant::now() + T;
    while srv.alive() {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGTERM did not stop the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `needle` occurs `n` times in the log (logging is asynchronous).
fn wait_count(srv: &Server, needle: &str, n: usize) -> String {
    let deadline = std::time::Instant::now() + T;
    loop {
        let log = srv.log();
        if log.matches(needle).count() >= n {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{needle:?} not logged {n} times:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xlog_newline_and_header_control_characters_stay_on_one_line() {
    let srv = Server::start(&cfg(
        "xlog(\"L_INFO\", \"got $rm ua=[$ua]\\n\"); sl_send_reply(200, \"OK\");",
    ));
    let mut ws = connect_sip(&srv.ws_url()).await;
    // A User-Agent with a bare CR, an escape sequence and a made-up record after them.
    let forged = "Dec 06 00:00:00.000 CRIT forged record, module: core";
    let req = options_request("xlog-1", "z9hG4bKxlog1", 1).replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\nUser-Agent: evil\r{forged}\u{1b}[2K\r\n"),
    );
    ws.send(Message::text(req)).await.unwrap();
    let r = next_text(&mut ws).await;
    assert_eq!(status(&r), 200, "{r}");
    // A marker record after it: once it is logged, the first one is complete.
    let mut ws2 = connect_sip(&srv.ws_url()).await;
    options_ok(&mut ws2, "xlog-2", 1).await;
    let log = srv.wait_log("got OPTIONS ua=[<null>]", T);
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("got OPTIONS")).collect();
    assert_eq!(lines.len(), 2, "{log}");
    for l in &lines {
        // The record's own key-value pairs follow its text on the same line.
        assert!(l.ends_with("module: script"), "record split: {l:?}\n{log}");
    }
    assert!(
        lines[0]
            .contains("ua=[evil\\rDec 06 00:00:00.000 CRIT forged record, module: core\\x1b[2K]"),
        "{:?}",
        lines[0]
    );
    // Nothing else in the log carries the forged text, and no raw control character is left.
    for l in log.lines().filter(|l| l.contains("forged")) {
        assert!(l.contains("got OPTIONS"), "forged line: {l:?}");
    }
    assert!(
        !log.contains('\r') && !log.contains('\u{1b}'),
        "raw control characters in the log:\n{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_not_utf8_get_400_and_the_connection_stays() {
    let srv = Server::start(&cfg("sl_send_reply(200, \"OK\");"));
    let mut ws = connect_sip(&srv.ws_url()).await;
    let mut req = options_request("latin1-1", "z9hG4bKlatin1", 1)
        .replace(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nSubject: caf\u{0}\r\n",
        )
        .into_bytes();
    // "café" in Latin-1: not UTF-8, so it can only come in a binary frame (RFC 7118 §4.2).
    let nul = req.iter().position(|&b| b == 0).unwrap();
    req[nul] = 0xe9;
    ws.send(Message::binary(req)).await.unwrap();
    let r = next_text(&mut ws).await;
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(header(&r, "Call-ID"), Some("latin1-1"), "{r}");
    assert_eq!(header(&r, "CSeq"), Some("1 OPTIONS"), "{r}");
    srv.wait_log("malformed SIP request answered 400", T);
    // Only that request was refused: the same connection is served.
    options_ok(&mut ws, "latin1-2", 2).await;
}

#[test]
fn mi_on_a_non_loopback_address_is_warned_about() {
    let mi = free_port();
    let srv = Server::start(&format!(
        "mi_http_ip = 0.0.0.0\nmi_http_port = {mi}\n{}",
        cfg("sl_send_reply(200, \"OK\");")
    ));
    srv.wait_log(
        &format!("management interface on http://0.0.0.0:{mi}/mi is reachable from the network"),
        T,
    );

    // The loopback default says nothing of the kind.
    let mi = free_port();
    let quiet = Server::start(&format!(
        "mi_http_ip = 127.0.0.1\nmi_http_port = {mi}\n{}",
        cfg("sl_send_reply(200, \"OK\");")
    ));
    let log = quiet.wait_log("listening on", T);
    assert!(!log.contains("reachable from the network"), "{log}");
}
