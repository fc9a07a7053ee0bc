//! Integration tests of the MI server and client over real sockets on 127.0.0.1: the
//! helpers here, JSON-RPC and HTTP answers in `rpc`, limits, timeouts and the client in `limits`.

mod limits;
mod rpc;

use super::client::{self, ClientError};
use super::http::{self, MiServer, MAX_CONCURRENT};
use super::{MiError, Params, Registry};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Holds `block` handlers until opened.
#[derive(Default)]
pub(super) struct Gate {
    pub(super) entered: AtomicUsize,
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    pub(super) fn wait(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
    pub(super) fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

pub(super) fn start() -> (MiServer, Arc<Gate>) {
    let r = Registry::with_builtins("9.9.9", Instant::now());
    r.register(
        "echo",
        "Echoes its params.",
        Arc::new(|p: &Params<'_>| Ok(p.raw().clone())),
    )
    .unwrap();
    r.register(
        "add",
        "Adds a and b.",
        Arc::new(|p: &Params<'_>| Ok(json!(p.get_int((0, "a"))? + p.get_int((1, "b"))?))),
    )
    .unwrap();
    r.register(
        "bad",
        "",
        Arc::new(|_: &Params<'_>| Err(MiError::custom(400, "Bad param"))),
    )
    .unwrap();
    r.register(
        "boom",
        "",
        Arc::new(|_: &Params<'_>| panic!("handler exploded")),
    )
    .unwrap();
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    r.register(
        "block",
        "",
        Arc::new(move |_: &Params<'_>| {
            g.wait();
            Ok(json!("released"))
        }),
    )
    .unwrap();
    r.register_alias("ws:echo", "echo").unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    (http::serve(Arc::new(r), addr, "mi").unwrap(), gate)
}

/// Sends raw bytes, reads to EOF: (status, head text, body).
pub(super) fn raw(addr: SocketAddr, bytes: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    split(&out)
}

pub(super) fn split(out: &[u8]) -> (u16, String, Vec<u8>) {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no head end")
        + 4;
    let head = String::from_utf8(out[..end].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head, out[end..].to_vec())
}

pub(super) fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String, Vec<u8>) {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(addr, req.as_bytes())
}

pub(super) fn rpc(addr: SocketAddr, body: &str) -> Value {
    let (status, head, body) = post(addr, "/mi", body);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: application/json\r\n"),
        "{head}"
    );
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {}\r\n", body.len())),
        "{head}"
    );
    serde_json::from_slice(&body).unwrap()
}

pub(super) fn call(addr: SocketAddr, method: &str, params: Value) -> Value {
    rpc(
        addr,
        &json!({"jsonrpc":"2.0","method":method,"params":params,"id":7}).to_string(),
    )
}
