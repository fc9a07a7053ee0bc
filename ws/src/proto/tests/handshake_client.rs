//! Tests of the client side of the opening handshake (RFC 6455 §4.1, §1.3).

use super::super::tests::{accept, cfg, ACCEPT};
use super::*;
use crate::proto::error::HandshakeError as E;

const NONCE: [u8; 16] = *b"the sample nonce";

fn reply(extra: &str) -> String {
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n")
}

#[test]
fn client_request_format() {
    let r = client_request(
        "192.0.2.7:8080",
        "/sip",
        Some("http://192.0.2.1"),
        NONCE,
        Some("sip"),
    );
    assert_eq!(
        String::from_utf8(r.bytes).unwrap(),
        "GET /sip HTTP/1.1\r\nHost: 192.0.2.7:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://192.0.2.1\r\n\
Sec-WebSocket-Protocol: sip\r\n\r\n"
    );
    assert_eq!(r.expected_accept, ACCEPT);
    let r = client_request("[2001:db8::1]:80", "", None, NONCE, None);
    assert_eq!(
        String::from_utf8(r.bytes).unwrap(),
        "GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    // Header injection is impossible.
    let r = client_request("h\r\nX-Evil: 1", "/", None, NONCE, None);
    assert!(String::from_utf8(r.bytes)
        .unwrap()
        .contains("Host: hX-Evil: 1\r\n"));
}

#[test]
fn client_verify_good_reply() {
    let head = reply(&format!(
        "Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Protocol: sip\r\n"
    ));
    assert_eq!(
        client_verify(head.as_bytes(), ACCEPT, Some("sip")),
        Ok(Some(head.len()))
    );
    // Frame bytes after the head are not consumed; every prefix is incomplete.
    let mut bytes = head.clone().into_bytes();
    bytes.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    assert_eq!(
        client_verify(&bytes, ACCEPT, Some("sip")),
        Ok(Some(head.len()))
    );
    for i in 0..head.len() {
        assert_eq!(
            client_verify(&bytes[..i], ACCEPT, Some("sip")),
            Ok(None),
            "cut {i}"
        );
    }
    // No subprotocol requested, none given.
    let head = reply(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"));
    assert_eq!(
        client_verify(head.as_bytes(), ACCEPT, None),
        Ok(Some(head.len()))
    );
}

#[test]
fn client_verify_wrong_accept() {
    let lower = ACCEPT.to_ascii_lowercase();
    let truncated = &ACCEPT[..20];
    for bad in [&lower[..], truncated, "", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="] {
        let head = reply(&format!(
            "Sec-WebSocket-Accept: {bad}\r\nSec-WebSocket-Protocol: sip\r\n"
        ));
        assert_eq!(
            client_verify(head.as_bytes(), ACCEPT, Some("sip")),
            Err(E::BadAccept),
            "{bad:?}"
        );
    }
    let missing = reply("Sec-WebSocket-Protocol: sip\r\n");
    assert_eq!(
        client_verify(missing.as_bytes(), ACCEPT, Some("sip")),
        Err(E::BadAccept)
    );
    let twice = reply(&format!(
        "Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Accept: {ACCEPT}\r\n"
    ));
    assert_eq!(
        client_verify(twice.as_bytes(), ACCEPT, None),
        Err(E::BadAccept)
    );
    // An empty expectation never matches.
    let empty = reply("Sec-WebSocket-Accept: \r\n");
    assert_eq!(client_verify(empty.as_bytes(), "", None), Err(E::BadAccept));
}

#[test]
fn client_verify_other_failures() {
    let good = format!("Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Protocol: sip\r\n");
    let not101 = format!("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n{good}\r\n");
    assert_eq!(
        client_verify(not101.as_bytes(), ACCEPT, Some("sip")),
        Err(E::BadStatus(200))
    );
    let r400 = "HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(
        client_verify(r400.as_bytes(), ACCEPT, Some("sip")),
        Err(E::BadStatus(400))
    );
    let http10 = reply(&good).replacen("HTTP/1.1", "HTTP/1.0", 1);
    assert_eq!(
        client_verify(http10.as_bytes(), ACCEPT, Some("sip")),
        Err(E::HttpVersion)
    );
    let no_upgrade = reply(&good).replacen("Upgrade: websocket\r\n", "", 1);
    assert_eq!(
        client_verify(no_upgrade.as_bytes(), ACCEPT, Some("sip")),
        Err(E::BadUpgrade)
    );
    let no_conn = reply(&good).replacen("Connection: Upgrade\r\n", "Connection: keep-alive\r\n", 1);
    assert_eq!(
        client_verify(no_conn.as_bytes(), ACCEPT, Some("sip")),
        Err(E::BadConnection)
    );
    let ext = reply(&format!(
        "{good}Sec-WebSocket-Extensions: permessage-deflate\r\n"
    ));
    assert_eq!(
        client_verify(ext.as_bytes(), ACCEPT, Some("sip")),
        Err(E::UnexpectedExtension)
    );
    // Subprotocol: missing, different, several, or unrequested.
    let acc = format!("Sec-WebSocket-Accept: {ACCEPT}\r\n");
    for (extra, offered) in [
        (acc.clone(), Some("sip")),
        (
            format!("{acc}Sec-WebSocket-Protocol: chat\r\n"),
            Some("sip"),
        ),
        (
            format!("{acc}Sec-WebSocket-Protocol: sip, chat\r\n"),
            Some("sip"),
        ),
        (format!("{acc}Sec-WebSocket-Protocol: sip\r\n"), None),
    ] {
        let head = reply(&extra);
        assert_eq!(
            client_verify(head.as_bytes(), ACCEPT, offered),
            Err(E::SubprotocolMismatch),
            "{extra}"
        );
    }
    // An oversized reply head.
    let huge = reply(&format!("X-Pad: {}\r\n", "a".repeat(MAX_RESPONSE_LEN)));
    assert_eq!(
        client_verify(&huge.as_bytes()[..MAX_RESPONSE_LEN], ACCEPT, None),
        Err(E::TooLarge {
            max: MAX_RESPONSE_LEN
        })
    );
}

#[test]
fn client_and_server_agree() {
    let req = client_request(
        "server.example.com",
        "/",
        Some("https://example.com"),
        [7; 16],
        Some("sip"),
    );
    let a = accept(std::str::from_utf8(&req.bytes).unwrap(), &cfg());
    assert_eq!(
        client_verify(&a.response, &req.expected_accept, Some("sip")),
        Ok(Some(a.response.len()))
    );
}
