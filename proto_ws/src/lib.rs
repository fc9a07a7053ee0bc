//! `proto_ws`: SIP over WebSocket (RFC 6455, RFC 7118) for sipcore, as a server for browsers and
//! softphones and as a client for outbound connections.
//!
//! * [`proto`]: the WebSocket protocol itself, pure code over bytes (frames, handshake, UTF-8,
//!   per-connection receive state). No I/O.
//! * [`driver`]: the I/O workers (mio), timers and write queues that run it.
//! * this file: the ABI glue, turning `modparam`s into a [`driver::WsConfig`] and the host's
//!   callbacks into a [`driver::Sink`]. Every exported function catches panics.
#![warn(missing_docs)]

pub mod driver;
mod fdlimit;
mod mi;
mod params;
pub mod proto;
mod trace;

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{RErr, ROk, RResult, RSlice, RSome, RStr, RString},
};
use driver::{ConnMeta, Runtime, Sink, TraceEvent, WsConfig};
use sipcore_abi::{
    catch_panic, HostApiRef, ListenerSpec, LogKv, LogLevel, Module, ModuleRef, ParamEntry, Proto,
    ProtoSpec, ReceiveInfo, SendError, SendTarget, Transport, TransportRef,
};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use trace::Tracer;

const MODULE: &str = "proto_ws";

/// Configuration gathered between `init` and `start`.
struct Pending {
    cfg: WsConfig,
    port: u16,
    trace: params::TraceParams,
    /// (id, address, `use_workers`, `reuse_port`).
    listeners: Vec<(u32, SocketAddr, u32, bool)>,
}

static HOST: OnceLock<HostApiRef> = OnceLock::new();
static PENDING: Mutex<Option<Pending>> = Mutex::new(None);
static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The running driver (for the MI commands).
pub(crate) fn runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// Forwards the driver's events to the host through the ABI.
struct HostSink {
    host: HostApiRef,
    tracer: Option<Tracer>,
}

impl Sink for HostSink {
    fn deliver(&self, info: &ReceiveInfo, payload: &[u8], _text: bool) {
        (self.host.deliver())(info, RSlice::from_slice(payload));
    }

    fn log(&self, level: LogLevel, msg: &str, kv: &[(&str, &str)]) {
        log_via(self.host, level, msg, kv);
    }

    fn opened(&self, c: &ConnMeta) -> bool {
        self.tracer.as_ref().is_some_and(|t| t.opened(c))
    }

    fn trace(&self, c: &ConnMeta, ev: TraceEvent<'_>) {
        if let Some(t) = &self.tracer {
            t.event(c, &ev);
        }
    }

    fn closed(&self, c: &ConnMeta, _reason: &str) {
        if let Some(f) = self.host.conn_closed() {
            f(Proto::WS, c.id);
        }
    }
}

fn log_via(host: HostApiRef, level: LogLevel, msg: &str, kv: &[(&str, &str)]) {
    let kvs: Vec<LogKv<'_>> = kv
        .iter()
        .map(|(k, v)| LogKv {
            key: RStr::from_str(k),
            value: RStr::from_str(v),
        })
        .collect();
    (host.log())(
        level,
        RStr::from_str(MODULE),
        RStr::from_str(msg),
        RSlice::from_slice(&kvs),
    );
}

fn log(level: LogLevel, msg: &str) {
    if let Some(h) = HOST.get() {
        log_via(*h, level, msg, &[]);
    }
}

/// Run an exported function's body, turning a panic into an error result.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> RResult<T, RString> {
    match catch_panic(f) {
        Ok(Ok(v)) => ROk(v),
        Ok(Err(e)) => RErr(RString::from(e)),
        Err(p) => {
            let msg = format!("panicked in {what}: {p}");
            log(LogLevel::CRIT, &msg);
            RErr(RString::from(msg))
        }
    }
}

extern "C" fn init(host: HostApiRef, params: RSlice<'_, ParamEntry<'_>>) -> RResult<(), RString> {
    guarded("init", || {
        let _ = HOST.set(host);
        let (cfg, port, trace) = params::config_from(params.as_slice())?;
        fdlimit::warn_if_low(cfg.max_connections, cfg.refuse_pool, |msg, kv| {
            log_via(host, LogLevel::WARN, msg, kv)
        });
        trace::TRACE_ON.store(trace.on, std::sync::atomic::Ordering::Relaxed);
        mi::register(host)?;
        *PENDING.lock().map_err(|e| e.to_string())? = Some(Pending {
            cfg,
            port,
            trace,
            listeners: Vec::new(),
        });
        Ok(())
    })
}

extern "C" fn destroy() {
    stop();
}

extern "C" fn default_port(_proto: Proto) -> u16 {
    catch_panic(|| {
        PENDING
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|p| p.port))
            .unwrap_or(80)
    })
    .unwrap_or(80)
}

extern "C" fn add_listener(spec: &ListenerSpec<'_>) -> RResult<(), RString> {
    guarded("add_listener", || {
        let addr = spec
            .addr
            .to_std()
            .ok_or_else(|| "listener without an address".to_string())?;
        let mut pending = PENDING.lock().map_err(|e| e.to_string())?;
        let p = pending
            .as_mut()
            .ok_or_else(|| "add_listener before init".to_string())?;
        p.listeners
            .push((spec.id, addr, spec.workers, spec.reuse_port));
        Ok(())
    })
}

extern "C" fn start() -> RResult<(), RString> {
    guarded("start", || {
        let host = *HOST.get().ok_or("start before init")?;
        let mut p = PENDING
            .lock()
            .map_err(|e| e.to_string())?
            .take()
            .ok_or("start called twice or before init")?;
        if p.cfg.workers == 0 {
            // ws_workers unset: the largest `use_workers` of our sockets, else one per core.
            p.cfg.workers = p.listeners.iter().map(|l| l.2 as usize).max().unwrap_or(0);
        }
        if p.cfg.workers == 0 {
            p.cfg.workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        }
        // Trace destinations and routes resolve now that every module is initialised.
        let tracer = Tracer::new(
            host,
            p.trace.destination.as_deref(),
            p.trace.filter_route.as_deref(),
        )?;
        let rt = Runtime::new(p.cfg, Arc::new(HostSink { host, tracer }));
        for (id, addr, _, reuse_port) in &p.listeners {
            rt.add_listener_reuse_port(*id, *addr, *reuse_port)
                .map_err(|e| e.to_string())?;
        }
        rt.start().map_err(|e| e.to_string())?;
        RUNTIME
            .set(rt)
            .map_err(|_| "proto_ws started twice".to_string())?;
        Ok(())
    })
}

extern "C" fn send(target: &SendTarget, data: RSlice<'_, u8>) -> RResult<u64, SendError> {
    match catch_panic(|| match RUNTIME.get() {
        Some(rt) => rt.send(target, data.as_slice()),
        None => Err(SendError::INTERNAL),
    }) {
        Ok(Ok(id)) => ROk(id),
        Ok(Err(e)) => RErr(e),
        Err(p) => {
            log(LogLevel::CRIT, &format!("panicked in send: {p}"));
            RErr(SendError::INTERNAL)
        }
    }
}

/// `Transport::keep_until` (ABI 1.2): see [`Runtime::keep_until`].
extern "C" fn keep_until(conn_id: u64, secs: u32) -> bool {
    catch_panic(|| RUNTIME.get().is_some_and(|rt| rt.keep_until(conn_id, secs))).unwrap_or(false)
}

extern "C" fn stop() {
    let _ = catch_panic(|| {
        if let Some(rt) = RUNTIME.get() {
            rt.stop();
        }
    });
}

static PROTOS: [ProtoSpec; 1] = [ProtoSpec {
    proto: Proto::WS,
    name: RStr::from_str("ws"),
}];

fn transport() -> TransportRef {
    Transport {
        protos: RSlice::from_slice(&PROTOS),
        default_port,
        add_listener,
        start,
        send,
        stop,
        keep_until,
    }
    .leak_into_prefix()
}

fn root_module() -> ModuleRef {
    Module {
        name: RStr::from_str(MODULE),
        version: RStr::from_str(env!("CARGO_PKG_VERSION")),
        params: RSlice::from_slice(&params::PARAMS),
        init,
        destroy,
        transport: RSome(transport()),
        trace_sink: abi_stable::std_types::RNone,
    }
    .leak_into_prefix()
}

sipcore_abi::export_module!(root_module);
