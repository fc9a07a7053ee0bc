//! Issue 10, transport side, against the real binary:
//! * item 1: a request sent to a client's address (its ephemeral source port) never travels
//!   over that client's inbound connection (RFC 7118 §5); the server dials the address, and
//!   fails, since nothing listens there;
//! * item 11: `ws_max_connections` and `ws_max_connections_per_ip` answer the handshake 503 with
//!   `Retry-After`, log once per state change, and the admitted clients lose nothing; CRLF
//!   keep-alives do not keep an otherwise idle connection past `ws_connection_lifetime`;
//! * item 12: a second sipcore on the same address and port fails to start with a clear
//!   message, unless every one of them sets `reuse_port`.
mod common;
use common::ws::status;
use common::ws::{connect_sip, next_text, Ws};
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

const HEAD: &str = r#"
log_level = 3
mpath = "{MPATH}"
loadmodule "proto_ws.so"
modparam("proto_ws", "require_origin", 0)
"#;

/// Options answered here; REGISTER saved; `relay` forwarded to its Request-URI; the rest
/// looked up.
const ROUTE: &str = r#"
route {
    if (is_method("OPTIONS") && $rU == NULL) { sl_send_reply(200, "OK"); exit; }
    if (is_method("REGISTER")) { save("location"); exit; }
    if ($rU == "relay") { forward(); exit; }
    if (lookup("location")) { t_relay(); exit; }
    sl_send_reply(404, "Not Found");
}
"#;

fn config(socket_extra: &str, params: &str) -> String {
    format!("{HEAD}socket = ws:127.0.0.1:{{PORT}}{socket_extra}\n{params}\n{ROUTE}")
}

/// Wait until one log line contains every needle; returns the log.
fn wait_line(srv: &Server, needles: &[&str], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = srv.log();
        if log.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needles:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lines_with(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// An OPTIONS round trip; panics unless answered 200.
async fn ping(ws: &mut Ws, n: u32) {
    let req = options_request(&format!("ping-{n}@test"), &format!("z9hG4bKping{n}"), n);
    ws.send(Message::text(req)).await.unwrap();
    let r = next_text(ws).await;
    assert_eq!(status(&r), 200, "{r}");
}

fn register(user: &str) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS {user}.invalid;branch=z9hG4bKr{user}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=t{user}\r\nTo: <sip:{user}@example.com>\r\n\
         Call-ID: reg-{user}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}x@{user}.invalid;transport=ws>;expires=600\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn message(ruri: &str, call_id: &str) -> String {
    format!(
        "MESSAGE {ruri} SIP/2.0\r\nVia: SIP/2.0/WS alice.invalid;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa\r\nTo: <sip:bob@example.com>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_clients_address_never_takes_its_connection() {
    let srv = Server::start(&config("", ""));
    let mut bob = connect_sip(&srv.ws_url()).await;
    bob.send(Message::text(register("bob"))).await.unwrap();
    let r = next_text(&mut bob).await;
    assert_eq!(status(&r), 200, "{r}");
    // Bob's ephemeral source port, as the server sees it (it leaks in `received`/`rport`).
    let bob_port = match bob.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(s) => s.local_addr().unwrap().port(),
        _ => unreachable!(),
    };
    let mut alice = connect_sip(&srv.ws_url()).await;
    // The attack: a request whose Request-URI is Bob's address and port.
    let attack = message(
        &format!("sip:relay@127.0.0.1:{bob_port};transport=ws"),
        "attack",
    );
    alice.send(Message::text(attack)).await.unwrap();
    // Then a request routed to Bob through the registrar, which must be the first thing Bob
    // receives (same sender, same order).
    alice
        .send(Message::text(message("sip:bob@example.com", "marker")))
        .await
        .unwrap();
    let first = next_text(&mut bob).await;
    assert_eq!(
        header(&first, "Call-ID"),
        Some("marker"),
        "Bob got something else first:\n{first}"
    );
    // The server dialled Bob's port instead (nothing listens there) and failed.
    wait_line(
        &srv,
        &[
            "websocket connect failed",
            &format!("peer=127.0.0.1:{bob_port}"),
        ],
        Duration::from_secs(10),
    );
    // Bob is still registered and reachable.
    alice
        .send(Message::text(message("sip:bob@example.com", "again")))
        .await
        .unwrap();
    assert_eq!(header(&next_text(&mut bob).await, "Call-ID"), Some("again"));
}

/// The HTTP answer to a handshake that is refused: (status, Retry-After).
async fn refused(req: tungstenite::handshake::client::Request) -> (u16, Option<String>) {
    match tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("an answer within 10 s")
    {
        Err(tungstenite::Error::Http(resp)) => (
            resp.status().as_u16(),
            resp.headers()
                .get("Retry-After")
                .map(|v| v.to_str().unwrap().to_string()),
        ),
        Ok((_, resp)) => panic!("admitted: {resp:?}"),
        Err(e) => panic!("no HTTP answer: {e}"),
    }
}

fn sip_request(url: &str) -> tungstenite::handshake::client::Request {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    req
}

fn assert_retry_after(v: Option<String>) {
    let secs: u32 = v
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=3600).contains(&secs), "Retry-After {secs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ninth_client_gets_503_with_retry_after_and_the_first_eight_lose_nothing() {
    let srv = Server::start(&config(
        "",
        r#"modparam("proto_ws", "ws_max_connections", 8)"#,
    ));
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(connect_sip(&srv.ws_url()).await);
    }
    for _ in 0..3 {
        let (st, retry) = refused(sip_request(&srv.ws_url())).await;
        assert_eq!(st, 503);
        assert_retry_after(retry);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        ping(c, i as u32).await;
    }
    let log = wait_line(&srv, &["connection limit reached"], Duration::from_secs(5));
    assert_eq!(
        lines_with(&log, "connection limit reached"),
        1,
        "one line per state change:\n{log}"
    );
    // One leaves: the next client is admitted (once the server has seen it go), and the end
    // of the refusals is logged once.
    let mut gone = clients.pop().unwrap();
    gone.close(None).await.unwrap();
    while gone.next().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut newcomer = loop {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(sip_request(&srv.ws_url())).await {
            break ws;
        }
        assert!(Instant::now() < deadline, "never admitted again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    ping(&mut newcomer, 100).await;
    let log = wait_line(
        &srv,
        &["admitted again", "limit=ws_max_connections "],
        Duration::from_secs(5),
    );
    assert_eq!(lines_with(&log, "connection limit reached"), 1, "{log}");
    for (i, c) in clients.iter_mut().enumerate() {
        ping(c, 200 + i as u32).await;
    }
}

/// A `sip` WebSocket from source address `src`, or the HTTP status it was refused with.
async fn connect_from(
    src: &str,
    server: SocketAddr,
) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, (u16, Option<String>)> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{src}:0").parse().unwrap()).unwrap();
    let tcp = sock.connect(server).await.unwrap();
    let req = sip_request(&format!("ws://{server}/"));
    match tokio_tungstenite::client_async(req, tcp).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => Err((
            resp.status().as_u16(),
            resp.headers()
                .get("Retry-After")
                .map(|v| v.to_str().unwrap().to_string()),
        )),
        Err(e) => panic!("no HTTP answer: {e}"),
    }
}

async fn ping_plain(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, n: u32) {
    let req = options_request(&format!("pp-{n}@test"), &format!("z9hG4bKpp{n}"), n);
    ws.send(Message::text(req)).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("reply within 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(status(m.to_text().unwrap()), 200, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_refuses_that_address_only() {
    let srv = Server::start(&config(
        "",
        r#"modparam("proto_ws", "ws_max_connections_per_ip", 3)"#,
    ));
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(connect_from("127.0.0.1", srv.addr).await.unwrap());
    }
    for _ in 0..2 {
        let Err((st, retry)) = connect_from("127.0.0.1", srv.addr).await else {
            panic!("a fourth connection from 127.0.0.1 was admitted");
        };
        assert_eq!(st, 503);
        assert_retry_after(retry);
    }
    // Another address is unaffected, and the admitted ones lose nothing.
    let mut other = connect_from("127.0.0.2", srv.addr)
        .await
        .expect("127.0.0.2 admitted");
    ping_plain(&mut other, 1).await;
    for (i, c) in mine.iter_mut().enumerate() {
        ping_plain(c, 10 + i as u32).await;
    }
    let log = wait_line(
        &srv,
        &[
            "connection limit reached",
            "limit=ws_max_connections_per_ip",
            "ip=127.0.0.1",
        ],
        Duration::from_secs(5),
    );
    assert_eq!(lines_with(&log, "connection limit reached"), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_keepalives_do_not_keep_an_idle_connection_open() {
    let srv = Server::start(&config(
        "",
        r#"modparam("proto_ws", "ws_connection_lifetime", 1)"#,
    ));
    let mut idle = connect_sip(&srv.ws_url()).await;
    let mut busy = connect_sip(&srv.ws_url()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    let code = loop {
        assert!(
            Instant::now() < deadline,
            "CRLF keep-alives kept the connection open past its lifetime"
        );
        // RFC 5626 §4.4.1 double-CRLF keep-alive; the server answers one CRLF.
        idle.send(Message::text("\r\n\r\n")).await.unwrap();
        // The witness sends real requests as often, and stays.
        n += 1;
        ping(&mut busy, n).await;
        match tokio::time::timeout(Duration::from_secs(5), idle.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "\r\n" => {}
            Ok(Some(Ok(Message::Close(Some(f))))) => break u16::from(f.code),
            other => panic!("unexpected {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(code, 1001);
    ping(&mut busy, 1000).await;
}

/// Start sipcore on `cfg` for port `port` (not waiting for anything); stderr to a file.
fn spawn_on(cfg: &str, port: u16) -> (Child, std::path::PathBuf) {
    let dir = temp_dir("second");
    let cfg_path = dir.join("sipcore.cfg");
    std::fs::write(&cfg_path, render(cfg, port)).unwrap();
    let log = dir.join("stderr.log");
    let child = Command::new(sipcore_bin())
        .arg("-f")
        .arg(&cfg_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (child, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_the_same_port_fails_to_start() {
    let cfg = config("", "");
    let srv = Server::start(&cfg);
    let (mut second, log) = spawn_on(&cfg, srv.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let st = loop {
        if let Some(st) = second.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!(
                "the second instance kept running:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}", srv.port)) && err.contains("already in use"),
        "{err}"
    );
    // The first one still serves every client.
    for n in 0..4 {
        let mut c = connect_sip(&srv.ws_url()).await;
        ping(&mut c, n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reuse_port_on_both_a_second_instance_starts() {
    let cfg = config(" reuse_port", "");
    let srv = Server::start(&cfg);
    let (mut second, log) = spawn_on(&cfg, srv.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listening on") {
            break;
        }
        if let Some(st) = second.try_wait().unwrap() {
            panic!("the second instance exited ({st}):\n{text}");
        }
        assert!(Instant::now() < deadline, "never listened:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(second.try_wait().unwrap().is_none());
    // Clients are served (by either).
    for n in 0..4 {
        let mut c = connect_sip(&srv.ws_url()).await;
        ping(&mut c, n).await;
    }
    let _ = second.kill();
    let _ = second.wait();
}
