//! Driver tests over real sockets on 127.0.0.1 (port 0): a recording [`Sink`], raw RFC 6455
//! client helpers, and tokio-tungstenite as the third-party peer.

mod admission;
mod bounds;
mod keep;
mod limits;
mod memory;
mod outbound;
mod pki;
mod server;
mod tls_in;
mod tls_out;
mod trace;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use sipcore_abi::{LogLevel, Proto, ReceiveInfo, SendTarget, SockAddr, NO_LISTENER};

use super::{ConnMeta, Runtime, Sink, TlsHandle, WsConfig};

/// What the sink saw.
#[derive(Debug, Clone)]
pub(crate) enum Ev {
    Msg(ReceiveInfo, Vec<u8>, bool),
    Closed(ConnMeta, String),
}

/// How the sink answers deliveries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Echo {
    /// Record only.
    No,
    /// `Runtime::send` from inside `deliver` (same-thread fast path).
    Send,
    /// From inside `deliver`, `send_frame` this many 40 000-byte binary frames, recording results.
    Flood(usize),
    /// From inside `deliver`, `keep_until(conn, secs)` (same-thread path), recording `Ok` when
    /// it returned true.
    Keep(u32),
}

pub(crate) struct TestSink {
    tx: Mutex<Sender<Ev>>,
    echo: Echo,
    pub rt: OnceLock<Weak<Runtime>>,
    pub logs: Mutex<Vec<String>>,
    pub results: Mutex<Vec<Result<(), sipcore_abi::SendError>>>,
    /// The worker's timer heap entries at each delivery (after the keep, with [`Echo::Keep`]).
    pub heap: Mutex<Vec<usize>>,
}

impl Sink for TestSink {
    fn deliver(&self, info: &ReceiveInfo, payload: &[u8], text: bool) {
        if self.echo == Echo::Send {
            if let Some(rt) = self.rt.get().and_then(Weak::upgrade) {
                let t = SendTarget {
                    proto: Proto::WS,
                    conn_id: info.conn_id,
                    dst: info.src,
                    listener: info.listener,
                };
                let _ = rt.send(&t, payload);
            }
        }
        if let Echo::Flood(n) = self.echo {
            if let Some(rt) = self.rt.get().and_then(Weak::upgrade) {
                let big = vec![7u8; 40_000];
                let r: Vec<_> = (0..n)
                    .map(|_| rt.send_frame(info.conn_id, false, &big))
                    .collect();
                self.results.lock().unwrap().extend(r);
            }
        }
        if let Echo::Keep(secs) = self.echo {
            if let Some(rt) = self.rt.get().and_then(Weak::upgrade) {
                let r = if rt.keep_until(info.conn_id, secs) {
                    Ok(())
                } else {
                    Err(sipcore_abi::SendError::NO_CONNECTION)
                };
                self.results.lock().unwrap().push(r);
            }
        }
        if let Some(rt) = self.rt.get().and_then(Weak::upgrade) {
            let w = super::shared::worker_of(info.conn_id);
            if let Some(n) = super::worker::with_local(rt.uid(), w, |st| st.timers.len()) {
                self.heap.lock().unwrap().push(n);
            }
        }
        let _ = self
            .tx
            .lock()
            .unwrap()
            .send(Ev::Msg(*info, payload.to_vec(), text));
    }

    fn log(&self, level: LogLevel, msg: &str, kv: &[(&str, &str)]) {
        let kv: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.logs
            .lock()
            .unwrap()
            .push(format!("{} {msg} {}", level.0, kv.join(" ")));
    }

    fn closed(&self, c: &ConnMeta, reason: &str) {
        let _ = self
            .tx
            .lock()
            .unwrap()
            .send(Ev::Closed(*c, reason.to_string()));
    }
}

/// A started runtime with one listener (id 3) on 127.0.0.1:0.
pub(crate) struct Server {
    pub rt: Arc<Runtime>,
    pub sink: Arc<TestSink>,
    pub rx: Receiver<Ev>,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(cfg: WsConfig, echo: Echo) -> Server {
        Server::start_with(cfg, echo, None)
    }

    /// As [`Server::start`]; with `tls`, the listener is a TLS listener.
    pub fn start_with(cfg: WsConfig, echo: Echo, tls: Option<TlsHandle>) -> Server {
        let (tx, rx) = channel();
        let sink = Arc::new(TestSink {
            tx: Mutex::new(tx),
            echo,
            rt: OnceLock::new(),
            logs: Mutex::new(Vec::new()),
            results: Mutex::new(Vec::new()),
            heap: Mutex::new(Vec::new()),
        });
        let rt = Arc::new(Runtime::new(cfg, sink.clone()));
        let _ = sink.rt.set(Arc::downgrade(&rt));
        rt.add_listener_with(3, "127.0.0.1:0".parse().unwrap(), false, tls)
            .unwrap();
        rt.start().unwrap();
        let addr = rt.local_addrs()[0].1;
        Server { rt, sink, rx, addr }
    }

    /// The next delivered message (skipping `closed` events), within 5 s.
    pub fn next_msg(&self) -> (ReceiveInfo, Vec<u8>, bool) {
        loop {
            match self
                .rx
                .recv_timeout(Duration::from_secs(5))
                .expect("no message delivered")
            {
                Ev::Msg(i, p, t) => return (i, p, t),
                Ev::Closed(..) => {}
            }
        }
    }

    /// The next `closed` event (skipping messages), within `secs`.
    pub fn next_closed(&self, secs: u64) -> (ConnMeta, String) {
        loop {
            match self
                .rx
                .recv_timeout(Duration::from_secs(secs))
                .expect("no connection closed")
            {
                Ev::Closed(m, r) => return (m, r),
                Ev::Msg(..) => {}
            }
        }
    }

    pub fn logs(&self) -> Vec<String> {
        self.sink.logs.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.rt.stop();
    }
}

/// The configuration tests start from: 1 worker, no Origin required.
pub(crate) fn cfg() -> WsConfig {
    WsConfig {
        workers: 1,
        require_origin: false,
        ..WsConfig::default()
    }
}

pub(crate) fn target(conn_id: u64) -> SendTarget {
    SendTarget {
        proto: Proto::WS,
        conn_id,
        dst: SockAddr::NONE,
        listener: NO_LISTENER,
    }
}

pub(crate) const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// RFC 6455 §1.3's accept value for [`KEY`].
pub(crate) const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub(crate) fn request(protocol: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n"
    )
}

/// Like [`ws`], with a 4 KiB receive buffer set before connecting (a slow reader).
pub(crate) fn slow_ws(addr: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request("Sec-WebSocket-Protocol: sip\r\n").as_bytes())
        .unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    s
}

/// A blocking TCP connection with a 5 s read timeout.
pub(crate) fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Read an HTTP head (up to the blank line).
pub(crate) fn read_head<S: Read>(s: &mut S) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Connect and complete a `sip` handshake; returns the stream.
pub(crate) fn ws(addr: SocketAddr) -> TcpStream {
    let mut s = tcp(addr);
    s.write_all(request("Sec-WebSocket-Protocol: sip\r\n").as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.contains(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n")),
        "{head}"
    );
    s
}

/// A masked client frame.
pub(crate) fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![b0];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// Read one unmasked server frame: (first byte, payload). `None` on EOF.
pub(crate) fn read_frame<S: Read>(s: &mut S) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    assert_eq!(h[1] & 0x80, 0, "server frame masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).ok()?;
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).ok()?;
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).ok()?;
    Some((h[0], p))
}

/// True when the peer closed (EOF or reset) within the read timeout.
pub(crate) fn at_eof<S: Read>(s: &mut S) -> bool {
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

pub(crate) const OPTIONS: &str = "OPTIONS sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\nFrom: sip:bob@example.com;tag=a\r\nTo: sip:alice@example.com\r\nCall-ID: c1@x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
