//! The session as the I/O workers will use it: over mio `TcpStream`s, driven by readiness
//! events (edge-triggered), never blocking; and through `std::io::Read`/`Write`, where
//! want-read/want-write become `WouldBlock`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::Instant;

use common::*;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use sipcore_tls::{Progress, TlsSession};

#[test]
fn handshake_and_data_driven_by_mio_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("mio CA");
    let ca_file = write_ca(dir.path(), "ca", &ca);
    let (cert, key) = write(dir.path(), "a", &leaf(&ca, &["a.example"], Kind::Ec, false));
    let srv_set = contexts(&[
        ("certificate", format!("[default]{}", s(&cert))),
        ("private_key", format!("[default]{}", s(&key))),
    ]);
    let cli_set = contexts(&[("ca_list", format!("[default]{}", s(&ca_file)))]);

    let mut poll = Poll::new().unwrap();
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    poll.registry()
        .register(&mut listener, Token(0), Interest::READABLE)
        .unwrap();
    let mut client_tcp = TcpStream::connect(addr).unwrap();
    let both = Interest::READABLE | Interest::WRITABLE;
    poll.registry()
        .register(&mut client_tcp, Token(2), both)
        .unwrap();
    let mut client = TlsSession::client(&cli_set, addr, Some("a.example"), client_tcp).unwrap();
    let mut server: Option<TlsSession<TcpStream>> = None;
    let (mut server_done, mut client_done) = (false, false);

    let mut events = Events::with_capacity(16);
    let start = Instant::now();
    while !(server_done && client_done) {
        assert!(
            start.elapsed() < DEADLINE,
            "handshake did not end before the deadline"
        );
        poll.poll(&mut events, Some(DEADLINE)).unwrap();
        for ev in events.iter() {
            match ev.token() {
                Token(0) => {
                    let (mut tcp, _) = listener.accept().unwrap();
                    poll.registry().register(&mut tcp, Token(1), both).unwrap();
                    let local = tcp.local_addr().unwrap();
                    server = Some(TlsSession::server(&srv_set, local, tcp).unwrap());
                }
                Token(1) | Token(2) => {}
                _ => unreachable!(),
            }
        }
        // Edge-triggered: after an event, step until the session waits again.
        if let (Some(srv), false) = (server.as_mut(), server_done) {
            server_done = srv.handshake().unwrap() == Progress::Done;
        }
        if !client_done {
            client_done = client.handshake().unwrap() == Progress::Done;
        }
    }
    let mut server = server.unwrap();
    assert_eq!(client.info().version, "TLSv1.3");

    // std::io over the session: nothing to read yet is WouldBlock, not an error.
    let mut buf = [0u8; 64];
    assert_eq!(
        Read::read(&mut server, &mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    const MSG: &[u8] = b"OPTIONS sip:a.example SIP/2.0\r\n";
    Write::write_all(&mut client, MSG).unwrap();
    let mut got = Vec::new();
    while got.len() < MSG.len() {
        assert!(
            start.elapsed() < DEADLINE,
            "data did not arrive before the deadline"
        );
        match Read::read(&mut server, &mut buf) {
            Ok(0) => panic!("server read end of stream; client {:?}", client.info()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                poll.poll(&mut events, Some(DEADLINE)).unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, MSG);
}
