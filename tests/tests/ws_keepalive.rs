//! Issue 13 part 1, end to end on the bundled default config (its ping interval, pong timeout
//! and idle lifetime shortened to 1, 1 and 2 s): a client that stops answering is pinged and
//! closed when its Pong does not come (one warning with its address), and its binding goes
//! with it; a registered client that answers pings stays connected and reachable past the
//! lifetime, while an unregistered client that answers pings is closed after it with 1001
//! (a Pong is not data). The defaults themselves (pings on, 30 s) are unit-tested in
//! `ws/src/params.rs`.
mod common;
#[path = "common/raw.rs"]
mod raw;
use common::digest::{add_users, ask_authorized, send_authorized};
use common::sipws::register;
use common::ws::{connect_sip, status, Ws};
use common::*;
use futures_util::StreamExt;
use raw::*;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

/// The default config with short keep-alive settings.
fn config() -> String {
    let (cfg, _mi) = default_config();
    let module = "loadmodule \"proto_ws.so\"";
    assert!(cfg.contains(module), "default config changed");
    cfg.replacen(
        module,
        &format!(
            "{module}\nmodparam(\"proto_ws\", \"ws_keepalive_interval\", 1)\n\
             modparam(\"proto_ws\", \"ws_keepalive_timeout\", 1)\n\
             modparam(\"proto_ws\", \"ws_connection_lifetime\", 2)"
        ),
        1,
    )
}

/// Register `user` over a new tungstenite connection (which answers pings as it reads).
async fn registered(url: &str, user: &str) -> Ws {
    let mut ws = connect_sip(url).await;
    let c = vec![format!("<sip:{user}x@{user}.invalid;transport=ws>")];
    let r = ask_authorized(&mut ws, register(user, &format!("reg-{user}"), 1, &c, 600)).await;
    assert_eq!(status(&r), 200, "{r}");
    ws
}

/// Read `ws` (answering pings) until it is closed; the Close code, within `within`.
async fn closed_within(ws: &mut Ws, within: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("not closed within {within:?}"),
            Ok(Some(Ok(Message::Close(c)))) => return c.map(|c| u16::from(c.code)),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return None,
        }
    }
}

/// Read `ws` in the background (answering its pings, as a browser does) and pass every SIP
/// message on.
fn reader(mut ws: Ws) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let _ = tx.send(t.to_string());
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_pinged_and_closed_and_live_ones_stay() {
    let srv = Server::start(&config());
    add_users(&srv, &["alice", "bob", "carol"]);
    let url = srv.ws_url();
    // Alice registers and answers pings from then on; an unregistered client connected just
    // after her answers pings too, and its closing by the 2 s lifetime (checked below) shows
    // that Alice's connection is past the lifetime.
    let mut alice = reader(registered(&url, "alice").await);
    let mut idle_ws = connect_sip(&url).await;
    let idle =
        tokio::spawn(async move { closed_within(&mut idle_ws, Duration::from_secs(30)).await });

    // Carol registers over a raw connection that will never answer a Ping.
    let mut carol = raw_ws(srv.addr, Ipv4Addr::new(127, 0, 3, 3), None).await;
    let carol_addr = carol.local_addr().unwrap();
    let c = vec!["<sip:carolx@carol.invalid;transport=ws>".to_string()];
    let reg = register("carol", "reg-carol", 1, &c, 600);
    carol.write_all(&frame(0x81, reg.as_bytes())).await.unwrap();
    let (_, challenge) = read_frame(&mut carol).await;
    let challenge = String::from_utf8(challenge).unwrap();
    let signed = common::digest::authorize(&reg, &challenge);
    carol
        .write_all(&frame(0x81, signed.as_bytes()))
        .await
        .unwrap();
    let (_, ok) = read_frame(&mut carol).await;
    assert!(
        ok.starts_with(b"SIP/2.0 200 "),
        "{}",
        String::from_utf8_lossy(&ok)
    );

    // The server pings her (opcode 0x9), then closes her connection when no Pong comes.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (b0, _) = read_frame(&mut carol).await;
        if b0 & 0x0f == 0x9 {
            break;
        }
        assert!(Instant::now() < deadline, "never pinged");
    }
    let log = srv.wait_log(
        &format!("websocket keepalive timeout peer={carol_addr}"),
        Duration::from_secs(20),
    );
    // Bob registers; her binding went with her connection: his MESSAGE to her gets 404.
    let mut bob = registered(&url, "bob").await;
    let m = "MESSAGE sip:carol@example.com SIP/2.0\r\nVia: SIP/2.0/WS bob.invalid;branch=z9hG4bKk1\r\n\
             Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b\r\nTo: <sip:carol@example.com>\r\n\
             Call-ID: ka-1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        let r = ask_authorized(&mut bob, m.replace("ka-1", &format!("ka-1-{n}"))).await;
        if status(&r) == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "carol still reachable: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The unregistered client is closed by the lifetime although it answered every ping.
    assert_eq!(idle.await.unwrap(), Some(1001), "{}", srv.log());
    // Alice, registered and answering pings, is still connected and Bob reaches her.
    let to_alice = m
        .replace("sip:carol@", "sip:alice@")
        .replace("ka-1", "ka-2");
    send_authorized(&mut bob, to_alice).await;
    let got = tokio::time::timeout(Duration::from_secs(5), alice.recv())
        .await
        .expect("a MESSAGE within 5 s")
        .expect("alice's connection open");
    assert!(got.starts_with("MESSAGE sip:alicex@alice.invalid"), "{got}");
    // Only carol was closed for a missing Pong.
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("keepalive timeout"))
            .count(),
        1,
        "{log}"
    );
    let log = srv.log();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("keepalive timeout"))
            .count(),
        1,
        "{log}"
    );
}
