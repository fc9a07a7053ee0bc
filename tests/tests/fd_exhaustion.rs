//! Issue 3: an accept that fails for lack of file descriptors backs off and logs once per
//! pause, never in a tight loop, and the server serves again once descriptors are free.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_without_descriptors_backs_off_and_recovers() {
    let mut srv = Server::start_wrapped(CFG, &["prlimit", "--nofile=48:48"]);
    // Far more connections than the server has descriptors: the kernel completes them (backlog),
    // the server's accept fails with EMFILE.
    let hogs: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(srv.addr).unwrap())
        .collect();
    srv.wait_log("accept failed", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(1000));
    let warnings = srv.log().matches("accept failed").count();
    // One warning per 100 ms pause at most (plus slack), not a spinning loop.
    assert!(
        warnings <= 20,
        "{warnings} accept warnings in ~1 s:\n{}",
        srv.log()
    );
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
}
