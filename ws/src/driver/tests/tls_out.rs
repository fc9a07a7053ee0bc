//! Outbound TLS (`wss`): the driver connects to a small TLS WebSocket server made here with
//! OpenSSL's `SslAcceptor`; with a certificate the client domain does not trust, or a host
//! name the certificate does not name, the connection fails and is reported closed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};

use super::pki::Pki;
use super::tls_in::wait_until;
use super::*;
use crate::proto::handshake::accept_key;

/// A one-connection TLS WebSocket server with `pki`'s certificate: answers the opening
/// handshake (RFC 6455 §4.2.2, `sip`), echoes the first message unmasked, and once the client
/// has closed the connection returns that message; an error says why the TLS or WebSocket
/// handshake failed.
fn tls_ws_server(pki: &Pki) -> (SocketAddr, JoinHandle<Result<Vec<u8>, String>>) {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_certificate_chain_file(&pki.cert_pem).unwrap();
    b.set_private_key_file(&pki.key_pem, SslFiletype::PEM)
        .unwrap();
    let acceptor = b.build();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        let tcp = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(format!("no connection: {e}")),
            }
        };
        tcp.set_nonblocking(false).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut s = acceptor.accept(tcp).map_err(|e| e.to_string())?;
        let head = read_head(&mut s);
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .ok_or_else(|| format!("no key in {head}"))?;
        let reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: sip\r\n\r\n",
            accept_key(key)
        );
        s.write_all(reply.as_bytes()).map_err(|e| e.to_string())?;
        let mut h = [0u8; 2];
        s.read_exact(&mut h).map_err(|e| e.to_string())?;
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                s.read_exact(&mut l).map_err(|e| e.to_string())?;
                usize::from(u16::from_be_bytes(l))
            }
            n => usize::from(n),
        };
        let mut key = [0u8; 4];
        s.read_exact(&mut key).map_err(|e| e.to_string())?;
        let mut p = vec![0u8; len];
        s.read_exact(&mut p).map_err(|e| e.to_string())?;
        p.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
        let mut echo = vec![0x81, 126];
        echo.extend_from_slice(&(len as u16).to_be_bytes());
        echo.extend_from_slice(&p);
        s.write_all(&echo).map_err(|e| e.to_string())?;
        // Hold the connection until the client closes it (its Close, then EOF).
        let mut rest = [0u8; 256];
        while matches!(s.read(&mut rest), Ok(n) if n > 0) {}
        Ok(p)
    });
    (addr, h)
}

fn client(pki: &Pki) -> Server {
    let cfg = WsConfig {
        client_tls: Some(pki.client()),
        connect_timeout: Duration::from_secs(10),
        handshake_timeout: Duration::from_secs(10),
        ..cfg()
    };
    Server::start(cfg, Echo::No)
}

#[test]
fn outbound_tls_connects_verifies_and_exchanges_messages() {
    let pki = Pki::new("wss test CA");
    let srv = client(&pki);
    // By host name (SNI `localhost`), message sent before the handshakes complete.
    let (addr, h) = tls_ws_server(&pki);
    let id = srv.rt.connect(addr, "localhost", "/", Some("sip")).unwrap();
    srv.rt.send_frame(id, true, OPTIONS.as_bytes()).unwrap();
    let (info, got, _) = srv.next_msg();
    assert_eq!((info.conn_id, got.as_slice()), (id, OPTIONS.as_bytes()));
    assert_eq!(info.proto, sipcore_abi::Proto::WSS);
    let conns = srv.rt.connections();
    let c = conns.iter().find(|c| c.id == id).unwrap();
    let tls = c.tls.expect("TLS parameters recorded");
    assert_eq!(
        (c.outbound, c.state, tls.version),
        (true, "open", "TLSv1.3")
    );
    assert!(srv.rt.close(id, 1000, "done"));
    assert_eq!(h.join().unwrap().unwrap(), OPTIONS.as_bytes());
    // By address (a send to a destination opens the connection; the certificate names the IP).
    let (addr, h) = tls_ws_server(&pki);
    let t = SendTarget {
        dst: SockAddr::from(addr),
        ..target(0)
    };
    let id = srv.rt.send(&t, OPTIONS.as_bytes()).unwrap();
    let (info, got, _) = srv.next_msg();
    assert_eq!((info.conn_id, got.as_slice()), (id, OPTIONS.as_bytes()));
    assert!(srv.rt.close(id, 1000, "done"));
    assert_eq!(h.join().unwrap().unwrap(), OPTIONS.as_bytes());
}

/// Connect to a server whose handshake must fail: the connection is reported closed (as any
/// failed outbound connection), with one log line naming the server and OpenSSL's reason.
fn refused(srv: &Server, server_pki: &Pki, host: &str) -> String {
    let (addr, h) = tls_ws_server(server_pki);
    let id = srv.rt.connect(addr, host, "/", Some("sip")).unwrap();
    let (meta, reason) = srv.next_closed(10);
    assert_eq!((meta.id, meta.peer), (id, addr));
    assert!(reason.starts_with("tls handshake failed"), "{reason}");
    assert!(h.join().unwrap().is_err(), "the server saw a handshake");
    wait_until("the connection is gone", || srv.rt.connections().is_empty());
    let p = format!("peer={addr}");
    let logs: Vec<String> = srv
        .logs()
        .into_iter()
        .filter(|l| l.contains(&p) && l.starts_with(&format!("{} ", LogLevel::WARN.0)))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].contains("tls handshake failed"), "{logs:?}");
    reason
}

#[test]
fn outbound_tls_to_an_untrusted_certificate_fails_and_is_reported_closed() {
    let trusted = Pki::new("wss test CA");
    let other = Pki::new("someone else's CA");
    let srv = client(&trusted);
    let reason = refused(&srv, &other, "localhost");
    assert!(reason.contains("certificate"), "{reason}");
}

#[test]
fn outbound_tls_with_a_wrong_host_name_fails_and_is_reported_closed() {
    let pki = Pki::new("wss test CA");
    let srv = client(&pki);
    let reason = refused(&srv, &pki, "wrong.example.com");
    assert!(reason.contains("hostname mismatch"), "{reason}");
}
