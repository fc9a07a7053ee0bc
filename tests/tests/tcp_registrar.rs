//! Issue 14, SIP over TCP with the registrar of the bundled default config: a phone that
//! registered over TCP is reached over its own connection (RFC 5626 §5: the flow it
//! registered on, whatever its Contact says), by a WebSocket client's MESSAGE and by a TCP
//! caller's INVITE; and the phone reaches a WebSocket client registered through the same
//! server, answers included (RFC 7118 and RFC 3261 §18 on the two sides of one proxy).
mod common;
use common::tcp::*;
use common::ws::{connect_sip, next_text, send_text, status};
use common::*;

/// The bundled default config (no authentication) with `socket = tcp:127.0.0.1:TCP` and
/// proto_tcp, and its MI port.
fn start() -> (Server, u16) {
    let tcp = free_port();
    let (cfg, _mi) = default_config_without_auth();
    let (ws, load) = ("socket = ws:127.0.0.1:{PORT}", "loadmodule \"proto_ws.so\"");
    assert!(
        cfg.contains(ws) && cfg.contains(load),
        "default config changed"
    );
    let cfg = cfg
        .replace(ws, &format!("{ws}\nsocket = tcp:127.0.0.1:{tcp}"))
        .replace(load, &format!("{load}\nloadmodule \"proto_tcp.so\""));
    let srv = Server::start(&cfg);
    wait_tcp(&srv, tcp);
    (srv, tcp)
}

/// Prints the server's log if the test fails.
struct Dump(std::path::PathBuf);
impl Drop for Dump {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", std::fs::read_to_string(&self.0).unwrap_or_default());
        }
    }
}

/// A request over TCP from `me` with `extra` header lines.
fn tcp_request(
    method: &str,
    ruri: &str,
    me: std::net::SocketAddr,
    from: &str,
    to: &str,
    id: &str,
    extra: &str,
) -> String {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\n\
         From: <{from}>;tag=f{id}\r\nTo: <{to}>\r\nCall-ID: {id}\r\nCSeq: 1 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

fn register_phone(tcp: u16) -> TcpPeer {
    let mut phone = TcpPeer::connect(tcp);
    let me = phone.local();
    // Its Contact names a private address: it is reached over this connection anyway.
    let reg = tcp_request(
        "REGISTER",
        "sip:example.com",
        me,
        "sip:phone@example.com",
        "sip:phone@example.com",
        "reg-tcp-phone",
        "Contact: <sip:phone@10.1.2.3:5060;transport=tcp>;expires=600\r\n",
    );
    phone.send(reg.as_bytes());
    let r = phone.recv_sip();
    assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    phone
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_over_tcp_is_reached_over_its_connection() {
    let (srv, tcp) = start();
    let _dump = Dump(srv.log_path.clone());
    let mut phone = register_phone(tcp);

    // A WebSocket client's MESSAGE arrives on the phone's connection; its 200 goes back.
    let mut alice = connect_sip(&srv.ws_url()).await;
    send_text(
        &mut alice,
        "MESSAGE sip:phone@example.com SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bKtotcp\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=wsa\r\nTo: <sip:phone@example.com>\r\n\
         Call-ID: ws-to-tcp\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
            .to_string(),
    )
    .await;
    let m = phone.recv_sip();
    assert!(
        m.starts_with("MESSAGE sip:phone@10.1.2.3:5060;transport=tcp SIP/2.0\r\n"),
        "{m}"
    );
    assert!(
        header(&m, "Via").is_some_and(|v| v.starts_with(&format!("SIP/2.0/TCP 127.0.0.1:{tcp};"))),
        "{m}"
    );
    phone.send(reply_to(&m, "200 OK", "ph").as_bytes());
    let r = next_text(&mut alice).await;
    assert_eq!(
        (status(&r), header(&r, "Call-ID")),
        (200, Some("ws-to-tcp")),
        "{r}"
    );

    // A TCP caller's INVITE reaches the phone over the phone's connection; 180 and 200 back.
    let mut caller = TcpPeer::connect(tcp);
    let me = caller.local();
    let inv = tcp_request(
        "INVITE",
        "sip:phone@example.com",
        me,
        "sip:carol@example.com",
        "sip:phone@example.com",
        "tcp-call",
        &format!("Contact: <sip:carol@{me};transport=tcp>\r\n"),
    );
    caller.send(inv.as_bytes());
    let got = phone.recv_sip();
    assert!(
        got.starts_with("INVITE sip:phone@10.1.2.3:5060;transport=tcp SIP/2.0\r\n"),
        "{got}"
    );
    phone.send(reply_to(&got, "180 Ringing", "ph2").as_bytes());
    phone.send(
        reply_to(&got, "200 OK", "ph2")
            .replace(
                "Content-Length: 0\r\n",
                "Contact: <sip:phone@10.1.2.3:5060;transport=tcp>\r\nContent-Length: 0\r\n",
            )
            .as_bytes(),
    );
    let mut seen = Vec::new();
    while !seen.iter().any(|r: &String| r.starts_with("SIP/2.0 200 ")) {
        let r = caller.recv_sip();
        assert!(
            r.starts_with("SIP/2.0 1") || r.starts_with("SIP/2.0 200 "),
            "{r}"
        );
        seen.push(r);
    }
    assert!(
        seen.iter().any(|r| r.starts_with("SIP/2.0 180 ")),
        "{seen:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_over_tcp_reaches_a_websocket_client_and_back() {
    let (srv, tcp) = start();
    let _dump = Dump(srv.log_path.clone());
    let mut phone = register_phone(tcp);
    // Alice registers over WebSocket.
    let mut alice = connect_sip(&srv.ws_url()).await;
    send_text(
        &mut alice,
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bKwsreg\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=r1\r\nTo: <sip:alice@example.com>\r\n\
         Call-ID: ws-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@a.invalid;transport=ws>;expires=600\r\n\
         Content-Length: 0\r\n\r\n"
            .to_string(),
    )
    .await;
    let r = next_text(&mut alice).await;
    assert_eq!(status(&r), 200, "{r}");
    // The phone's MESSAGE arrives over Alice's WebSocket; her 200 comes back over TCP.
    let me = phone.local();
    let m = tcp_request(
        "MESSAGE",
        "sip:alice@example.com",
        me,
        "sip:phone@example.com",
        "sip:alice@example.com",
        "tcp-to-ws",
        "",
    );
    phone.send(m.as_bytes());
    let got = next_text(&mut alice).await;
    assert!(
        got.starts_with("MESSAGE sip:alice@a.invalid;transport=ws SIP/2.0\r\n"),
        "{got}"
    );
    send_text(&mut alice, reply_to(&got, "200 OK", "al")).await;
    let r = phone.recv_sip();
    assert_eq!(
        (r.lines().next(), header(&r, "Call-ID")),
        (Some("SIP/2.0 200 OK"), Some("tcp-to-ws")),
        "{r}"
    );
}
