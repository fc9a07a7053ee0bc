//! Client side of the opening handshake (RFC 6455 §4.1; RFC 7118 §4.1).

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{accept_key, has_token, tokens, trim_ows, MAX_HEADERS};
use crate::proto::error::HandshakeError;

/// Longest server reply head [`client_verify`] waits for, in bytes.
pub const MAX_RESPONSE_LEN: usize = 8192;

/// An opening handshake request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// The complete GET request.
    pub bytes: Vec<u8>,
    /// The `Sec-WebSocket-Accept` value the server must return (§4.1 item 4).
    pub expected_accept: String,
}

/// Drop characters that would break the request framing (CR, LF, NUL).
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect()
}

/// Build the client's opening handshake (§4.1): `GET resource HTTP/1.1`, `Host`,
/// `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Key` = base64 of
/// `key` (16 random bytes from a CSPRNG, §4.1 item 7), `Sec-WebSocket-Version: 13`,
/// then `Origin` and `Sec-WebSocket-Protocol` when given. CR, LF and NUL are
/// removed from the inputs; an empty `resource` becomes `/`.
pub fn client_request(
    host: &str,
    resource: &str,
    origin: Option<&str>,
    key: [u8; 16],
    subprotocol: Option<&str>,
) -> ClientRequest {
    let key_b64 = STANDARD.encode(key);
    let mut resource = clean(resource);
    if resource.is_empty() {
        resource.push('/');
    }
    let mut req = format!(
        "GET {resource} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key_b64}\r\nSec-WebSocket-Version: 13\r\n",
        clean(host)
    );
    // Writing to a String cannot fail.
    if let Some(o) = origin {
        let _ = write!(req, "Origin: {}\r\n", clean(o));
    }
    if let Some(p) = subprotocol {
        let _ = write!(req, "Sec-WebSocket-Protocol: {}\r\n", clean(p));
    }
    req.push_str("\r\n");
    ClientRequest {
        bytes: req.into_bytes(),
        expected_accept: accept_key(&key_b64),
    }
}

/// Check the server's reply to our opening handshake (§4.1, second half).
///
/// `Ok(None)`: incomplete, call again with more bytes. `Ok(Some(consumed))`: the
/// connection is open; bytes after `consumed` are frames. The reply must be
/// HTTP/1.1 `101`; carry `Upgrade: websocket`; a `Connection` listing `upgrade`;
/// exactly one `Sec-WebSocket-Accept` byte-for-byte equal to `expected_accept`
/// (no case folding, no prefix match); no extension (we offer none); and, when
/// `subprotocol` was offered, exactly that subprotocol (ASCII case-insensitive,
/// as the server side compares it), else none.
pub fn client_verify(
    buf: &[u8],
    expected_accept: &str,
    subprotocol: Option<&str>,
) -> Result<Option<usize>, HandshakeError> {
    let window = buf.get(..MAX_RESPONSE_LEN).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let consumed = match resp.parse(window)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial if buf.len() >= MAX_RESPONSE_LEN => {
            return Err(HandshakeError::TooLarge {
                max: MAX_RESPONSE_LEN,
            })
        }
        httparse::Status::Partial => return Ok(None),
    };
    let code = resp.code.unwrap_or_default();
    if code != 101 {
        return Err(HandshakeError::BadStatus(code));
    }
    if resp.version != Some(1) {
        return Err(HandshakeError::HttpVersion);
    }

    let mut upgrades = 0u32;
    let mut upgrade_ok = true;
    let mut connection = false;
    let mut accepts = 0u32;
    let mut accept_ok = false;
    let mut protocols = 0u32;
    let mut protocol_ok = false;
    for h in resp.headers.iter() {
        let v = trim_ows(h.value);
        let name = h.name;
        if name.eq_ignore_ascii_case("upgrade") {
            upgrades += 1;
            upgrade_ok &= v.eq_ignore_ascii_case(b"websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has_token(v, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accepts += 1;
            accept_ok = !expected_accept.is_empty() && v == expected_accept.as_bytes();
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            if tokens(v).next().is_some() {
                return Err(HandshakeError::UnexpectedExtension);
            }
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            for t in tokens(v) {
                protocols += 1;
                protocol_ok = subprotocol.is_some_and(|p| t.eq_ignore_ascii_case(p.as_bytes()));
            }
        }
    }
    if upgrades == 0 || !upgrade_ok {
        return Err(HandshakeError::BadUpgrade);
    }
    if !connection {
        return Err(HandshakeError::BadConnection);
    }
    if accepts != 1 || !accept_ok {
        return Err(HandshakeError::BadAccept);
    }
    let protocol_fine = match subprotocol {
        Some(_) => protocols == 1 && protocol_ok,
        None => protocols == 0,
    };
    if !protocol_fine {
        return Err(HandshakeError::SubprotocolMismatch);
    }
    Ok(Some(consumed))
}

#[cfg(test)]
#[path = "../tests/handshake_client.rs"]
mod tests;
