//! Autobahn `fuzzingserver` client on the proto_ws driver: `ws_echo_client ws://HOST:PORT AGENT`,
//! or over TLS `ws_echo_client wss://HOST:PORT AGENT [--ca CA]`: every connection is wss, the
//! server's certificate verified (host name or IP address included) against the PEM CA file CA
//! (tls_mgm's `ca_list` of the default client domain), or the system roots without `--ca`.
//!
//! Asks `/getCaseCount`, runs every case (`/runCase?case=i&agent=AGENT`, echoing each message
//! with its opcode until the server closes), then `/updateReports?agent=AGENT`. Uses
//! `Runtime::connect` and `Sink::closed` to run one connection after the other.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use sipcore_abi::{LogLevel, ReceiveInfo};
use sipcore_tls::{TlsConfig, TlsManager};
use sipcore_ws::driver::{ConnMeta, Runtime, Sink, TlsHandle, WsConfig};

enum Ev {
    Text(u64, String),
    Closed(u64, String),
}

struct Client {
    rt: OnceLock<Weak<Runtime>>,
    /// Connection whose messages are reported instead of echoed (getCaseCount).
    report: AtomicU64,
    tx: Mutex<Sender<Ev>>,
}

impl Sink for Client {
    fn deliver(&self, info: &ReceiveInfo, payload: &[u8], text: bool) {
        if info.conn_id == self.report.load(Ordering::Acquire) {
            let s = String::from_utf8_lossy(payload).into_owned();
            let _ = self.tx.lock().map(|tx| tx.send(Ev::Text(info.conn_id, s)));
        } else if let Some(rt) = self.rt.get().and_then(Weak::upgrade) {
            let _ = rt.send_frame(info.conn_id, text, payload);
        }
    }

    fn log(&self, level: LogLevel, msg: &str, kv: &[(&str, &str)]) {
        if level <= LogLevel::WARN {
            let kv: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
            eprintln!("[{}] {msg} {}", level.0, kv.join(" "));
        }
    }

    fn closed(&self, c: &ConnMeta, reason: &str) {
        let _ = self
            .tx
            .lock()
            .map(|tx| tx.send(Ev::Closed(c.id, reason.to_string())));
    }
}

/// Wait until connection `id` is closed; returns the texts it delivered and why it closed.
fn wait_closed(
    rx: &Receiver<Ev>,
    id: u64,
    limit: Duration,
) -> Result<(Vec<String>, String), String> {
    let mut texts = Vec::new();
    loop {
        match rx.recv_timeout(limit) {
            Ok(Ev::Closed(c, reason)) if c == id => return Ok((texts, reason)),
            Ok(Ev::Text(c, t)) if c == id => texts.push(t),
            Ok(_) => {}
            Err(_) => return Err(format!("connection {id} not closed within {limit:?}")),
        }
    }
}

/// The default client domain, verifying servers against `ca` (PEM) or the system roots.
fn client_tls(ca: Option<&str>) -> Result<TlsHandle, String> {
    let cfg = TlsConfig::from_params(ca.map(|ca| ("ca_list", ca))).map_err(|e| e.to_string())?;
    let mgr = TlsManager::new(cfg).map_err(|e| e.to_string())?;
    Ok(TlsHandle(Arc::new(mgr)))
}

fn run(url: &str, agent: &str, ca: Option<&str>) -> Result<(), String> {
    let (rest, tls) = if let Some(r) = url.strip_prefix("ws://") {
        if ca.is_some() {
            return Err("--ca is for wss:// URLs".into());
        }
        (r, None)
    } else if let Some(r) = url.strip_prefix("wss://") {
        (r, Some(client_tls(ca).map_err(|e| format!("TLS: {e}"))?))
    } else {
        return Err("the URL must start with ws:// or wss://".into());
    };
    let hostport = rest.trim_end_matches('/');
    let addr: SocketAddr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("{hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("{hostport}: no address"))?;
    let cfg = WsConfig {
        workers: 1,
        require_sip: false,
        require_origin: false,
        max_msg_size: 16 << 20,
        max_msg_chunks: 0,
        max_msg_time: Duration::from_secs(60),
        max_write_queue: 64 << 20,
        send_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        handshake_timeout: Duration::from_secs(5),
        client_tls: tls,
        ..WsConfig::default()
    };
    let (tx, rx) = channel();
    let sink = Arc::new(Client {
        rt: OnceLock::new(),
        report: AtomicU64::new(u64::MAX),
        tx: Mutex::new(tx),
    });
    let rt = Arc::new(Runtime::new(cfg, sink.clone()));
    let _ = sink.rt.set(Arc::downgrade(&rt));
    rt.start().map_err(|e| e.to_string())?;
    let open = |resource: &str| {
        rt.connect(addr, hostport, resource, None)
            .map_err(|e| e.as_str().to_string())
    };

    // Hold `report` on a value no real id has until connect returns, then set it before any
    // message can arrive (the handshake needs a round trip).
    let id = open("/getCaseCount")?;
    sink.report.store(id, Ordering::Release);
    let (texts, reason) = wait_closed(&rx, id, Duration::from_secs(10))?;
    let count: u32 = texts
        .first()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| format!("no case count received (connection closed: {reason})"))?;
    sink.report.store(u64::MAX, Ordering::Release);
    eprintln!("running {count} cases as agent {agent}");
    for case in 1..=count {
        let id = open(&format!("/runCase?case={case}&agent={agent}"))?;
        if let Err(e) = wait_closed(&rx, id, Duration::from_secs(120)) {
            eprintln!("case {case}: {e}");
        }
    }
    let id = open(&format!("/updateReports?agent={agent}"))?;
    wait_closed(&rx, id, Duration::from_secs(30))?;
    rt.stop();
    eprintln!("done: {count} cases");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, agent, ca) = match args.as_slice() {
        [url, agent] => (url, agent, None),
        [url, agent, flag, ca] if flag == "--ca" => (url, agent, Some(ca.as_str())),
        _ => {
            eprintln!(
                "usage: ws_echo_client ws://HOST:PORT AGENT | wss://HOST:PORT AGENT [--ca CA]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = run(url, agent, ca) {
        eprintln!("ws_echo_client: {e}");
        std::process::exit(1);
    }
}
