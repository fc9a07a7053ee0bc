//! The MI client behind `sipcore mi CMD ARGS`: one JSON-RPC 2.0 call over HTTP/1.1, as
//! `opensips-cli -x mi CMD ARGS` does against OpenSIPS's `mi_http`.

use serde_json::{json, Value};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Largest answer the client reads (a streamed `ul_dump` of 100,000 AoRs is about 35 MB).
const MAX_ANSWER: usize = 1 << 30;

/// Why an MI call did not produce a result. [`ClientError::Rpc`] displays the server's error
/// object as pretty JSON, so the command line can print it as it prints a result.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, sending or receiving failed.
    #[error("MI server at {addr}: {source}")]
    Io {
        /// The server's address.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// No complete answer arrived within the timeout.
    #[error("MI server at {0}: no answer in time")]
    Timeout(SocketAddr),
    /// The server answered with an HTTP status other than 200 (e.g. 404 for a wrong root).
    #[error("MI server answered HTTP {status} {reason}")]
    Http {
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
    /// The answer is not an HTTP response carrying a JSON-RPC response.
    #[error("bad answer from the MI server: {0}")]
    BadResponse(String),
    /// The command failed: the JSON-RPC error object (§5.1).
    #[error("{rendered}")]
    Rpc {
        /// The error code, e.g. -32601 or a command's own 500.
        code: i64,
        /// The error message.
        message: String,
        /// The whole error object, pretty-printed JSON.
        rendered: String,
    },
}

/// Runs MI command `method` with `params` (strings, as typed on the command line) on the server
/// at `addr`, path `root`. Returns the pretty-printed `result`; every failure, including the
/// command's own error, is an `Err` so that the command line can exit non-zero. The whole
/// exchange must finish within `timeout`.
pub fn call(
    addr: SocketAddr,
    root: &str,
    method: &str,
    params: Vec<String>,
    timeout: Duration,
) -> Result<String, ClientError> {
    let deadline = Instant::now() + timeout;
    let io_err = |source: io::Error| match source.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout(addr),
        _ => ClientError::Io { addr, source },
    };
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
    let head = format!(
        "POST /{} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        root.trim_start_matches('/'),
        body.len()
    );
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io_err)?;
    s.set_write_timeout(Some(left(deadline, addr)?))
        .map_err(io_err)?;
    s.write_all(&[head.as_bytes(), body.as_bytes()].concat())
        .map_err(io_err)?;
    let mut answer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        s.set_read_timeout(Some(left(deadline, addr)?))
            .map_err(io_err)?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
        if answer.len() > MAX_ANSWER {
            return Err(ClientError::BadResponse("answer too large".into()));
        }
    }
    let body = http_body(&answer)?;
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ClientError::BadResponse(format!("not JSON: {e}")))?;
    rpc_outcome(&v)
}

fn left(deadline: Instant, addr: SocketAddr) -> Result<Duration, ClientError> {
    let t = deadline.saturating_duration_since(Instant::now());
    if t.is_zero() {
        return Err(ClientError::Timeout(addr));
    }
    Ok(t)
}

/// The body of a complete HTTP/1.1 answer (RFC 9112 §6), skipping interim 1xx answers;
/// [`ClientError::Http`] for a status other than 200.
fn http_body(mut bytes: &[u8]) -> Result<&[u8], ClientError> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut res = httparse::Response::new(&mut headers);
        let n = match res.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return Err(ClientError::BadResponse("incomplete HTTP answer".into()))
            }
            Err(e) => return Err(ClientError::BadResponse(format!("HTTP answer: {e}"))),
        };
        let status = res.code.unwrap_or(0);
        let rest = bytes.get(n..).unwrap_or(&[]);
        if (100..200).contains(&status) {
            bytes = rest;
            continue;
        }
        if status != 200 {
            return Err(ClientError::Http {
                status,
                reason: res.reason.unwrap_or("").to_string(),
            });
        }
        let length = res
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| {
                std::str::from_utf8(h.value)
                    .ok()?
                    .trim()
                    .parse::<usize>()
                    .ok()
            });
        return match length {
            Some(len) => rest
                .get(..len)
                .ok_or_else(|| ClientError::BadResponse("truncated HTTP answer".into())),
            None => Ok(rest),
        };
    }
}

/// The pretty `result` of a JSON-RPC response, or its error as [`ClientError::Rpc`].
fn rpc_outcome(v: &Value) -> Result<String, ClientError> {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    if let Some(result) = v.get("result") {
        return Ok(pretty(result));
    }
    match v.get("error") {
        Some(e) => Err(ClientError::Rpc {
            code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            rendered: pretty(e),
        }),
        None => Err(ClientError::BadResponse(
            "neither result nor error in the answer".into(),
        )),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn bodies() {
        let ok = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}xx";
        assert_eq!(http_body(ok).unwrap(), b"{}");
        let no_len = b"HTTP/1.1 200 OK\r\n\r\n[1]";
        assert_eq!(http_body(no_len).unwrap(), b"[1]");
        match http_body(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") {
            Err(ClientError::Http {
                status: 404,
                reason,
            }) => assert_eq!(reason, "Not Found"),
            other => panic!("{other:?}"),
        }
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}";
        assert_eq!(
            http_body(short).unwrap_err().to_string(),
            "bad answer from the MI server: truncated HTTP answer"
        );
        assert_eq!(
            http_body(b"HTTP/1.1 200 OK\r\n").unwrap_err().to_string(),
            "bad answer from the MI server: incomplete HTTP answer"
        );
    }

    #[test]
    fn outcomes() {
        assert_eq!(
            rpc_outcome(&json!({"jsonrpc":"2.0","result":{"a":1},"id":1})).unwrap(),
            "{\n  \"a\": 1\n}"
        );
        match rpc_outcome(&json!({"jsonrpc":"2.0","error":{"code":500,"message":"Bad"},"id":1})) {
            Err(e @ ClientError::Rpc { code: 500, .. }) => {
                assert_eq!(
                    e.to_string(),
                    "{\n  \"code\": 500,\n  \"message\": \"Bad\"\n}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            rpc_outcome(&json!({"id":1})),
            Err(ClientError::BadResponse(_))
        ));
    }
}
