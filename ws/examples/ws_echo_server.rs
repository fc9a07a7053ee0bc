//! WebSocket echo server on the proto_ws driver, for conformance testing (Autobahn
//! `fuzzingclient`) and benchmarks: `ws_echo_server ADDR` (e.g. `127.0.0.1:9001`) serves ws;
//! `ws_echo_server ADDR --tls CERT KEY` serves wss instead (a TLS listener whose default
//! server domain has tls_mgm's `certificate` CERT and `private_key` KEY, PEM files, e.g. from
//! `conf/tls/make-cert.sh`; tls_mgm's defaults otherwise: TLS 1.2 and 1.3).
//!
//! Every message is sent back with the same opcode. No `sip` subprotocol or `Origin` is
//! required; messages up to 16 MiB in any number of frames are accepted. Logs go to stderr.
//! Runs until killed (Ctrl-C / SIGTERM).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use sipcore_abi::{LogLevel, ReceiveInfo};
use sipcore_tls::{TlsConfig, TlsManager};
use sipcore_ws::driver::{Runtime, Sink, TlsHandle, WsConfig};

/// Echoes every message on its connection.
struct Echo {
    rt: OnceLock<Weak<Runtime>>,
}

impl Sink for Echo {
    fn deliver(&self, info: &ReceiveInfo, payload: &[u8], text: bool) {
        if let Some(rt) = self.rt.get().and_then(Weak::upgrade) {
            if let Err(e) = rt.send_frame(info.conn_id, text, payload) {
                eprintln!("echo on connection {} failed: {}", info.conn_id, e.as_str());
            }
        }
    }

    fn log(&self, level: LogLevel, msg: &str, kv: &[(&str, &str)]) {
        if level <= LogLevel::INFO {
            let kv: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
            eprintln!("[{}] {msg} {}", level.0, kv.join(" "));
        }
    }
}

const USAGE: &str =
    "usage: ws_echo_server ADDR [--tls CERT KEY]   (e.g. 127.0.0.1:9001; --tls serves wss)";

/// `ADDR [--tls CERT KEY]`: the address and, for wss, the certificate and key files.
fn parse_args(args: &[String]) -> Option<(SocketAddr, Option<(String, String)>)> {
    let addr = args.first()?.parse::<SocketAddr>().ok()?;
    match &args[1..] {
        [] => Some((addr, None)),
        [flag, cert, key] if flag == "--tls" => Some((addr, Some((cert.clone(), key.clone())))),
        _ => None,
    }
}

/// A TLS manager with one default server domain: tls_mgm's `certificate` and `private_key`.
fn tls_manager(cert: &str, key: &str) -> Result<TlsHandle, String> {
    let cfg = TlsConfig::from_params([("certificate", cert), ("private_key", key)])
        .map_err(|e| e.to_string())?;
    let mgr = TlsManager::new(cfg).map_err(|e| e.to_string())?;
    Ok(TlsHandle(Arc::new(mgr)))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((addr, tls)) = parse_args(&args) else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let tls = match tls.map(|(c, k)| tls_manager(&c, &k)).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ws_echo_server: TLS: {e}");
            std::process::exit(1);
        }
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let cfg = WsConfig {
        require_sip: false,
        require_origin: false,
        max_msg_size: 16 << 20,
        max_msg_chunks: 0,
        max_msg_time: Duration::from_secs(60),
        // Echoing 16 MiB messages needs a queue (and time) to match.
        max_write_queue: 64 << 20,
        send_timeout: Duration::from_secs(5),
        ..WsConfig::default()
    };
    let sink = Arc::new(Echo {
        rt: OnceLock::new(),
    });
    let rt = Arc::new(Runtime::new(cfg, sink.clone()));
    let _ = sink.rt.set(Arc::downgrade(&rt));
    if let Err(e) = rt
        .add_listener_with(0, addr, false, tls)
        .and_then(|()| rt.start())
    {
        eprintln!("ws_echo_server: {e}");
        std::process::exit(1);
    }
    for (_, a) in rt.local_addrs() {
        eprintln!("ws_echo_server listening on {scheme}://{a}/");
    }
    loop {
        std::thread::park();
    }
}
