//! WebSocket echo server on the proto_ws driver, for conformance testing (Autobahn
//! `fuzzingclient`) and benchmarks: `ws_echo_server ADDR` (e.g. `127.0.0.1:9001`).
//!
//! Every message is sent back with the same opcode. No `sip` subprotocol or `Origin` is
//! required; messages up to 16 MiB in any number of frames are accepted. Logs go to stderr.
//! Runs until killed (Ctrl-C / SIGTERM).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use sipcore_abi::{LogLevel, ReceiveInfo};
use sipcore_ws::driver::{Runtime, Sink, WsConfig};

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

fn main() {
    let Some(addr) = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<SocketAddr>().ok())
    else {
        eprintln!("usage: ws_echo_server ADDR   (e.g. 127.0.0.1:9001)");
        std::process::exit(2);
    };
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
    if let Err(e) = rt.add_listener(0, addr).and_then(|()| rt.start()) {
        eprintln!("ws_echo_server: {e}");
        std::process::exit(1);
    }
    for (_, a) in rt.local_addrs() {
        eprintln!("ws_echo_server listening on ws://{a}/");
    }
    loop {
        std::thread::park();
    }
}
