//! Tests of the opening handshake (RFC 6455 §1.3, §4; RFC 7118 §4.1).

use super::*;
use crate::proto::error::HandshakeError as E;

pub(super) const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub(super) const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

const BROWSER: &str = "GET /ws?user=alice HTTP/1.1\r\n\
Host: sip.example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://app.example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Sec-WebSocket-Protocol: sip\r\n\
\r\n";

const OK_101: &str =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n";

/// A minimal valid request with `extra` header lines, `lines` replacing defaults by name.
fn request(replace: &[(&str, Option<&str>)], extra: &str) -> String {
    let mut headers = vec![
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Origin", "http://example.com"),
        ("Sec-WebSocket-Protocol", "sip"),
        ("Sec-WebSocket-Version", "13"),
    ];
    for (name, value) in replace {
        headers.retain(|(n, _)| n != name);
        if let Some(v) = value {
            headers.push((name, v));
        }
    }
    let mut s = String::from("GET /chat HTTP/1.1\r\n");
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str(extra);
    s.push_str("\r\n");
    s
}

pub(super) fn cfg() -> ServerConfig {
    ServerConfig::default()
}

fn reject(req: &str, cfg: &ServerConfig) -> Rejected {
    server_handshake(req.as_bytes(), cfg).expect_err("must be rejected")
}

pub(super) fn accept(req: &str, cfg: &ServerConfig) -> Accepted {
    server_handshake(req.as_bytes(), cfg)
        .expect("no rejection")
        .expect("complete")
}

#[test]
fn rfc_1_3_accept_key() {
    assert_eq!(accept_key(KEY), ACCEPT);
}

#[test]
fn browser_request() {
    let a = accept(BROWSER, &cfg());
    assert_eq!(a.consumed, BROWSER.len());
    assert_eq!(String::from_utf8(a.response).unwrap(), OK_101);
    assert_eq!(a.resource, "/ws?user=alice");
    assert_eq!(a.host.as_deref(), Some("sip.example.com:8080"));
    assert_eq!(a.origin.as_deref(), Some("https://app.example.com"));
    assert_eq!(a.subprotocol.as_deref(), Some("sip"));
}

#[test]
fn proxy_headers_and_connection_list() {
    let req = request(
        &[("Connection", Some("keep-alive, Upgrade")), ("Upgrade", Some("WebSocket"))],
        "Via: 1.1 proxy.example.net\r\nX-Forwarded-For: 192.0.2.1\r\nSec-WebSocket-Protocol: chat\r\n",
    );
    let a = accept(&req, &cfg());
    assert_eq!(a.subprotocol.as_deref(), Some("sip"));
    // Several protocols, sip among them, any case: the reply names only `sip`.
    let req = request(&[("Sec-WebSocket-Protocol", Some("chat, SIP ,xmpp"))], "");
    let a = accept(&req, &cfg());
    assert!(String::from_utf8(a.response)
        .unwrap()
        .ends_with("Sec-WebSocket-Protocol: sip\r\n\r\n"));
}

#[test]
fn pipelined_frames_are_not_consumed() {
    let req = request(&[], "");
    let mut bytes = req.clone().into_bytes();
    bytes.extend_from_slice(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    let a = server_handshake(&bytes, &cfg()).unwrap().unwrap();
    assert_eq!(a.consumed, req.len());
}

#[test]
fn split_at_every_byte() {
    let req = BROWSER.as_bytes();
    for i in 0..req.len() {
        assert_eq!(server_handshake(&req[..i], &cfg()), Ok(None), "cut {i}");
    }
    assert!(matches!(server_handshake(req, &cfg()), Ok(Some(_))));
}

#[test]
fn missing_sip() {
    let req = request(&[("Sec-WebSocket-Protocol", None)], "");
    let r = reject(&req, &cfg());
    assert_eq!(r.status, 400);
    assert_eq!(r.error, E::MissingSubprotocol);
    assert_eq!(
        r.response,
        b"HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    let r = reject(
        &request(&[("Sec-WebSocket-Protocol", Some("chat"))], ""),
        &cfg(),
    );
    assert_eq!(r.error, E::MissingSubprotocol);
    // Not required: accepted, nothing echoed unless sip was offered.
    let relaxed = ServerConfig {
        require_sip: false,
        ..cfg()
    };
    for req in [
        request(&[("Sec-WebSocket-Protocol", None)], ""),
        request(&[("Sec-WebSocket-Protocol", Some("chat"))], ""),
    ] {
        let a = accept(&req, &relaxed);
        assert_eq!(a.subprotocol, None);
        assert!(!String::from_utf8(a.response)
            .unwrap()
            .contains("Sec-WebSocket-Protocol"));
    }
    let a = accept(&request(&[], ""), &relaxed);
    assert_eq!(a.subprotocol.as_deref(), Some("sip"));
}

#[test]
fn bad_version_426() {
    let want =
        b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
Connection: Upgrade, close\r\nContent-Length: 0\r\n\r\n";
    for v in [Some("8"), Some("14"), Some("13, 8"), Some(""), None] {
        let r = reject(&request(&[("Sec-WebSocket-Version", v)], ""), &cfg());
        assert_eq!((r.status, &r.error), (426, &E::UnsupportedVersion), "{v:?}");
        assert_eq!(r.response, want);
    }
    // Repeated header.
    let r = reject(&request(&[], "Sec-WebSocket-Version: 13\r\n"), &cfg());
    assert_eq!(r.status, 426);
}

#[test]
fn wrong_method_and_version() {
    let req = request(&[], "").replacen("GET", "POST", 1);
    let r = reject(&req, &cfg());
    assert_eq!(
        (r.status, r.error),
        (405, E::MethodNotAllowed("POST".into()))
    );
    assert_eq!(
        r.response,
        b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    let r = reject(&request(&[], "").replacen("GET", "get", 1), &cfg());
    assert_eq!(r.status, 405);
    let r = reject(
        &request(&[], "").replacen("HTTP/1.1", "HTTP/1.0", 1),
        &cfg(),
    );
    assert_eq!((r.status, r.error), (400, E::HttpVersion));
    let r = reject("GARBAGE\r\n\r\n", &cfg());
    assert_eq!(r.status, 400);
    assert!(matches!(r.error, E::Http(_)));
}

#[test]
fn header_errors_400() {
    let cases: Vec<(String, E)> = vec![
        (request(&[("Host", None)], ""), E::MissingHost),
        (request(&[("Host", Some(""))], ""), E::MissingHost),
        (request(&[], "Host: other.example.com\r\n"), E::MissingHost),
        (request(&[("Upgrade", None)], ""), E::BadUpgrade),
        (request(&[("Upgrade", Some("h2c"))], ""), E::BadUpgrade),
        (
            request(&[("Connection", Some("keep-alive"))], ""),
            E::BadConnection,
        ),
        (request(&[("Connection", None)], ""), E::BadConnection),
        (request(&[("Sec-WebSocket-Key", None)], ""), E::BadKey),
        // base64 of 10 bytes, of 17 bytes, not base64, non-canonical padding bits.
        (
            request(&[("Sec-WebSocket-Key", Some("dGhlIHNhbXBsZQ=="))], ""),
            E::BadKey,
        ),
        (
            request(
                &[("Sec-WebSocket-Key", Some("dGhlIHNhbXBsZSBub25jZSE="))],
                "",
            ),
            E::BadKey,
        ),
        (
            request(
                &[("Sec-WebSocket-Key", Some("dGhlIHNhbXBsZSBub25jZ*=="))],
                "",
            ),
            E::BadKey,
        ),
        (
            request(
                &[("Sec-WebSocket-Key", Some("dGhlIHNhbXBsZSBub25jZR=="))],
                "",
            ),
            E::BadKey,
        ),
        (
            request(&[], "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"),
            E::BadKey,
        ),
        (request(&[], "Content-Length: 5\r\n"), E::UnexpectedBody),
        (
            request(&[], "Transfer-Encoding: chunked\r\n"),
            E::UnexpectedBody,
        ),
        (request(&[("Origin", None)], ""), E::MissingOrigin),
        (request(&[], "").replacen("/chat", "*", 1), E::BadResource),
    ];
    for (req, want) in cases {
        let r = reject(&req, &cfg());
        assert_eq!((r.status, &r.error), (400, &want), "{req}");
        assert!(r
            .response
            .ends_with(b"Connection: close\r\nContent-Length: 0\r\n\r\n"));
    }
    // Content-Length: 0 is harmless.
    accept(&request(&[], "Content-Length: 0\r\n"), &cfg());
}

#[test]
fn origin_policy() {
    let listed = ServerConfig {
        allowed_origins: vec!["https://app.example.com".into()],
        ..cfg()
    };
    let r = reject(
        &request(&[("Origin", Some("https://evil.example"))], ""),
        &listed,
    );
    assert_eq!(
        (r.status, r.error),
        (403, E::OriginNotAllowed("https://evil.example".into()))
    );
    assert_eq!(
        r.response,
        b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    let a = accept(
        &request(&[("Origin", Some("HTTPS://APP.example.com"))], ""),
        &listed,
    );
    assert_eq!(a.origin.as_deref(), Some("HTTPS://APP.example.com"));
    let r = reject(&request(&[("Origin", None)], ""), &listed);
    assert_eq!((r.status, r.error), (400, E::MissingOrigin));
    let optional = ServerConfig {
        require_origin: false,
        ..listed
    };
    assert_eq!(
        accept(&request(&[("Origin", None)], ""), &optional).origin,
        None
    );
    assert_eq!(
        reject(&request(&[("Origin", Some("null"))], ""), &optional).status,
        403
    );
}

#[test]
fn oversized_request() {
    let small = ServerConfig {
        max_request_len: 300,
        ..cfg()
    };
    let req = request(&[], &format!("X-Pad: {}\r\n", "a".repeat(300)));
    let r = reject(&req, &small);
    assert_eq!((r.status, r.error), (431, E::TooLarge { max: 300 }));
    assert_eq!(
        r.response,
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    // An incomplete head that reached the limit is refused without waiting.
    assert_eq!(reject(&req[..300], &small).status, 431);
    assert_eq!(server_handshake(&req.as_bytes()[..299], &small), Ok(None));
    // A head of exactly the limit is fine, even with frame bytes after it.
    let req = request(&[], "");
    let exact = ServerConfig {
        max_request_len: req.len(),
        ..cfg()
    };
    let mut bytes = req.clone().into_bytes();
    bytes.extend_from_slice(&[0x81; 40]);
    assert_eq!(
        server_handshake(&bytes, &exact).unwrap().unwrap().consumed,
        req.len()
    );
    // Too many header fields.
    let many: String = (0..MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
    let r = reject(&request(&[], &many), &cfg());
    assert_eq!((r.status, r.error), (431, E::TooManyHeaders));
}

#[test]
fn absolute_uri_resource() {
    let req = request(&[], "").replacen("/chat", "ws://server.example.com:80/sip/ws", 1);
    assert_eq!(accept(&req, &cfg()).resource, "/sip/ws");
    let req = request(&[], "").replacen("/chat", "https://server.example.com", 1);
    assert_eq!(accept(&req, &cfg()).resource, "/");
}
