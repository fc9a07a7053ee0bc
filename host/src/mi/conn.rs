//! One MI HTTP/1.1 connection: read the request head and body (RFC 9112 §2-§6, Content-Length
//! framing only), answer once, close. Head parsing is pure; the rest is blocking std I/O.
//!
//! The whole request must arrive within [`READ_TIMEOUT`] (a silent connection is answered 408
//! and closed), and only then does it take one of the execution slots, so connections that
//! send nothing cannot keep others from being answered. A streamed answer (`ul_dump`) is
//! written as it is produced, close-delimited (RFC 9112 §6.3 rule 8: no Content-Length).

use super::jsonrpc::{self, Answer as RpcAnswer};
use super::registry::Writer;
use super::Registry;
use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Largest request body accepted (64 KiB); a larger Content-Length is answered 413.
pub(super) const MAX_BODY: usize = 64 * 1024;
/// Largest request head accepted; a larger one is answered 431.
pub(super) const MAX_HEAD: usize = 8 * 1024;
/// Time allowed to receive the whole request; past it the answer is 408.
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Time a write to the client may stall (a streamed answer is written in many pieces).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_HEADERS: usize = 32;

/// An HTTP status line's code and reason phrase (RFC 9110 §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Status(pub u16, pub &'static str);

pub(super) const OK: Status = Status(200, "OK");
pub(super) const NO_CONTENT: Status = Status(204, "No Content");
pub(super) const BAD_REQUEST: Status = Status(400, "Bad Request");
pub(super) const NOT_FOUND: Status = Status(404, "Not Found");
pub(super) const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed");
pub(super) const REQUEST_TIMEOUT: Status = Status(408, "Request Timeout");
pub(super) const LENGTH_REQUIRED: Status = Status(411, "Length Required");
pub(super) const TOO_LARGE: Status = Status(413, "Content Too Large");
pub(super) const HEAD_TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
pub(super) const BUSY: Status = Status(503, "Service Unavailable");

/// What the server needs from a request head.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Head {
    /// The method, as sent.
    pub method: String,
    /// The request target's path, without any query.
    pub path: String,
    /// The Content-Length, if given.
    pub content_length: Option<usize>,
    /// A Transfer-Encoding header was present (not supported: 411).
    pub transfer_encoding: bool,
    /// `Expect: 100-continue` was sent (RFC 9110 §10.1.1).
    pub expect_continue: bool,
    /// Bytes taken by the head; the body starts there.
    pub len: usize,
}

/// Parses a request head from `buf`: `Ok(None)` while incomplete, the error status when it is
/// malformed (400, or 431 for too many headers).
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<Head>, Status> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HEAD_TOO_LARGE),
        Err(_) => return Err(BAD_REQUEST),
    };
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(BAD_REQUEST);
    };
    let mut head = Head {
        method: method.to_string(),
        path: target.split(['?', '#']).next().unwrap_or("").to_string(),
        content_length: None,
        transfer_encoding: false,
        expect_continue: false,
        len,
    };
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or(BAD_REQUEST)?;
            // RFC 9112 §6.3: differing Content-Length values make the framing invalid.
            if head.content_length.is_some_and(|old| old != n) {
                return Err(BAD_REQUEST);
            }
            head.content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.transfer_encoding = true;
        } else if h.name.eq_ignore_ascii_case("expect") {
            head.expect_continue = h.value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    Ok(Some(head))
}

/// Why reading stopped without a request to answer.
enum ReadEnd {
    /// Answer with this status.
    Status(Status),
    /// The peer went away (or the socket failed): nothing to answer.
    Gone,
}

fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<(), ReadEnd> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ReadEnd::Status(REQUEST_TIMEOUT));
    }
    s.set_read_timeout(Some(left)).map_err(|_| ReadEnd::Gone)?;
    let mut chunk = [0u8; 4096];
    match s.read(&mut chunk) {
        Ok(0) => Err(ReadEnd::Gone),
        Ok(n) => {
            buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(ReadEnd::Status(REQUEST_TIMEOUT))
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        Err(_) => Err(ReadEnd::Gone),
    }
}

/// Execution slots: requests being answered right now, against their limit.
pub(super) struct Slots<'a> {
    /// The count.
    pub active: &'a AtomicUsize,
    /// The limit.
    pub max: usize,
}

/// Holds one execution slot until dropped (also when a handler panics).
struct Permit<'a>(&'a AtomicUsize);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Slots<'_> {
    fn take(&self) -> Option<Permit<'_>> {
        self.active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(self.active))
    }
}

/// What a connection may ask for: the MI commands at `root`, and `/metrics` when set.
pub(super) struct Site<'a> {
    /// The commands.
    pub registry: &'a Registry,
    /// The JSON-RPC path, e.g. `/mi`.
    pub root: &'a str,
    /// Renders `GET /metrics`.
    pub metrics: Option<&'a super::http::Metrics>,
}

/// Path of the Prometheus endpoint.
pub(super) const METRICS_PATH: &str = "/metrics";

/// Serves one connection: reads one request, answers it, closes. A request that arrives
/// while every execution slot is taken is answered 503 with `Retry-After: 1`.
pub(super) fn serve(mut s: TcpStream, site: &Site<'_>, slots: &Slots<'_>) {
    let deadline = Instant::now() + READ_TIMEOUT;
    let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
    let (status, extra, body) = match answer(&mut s, site, deadline, slots) {
        Ok(a) => a,
        Err(ReadEnd::Status(st)) => (st, "", Body::Bytes(text(st))),
        Err(ReadEnd::Gone) => return,
    };
    let written = match body {
        Body::Bytes(b) => write_response(&mut s, status, extra, &b),
        Body::Stream { id, writer, permit } => {
            let r = write_streamed(&mut s, extra, &id, writer);
            drop(permit);
            r
        }
    };
    if written.is_ok() {
        linger_close(&mut s);
    }
}

/// An answer's body: bytes, or a streamed JSON-RPC result (holding its execution slot).
enum Body<'a> {
    Bytes(Vec<u8>),
    Stream {
        id: serde_json::Value,
        writer: Writer,
        permit: Permit<'a>,
    },
}

type Answer<'a> = (Status, &'static str, Body<'a>);

fn text(st: Status) -> Vec<u8> {
    format!("{}\n", st.1).into_bytes()
}

fn answer<'a>(
    s: &mut TcpStream,
    site: &Site<'_>,
    deadline: Instant,
    slots: &'a Slots<'a>,
) -> Result<Answer<'a>, ReadEnd> {
    let (registry, root) = (site.registry, site.root);
    let mut buf = Vec::with_capacity(1024);
    let head = loop {
        read_some(s, &mut buf, deadline)?;
        match parse_head(&buf) {
            Ok(Some(h)) => break h,
            Ok(None) if buf.len() > MAX_HEAD => return Err(ReadEnd::Status(HEAD_TOO_LARGE)),
            Ok(None) => {}
            Err(st) => return Err(ReadEnd::Status(st)),
        }
    };
    if let (METRICS_PATH, Some(render)) = (head.path.as_str(), site.metrics) {
        if head.method != "GET" {
            return Ok((
                METHOD_NOT_ALLOWED,
                "Allow: GET\r\n",
                Body::Bytes(text(METHOD_NOT_ALLOWED)),
            ));
        }
        let Some(_permit) = slots.take() else {
            return Ok((BUSY, "Retry-After: 1\r\n", Body::Bytes(text(BUSY))));
        };
        return Ok((OK, PROMETHEUS, Body::Bytes(render().into_bytes())));
    }
    if head.path != root {
        return Err(ReadEnd::Status(NOT_FOUND));
    }
    match head.method.as_str() {
        "POST" => {}
        "GET" => {
            let names = serde_json::to_vec(&registry.names()).unwrap_or_default();
            return Ok((OK, JSON, Body::Bytes(names)));
        }
        _ => {
            return Ok((
                METHOD_NOT_ALLOWED,
                "Allow: GET, POST\r\n",
                Body::Bytes(text(METHOD_NOT_ALLOWED)),
            ))
        }
    }
    let len = match head.content_length {
        Some(_) if head.transfer_encoding => return Err(ReadEnd::Status(BAD_REQUEST)),
        None => return Err(ReadEnd::Status(LENGTH_REQUIRED)),
        Some(n) if n > MAX_BODY => return Err(ReadEnd::Status(TOO_LARGE)),
        Some(n) => n,
    };
    let want = head.len + len;
    if head.expect_continue && buf.len() < want {
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| ReadEnd::Gone)?;
    }
    while buf.len() < want {
        read_some(s, &mut buf, deadline)?;
    }
    let Some(permit) = slots.take() else {
        return Ok((BUSY, "Retry-After: 1\r\n", Body::Bytes(text(BUSY))));
    };
    let body = buf.get(head.len..want).unwrap_or(&[]);
    Ok(match jsonrpc::handle_body_streamed(registry, body) {
        RpcAnswer::Value(v) => (
            OK,
            JSON,
            Body::Bytes(serde_json::to_vec(&v).unwrap_or_default()),
        ),
        RpcAnswer::Stream { id, writer } => (OK, JSON, Body::Stream { id, writer, permit }),
        RpcAnswer::Nothing => (NO_CONTENT, "", Body::Bytes(Vec::new())),
    })
}

const JSON: &str = "Content-Type: application/json\r\n";
const PROMETHEUS: &str = "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n";

/// Writes a 200 whose body is `{"jsonrpc":"2.0","result":` + what `writer` writes +
/// `,"id":ID}`, delimited by the close of the connection.
fn write_streamed(
    s: &mut TcpStream,
    extra: &str,
    id: &serde_json::Value,
    writer: Writer,
) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(64 * 1024, &mut *s);
    write!(
        w,
        "HTTP/1.1 200 OK\r\n{extra}Connection: close\r\n\r\n{{\"jsonrpc\":\"2.0\",\"result\":"
    )?;
    writer(&mut w)?;
    write!(w, ",\"id\":{id}}}")?;
    w.flush()
}

/// Writes a complete response with `Connection: close`. `extra` holds whole header lines.
pub(super) fn write_response(
    w: &mut impl Write,
    st: Status,
    extra: &str,
    body: &[u8],
) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\n{extra}", st.0, st.1);
    if st != NO_CONTENT {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    w.write_all(&bytes)?;
    w.flush()
}

/// Closes after an answer without resetting the connection: half-close, then discard what the
/// peer still sends (e.g. the rest of a refused body) for a short, bounded while, so that the
/// peer reads the answer instead of a reset.
fn linger_close(s: &mut TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut left: usize = 1 << 20;
    let mut sink = [0u8; 4096];
    while left > 0 {
        let t = deadline.saturating_duration_since(Instant::now());
        if t.is_zero() || s.set_read_timeout(Some(t)).is_err() {
            return;
        }
        match s.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Refuses a connection when all handler slots are busy: takes in what the peer already sent
/// (briefly, so no reset eats the answer), answers 503 with `Retry-After: 1`, closes. Runs on
/// the accepting thread, so it never waits long.
pub(super) fn reject_busy(mut s: TcpStream) {
    let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut sink = [0u8; 4096];
    if let Ok(n) = s.read(&mut sink) {
        if n > 0 && s.set_nonblocking(true).is_ok() {
            let mut left = MAX_HEAD + MAX_BODY;
            while let Ok(n @ 1..) = s.read(&mut sink) {
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
            let _ = s.set_nonblocking(false);
        }
    }
    if write_response(&mut s, BUSY, "Retry-After: 1\r\n", &text(BUSY)).is_ok() {
        let _ = s.shutdown(Shutdown::Write);
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn heads() {
        assert_eq!(parse_head(b"POST /mi HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        let h = parse_head(
            b"POST /mi?x=1 HTTP/1.1\r\nContent-Length: 12\r\nExpect: 100-Continue\r\n\r\n{}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            h,
            Head {
                method: "POST".into(),
                path: "/mi".into(),
                content_length: Some(12),
                transfer_encoding: false,
                expect_continue: true,
                len: 67,
            }
        );
        let h = parse_head(b"GET /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.method.as_str(), h.path.as_str(), h.transfer_encoding),
            ("GET", "/x", true)
        );
        assert_eq!(h.content_length, None);
    }

    #[test]
    fn bad_heads() {
        assert_eq!(
            parse_head(b"POST /mi HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Err(BAD_REQUEST)
        );
        assert_eq!(
            parse_head(b"POST /mi HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Err(BAD_REQUEST)
        );
        assert_eq!(
            parse_head(b"POST /mi HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(BAD_REQUEST)
        );
        assert_eq!(parse_head(b"PO ST /mi HTTP/1.1\r\n\r\n"), Err(BAD_REQUEST));
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(parse_head(many.as_bytes()), Err(HEAD_TOO_LARGE));
    }

    #[test]
    fn responses() {
        let mut out = Vec::new();
        write_response(&mut out, METHOD_NOT_ALLOWED, "Allow: GET, POST\r\n", b"x").unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, POST\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
        );
        let mut out = Vec::new();
        write_response(&mut out, NO_CONTENT, "", b"").unwrap();
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    }
}
