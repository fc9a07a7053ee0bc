//! Issue 14 (part 1), the core over UDP: stateless `forward()` between a UDP client and a UDP
//! or WebSocket destination (our Via names the socket of the outgoing transport, the client's
//! Via gets `received`/`rport`, replies go back by Via: RFC 3261 §16.6, §18.2.2, RFC 3581),
//! a WebSocket client relayed to a SIPp UAS over UDP, and our own replies over UDP going to
//! the source address, at the Via's port when the client asked for no `rport`.
mod common;
use common::udp::*;
use common::ws::{connect_sip, next_text, send_text};
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{handshake::server, Message};

const CFG: &str = r#"
log_level = 3
mpath = "{MPATH}"
socket = ws:127.0.0.1:{PORT}
socket = udp:127.0.0.1:{UDP}
loadmodule "proto_ws.so"
loadmodule "proto_udp.so"
modparam("proto_ws", "require_origin", 0)
route {
    if ($hdr(X-Relay) == "udp") {
        $du = "sip:127.0.0.1:{UAS}";
        forward();
        exit;
    }
    if ($hdr(X-Relay) == "ws") {
        $du = "sip:127.0.0.1:{WSUAS};transport=ws";
        forward();
        exit;
    }
    if (is_method("OPTIONS")) {
        sl_send_reply(200, "OK");
        exit;
    }
    sl_send_reply(404, "Not Here");
}
"#;

/// A server relaying `X-Relay: udp` to 127.0.0.1:`uas` and `X-Relay: ws` to the WebSocket
/// server at `ws_uas`; with its UDP address.
fn start(uas: u16, ws_uas: u16) -> (Server, SocketAddr) {
    let udp = free_udp_port();
    let cfg = CFG
        .replace("{UDP}", &udp.to_string())
        .replace("{UAS}", &uas.to_string())
        .replace("{WSUAS}", &ws_uas.to_string());
    let srv = Server::start(&cfg);
    wait_udp(&srv, udp);
    (srv, SocketAddr::from(([127, 0, 0, 1], udp)))
}

#[test]
fn udp_to_udp_relay_and_replies_by_received_and_rport() {
    let (uas, client, other) = (Peer::new(), Peer::new(), Peer::new());
    let (_srv, us) = start(uas.addr.port(), 9);
    let relay = "X-Relay: udp\r\n";

    // 1. rport, and a Via naming a port nobody listens on: the reply follows rport (RFC 3581).
    let req = udp_request(
        "OPTIONS",
        "sip:bob@example.com",
        "127.0.0.1:9",
        true,
        "r1",
        relay,
    );
    client.send(us, req.as_bytes());
    let (seen, from) = uas
        .recv_within(Duration::from_secs(5))
        .expect("relayed OPTIONS");
    assert_eq!(from, us, "sent from the UDP socket");
    let vias = headers(&seen, "Via");
    assert_eq!(vias.len(), 2, "{seen}");
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/UDP {us};branch=z9hG4bK")),
        "{seen}"
    );
    let port = client.addr.port();
    assert!(vias[1].contains(&format!("rport={port}")), "{seen}");
    assert!(vias[1].contains("received=127.0.0.1"), "{seen}");
    assert_eq!(header(&seen, "Max-Forwards"), Some("69"));
    uas.send(us, ok_for(&seen).as_bytes());
    let back = client.recv_sip();
    assert!(back.starts_with("SIP/2.0 200 OK\r\n"), "{back}");
    assert_eq!(header(&back, "Call-ID"), Some("r1"));
    let vias = headers(&back, "Via");
    assert_eq!(vias.len(), 1, "our Via removed: {back}");
    assert!(vias[0].contains(&format!("rport={port}")), "{back}");

    // 2. No rport: the reply goes to the Via's sent-by port (RFC 3261 §18.2.2), here another
    // socket of the client's host.
    let sent_by = other.addr.to_string();
    let req = udp_request(
        "OPTIONS",
        "sip:bob@example.com",
        &sent_by,
        false,
        "r2",
        relay,
    );
    client.send(us, req.as_bytes());
    let seen = uas.recv_sip();
    assert!(!headers(&seen, "Via")[1].contains("rport"), "{seen}");
    uas.send(us, ok_for(&seen).as_bytes());
    let back = other.recv_sip();
    assert!(back.starts_with("SIP/2.0 200 OK\r\n"), "{back}");
    assert_eq!(header(&back, "Call-ID"), Some("r2"));
}

#[test]
fn our_own_replies_over_udp_follow_rport_else_the_via_port() {
    let (client, other) = (Peer::new(), Peer::new());
    let (_srv, us) = start(9, 9);

    // rport: the source port, filled in (RFC 3581 §4).
    let req = udp_request("OPTIONS", "sip:127.0.0.1", "127.0.0.1:9", true, "l1", "");
    client.send(us, req.as_bytes());
    let r = client.recv_sip();
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    let via = header(&r, "Via").unwrap();
    assert!(
        via.contains(&format!("rport={}", client.addr.port())),
        "{r}"
    );

    // No rport: the Via's port, at the source IP (RFC 3261 §18.2.2; OpenSIPS does the same).
    let sent_by = other.addr.to_string();
    let req = udp_request("OPTIONS", "sip:127.0.0.1", &sent_by, false, "l2", "");
    client.send(us, req.as_bytes());
    let r = other.recv_sip();
    assert_eq!(header(&r, "Call-ID"), Some("l2"), "{r}");
    // ... and not to the source port: the client's next datagram is the answer to its next
    // request (one source, one receiving thread: the requests are handled in order).
    let req = udp_request("OPTIONS", "sip:127.0.0.1", "127.0.0.1:9", true, "l3", "");
    client.send(us, req.as_bytes());
    assert_eq!(header(&client.recv_sip(), "Call-ID"), Some("l3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_message_is_relayed_to_a_sipp_uas_over_udp() {
    let uas_port = free_udp_port();
    let (srv, us) = start(uas_port, 9);
    let scenario = sipp_scenario("message_uas.xml");
    let p = uas_port.to_string();
    let args = [
        "-sf",
        scenario.to_str().unwrap(),
        "-i",
        "127.0.0.1",
        "-p",
        &p,
        "-m",
        "1",
    ];
    let mut uas = Sipp::spawn("message-uas", &args);
    tokio::task::spawn_blocking(move || wait_udp_bound(uas_port))
        .await
        .unwrap();

    let mut ws = connect_sip(&srv.ws_url()).await;
    let msg = options_request("ws-msg-1", "z9hG4bKwsmsg1", 1)
        .replace("OPTIONS", "MESSAGE")
        .replace(
            "Content-Length: 0\r\n",
            "X-Relay: udp\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n",
        )
        + "hello";
    send_text(&mut ws, msg).await;
    let reply = next_text(&mut ws).await;
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    assert_eq!(header(&reply, "Call-ID"), Some("ws-msg-1"));
    // SIPp joins the Vias it copies into one header field line.
    let vias: Vec<&str> = headers(&reply, "Via")
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    assert_eq!(vias.len(), 2, "our Via removed: {reply}");
    assert!(
        vias[0].starts_with("SIP/2.0/WS df7jal23ls0d.invalid"),
        "{reply}"
    );
    assert!(
        vias[0].contains("rport="),
        "connection-oriented: rport forced: {reply}"
    );

    let st = tokio::task::spawn_blocking(move || {
        uas.assert_success(Duration::from_secs(20));
        uas.file("messages.log")
    })
    .await
    .unwrap();
    assert!(
        st.contains(&format!("Via: SIP/2.0/UDP {us};branch=z9hG4bK")),
        "{st}"
    );
    assert!(st.contains("hello"), "{st}");
}

/// A WebSocket UAS (tokio-tungstenite) answering every request 200; keeps what it got.
async fn ws_uas(listener: tokio::net::TcpListener, seen: Arc<Mutex<Vec<String>>>) {
    while let Ok((tcp, _)) = listener.accept().await {
        let seen = seen.clone();
        tokio::spawn(async move {
            // The callback signature is tungstenite's; its error type is not ours to shrink.
            #[allow(clippy::result_large_err)]
            let cb = |_: &server::Request, mut resp: server::Response| {
                resp.headers_mut()
                    .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
                Ok(resp)
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await else {
                return;
            };
            while let Some(Ok(Message::Text(t))) = ws.next().await {
                seen.lock().unwrap().push(t.to_string());
                if ws.send(Message::text(ok_for(&t))).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_request_is_relayed_to_a_websocket_server_and_answered_by_rport() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(ws_uas(listener, seen.clone()));
    let (srv, us) = start(9, ws_port);

    let client = Peer::new();
    let req = udp_request(
        "OPTIONS",
        "sip:bob@example.com",
        "127.0.0.1:9",
        true,
        "w1",
        "X-Relay: ws\r\n",
    );
    client.send(us, req.as_bytes());
    let back = tokio::task::spawn_blocking(move || (client.recv_sip(), client.addr.port()))
        .await
        .unwrap();
    let (back, port) = back;
    assert!(back.starts_with("SIP/2.0 200 OK\r\n"), "{back}");
    assert_eq!(header(&back, "Call-ID"), Some("w1"));
    assert_eq!(headers(&back, "Via").len(), 1, "{back}");

    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let vias = headers(&got[0], "Via");
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/WS 127.0.0.1:{};branch=z9hG4bK", srv.port)),
        "our Via names the ws socket: {}",
        got[0]
    );
    assert!(vias[1].contains(&format!("rport={port}")), "{}", got[0]);
}

/// IPv6 only: `socket=udp:[::1]:PORT`, a client and a UAS on `[::1]`.
const CFG6: &str = r#"
log_level = 3
mpath = "{MPATH}"
mi_http_port = {PORT}
socket = udp:[::1]:{UDP}
loadmodule "proto_udp.so"
route {
    if (is_method("OPTIONS") && $rU == NULL) {
        sl_send_reply(200, "OK");
        exit;
    }
    $du = "sip:[::1]:{UAS}";
    forward();
}
"#;

#[test]
fn ipv6_requests_are_answered_and_relayed() {
    let bind6 = || std::net::UdpSocket::bind("[::1]:0").expect("IPv6 loopback");
    let (client, uas) = (bind6(), bind6());
    let udp = bind6().local_addr().unwrap().port();
    let (c, u) = (client.local_addr().unwrap(), uas.local_addr().unwrap());
    let cfg = CFG6
        .replace("{UDP}", &udp.to_string())
        .replace("{UAS}", &u.port().to_string());
    let srv = Server::start(&cfg);
    srv.wait_log(
        &format!("listening on udp:[::1]:{udp}"),
        Duration::from_secs(10),
    );
    let us: SocketAddr = format!("[::1]:{udp}").parse().unwrap();
    let recv = |s: &std::net::UdpSocket| {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = vec![0u8; 65_536];
        let (n, from) = s.recv_from(&mut buf).expect("a datagram within 5 s");
        (String::from_utf8_lossy(&buf[..n]).into_owned(), from)
    };

    let req = udp_request("OPTIONS", "sip:[::1]", &c.to_string(), true, "v6-1", "");
    client.send_to(req.as_bytes(), us).unwrap();
    let (r, from) = recv(&client);
    assert_eq!(from, us);
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert!(
        header(&r, "Via")
            .unwrap()
            .contains(&format!("rport={}", c.port())),
        "{r}"
    );

    let req = udp_request("MESSAGE", "sip:bob@[::1]", &c.to_string(), true, "v6-2", "");
    client.send_to(req.as_bytes(), us).unwrap();
    let (seen, from) = recv(&uas);
    assert_eq!(from, us);
    let top = headers(&seen, "Via")[0];
    assert!(
        top.starts_with(&format!("SIP/2.0/UDP [::1]:{udp};branch=z9hG4bK")),
        "{seen}"
    );
    uas.send_to(ok_for(&seen).as_bytes(), us).unwrap();
    let (back, _) = recv(&client);
    assert!(back.starts_with("SIP/2.0 200 OK\r\n"), "{back}");
    assert_eq!(header(&back, "Call-ID"), Some("v6-2"));
}
