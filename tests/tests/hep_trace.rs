//! HEP tracing of WebSocket connections, end to end: the real `sipcore` with proto_ws and
//! proto_hep, a third-party WebSocket client (tokio-tungstenite), and a collector whose decoder
//! is written from the HEP3 spec (`common/hep.rs`), not proto_hep's codec.
mod common;
#[path = "common/hep.rs"]
mod hep;

use common::*;
use hep::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

const CAPTURE_ID: u32 = 2001;
const T: Duration = Duration::from_secs(5);

/// Start a server tracing to `hep_id` (destination `hep_dest`) with the MI on a free port.
fn start(hep_id: &str, homer5: bool, filter: bool, extra: &str) -> Server {
    let hep = trace_params(hep_id, homer5, CAPTURE_ID, filter) + extra;
    let mi_port = free_port();
    let srv = Server::start(&config(mi_port, &hep));
    wait_port(mi_port);
    srv
}

/// False for the events of the harness's readiness probe (`Server::start` connects once from
/// 127.0.0.1 to see the port open): same IP as the client under test, another port. Events
/// from any other address are kept, so a leak of another client's events still fails.
fn not_probe(h: &Hep3, client: SocketAddr) -> bool {
    h.src == client || h.src.ip() != client.ip()
}

/// Checks shared by every event of connection `peer` on server `local`; returns its id.
fn check_event(h: &Hep3, peer: SocketAddr, local: SocketAddr) -> String {
    assert_eq!(
        (h.proto_type, h.ip_proto, h.family),
        (PT_NET, IP_PROTO_WS, AF_INET),
        "{}",
        summary(h)
    );
    assert_eq!(
        (h.src, h.dst),
        (peer, local),
        "event addresses: {}",
        summary(h)
    );
    assert_eq!(h.capture_id, CAPTURE_ID);
    assert_sane_time(h.ts_sec, h.ts_usec);
    let id = h.corr();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        "connection id {id:?}"
    );
    id
}

/// Checks a SIP capture: direction, correlation (Call-ID) and the `net` link to `conn_id`.
fn check_sip(h: &Hep3, src: SocketAddr, dst: SocketAddr, call_id: &str, conn_id: &str) {
    assert_eq!(
        (h.ip_proto, h.family),
        (IP_PROTO_WS, AF_INET),
        "{}",
        summary(h)
    );
    assert_eq!((h.src, h.dst), (src, dst), "SIP addresses: {}", summary(h));
    assert_eq!(h.corr(), call_id);
    assert_eq!(h.capture_id, CAPTURE_ID);
    assert_sane_time(h.ts_sec, h.ts_usec);
    let net = h
        .chunk(0, ct::EXTRA_CORRELATION)
        .unwrap_or_else(|| panic!("no 0x0065 chunk: {}", summary(h)));
    let v: Value = serde_json::from_slice(&net.data).expect("0x0065 holds JSON");
    assert_eq!(v, json!({ "net": conn_id }));
}

/// Does any packet involve `ip` or mention `needle`?
fn mentions(pkts: &[Hep3], ip: &str, needle: &str) -> Vec<String> {
    pkts.iter()
        .filter(|h| {
            h.src.ip().to_string() == ip
                || h.dst.ip().to_string() == ip
                || h.text().contains(needle)
                || h.corr().contains(needle)
        })
        .map(summary)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_collector_filter_route_and_ws_trace_switch() {
    let col = Collector::udp();
    let srv = start(
        &format!(
            "[hep_dest]127.0.0.1:{};transport=udp;version=3",
            col.addr.port()
        ),
        true,
        true,
        "",
    );
    let (mut a, a_addr) = connect_from(srv.addr, "127.0.0.1").await;
    let (mut b, b_addr) = connect_from(srv.addr, "127.0.0.2").await;
    assert_eq!(b_addr.ip().to_string(), "127.0.0.2");

    // B first: if it were traced, its packets would come before A's.
    options(&mut b, "b-1@hep", 1, 0, T).await;
    let before = std::time::SystemTime::now();
    let (req, reply) = options(&mut a, "a-1@hep", 1, 0, T).await;
    let after = std::time::SystemTime::now();
    let pkts = col
        .wait_hep3("A's OPTIONS, its 200 and a WS:ACCEPTED event", T, |p| {
            find_sip(p, &req).is_some()
                && find_sip(p, &reply).is_some()
                && p.iter()
                    .any(|h| h.proto_type == PT_NET && h.text().starts_with("WS:ACCEPTED:"))
        })
        .await;
    // Connection events of A: at least the ACCEPTED one, homer5 format.
    let events: Vec<&Hep3> = pkts
        .iter()
        .filter(|h| h.proto_type == PT_NET && not_probe(h, a_addr))
        .collect();
    assert!(!events.is_empty(), "no transport events");
    let ids: Vec<String> = events
        .iter()
        .map(|h| check_event(h, a_addr, srv.addr))
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one connection id for A: {ids:?}"
    );
    assert!(
        events.iter().any(|h| h.text().starts_with("WS:ACCEPTED:")),
        "no WS:ACCEPTED event"
    );
    check_sip(
        find_sip(&pkts, &req).unwrap(),
        a_addr,
        srv.addr,
        "a-1@hep",
        &ids[0],
    );
    check_sip(
        find_sip(&pkts, &reply).unwrap(),
        srv.addr,
        a_addr,
        "a-1@hep",
        &ids[0],
    );
    // The timestamps (wall time derived from the driver's monotonic clock, ws/src/wallclock.rs)
    // lie between our clock readings around the exchange, the reply's not before the
    // request's. The slack covers the anchor's slew (25 µs at most) and microsecond rounding.
    let at = |h: &Hep3| Duration::new(u64::from(h.ts_sec), h.ts_usec * 1000);
    let epoch = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap();
    let slack = Duration::from_millis(1);
    let (t_req, t_reply) = (
        at(find_sip(&pkts, &req).unwrap()),
        at(find_sip(&pkts, &reply).unwrap()),
    );
    assert!(
        epoch(before) <= t_req + slack && t_req <= t_reply && t_reply <= epoch(after) + slack,
        "request at {t_req:?}, reply at {t_reply:?}, sent after {before:?}, answered by {after:?}"
    );

    // ws_list agrees on the id, and only A is traced.
    let list = mi_ok(&srv.cfg_path, &["ws_list"]).await;
    let conns = list["Connections"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"));
    let find = |addr: SocketAddr| {
        conns
            .iter()
            .find(|c| {
                c["peer"]
                    .as_str()
                    .and_then(|p| p.parse::<SocketAddr>().ok())
                    == Some(addr)
            })
            .unwrap_or_else(|| panic!("{addr} not in {list}"))
    };
    assert_eq!(find(a_addr)["id"].to_string(), ids[0]);
    assert_eq!(find(a_addr)["traced"], json!(true));
    assert_eq!(find(b_addr)["traced"], json!(false));

    // Nothing about B, ever; every event (late ones too) is A's.
    let pkts = settle(&col, &mut a, "a-1").await;
    assert_eq!(
        mentions(&pkts, "127.0.0.2", "b-1@hep"),
        Vec::<String>::new()
    );
    for h in pkts
        .iter()
        .filter(|h| h.proto_type == PT_NET && not_probe(h, a_addr))
    {
        assert_eq!(check_event(h, a_addr, srv.addr), ids[0]);
    }

    // ws_trace off: A is answered but not traced.
    assert_eq!(
        mi_ok(&srv.cfg_path, &["ws_trace", "off"]).await,
        json!("OK")
    );
    let before = col.count();
    options(&mut a, "a-2@hep", 2, 0, T).await;
    assert_eq!(
        mi_ok(&srv.cfg_path, &["ws_trace"]).await,
        json!({ "WS tracing": "off" })
    );

    // ws_trace on: traced again (A only).
    assert_eq!(mi_ok(&srv.cfg_path, &["ws_trace", "on"]).await, json!("OK"));
    options(&mut b, "b-3@hep", 3, 0, T).await;
    let (req, reply) = options(&mut a, "a-3@hep", 3, 0, T).await;
    let pkts = col
        .wait_hep3("a-3 request and reply", T, |p| {
            find_sip(p, &req).is_some() && find_sip(p, &reply).is_some()
        })
        .await;
    check_sip(
        find_sip(&pkts, &req).unwrap(),
        a_addr,
        srv.addr,
        "a-3@hep",
        &ids[0],
    );
    check_sip(
        find_sip(&pkts, &reply).unwrap(),
        srv.addr,
        a_addr,
        "a-3@hep",
        &ids[0],
    );
    let pkts = settle(&col, &mut a, "a-3").await;
    assert_eq!(
        mentions(&pkts, "127.0.0.2", "b-3@hep"),
        Vec::<String>::new()
    );
    // Nothing while it was off: the first packet after that point is a-3's.
    let off: Vec<String> = pkts[before..]
        .iter()
        .take_while(|h| !h.text().contains("a-3@hep") && !h.corr().contains("a-3@hep"))
        .map(summary)
        .collect();
    assert_eq!(off, Vec::<String>::new(), "traced while off");
    assert!(!pkts.iter().any(|h| h.text().contains("a-2@hep")));
}

/// Every packet queued so far has reached the collector: two OPTIONS from the traced client
/// `a`, each waited for at the collector. The sender sweeps every worker's batch at once and
/// sends a sweep before taking the next, so once the first marker is in, the sweep holding
/// anything queued earlier has been sent; the second marker, queued after that, comes in a
/// later sweep, behind all of it (UDP over loopback keeps the order). Returns all packets.
async fn settle(col: &Collector, a: &mut Ws, tag: &str) -> Vec<Hep3> {
    let mut pkts = Vec::new();
    for i in 1..=2u32 {
        let call_id = format!("{tag}-settle{i}@hep");
        let (req, _) = options(a, &call_id, 100 + i, 0, T).await;
        pkts = col
            .wait_hep3(&format!("marker {call_id}"), T, |p| {
                find_sip(p, &req).is_some()
            })
            .await;
    }
    pkts
}

/// Does the HTTP text have this header line (case-insensitive)?
fn has_line(http: &str, line: &str) -> bool {
    http.split("\r\n")
        .any(|l| l.trim().eq_ignore_ascii_case(line))
}

/// The JSON object of a homer6-style event payload.
fn event_json(h: &Hep3) -> serde_json::Map<String, Value> {
    match serde_json::from_slice::<Value>(&h.payload) {
        Ok(Value::Object(m)) => m,
        other => panic!(
            "event payload is not a JSON object ({other:?}): {}",
            h.text()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_collector_homer6_json_events() {
    let col = Collector::tcp();
    let srv = start(
        &format!(
            "[hep_dest]127.0.0.1:{};transport=tcp;version=3",
            col.addr.port()
        ),
        false,
        false,
        "",
    );
    let (mut a, a_addr) = connect_from(srv.addr, "127.0.0.1").await;
    let (req, reply) = options(&mut a, "tcp-1@hep", 1, 0, T).await;
    a.close(None).await.expect("send close");
    // Drain until the server's Close answer / EOF.
    let _ = tokio::time::timeout(T, async {
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut a).await {}
    })
    .await;

    let has = |p: &[Hep3], ev: &str, key: &str| {
        p.iter()
            .filter(|h| h.proto_type == PT_NET && not_probe(h, a_addr))
            .any(|h| {
                let m = event_json(h);
                m.get("Event") == Some(&json!(ev)) && m.contains_key(key)
            })
    };
    let pkts = col
        .wait_hep3("handshake request/reply, SIP and CLOSED", T, |p| {
            find_sip(p, &req).is_some()
                && find_sip(p, &reply).is_some()
                && has(p, "ACCEPTED", "Ws-Request")
                && has(p, "ACCEPTED", "Ws-Reply")
                && has(p, "CLOSED", "Message")
        })
        .await;
    assert_eq!(
        col.connections(),
        1,
        "one TCP connection to the collector is reused"
    );

    let mut id = None;
    for h in pkts
        .iter()
        .filter(|h| h.proto_type == PT_NET && not_probe(h, a_addr))
    {
        let cid = check_event(h, a_addr, srv.addr);
        assert_eq!(id.get_or_insert(cid.clone()), &cid);
        let m = event_json(h);
        assert_eq!(m.get("Protocol"), Some(&json!("WS")), "{}", h.text());
        assert!(m.values().all(Value::is_string), "{}", h.text());
        if let Some(r) = m.get("Ws-Request") {
            let r = r.as_str().unwrap();
            assert!(r.starts_with("GET / HTTP/1.1\r\n"), "{r}");
            assert!(has_line(r, "sec-websocket-protocol: sip"), "{r}");
        }
        if let Some(r) = m.get("Ws-Reply") {
            assert_eq!(m.get("Status"), Some(&json!("SUCCESS")));
            let r = r.as_str().unwrap();
            assert!(r.starts_with("HTTP/1.1 101 "), "{r}");
            assert!(has_line(r, "sec-websocket-protocol: sip"), "{r}");
        }
        if m.get("Event") == Some(&json!("CLOSED")) {
            assert!(!m["Message"].as_str().unwrap().is_empty());
        }
    }
    let id = id.unwrap();
    check_sip(
        find_sip(&pkts, &req).unwrap(),
        a_addr,
        srv.addr,
        "tcp-1@hep",
        &id,
    );
    check_sip(
        find_sip(&pkts, &reply).unwrap(),
        srv.addr,
        a_addr,
        "tcp-1@hep",
        &id,
    );
    assert!(col.errors().is_empty(), "{:?}", col.errors());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hep_v2_destination_over_udp() {
    let col = Collector::udp();
    let srv = start(
        &format!(
            "[hep_dest]127.0.0.1:{};transport=udp;version=2",
            col.addr.port()
        ),
        true,
        false,
        "",
    );
    let (mut a, a_addr) = connect_from(srv.addr, "127.0.0.1").await;
    let (req, reply) = options(&mut a, "v2-1@hep", 1, 0, T).await;
    let deadline = std::time::Instant::now() + T;
    let pkts = loop {
        let raw = col.raw();
        assert!(
            raw.iter().all(|p| !p.starts_with(b"HEP3")),
            "HEP3 sent to a version=2 destination"
        );
        let p = col.hep2();
        let found = |t: &str| p.iter().any(|h| h.payload == t.as_bytes());
        if found(&req) && found(&reply) {
            break p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no v2 SIP captures; {} packets",
            p.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Issue 10, item 16: connection events (accept, handshake, close: queued before the SIP
    // captures of the same connection, so they would have arrived first) are not sent over
    // HEPv2, where they would look like SIP without a Call-ID.
    for h in &pkts {
        let text = String::from_utf8_lossy(&h.payload);
        assert!(
            text.starts_with("OPTIONS ") || text.starts_with("SIP/2.0 "),
            "not a SIP capture over HEPv2: {text:?}"
        );
    }
    srv.wait_log("connection events need version=3", T);
    for h in &pkts {
        assert_eq!((h.version, h.family, h.ip_proto), (2, AF_INET, IP_PROTO_WS));
        assert_eq!(u32::from(h.capture_id), CAPTURE_ID);
        assert_sane_time(h.ts_sec, h.ts_usec);
    }
    let r = pkts.iter().find(|h| h.payload == req.as_bytes()).unwrap();
    assert_eq!((r.src, r.dst), (a_addr, srv.addr));
    let r = pkts.iter().find(|h| h.payload == reply.as_bytes()).unwrap();
    assert_eq!((r.src, r.dst), (srv.addr, a_addr));
}

/// Issue 4: the handshake is traced also when the request arrives in several reads (OpenSIPS
/// loses it), and a failed handshake is traced with its reply and a FAILURE status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_failed_handshakes_are_traced() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let col = Collector::udp();
    let srv = start(
        &format!(
            "[hep_dest]127.0.0.1:{};transport=udp;version=3",
            col.addr.port()
        ),
        false,
        false,
        "",
    );
    let good = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                Sec-WebSocket-Protocol: sip\r\n\r\n";
    let mut a = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    a.set_nodelay(true).unwrap();
    let a_addr = a.local_addr().unwrap();
    for piece in [&good[..20], &good[20..90], &good[90..]] {
        a.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(T, a.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );

    let bad = good.replace("Sec-WebSocket-Protocol: sip\r\n", "");
    let mut b = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let b_addr = b.local_addr().unwrap();
    b.write_all(bad.as_bytes()).await.unwrap();
    let n = tokio::time::timeout(T, b.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );

    let of = |p: &[Hep3], peer: SocketAddr| -> Vec<serde_json::Map<String, Value>> {
        p.iter()
            .filter(|h| h.proto_type == PT_NET && h.src == peer)
            .map(event_json)
            .collect()
    };
    let pkts = col
        .wait_hep3("A's full request and B's failure", T, |p| {
            of(p, a_addr)
                .iter()
                .any(|m| m.get("Ws-Request") == Some(&json!(good)))
                && of(p, b_addr)
                    .iter()
                    .any(|m| m.get("Status") == Some(&json!("FAILURE")))
        })
        .await;
    let a_events = of(&pkts, a_addr);
    assert!(
        a_events.iter().any(|m| m
            .get("Ws-Reply")
            .and_then(Value::as_str)
            .is_some_and(|r| r.starts_with("HTTP/1.1 101"))),
        "{a_events:?}"
    );
    let b_events = of(&pkts, b_addr);
    assert!(
        b_events
            .iter()
            .any(|m| m.get("Ws-Request") == Some(&json!(bad))),
        "{b_events:?}"
    );
    assert!(
        b_events.iter().any(|m| m
            .get("Ws-Reply")
            .and_then(Value::as_str)
            .is_some_and(|r| r.starts_with("HTTP/1.1 400"))),
        "{b_events:?}"
    );
    for h in pkts.iter().filter(|h| h.src == a_addr || h.src == b_addr) {
        assert_eq!(h.dst, srv.addr, "{}", summary(h));
    }
}

/// Issue 10 item 16: the first SIP message on a new outbound connection is traced. It is
/// queued while the connection is still connecting, before the trace decision is made (the
/// old server traced every later message but never that one). Each relayed request below opens
/// a new connection to its own WebSocket UAS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_message_on_each_new_outbound_connection_is_traced() {
    use futures_util::{SinkExt, StreamExt};
    const UAS: usize = 4;
    let col = Collector::udp();
    let mut uas_addrs = Vec::new();
    for _ in 0..UAS {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        uas_addrs.push(l.local_addr().unwrap());
        // Accepts one connection and reads it (answers nothing: the trace is what counts).
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            #[allow(clippy::result_large_err)] // tungstenite's callback signature
            let cb = |_: &tokio_tungstenite::tungstenite::handshake::server::Request,
                      mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                resp.headers_mut()
                    .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
                Ok(resp)
            };
            let mut ws = tokio_tungstenite::accept_hdr_async(s, cb).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        });
    }
    let mut relay = String::new();
    for (i, a) in uas_addrs.iter().enumerate() {
        relay.push_str(&format!(
            "    if ($hdr(X-Uas) == \"{i}\") {{ $du = \"sip:{a};transport=ws\"; forward(); exit; }}\n"
        ));
    }
    let hep = trace_params(
        &format!(
            "[hep_dest]127.0.0.1:{};transport=udp;version=3",
            col.addr.port()
        ),
        false,
        CAPTURE_ID,
        false,
    );
    let mi_port = free_port();
    let cfg = config(mi_port, &hep).replace("route {\n", &format!("route {{\n{relay}"));
    let srv = Server::start(&cfg);
    wait_port(mi_port);
    let (mut a, _) = connect_from(srv.addr, "127.0.0.1").await;
    let mut calls = Vec::new();
    for i in 0..UAS {
        let call_id = format!("outbound-{i}@hep");
        let req = options_request(&call_id, &format!("z9hG4bKout{i}"), 1).replace(
            "Content-Length: 0\r\n",
            &format!("X-Uas: {i}\r\nContent-Length: 0\r\n"),
        );
        a.send(tokio_tungstenite::tungstenite::Message::text(req))
            .await
            .unwrap();
        calls.push(call_id);
    }
    let relayed = |p: &[Hep3], i: usize| {
        p.iter().any(|h| {
            h.proto_type == PT_SIP
                && h.dst == uas_addrs[i]
                && h.corr() == calls[i]
                && h.text().starts_with("OPTIONS ")
        })
    };
    // Connection events carry the peer as source (as for inbound connections).
    let connected = |p: &[Hep3], i: usize| {
        p.iter().any(|h| {
            h.proto_type == PT_NET
                && h.src == uas_addrs[i]
                && event_json(h).get("Event") == Some(&json!("CONNECTED"))
        })
    };
    col.wait_hep3(
        "every relayed request and the CONNECTED event of its new connection",
        T,
        |p| (0..UAS).all(|i| relayed(p, i) && connected(p, i)),
    )
    .await;
}

/// Issue 10 item 16: a client's normal Close is reported as such in the CLOSED event, not as
/// whatever ended the TCP connection afterwards (the client dropped it with our Close unread:
/// "Connection reset by peer").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_close_is_reported_as_closed_by_peer() {
    use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
    let col = Collector::udp();
    let srv = start(
        &format!(
            "[hep_dest]127.0.0.1:{};transport=udp;version=3",
            col.addr.port()
        ),
        false,
        false,
        "",
    );
    let mut peers = Vec::new();
    for read_answer in [true, false] {
        let (mut a, a_addr) = connect_from(srv.addr, "127.0.0.1").await;
        options(&mut a, &format!("close-{read_answer}@hep"), 1, 0, T).await;
        a.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .expect("send close");
        if read_answer {
            let _ = tokio::time::timeout(T, async {
                while let Some(Ok(_)) = futures_util::StreamExt::next(&mut a).await {}
            })
            .await;
        }
        drop(a);
        peers.push(a_addr);
    }
    let closed = |p: &[Hep3], peer: SocketAddr| -> Option<String> {
        p.iter()
            .filter(|h| h.proto_type == PT_NET && h.src == peer)
            .map(event_json)
            .find(|m| m.get("Event") == Some(&json!("CLOSED")))
            .and_then(|m| m.get("Message").and_then(Value::as_str).map(String::from))
    };
    let pkts = col
        .wait_hep3("both CLOSED events", T, |p| {
            peers.iter().all(|&a| closed(p, a).is_some())
        })
        .await;
    for a in peers {
        assert_eq!(
            closed(&pkts, a).unwrap(),
            "closed by peer (close code 1000)",
            "client {a}"
        );
    }
}
