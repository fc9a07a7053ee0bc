//! A TLS listener (`wss`): real TLS clients (OpenSSL's `SslConnector` over a std socket)
//! upgrade and exchange SIP messages; TLS 1.1, plain HTTP and plain WebSocket are refused with
//! one log line naming the peer; a stalled TLS handshake is closed at `tls_handshake_timeout`
//! while another client is served.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use openssl::ssl::{SslStream, SslVersion};

use super::pki::{tls_connect, Pki};
use super::*;

/// Wait (at most 10 s) for `f` to hold.
pub(super) fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "not reached in 10 s: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Open the WebSocket over an established TLS stream (RFC 6455 §4.1, `sip` subprotocol).
fn upgrade(s: &mut SslStream<TcpStream>) {
    s.write_all(request("Sec-WebSocket-Protocol: sip\r\n").as_bytes())
        .unwrap();
    let head = read_head(s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n")));
}

/// Log lines at WARN or more severe naming `peer`.
fn warnings_about(srv: &Server, peer: SocketAddr) -> Vec<String> {
    let p = format!("peer={peer}");
    let levels = [LogLevel::ERR, LogLevel::WARN].map(|l| format!("{} ", l.0));
    srv.logs()
        .into_iter()
        .filter(|l| levels.iter().any(|lv| l.starts_with(lv.as_str())) && l.contains(&p))
        .collect()
}

fn tls_cfg() -> WsConfig {
    WsConfig {
        inbound_handshake_timeout: Duration::from_secs(30),
        ..cfg()
    }
}

#[test]
fn tls_clients_upgrade_and_exchange_sip_messages_both_ways() {
    let pki = Pki::new("wss test CA");
    let srv = Server::start_with(tls_cfg(), Echo::Send, Some(pki.server()));
    for (version, name) in [(None, "TLSv1.3"), (Some(SslVersion::TLS1_2), "TLSv1.2")] {
        let mut s = tls_connect(&pki, srv.addr, version).unwrap();
        upgrade(&mut s);
        let pad =
            |n: usize| OPTIONS.replace("Content-Length: 0", &format!("X-Pad: {}", "p".repeat(n)));
        // SIP-sized, and one of several TLS records (partial writes resumed).
        let (big, huge) = (pad(3000), pad(60_000));
        for msg in [OPTIONS, big.as_str(), huge.as_str(), OPTIONS] {
            s.write_all(&frame(0x81, msg.as_bytes())).unwrap();
            let (info, got, text) = srv.next_msg();
            assert_eq!((got.as_slice(), text), (msg.as_bytes(), true));
            assert_eq!((info.listener, info.proto), (3, sipcore_abi::Proto::WSS));
            // Echoed by the sink through `Runtime::send`, encrypted on the way back.
            assert_eq!(read_frame(&mut s), Some((0x81, msg.as_bytes().to_vec())));
        }
        let conns = srv.rt.connections();
        let c = conns.iter().find(|c| c.state == "open").unwrap();
        let tls = c.tls.expect("TLS parameters recorded");
        assert_eq!(tls.version, name);
        assert!(!tls.cipher.is_empty() && tls.cipher != "none", "{tls:?}");
        // Close 1000 both ways, then close_notify and EOF.
        s.write_all(&frame(0x88, &1000u16.to_be_bytes())).unwrap();
        assert_eq!(
            read_frame(&mut s),
            Some((0x88, 1000u16.to_be_bytes().to_vec()))
        );
        let (_, reason) = srv.next_closed(10);
        assert_eq!(reason, "closed by peer");
    }
}

#[test]
fn a_tls_1_1_client_is_refused_and_logged_once_with_its_address() {
    let pki = Pki::new("wss test CA");
    let srv = Server::start_with(tls_cfg(), Echo::No, Some(pki.server()));
    let err = match tls_connect(&pki, srv.addr, Some(SslVersion::TLS1_1)) {
        Ok(_) => panic!("TLS 1.1 accepted"),
        Err(e) => e,
    };
    assert!(!err.is_empty());
    let (meta, reason) = srv.next_closed(10);
    assert!(reason.starts_with("tls handshake failed"), "{reason}");
    let logs = warnings_about(&srv, meta.peer);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].contains("tls handshake failed"), "{logs:?}");
    assert!(logs[0].contains("protocol"), "OpenSSL's reason: {logs:?}");
    assert!(srv.rt.connections().is_empty());
}

#[test]
fn plain_http_and_plain_websocket_to_the_tls_port_are_closed_and_logged_once() {
    let pki = Pki::new("wss test CA");
    let srv = Server::start_with(tls_cfg(), Echo::No, Some(pki.server()));
    for req in [
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".to_string(),
        request("Sec-WebSocket-Protocol: sip\r\n"),
    ] {
        let mut s = tcp(srv.addr);
        let peer = s.local_addr().unwrap();
        s.write_all(req.as_bytes()).unwrap();
        assert!(at_eof(&mut s), "not closed: {req}");
        let (meta, reason) = srv.next_closed(10);
        assert_eq!(meta.peer, peer);
        assert!(reason.starts_with("tls handshake failed"), "{reason}");
        let logs = warnings_about(&srv, peer);
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert!(
            logs[0].contains("http request"),
            "OpenSSL's reason: {logs:?}"
        );
    }
    // A client that connects and leaves without a byte (a TCP health check): closed quietly.
    let s = tcp(srv.addr);
    let peer = s.local_addr().unwrap();
    drop(s);
    let (meta, reason) = srv.next_closed(10);
    assert_eq!(meta.peer, peer);
    assert_eq!(reason, "peer closed before the tls handshake");
    assert_eq!(warnings_about(&srv, peer), Vec::<String>::new());
    // Still serving TLS.
    let mut s = tls_connect(&pki, srv.addr, None).unwrap();
    upgrade(&mut s);
}

#[test]
fn a_stalled_tls_handshake_is_closed_at_its_deadline_while_another_client_is_served() {
    let pki = Pki::new("wss test CA");
    let deadline = Duration::from_millis(400);
    let srv = Server::start_with(
        WsConfig {
            tls_handshake_timeout: deadline,
            ..tls_cfg()
        },
        Echo::Send,
        Some(pki.server()),
    );
    let t0 = Instant::now();
    let mut stalled = tcp(srv.addr);
    let peer = stalled.local_addr().unwrap();
    // A TLS record header announcing a 512-byte ClientHello, and one byte of it.
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    wait_until("the stalled connection is accepted", || {
        srv.rt.connections().iter().any(|c| c.peer == peer)
    });
    let conns = srv.rt.connections();
    assert_eq!(conns[0].state, "tls handshake");
    // Another client is served meanwhile.
    let mut witness = tls_connect(&pki, srv.addr, None).unwrap();
    upgrade(&mut witness);
    witness.write_all(&frame(0x81, OPTIONS.as_bytes())).unwrap();
    assert_eq!(
        read_frame(&mut witness),
        Some((0x81, OPTIONS.as_bytes().to_vec()))
    );
    assert!(at_eof(&mut stalled));
    let waited = t0.elapsed();
    assert!(waited >= deadline, "closed after {waited:?}");
    assert!(waited < Duration::from_secs(10), "closed after {waited:?}");
    let logs = warnings_about(&srv, peer);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].contains("tls handshake timeout"), "{logs:?}");
    // The witness is still open.
    witness.write_all(&frame(0x89, b"")).unwrap();
    assert_eq!(read_frame(&mut witness), Some((0x8A, vec![])));
}

#[test]
fn connection_limits_apply_to_tls_listeners() {
    let pki = Pki::new("wss test CA");
    let srv = Server::start_with(
        WsConfig {
            max_connections_per_ip: 1,
            ..tls_cfg()
        },
        Echo::Send,
        Some(pki.server()),
    );
    let mut first = tls_connect(&pki, srv.addr, None).unwrap();
    upgrade(&mut first);
    // Refused before any TLS: closed at once (a 503 could only follow a handshake).
    assert!(tls_connect(&pki, srv.addr, None).is_err());
    first.write_all(&frame(0x81, OPTIONS.as_bytes())).unwrap();
    assert_eq!(
        read_frame(&mut first),
        Some((0x81, OPTIONS.as_bytes().to_vec()))
    );
    assert_eq!(srv.rt.connections().len(), 1);
}

#[test]
fn an_sni_no_domain_takes_is_refused_and_logged_once() {
    let pki = Pki::new("wss test CA");
    let tls = pki.server_only_for("sip.example.com");
    let srv = Server::start_with(tls_cfg(), Echo::No, Some(tls));
    // The client sends SNI `localhost`.
    assert!(tls_connect(&pki, srv.addr, None).is_err());
    let (meta, reason) = srv.next_closed(10);
    assert!(reason.starts_with("tls handshake failed"), "{reason}");
    let logs = warnings_about(&srv, meta.peer);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].contains("localhost"), "names the SNI: {logs:?}");
}
