//! Server side of the opening handshake (RFC 6455 §4.2; RFC 7118 §4.1).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{accept_key, has_token, trim_ows, MAX_HEADERS};
use crate::proto::error::HandshakeError;

/// What the server accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Require the client to offer the `sip` subprotocol (RFC 7118 §4.1). Only the
    /// echo-server example turns this off.
    pub require_sip: bool,
    /// Reject a request without `Origin` (OpenSIPS `require_origin`).
    pub require_origin: bool,
    /// Origins allowed when an `Origin` is present (ASCII case-insensitive
    /// comparison of the serialized origin, e.g. `https://example.com`). Empty = any.
    pub allowed_origins: Vec<String>,
    /// Longest accepted request head, in bytes (request line, headers, blank line).
    pub max_request_len: usize,
}

impl Default for ServerConfig {
    /// `sip` and `Origin` required (OpenSIPS defaults), any origin, 8192-byte heads.
    fn default() -> Self {
        ServerConfig {
            require_sip: true,
            require_origin: true,
            allowed_origins: Vec::new(),
            max_request_len: 8192,
        }
    }
}

/// A valid opening handshake (RFC 6455 §4.2.1) and the reply to send (§4.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Length of the request head in the input. Bytes after it are already
    /// WebSocket frames and must be kept for the data phase.
    pub consumed: usize,
    /// The complete `101 Switching Protocols` reply.
    pub response: Vec<u8>,
    /// The /resource name/ (path and query) of the request (§3, §4.2.1 item 1).
    pub resource: String,
    /// The `Host` header value.
    pub host: Option<String>,
    /// The `Origin` header value, if sent.
    pub origin: Option<String>,
    /// The subprotocol echoed in the reply (`sip`), if any.
    pub subprotocol: Option<String>,
}

/// A refused opening handshake: send `response`, then close the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// HTTP status of `response`.
    pub status: u16,
    /// The complete HTTP reply (`Content-Length: 0`, `Connection: close`).
    pub response: Vec<u8>,
    /// Why.
    pub error: HandshakeError,
}

impl Rejected {
    /// The reply for `error` (§4.2.2, §4.4):
    /// * 405 with `Allow: GET` for another method;
    /// * 426 with `Upgrade: websocket` and `Sec-WebSocket-Version: 13` for a
    ///   missing or unsupported version (RFC 7231 §6.5.15 requires the `Upgrade`);
    /// * 403 for an origin not allowed (§4.2.2, §10.2);
    /// * 431 for an oversized head or too many headers (RFC 6585 §5);
    /// * 400 with `Sec-WebSocket-Version: 13` for everything else (as OpenSIPS).
    pub fn from_error(error: HandshakeError) -> Rejected {
        let (status, reason, extra) = match &error {
            HandshakeError::MethodNotAllowed(_) => (405, "Method Not Allowed", "Allow: GET\r\n"),
            HandshakeError::UnsupportedVersion => (
                426,
                "Upgrade Required",
                "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
            ),
            HandshakeError::OriginNotAllowed(_) => (403, "Forbidden", ""),
            HandshakeError::TooLarge { .. } | HandshakeError::TooManyHeaders => {
                (431, "Request Header Fields Too Large", "")
            }
            _ => (400, "Bad Request", "Sec-WebSocket-Version: 13\r\n"),
        };
        let connection = if status == 426 {
            "Upgrade, close"
        } else {
            "close"
        };
        let response =
            format!("HTTP/1.1 {status} {reason}\r\n{extra}Connection: {connection}\r\nContent-Length: 0\r\n\r\n");
        Rejected {
            status,
            response: response.into_bytes(),
            error,
        }
    }
}

/// Header fields of the request that the handshake looks at.
#[derive(Default)]
struct Seen<'a> {
    host: Option<&'a [u8]>,
    hosts: u32,
    upgrade: bool,
    connection: bool,
    key: Option<&'a [u8]>,
    keys: u32,
    version: Option<&'a [u8]>,
    versions: u32,
    sip: bool,
    origin: Option<&'a [u8]>,
    origins: u32,
    body: bool,
}

impl<'a> Seen<'a> {
    fn collect(headers: &[httparse::Header<'a>]) -> Seen<'a> {
        let mut s = Seen::default();
        for h in headers {
            let v = trim_ows(h.value);
            let name = h.name;
            if name.eq_ignore_ascii_case("host") {
                s.host = Some(v);
                s.hosts += 1;
            } else if name.eq_ignore_ascii_case("upgrade") {
                s.upgrade |= has_token(v, "websocket");
            } else if name.eq_ignore_ascii_case("connection") {
                s.connection |= has_token(v, "upgrade");
            } else if name.eq_ignore_ascii_case("sec-websocket-key") {
                s.key = Some(v);
                s.keys += 1;
            } else if name.eq_ignore_ascii_case("sec-websocket-version") {
                s.version = Some(v);
                s.versions += 1;
            } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                s.sip |= has_token(v, "sip");
            } else if name.eq_ignore_ascii_case("origin") {
                s.origin = Some(v);
                s.origins += 1;
            } else if name.eq_ignore_ascii_case("content-length") {
                s.body |= v != b"0";
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                s.body = true;
            }
        }
        s
    }
}

/// The /resource name/ of a Request-URI (§3, §4.2.1 item 1): an absolute path
/// as is, or the path (default `/`) of an absolute http/https/ws/wss URI.
fn resource_of(target: &str) -> Option<String> {
    if target.starts_with('/') {
        return Some(target.to_owned());
    }
    let (scheme, rest) = target.split_once("://")?;
    if !["http", "https", "ws", "wss"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return None;
    }
    let path = rest
        .find(['/', '?'])
        .and_then(|i| rest.get(i..))
        .unwrap_or("");
    Some(match path.strip_prefix('?') {
        Some(_) => format!("/{path}"),
        None if path.is_empty() => "/".to_owned(),
        None => path.to_owned(),
    })
}

/// Whether `key` is the base64 encoding of exactly 16 bytes (§4.1 item 7, §4.2.1 item 5).
fn key_is_valid(key: &[u8]) -> bool {
    let mut out = [0u8; 24];
    key.len() == 24 && matches!(STANDARD.decode_slice(key, &mut out), Ok(16))
}

fn text(v: &[u8], name: &'static str) -> Result<String, HandshakeError> {
    core::str::from_utf8(v)
        .map(str::to_owned)
        .map_err(|_| HandshakeError::BadHeaderValue(name))
}

/// Read and check a client's opening handshake from the front of `buf`
/// (RFC 6455 §4.2.1) and build the reply (§4.2.2).
///
/// `Ok(None)`: the head is incomplete, call again with more bytes. `Ok(Some)`:
/// send `response`; `consumed` bytes were the request, anything after them is
/// frame data. `Err`: send `Rejected::response` and close. Requirements: method
/// `GET`, HTTP/1.1, one non-empty `Host`, `Upgrade` listing `websocket`,
/// `Connection` listing `upgrade`, exactly one `Sec-WebSocket-Key` that is base64
/// of 16 bytes, `Sec-WebSocket-Version: 13`, no request body, the `Origin` policy
/// of `cfg`, and `sip` among the offered subprotocols when `cfg.require_sip`.
/// Offered extensions are declined (never echoed).
pub fn server_handshake(buf: &[u8], cfg: &ServerConfig) -> Result<Option<Accepted>, Rejected> {
    if buf.is_empty() {
        return Ok(None);
    }
    let limit = cfg.max_request_len;
    let window = buf.get(..limit).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= limit => {
            return Err(Rejected::from_error(HandshakeError::TooLarge {
                max: limit,
            }))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Rejected::from_error(e.into())),
    };
    check_request(&req, cfg, consumed)
        .map(Some)
        .map_err(Rejected::from_error)
}

fn check_request(
    req: &httparse::Request<'_, '_>,
    cfg: &ServerConfig,
    consumed: usize,
) -> Result<Accepted, HandshakeError> {
    let method = req.method.unwrap_or_default();
    if method != "GET" {
        return Err(HandshakeError::MethodNotAllowed(method.to_owned()));
    }
    if req.version != Some(1) {
        return Err(HandshakeError::HttpVersion);
    }
    let resource = resource_of(req.path.unwrap_or_default()).ok_or(HandshakeError::BadResource)?;
    let seen = Seen::collect(req.headers);

    let host = match seen.host {
        Some(h) if seen.hosts == 1 && !h.is_empty() => text(h, "Host")?,
        _ => return Err(HandshakeError::MissingHost),
    };
    if !seen.upgrade {
        return Err(HandshakeError::BadUpgrade);
    }
    if !seen.connection {
        return Err(HandshakeError::BadConnection);
    }
    if seen.versions != 1 || seen.version != Some(b"13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = match seen.key {
        Some(k) if seen.keys == 1 && key_is_valid(k) => k,
        _ => return Err(HandshakeError::BadKey),
    };
    if seen.body {
        return Err(HandshakeError::UnexpectedBody);
    }
    let origin = match seen.origin {
        None if cfg.require_origin => return Err(HandshakeError::MissingOrigin),
        None => None,
        Some(_) if seen.origins > 1 => return Err(HandshakeError::BadHeaderValue("Origin")),
        Some(o) => {
            let o = text(o, "Origin")?;
            if !cfg.allowed_origins.is_empty()
                && !cfg
                    .allowed_origins
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&o))
            {
                return Err(HandshakeError::OriginNotAllowed(o));
            }
            Some(o)
        }
    };
    if cfg.require_sip && !seen.sip {
        return Err(HandshakeError::MissingSubprotocol);
    }
    // `key` passed key_is_valid, so it is 24 base64 (ASCII) characters.
    let key = core::str::from_utf8(key).map_err(|_| HandshakeError::BadKey)?;
    let subprotocol = seen.sip.then(|| "sip".to_owned());
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if subprotocol.is_some() {
        response.push_str("Sec-WebSocket-Protocol: sip\r\n");
    }
    response.push_str("\r\n");
    Ok(Accepted {
        consumed,
        response: response.into_bytes(),
        resource,
        host: Some(host),
        origin,
        subprotocol,
    })
}
