//! Opening handshake (RFC 6455 §4; RFC 7118 §4.1 for the `sip` subprotocol).
//!
//! HTTP heads are parsed with `httparse`, never with the SIP parser, so proxy
//! headers such as `Via: 1.1 host` are just headers. Server side:
//! [`server_handshake`]; client side: [`client_request`] and [`client_verify`].

mod client;
mod server;

pub use client::{client_request, client_verify, ClientRequest, MAX_RESPONSE_LEN};
pub use server::{server_handshake, Accepted, Rejected, ServerConfig};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID appended to the key before hashing (RFC 6455 §1.3, §4.2.2).
pub const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Most header fields accepted in one handshake head.
pub const MAX_HEADERS: usize = 64;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` value: base64(SHA-1(key + GUID))
/// (RFC 6455 §4.2.2 item 5.4). `key_b64` is used exactly as given (already trimmed).
pub fn accept_key(key_b64: &str) -> String {
    let mut h = Sha1::new();
    h.update(key_b64.as_bytes());
    h.update(WS_GUID.as_bytes());
    STANDARD.encode(h.finalize())
}

/// Strip HTTP optional whitespace (SP / HTAB) from both ends.
pub(crate) fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    v.get(start..end).unwrap_or_default()
}

/// The non-empty elements of a comma-separated header list, trimmed (RFC 7230 §7).
pub(crate) fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// Whether a comma-separated list contains `token` (ASCII case-insensitive).
pub(crate) fn has_token(v: &[u8], token: &str) -> bool {
    tokens(v).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

#[cfg(test)]
#[path = "tests/handshake.rs"]
mod tests;
