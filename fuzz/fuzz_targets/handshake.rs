//! The WebSocket opening handshake (RFC 6455 §4.1, §4.2; RFC 7118 §4.1), both sides.
//!
//! The first input byte picks a split point and a server configuration; the rest is fed to
//! [`server_handshake`] and to [`client_verify`]. Invariants:
//! * neither side panics;
//! * an accepted request was `consumed` from within the input and the configured maximum,
//!   and every shorter prefix of it is "incomplete" (`Ok(None)`), never a refusal: a client
//!   whose head arrives in two TCP segments gets the same answer;
//! * the server's `101` passes our own client's [`client_verify`] with the key it was sent;
//! * a refusal is a complete HTTP/1.1 response carrying its status;
//! * a request built by [`client_request`] from the input's strings, if the server accepts
//!   it, yields a reply the client accepts, with the host and resource it sent.
#![no_main]
use sipcore_ws::proto::handshake::{
    client_request, client_verify, server_handshake, Accepted, ServerConfig, MAX_RESPONSE_LEN,
};

fn configs() -> [ServerConfig; 2] {
    [
        ServerConfig::default(),
        ServerConfig {
            require_sip: false,
            require_origin: false,
            allowed_origins: vec!["https://example.com".into(), "http://a.b".into()],
            max_request_len: 512,
        },
    ]
}

/// The `Sec-WebSocket-Accept` value of a `101` reply we built.
fn accept_of(response: &[u8]) -> &str {
    let text = std::str::from_utf8(response).expect("our 101 is ASCII");
    let at = text
        .find("Sec-WebSocket-Accept: ")
        .expect("our 101 carries Sec-WebSocket-Accept")
        + "Sec-WebSocket-Accept: ".len();
    let end = text[at..].find("\r\n").expect("header line ends") + at;
    &text[at..end]
}

fn check_accepted(buf: &[u8], a: &Accepted, cfg: &ServerConfig, split: usize) {
    assert!(a.consumed > 0 && a.consumed <= buf.len());
    assert!(a.consumed <= cfg.max_request_len);
    assert!(buf[..a.consumed].ends_with(b"\n"));
    // A shorter prefix of an accepted head is incomplete, never refused.
    let cut = split % a.consumed;
    assert_eq!(
        server_handshake(&buf[..cut], cfg),
        Ok(None),
        "prefix of {cut} bytes of an accepted head"
    );
    let sub = a.subprotocol.as_deref();
    assert!(sub.is_none() || sub == Some("sip"));
    assert!(!cfg.require_sip || sub == Some("sip"));
    let verified = client_verify(&a.response, accept_of(&a.response), sub);
    assert_eq!(
        verified,
        Ok(Some(a.response.len())),
        "our 101 fails our client"
    );
}

fn check_rejected(status: u16, response: &[u8]) {
    let head = format!("HTTP/1.1 {status} ");
    assert!(response.starts_with(head.as_bytes()));
    assert!(response.ends_with(b"\r\nContent-Length: 0\r\n\r\n"));
    assert!((400..600).contains(&status));
}

/// Splits `data` at NUL bytes into up to four strings for `client_request`.
fn round_trip(data: &[u8], key: [u8; 16]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let host = parts.next().unwrap_or("");
    let resource = parts.next().unwrap_or("/");
    let origin = parts.next();
    let sub = parts.next();
    let req = client_request(host, resource, origin, key, sub);
    assert!(req.bytes.ends_with(b"\r\n\r\n"));
    for cfg in configs() {
        let Ok(Some(a)) = server_handshake(&req.bytes, &cfg) else {
            continue;
        };
        assert_eq!(a.consumed, req.bytes.len());
        let clean = |s: &str| -> String {
            s.chars()
                .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
                .collect()
        };
        assert_eq!(
            a.host.as_deref(),
            Some(clean(host).trim_matches([' ', '\t']))
        );
        // The accept key the server computed is the one the client expects.
        let echoed = a.subprotocol.as_deref();
        assert_eq!(
            client_verify(&a.response, &req.expected_accept, echoed),
            Ok(Some(a.response.len()))
        );
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(ctl) * 37;
    for cfg in configs() {
        match server_handshake(rest, &cfg) {
            Ok(Some(a)) => check_accepted(rest, &a, &cfg, split),
            Ok(None) => assert!(rest.len() < cfg.max_request_len),
            Err(r) => check_rejected(r.status, &r.response),
        }
    }
    for sub in [Some("sip"), None] {
        if let Ok(Some(n)) = client_verify(rest, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", sub) {
            assert!(n <= rest.len() && n <= MAX_RESPONSE_LEN);
        }
    }
    if ctl & 1 == 1 {
        let mut key = [0u8; 16];
        key[0] = ctl;
        round_trip(rest, key);
    }
});
