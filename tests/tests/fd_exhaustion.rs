//! Issues 3 and 10 (item 14): an accept that fails for lack of file descriptors backs off
//! instead of spinning, is logged once when it starts failing and once when it recovers (not
//! per pause), the server serves again once descriptors are free, and a descriptor limit
//! below `ws_max_connections` is reported once at startup.
mod common;
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::net::TcpStream;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

const CFG: &str = r#"
log_level = 3
mpath = "{MPATH}"
socket = ws:127.0.0.1:{PORT}
loadmodule "proto_ws.so"
modparam("proto_ws", "require_origin", 0)
modparam("proto_ws", "ws_workers", 1)
route { sl_send_reply(200, "OK"); }
"#;

const FAILING: &str = "accept failing";
const RECOVERED: &str = "accept recovered";

/// The accept-state lines of the log, in order, as `true` (failing) / `false` (recovered).
fn accept_states(log: &str) -> Vec<bool> {
    log.lines()
        .filter_map(|l| {
            if l.contains(FAILING) {
                Some(true)
            } else if l.contains(RECOVERED) {
                Some(false)
            } else {
                None
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_without_descriptors_backs_off_and_recovers() {
    let mut srv = Server::start_wrapped(CFG, &["prlimit", "--nofile=48:48"]);
    // 48 descriptors for the default ws_max_connections (2048): said once at startup.
    let log = srv.wait_log("descriptor limit", Duration::from_secs(5));
    assert!(
        log.lines()
            .any(|l| l.contains("descriptor limit") && l.contains("nofile=48")),
        "{log}"
    );
    // Far more connections than the server has descriptors: the kernel completes them (backlog),
    // the server's accept fails with EMFILE.
    let hogs: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(srv.addr).unwrap())
        .collect();
    srv.wait_log(FAILING, Duration::from_secs(5));
    // Stay out of descriptors for a while: the listener is paused and retried every 100 ms,
    // each retry failing again, none of them logged.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(srv.alive(), "server died");
    drop(hogs);

    // Once descriptors are free again, a client is served.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut req = srv.ws_url().into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
        if let Ok(Ok((mut ws, _))) = tokio::time::timeout(
            Duration::from_secs(2),
            tokio_tungstenite::connect_async(req),
        )
        .await
        {
            ws.send(Message::text(options_request("fd@test", "z9hG4bKfd", 1)))
                .await
                .unwrap();
            let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert!(m.to_text().unwrap().starts_with("SIP/2.0 200 OK"), "{m:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never served again:\n{}",
            srv.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Once per state change: failing, recovered (with the count of failed retries), and so
    // on, alternating; never one line per pause.
    let log = srv.wait_log(RECOVERED, Duration::from_secs(10));
    let states = accept_states(&log);
    assert_eq!(states.first(), Some(&true), "{log}");
    assert!(
        states.windows(2).all(|w| w[0] != w[1]),
        "accept state lines must alternate (one per change):\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(RECOVERED) && l.contains("failed_accepts=")),
        "{log}"
    );
}
