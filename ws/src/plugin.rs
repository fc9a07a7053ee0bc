//! The ABI glue of both plugins: `modparam`s turned into a [`WsConfig`] (and, for proto_wss,
//! the host's tls_mgm values into a [`TlsManager`]), the host's callbacks into a [`Sink`], and
//! the exported functions, each catching panics. `proto_ws` and `proto_wss` are two thin
//! `cdylib`s calling [`root_module`] with their [`Flavor`]; each shared library has its own
//! copy of the statics here.
use crate::driver::{ConnMeta, Runtime, Sink, TlsHandle, TraceEvent, WsConfig};
use crate::flavor::{self, Flavor};
use crate::{fdlimit, mi, params, trace};
use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{RErr, RNone, ROk, RResult, RSlice, RSome, RStr, RString},
};
use sipcore_abi::{
    catch_panic, HostApiRef, ListenerSpec, LogKv, LogLevel, Module, ModuleRef, ParamEntry, Proto,
    ProtoSpec, ReceiveInfo, SendError, SendTarget, StatSink, Transport, TransportRef,
};
use sipcore_tls::{TlsConfig, TlsManager};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use trace::Tracer;

/// Configuration gathered between `init` and `start`.
struct Pending {
    cfg: WsConfig,
    port: u16,
    trace: params::TraceParams,
    /// proto_wss: the contexts built from the host's tls_mgm values.
    tls: Option<Arc<TlsManager>>,
    /// (id, address, `use_workers`, `reuse_port`).
    listeners: Vec<(u32, SocketAddr, u32, bool)>,
}

static HOST: OnceLock<HostApiRef> = OnceLock::new();
static PENDING: Mutex<Option<Pending>> = Mutex::new(None);
static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static TLS: OnceLock<Arc<TlsManager>> = OnceLock::new();

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
        // The driver's messages name WebSocket; under proto_tcp / proto_tls they name the
        // protocol served ("tcp connect failed", "tls write queue overflow, closing").
        let f = flavor::get();
        match msg.strip_prefix("websocket ") {
            Some(rest) if f.stream => log_via(self.host, level, &format!("{} {rest}", f.name), kv),
            _ => log_via(self.host, level, msg, kv),
        }
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
            f(flavor::get().proto, c.id);
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
        RStr::from_str(flavor::get().module),
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
        let f = flavor::get();
        let (mut cfg, port, trace) = params::config_from(f, params.as_slice())?;
        let tls = if f.tls {
            let m = tls_manager(host)?;
            cfg.client_tls = Some(TlsHandle(m.clone()));
            Some(m)
        } else {
            None
        };
        fdlimit::warn_if_low(cfg.max_connections, cfg.refuse_pool, |msg, kv| {
            log_via(host, LogLevel::WARN, msg, kv)
        });
        trace::TRACE_ON.store(trace.on, std::sync::atomic::Ordering::Relaxed);
        mi::register(host)?;
        *PENDING.lock().map_err(|e| e.to_string())? = Some(Pending {
            cfg,
            port,
            trace,
            tls,
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
            .unwrap_or(flavor::get().default_port)
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
            let tls = p.tls.clone().map(TlsHandle);
            rt.add_listener_with(*id, *addr, *reuse_port, tls)
                .map_err(|e| e.to_string())?;
        }
        if let Some(m) = &p.tls {
            if !p.listeners.is_empty() && m.current().server_domains().count() == 0 {
                return Err(format!(
                    "a {} socket needs a TLS server domain: modparam(\"tls_mgm\", \"certificate\", ...) and \"private_key\"",
                    flavor::get().name
                ));
            }
        }
        if let Some(m) = p.tls.take() {
            let _ = TLS.set(m);
        }
        // Reachable before its workers run: a worker delivers as soon as it accepts, and the
        // host's answer goes out through `RUNTIME` (set after the start, an answer sent in
        // between failed with "transport not running" and the client never got it).
        RUNTIME
            .set(rt)
            .map_err(|_| format!("{} started twice", flavor::get().module))?;
        let rt = RUNTIME
            .get()
            .ok_or_else(|| format!("{} is not running", flavor::get().module))?;
        rt.start().map_err(|e| e.to_string())?;
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

/// `Transport::send_named` (ABI 1.3): see [`Runtime::send_named`].
extern "C" fn send_named(
    target: &SendTarget,
    host: RStr<'_>,
    data: RSlice<'_, u8>,
) -> RResult<u64, SendError> {
    match catch_panic(|| match RUNTIME.get() {
        Some(rt) => rt.send_named(target, Some(host.as_str()), data.as_slice()),
        None => Err(SendError::INTERNAL),
    }) {
        Ok(Ok(id)) => ROk(id),
        Ok(Err(e)) => RErr(e),
        Err(p) => {
            log(LogLevel::CRIT, &format!("panicked in send_named: {p}"));
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

/// `Transport::stop_within` (ABI 1.4): the host's `shutdown_timeout` for the connections to
/// flush their queues and close (see [`Runtime::stop_within`]).
extern "C" fn stop_within(ms: u64) {
    let _ = catch_panic(|| {
        if let Some(rt) = RUNTIME.get() {
            rt.stop_within(std::time::Duration::from_millis(ms));
        }
    });
}

/// proto_wss: the host's tls_mgm values (ABI 1.3 `tls_params`) built into OpenSSL contexts.
/// The host loaded the same values at startup, so this fails only if a file changed since.
fn tls_manager(host: HostApiRef) -> Result<Arc<TlsManager>, String> {
    let f = flavor::get();
    let get = host.tls_params().ok_or_else(|| {
        format!(
            "{}: this sipcore is older than ABI 1.3 (no tls_mgm values for TLS)",
            f.module
        )
    })?;
    let settings = get();
    let config = TlsConfig::from_params(
        settings
            .as_slice()
            .iter()
            .map(|s| (s.name.as_str(), s.value.as_str())),
    )
    .map_err(|e| format!("tls_mgm: {e}"))?;
    if config.client.iter().any(|d| !d.verify_cert) {
        log(
            LogLevel::WARN,
            "a TLS client domain has verify_cert 0: outbound wss connections accept any server certificate",
        );
    }
    TlsManager::new(config)
        .map(Arc::new)
        .map_err(|e| format!("tls_mgm: {e}"))
}

/// `Transport::tls_reload` (ABI 1.3): read the certificate files again (MI `tls_reload`).
extern "C" fn tls_reload() -> RResult<RString, RString> {
    guarded("tls_reload", || {
        let m = TLS
            .get()
            .ok_or_else(|| format!("{} is not running", flavor::get().module))?;
        let generation = m.reload().map_err(|e| e.to_string())?;
        Ok(RString::from(format!("generation {generation}")))
    })
}

fn transport(f: &'static Flavor) -> TransportRef {
    let protos: &'static [ProtoSpec] = Box::leak(Box::new([ProtoSpec {
        proto: f.proto,
        name: RStr::from_str(f.name),
    }]));
    Transport {
        protos: RSlice::from_slice(protos),
        default_port,
        add_listener,
        start,
        send,
        stop,
        keep_until,
        send_named,
        stop_within,
        tls_reload: if f.tls {
            RSome(tls_reload as extern "C" fn() -> RResult<RString, RString>)
        } else {
            RNone
        },
    }
    .leak_into_prefix()
}

/// The root module of the plugin `f` (what its `export_module!` returns).
pub fn root_module(f: &'static Flavor) -> ModuleRef {
    flavor::set(f);
    Module {
        name: RStr::from_str(f.module),
        version: RStr::from_str(env!("CARGO_PKG_VERSION")),
        params: RSlice::from_slice(params::specs(f)),
        init,
        destroy,
        transport: RSome(transport(f)),
        trace_sink: RNone,
        flush: RNone,
        stats: RSome(report_stats),
    }
    .leak_into_prefix()
}

/// ABI 1.5 `Module::stats`: the counters of [`crate::stats`], under the flavor's name (`ws`
/// or `wss`).
extern "C" fn report_stats(sink: &StatSink) {
    let _ = catch_panic(|| crate::stats::report(sink, flavor::get().name));
}
