//! Issue 3, client side end to end: the script relays requests statelessly to a WebSocket
//! destination (`$du = ...; forward();` and `forward("uri")`). The downstream UAS is a
//! third-party WebSocket *server* (tokio-tungstenite), so our outbound handshake and masking
//! are checked by another implementation; replies come back by Via over the client's
//! connection.
mod common;
use common::ws::next_text;
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest,
    handshake::server::{Request, Response},
    Message,
};

const CFG: &str = r#"
log_level = 3
mpath = "{MPATH}"
socket = ws:127.0.0.1:{PORT}
loadmodule "proto_ws.so"
modparam("proto_ws", "require_origin", 0)
route {
    if ($hdr(X-Relay) == "du") {
        $du = "sip:127.0.0.1:{UAS};transport=ws";
        forward();
        exit;
    }
    if ($hdr(X-Relay) == "arg") {
        forward("sip:127.0.0.1:{UAS};transport=ws");
        exit;
    }
    sl_send_reply(404, "Not Here");
}
"#;

/// What the UAS saw.
#[derive(Default)]
struct Uas {
    conns: AtomicUsize,
    requests: Mutex<Vec<String>>,
    handshake: Mutex<Vec<(Option<String>, Option<String>)>>,
}

/// A UAS answering every request with 200, copying Vias, From, To (+tag), Call-ID, CSeq.
async fn run_uas(listener: TcpListener, uas: Arc<Uas>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let uas = uas.clone();
        tokio::spawn(async move {
            let seen = uas.clone();
            // The callback signature is tungstenite's; its error type is not ours to shrink.
            #[allow(clippy::result_large_err)]
            let cb = move |req: &Request, mut resp: Response| {
                let h = |n: &str| {
                    req.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(String::from)
                };
                seen.handshake
                    .lock()
                    .unwrap()
                    .push((h("Sec-WebSocket-Protocol"), h("Host")));
                resp.headers_mut()
                    .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
                Ok(resp)
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await else {
                return;
            };
            uas.conns.fetch_add(1, Ordering::SeqCst);
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(t) = m else { continue };
                let req = t.to_string();
                uas.requests.lock().unwrap().push(req.clone());
                let mut reply = String::from("SIP/2.0 200 OK\r\n");
                for v in headers(&req, "Via") {
                    reply.push_str(&format!("Via: {v}\r\n"));
                }
                reply.push_str(&format!("From: {}\r\n", header(&req, "From").unwrap()));
                reply.push_str(&format!("To: {};tag=uas1\r\n", header(&req, "To").unwrap()));
                reply.push_str(&format!(
                    "Call-ID: {}\r\n",
                    header(&req, "Call-ID").unwrap()
                ));
                reply.push_str(&format!(
                    "CSeq: {}\r\nContent-Length: 0\r\n\r\n",
                    header(&req, "CSeq").unwrap()
                ));
                if ws.send(Message::text(reply)).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn relay_request(call_id: &str, branch: &str, how: &str) -> String {
    options_request(call_id, branch, 1).replace(
        "Content-Length: 0\r\n",
        &format!("X-Relay: {how}\r\nContent-Length: 0\r\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_relayed_to_a_websocket_server_and_replies_come_back_by_via() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uas_port = listener.local_addr().unwrap().port();
    let uas = Arc::new(Uas::default());
    tokio::spawn(run_uas(listener, uas.clone()));
    let srv = Server::start(&CFG.replace("{UAS}", &uas_port.to_string()));

    let mut req = srv.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (mut a, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let a_port = match a.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(s) => s.local_addr().unwrap().port(),
        _ => unreachable!(),
    };

    for (i, how) in ["du", "arg", "du"].iter().enumerate() {
        let call_id = format!("relay-{i}@test");
        let sent = relay_request(&call_id, &format!("z9hG4bKrelay{i}"), how);
        a.send(Message::text(sent.clone())).await.unwrap();
        let reply = next_text(&mut a).await;
        assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
        assert_eq!(header(&reply, "Call-ID"), Some(call_id.as_str()));
        assert!(
            header(&reply, "To").unwrap().ends_with(";tag=uas1"),
            "{reply}"
        );
        // Our Via is gone; the client's Vias are back, with what we added on the way.
        let vias = headers(&reply, "Via");
        assert_eq!(vias.len(), 2, "{reply}");
        assert!(
            vias[0].starts_with(&format!(
                "SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKrelay{i}"
            )),
            "{reply}"
        );
        assert!(vias[0].contains("received=127.0.0.1"), "{reply}");
        assert!(vias[0].contains(&format!("rport={a_port}")), "{reply}");

        let seen = uas.requests.lock().unwrap().last().cloned().unwrap();
        let seen_vias = headers(&seen, "Via");
        assert_eq!(seen_vias.len(), 3, "{seen}");
        assert!(
            seen_vias[0].starts_with(&format!("SIP/2.0/WS 127.0.0.1:{};branch=z9hG4bK", srv.port)),
            "{seen}"
        );
        assert_eq!(header(&seen, "Max-Forwards"), Some("69"), "{seen}");
        assert_eq!(
            seen.lines().next(),
            sent.lines().next(),
            "Request-URI unchanged"
        );
    }

    // A retransmission gets the same branch (stateless proxy, RFC 3261 §16.11).
    let again = relay_request("relay-0@test", "z9hG4bKrelay0", "du");
    a.send(Message::text(again)).await.unwrap();
    let _ = next_text(&mut a).await;
    let reqs = uas.requests.lock().unwrap().clone();
    let branch = |r: &str| {
        headers(r, "Via")[0]
            .split("branch=")
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(branch(&reqs[0]), branch(&reqs[3]));
    assert_ne!(branch(&reqs[0]), branch(&reqs[1]));

    // One outbound connection, reused for every request; our handshake offered `sip` and Host.
    assert_eq!(uas.conns.load(Ordering::SeqCst), 1);
    let hs = uas.handshake.lock().unwrap().clone();
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].0.as_deref(), Some("sip"));
    assert_eq!(
        hs[0].1.as_deref(),
        Some(format!("127.0.0.1:{uas_port}").as_str())
    );
}

/// Issue 10, item 17: a next hop that refuses the connection gets the client a 503 at once
/// (not its own transaction timeout), and the failure touches nobody else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_to_a_dead_destination_fails_alone() {
    let dead = free_port();
    let srv = Server::start(&CFG.replace("{UAS}", &dead.to_string()));
    let mut req = srv.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (mut a, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let t0 = std::time::Instant::now();
    a.send(Message::text(relay_request(
        "dead@test",
        "z9hG4bKdead",
        "du",
    )))
    .await
    .unwrap();
    // The server still answers other requests on the same connection.
    a.send(Message::text(options_request(
        "alive@test",
        "z9hG4bKalive",
        2,
    )))
    .await
    .unwrap();
    let mut replies = [next_text(&mut a).await, next_text(&mut a).await];
    let elapsed = t0.elapsed();
    replies.sort_by_key(|r| header(r, "Call-ID").map(str::to_string));
    let (alive, dead_reply) = (&replies[0], &replies[1]);
    assert!(
        dead_reply.starts_with("SIP/2.0 503 Service Unavailable"),
        "{dead_reply}"
    );
    assert_eq!(header(dead_reply, "Call-ID"), Some("dead@test"));
    assert!(alive.starts_with("SIP/2.0 404 Not Here"), "{alive}");
    assert_eq!(header(alive, "Call-ID"), Some("alive@test"));
    // At once: the connect is refused on loopback, no timer of the client's is involved.
    assert!(elapsed < Duration::from_secs(3), "503 after {elapsed:?}");
    srv.wait_log(&format!("127.0.0.1:{dead}"), Duration::from_secs(5));
}
